"""Ask the model for a decision: ``plan`` (image -> planning in one request) or ``chain`` (free-running).

The model's recommended action is its parsed ``plan.action`` choice, mapped to the scenario's
meta-action. A failed request or an unparseable / unmappable answer falls back to the configured
action and counts as a model failure. Every asked question is graded against the teacher's graph
(on-policy QA), so the step record carries labels and answers side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drivechain.schema import QA, ChoiceAnswer, FrameRecord

ASK_MODES = ("plan", "chain")
ACTION_QID = "plan.action"
# option wordings a teacher may use -> meta-action (the teacher's options are normally the names)
ACTION_SYNONYMS: dict[str, str] = {
    "change to the left lane": "LANE_LEFT",
    "keep lane and speed": "IDLE",
    "change to the right lane": "LANE_RIGHT",
    "speed up": "FASTER",
    "slow down": "SLOWER",
}


@dataclass
class Decision:
    """What the ego does at one step and why."""

    action: str
    model_action: str | None = None
    fallback: bool = False
    failure: str | None = None
    # The fallback was forced by a failed request (server fault), not by an unusable answer.
    request_failed: bool = False
    answers: dict[str, str | None] = field(default_factory=dict)
    grades: list[dict[str, Any]] = field(default_factory=list)
    qa: dict[str, float | None] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)


def to_action(option: str, actions: list[str]) -> str | None:
    """A plan.action option text -> the scenario's meta-action name, or None."""
    text = " ".join(str(option).split())
    if text in actions:
        return text
    upper = text.upper().replace(" ", "_")
    if upper in actions:
        return upper
    mapped = ACTION_SYNONYMS.get(text.lower())
    return mapped if mapped in actions else None


def _stage_targets(record: FrameRecord, stages: tuple[str, ...]) -> list[QA]:
    return [n for n in record.graph.nodes if n.stage in stages]


def _stage_means(grades: list[Any]) -> dict[str, float | None]:
    by: dict[str, list[float]] = {}
    for g in grades:
        if g.scored:
            by.setdefault(g.stage, []).append(g.score)
    return {s: round(sum(v) / len(v), 6) for s, v in sorted(by.items())}


async def decide(
    record: FrameRecord,
    asker: Any,
    *,
    mode: str,
    image_root: str,
    fallback: str,
    max_tokens: int = 1024,
    temperature: float = 0.0,
    prices: Any = None,
) -> Decision:
    """Ask ``asker`` (an evaluation.runner.Asker) for this frame's action; never raises for model faults."""
    from drivechain.grading.graders import grade
    from drivechain.grading.parse import parse_reply
    from drivechain.prompts import build_request, format_value

    frame = record.frame
    if mode == "plan":
        rounds: list[tuple[str, ...]] = [("planning", "behavior")]
    else:
        rounds = [("perception",), ("prediction",), ("planning", "behavior")]
    upstream: list[tuple[QA, str]] = []
    parsed_all: dict[str, Any] = {}
    decision = Decision(action=fallback)
    failed: str | None = None
    graded: list[Any] = []
    for stages in rounds:
        targets = _stage_targets(record, stages)
        if not targets:
            continue
        request = build_request(
            record, targets, image=True, upstream=list(upstream), image_root=image_root,
            temperature=temperature, max_tokens=max_tokens, seed=frame.seed,
        )
        out = await asker.ask(request)
        resp = out.response
        cost = prices.cost_usd(asker.model_key, resp.usage) if prices is not None and resp.ok else None
        decision.requests.append({
            "stage": "+".join(stages), "key": out.key, "ok": out.ok, "cached": out.cached,
            "attempts": out.attempts, "latency_s": round(resp.latency_s, 6), "error": resp.error,
            "prompt_tokens": resp.usage.prompt_tokens, "completion_tokens": resp.usage.completion_tokens,
            "reasoning_tokens": resp.usage.reasoning_tokens, "cost_usd": cost,
        })
        if not out.ok:
            failed = failed or f"request failed: {resp.error}"
        parsed = parse_reply(resp.text if out.ok else "", targets)
        for qa in targets:
            p = parsed[qa.qid]
            parsed_all[qa.qid] = p
            decision.answers[qa.qid] = p.raw
            g = grade(qa, p)
            graded.append(g)
            decision.grades.append({"qid": qa.qid, "stage": qa.stage, "score": g.score, "status": g.status,
                                    "unsafe": g.unsafe})
            # free-running: the next stage sees the model's own answer (its raw text if unparsed)
            text = format_value(qa, p.value) if p.unparsed is None else (p.raw or "unknown")
            upstream.append((qa, text))
    decision.qa = _stage_means(graded)
    decision.request_failed = failed is not None
    node = record.graph.get(ACTION_QID)
    p = parsed_all.get(ACTION_QID)
    if node is None or not isinstance(node.answer, ChoiceAnswer):
        decision.failure = failed or "no plan.action question in this frame"
        decision.fallback = True
        return decision
    if p is None or p.unparsed is not None or not isinstance(p.value, int):
        decision.failure = failed or f"unparsed plan.action: {getattr(p, 'unparsed', 'missing')}"
        decision.fallback = True
        return decision
    action = to_action(node.answer.options[p.value], frame.actions)
    if action is None:
        decision.failure = f"plan.action option {node.answer.options[p.value]!r} is no meta-action"
        decision.fallback = True
        return decision
    decision.action = decision.model_action = action
    decision.request_failed = False  # the model decided despite a failed upstream request
    return decision
