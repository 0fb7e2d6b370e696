"""The g1 protocol: explicit reasoning steps, one model call per step, then a call for the answers.

Each call adds to one conversation. The model is asked for ONE JSON object per step,
``{"title", "content", "next_action": "continue" | "final_answer"}``; after ``final_answer`` (or
``max_steps`` steps) a last call asks for the answers as ONE JSON object keyed by question id.
Each step is mapped to a stage (its title's stage word, else the stage its content names most), so
the answers a final JSON lacks are read from their stage's steps and the first wrong stage is
located as in the single-call CoT protocol (``grading.cot``). Every call is its own stored request:
tokens, cost and latency of the run add up over all of them, and a resumed run reuses them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from drivechain.schema import FrameRecord

G1_SYSTEM = (
    "Reason in explicit steps, ONE step per reply. Each reply is ONE JSON object "
    '{"title": "...", "content": "...", "next_action": "continue"} or with "next_action": "final_answer" '
    "when you are ready to answer. Title each step with the stage it works on: Perception, Prediction, "
    "Planning or Behavior. Use as many steps as you need, re-examine your earlier steps when unsure."
)
FIRST_STEP = 'Give your first reasoning step as ONE JSON object {"title", "content", "next_action"}.'
NEXT_STEP = 'Next reasoning step, as ONE JSON object {"title", "content", "next_action"}.'
FINAL = "Now give your final answers as ONE JSON object keyed by question id with your answers as strings, like {}, and nothing else."
MAX_STEPS_DEFAULT = 6


def read_step(text: str) -> dict[str, str]:
    """{title, content, next_action} of one step reply; a reply without such JSON is all content."""
    from drivechain.grading.parse import _json_candidates, _load_obj

    text = text[:50_000] if isinstance(text, str) else ""
    for blob in reversed(_json_candidates(text)):
        obj = _load_obj(blob)
        if isinstance(obj, dict) and ("content" in obj or "title" in obj):
            action = str(obj.get("next_action", "continue")).strip().lower()
            return {"title": str(obj.get("title", ""))[:200], "content": str(obj.get("content", ""))[:5000],
                    "next_action": "final_answer" if "final" in action else "continue"}
    final = re.search(r"final[_ ]answer", text, re.I) is not None
    return {"title": "", "content": text.strip()[:5000], "next_action": "final_answer" if final else "continue"}


def step_stage(step: dict[str, str]) -> str | None:
    """The stage a step works on: a stage word in its title, else the stage its content names most."""
    from drivechain.grading.cot import _HEADER_STAGE, _keyword_stage

    for word in re.findall(r"[a-z]+", step.get("title", "").lower()):
        if word in _HEADER_STAGE:
            return _HEADER_STAGE[word]
    return _keyword_stage(step.get("title", "") + " " + step.get("content", ""))


def as_cot_text(steps: list[dict[str, str]], final_reply: str) -> str:
    """The steps as a CoT text with stage headers, then the final reply (what ``cot_answers`` reads)."""
    parts = []
    for s in steps:
        stage = step_stage(s)
        if stage:
            parts.append(f"{stage.capitalize()}:\n{s['content']}")
    return "\n\n".join(parts + [final_reply])


async def g1(record: FrameRecord, ask: Any, opts: Any) -> list[dict[str, Any]]:
    """One frame through the g1 loop; graded rows like the CoT protocol's, plus the steps."""
    from drivechain.evaluation.protocols import _build, grade_reply
    from drivechain.grading import cot as cot_mod
    from drivechain.models.base import Message, TextPart

    targets = list(record.graph.nodes)
    first = _build(record, targets, opts, image=True, upstream=[])
    system = first.messages[0].model_copy(update={"content": [TextPart(text=first.messages[0].text() + "\n" + G1_SYSTEM)]})
    user = first.messages[1]
    # the question block's closing line asks for the answers; the loop asks for a step first
    user = user.model_copy(update={"content": [*user.content, TextPart(text=FIRST_STEP)]})
    messages = [system, user]
    max_steps = max(1, int(getattr(opts, "max_steps", MAX_STEPS_DEFAULT)))
    steps: list[dict[str, str]] = []
    example = json.dumps({qa.qid: "..." for qa in targets[:2]})
    final_call = False
    while True:
        out = await ask(first.model_copy(update={"messages": messages}))
        if not out.ok or final_call:
            break
        step = read_step(out.response.text)
        steps.append(step)
        final_call = len(steps) >= max_steps or step["next_action"] == "final_answer"
        follow = FINAL.format(example) if final_call else NEXT_STEP
        messages = [*messages, Message(role="assistant", content=[TextPart(text=out.response.text)]),
                    Message(role="user", content=[TextPart(text=follow)])]
    text = as_cot_text(steps, out.response.text) if out.ok else ""
    rows, _ = grade_reply(record, targets, out, {"protocol": "g1", "link": "g1", "image": True},
                          parse=lambda _t, tg: cot_mod.cot_answers(text, tg))
    first_wrong, ratings, wrong_step = "failed", [], None
    if out.ok:
        ratings = cot_mod.stage_ratings(rows)
        idx = cot_mod.first_wrong_step([r for _, r in ratings])
        first_wrong = "none" if idx < 0 else ratings[idx][0]
        wrong_step = next((i for i, s in enumerate(steps) if step_stage(s) == first_wrong), None)
    summary_steps = [{"title": s["title"], "stage": step_stage(s), "next_action": s["next_action"]} for s in steps]
    for r in rows:
        r.update(first_wrong=first_wrong, first_wrong_step=wrong_step, n_steps=len(steps),
                 step_ratings=[list(x) for x in ratings], g1_steps=summary_steps, calls=len(steps) + 1 if out.ok else None)
    return rows


def g1_summary(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Score, per-stage scores, first-error stages, steps and calls per frame of the g1 rows (None without)."""
    from drivechain.evaluation.summary import typed

    g = [r for r in rows if r.get("protocol") == "g1"]
    if not g:
        return None
    scored = [r for r in g if typed(r)]
    frames: dict[str, dict[str, Any]] = {}
    for r in g:
        frames.setdefault(r["frame_id"], r)
    stages: dict[str, list[float]] = {}
    for r in scored:
        stages.setdefault(r["stage"], []).append(r["score"])
    first: dict[str, int] = {}
    for r in frames.values():
        first[r["first_wrong"]] = first.get(r["first_wrong"], 0) + 1
    done = [r for r in frames.values() if r.get("calls")]
    return {
        "kind": "g1",
        "title": "g1 reasoning (one call per step)",
        "description": "Answers after a multi-call reasoning loop; first_error is the first stage rated wrong, "
                       "as in the single-call CoT protocol; steps and calls are per frame.",
        "score": round(sum(r["score"] for r in scored) / len(scored), 4) if scored else None,
        "stages": {s: round(sum(v) / len(v), 4) for s, v in stages.items()},
        "first_error": dict(sorted(first.items())),
        "frames": len(frames),
        "steps_mean": round(sum(r["n_steps"] for r in done) / len(done), 3) if done else None,
        "calls": sum(r["calls"] for r in done),
    }
