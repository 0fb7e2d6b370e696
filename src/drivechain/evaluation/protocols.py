"""Evaluation protocols: which questions are asked with which evidence, and how replies are graded.

- transitions (teacher-forced) A->B: evidence of A is the image (A=V) or the teacher's answers of
  every stage up to A as text (with and/or without the image); the model answers B's questions;
- free-running chain: Per from V, Pred from the model's own Per answers, Plan from its own Per+Pred;
- chain of thought: one request, the model reasons step by step; steps graded, first wrong found.

Each protocol is a coroutine per frame returning graded rows (one per question); the runner runs
frames in parallel. Behavior questions are asked together with planning and scored as "behavior".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

from drivechain.evaluation.g1 import g1 as _g1
from drivechain.evaluation.probes import count_probe_requests, probes
from drivechain.schema import QA, FrameRecord

PROTOCOLS = ("transitions", "free", "cot")
IMAGE_MODES = {"both": (True, False), "with": (True,), "without": (False,)}

# link -> (evidence stage A, target stages of B)
LINKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "V->Per": ("V", ("perception",)),
    "V->Pred": ("V", ("prediction",)),
    "V->Plan": ("V", ("planning", "behavior")),
    "Per->Pred": ("Per", ("prediction",)),
    "Per->Plan": ("Per", ("planning", "behavior")),
    "Pred->Plan": ("Pred", ("planning", "behavior")),
}
# evidence stage -> the stages whose correct answers are given as text
UPSTREAM: dict[str, tuple[str, ...]] = {"V": (), "Per": ("perception",), "Pred": ("perception", "prediction")}
# free-running steps, in order: (step name, target stages)
FREE_STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Per", ("perception",)),
    ("Pred", ("prediction",)),
    ("Plan", ("planning", "behavior")),
)
UNKNOWN = "unknown"


@dataclass(frozen=True)
class AskOptions:
    """What every request of a run shares."""

    image_root: str
    image: str = "both"
    history: bool = False
    temperature: float = 0.0
    max_tokens: int = 1024
    seed: int | None = 0
    cameras: str = "all"
    ask: str = "all"  # all | stage | one: how a step's questions are split into requests (evaluation/ask.py)
    links: tuple[str, ...] | None = None  # teacher-forced links to ask (None: every link)
    max_steps: int = 6  # g1: reasoning calls before the answer call (evaluation/g1.py)


Ask = Callable[[Any], Awaitable[Any]]  # Request -> runner.Outcome


def targets_of(record: FrameRecord, stages: tuple[str, ...]) -> list[QA]:
    """The frame's questions of these stages, in graph order."""
    return [n for n in record.graph.nodes if n.stage in stages]


def teacher_upstream(record: FrameRecord, evidence: str) -> list[tuple[QA, str]]:
    """The teacher's correct answers of every stage up to ``evidence``, as (qa, text)."""
    from drivechain.prompts import format_answer

    return [(qa, format_answer(qa)) for qa in targets_of(record, UPSTREAM[evidence]) if not qa.ambiguous]


def links_to_run(record: FrameRecord, image: str, links: tuple[str, ...] | None = None) -> list[tuple[str, bool]]:
    """(link, with_image) pairs asked for this frame: links from V always with the image."""
    out = []
    for link, (evidence, stages) in LINKS.items():
        if not targets_of(record, stages) or (links is not None and link not in links):
            continue
        for with_image in (True,) if evidence == "V" else IMAGE_MODES[image]:
            out.append((link, with_image))
    return out


def count_requests(record: FrameRecord, protocols: tuple[str, ...], image: str, opts: AskOptions | None = None) -> int:
    """Requests a frame needs (the free chain's first step shares V->Per's request)."""
    from drivechain.evaluation.ask import split_targets

    ask, links = getattr(opts, "ask", "all"), getattr(opts, "links", None)
    n = 0
    if "transitions" in protocols:
        n += sum(len(split_targets(targets_of(record, LINKS[link][1]), ask)) for link, _ in links_to_run(record, image, links))
    if "free" in protocols:
        n += sum(len(split_targets(targets_of(record, st), ask)) for _, st in FREE_STEPS)
        if "transitions" in protocols and targets_of(record, ("perception",)) and (links is None or "V->Per" in links):
            n -= len(split_targets(targets_of(record, ("perception",)), ask))
    if "cot" in protocols:
        n += 1
    if "probes" in protocols:
        n += count_probe_requests(record)
    if "g1" in protocols:  # at most: the loop may answer early
        n += 1 + getattr(opts, "max_steps", 6)
    return n


def _build(record: FrameRecord, targets: list[QA], opts: AskOptions, *, image: bool,
           upstream: list[tuple[QA, str]], cot: bool = False) -> Any:
    from drivechain.prompts import build_request

    return build_request(
        record, targets, image=image, upstream=upstream, image_root=opts.image_root, history=opts.history,
        cot=cot, temperature=opts.temperature, max_tokens=opts.max_tokens, seed=opts.seed, cameras=opts.cameras,
    )


def _grade_dict(g: Any) -> dict[str, Any]:
    if is_dataclass(g):
        return asdict(g)
    if hasattr(g, "model_dump"):
        return g.model_dump()
    return dict(g)


def grade_reply(record: FrameRecord, targets: list[QA], outcome: Any, base: dict[str, Any],
                parse: Callable[[str, list[QA]], dict[str, Any]] | None = None,
                ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Graded rows of one reply (failed request -> every target 'failed', score 0) and the parses."""
    from drivechain.grading.graders import grade
    from drivechain.grading.parse import parse_reply

    resp = outcome.response
    rows: list[dict[str, Any]] = []
    parsed: dict[str, Any] = {}
    if resp.ok:
        parsed = (parse or parse_reply)(resp.text, targets)
    for qa in targets:
        # The reply itself stays in results.sqlite (row ``key``): copied per answer it multiplied the file.
        row = {**base, "frame_id": record.frame.frame_id, "key": outcome.key}
        if resp.ok:
            p = parsed.get(qa.qid)
            g = _grade_dict(grade(qa, p))
            row.update(g)
            row["raw"] = getattr(p, "raw", None)
            row["value"] = _jsonable(getattr(p, "value", None))
        else:
            row.update(qid=qa.qid, family=qa.family, stage=qa.stage, type=qa.answer.type, score=0.0,
                       status="ambiguous" if qa.ambiguous else "failed", unsafe=False,
                       detail=resp.error or "failed", raw=None, value=None)
            row["error"] = resp.error
        if qa.answer.type == "text":
            row["refs"] = list(qa.answer.references)
        if "drivelm" in qa.meta:  # an imported DriveLM item: what its scorer needs (summary's "drivelm" block)
            from drivechain.interop.drivelm.eval_block import ground_truth

            row["drivelm"] = ground_truth(record, qa)
        rows.append(row)
    return rows, parsed


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return str(value)


async def transitions(record: FrameRecord, ask: Ask, opts: AskOptions) -> list[dict[str, Any]]:
    """Every teacher-forced link of one frame, asked concurrently."""
    import asyncio

    from drivechain.evaluation.ask import ask_targets

    pairs = links_to_run(record, opts.image, getattr(opts, "links", None))

    async def one(link: str, with_image: bool) -> list[dict[str, Any]]:
        evidence, stages = LINKS[link]
        targets = targets_of(record, stages)
        rows, _, _ = await ask_targets(record, targets, opts, ask, image=with_image,
                                       upstream=teacher_upstream(record, evidence),
                                       base={"protocol": "transitions", "link": link, "image": with_image})
        return rows

    parts = await asyncio.gather(*(one(link, im) for link, im in pairs))
    return [r for rows in parts for r in rows]


def own_answers(targets: list[QA], parsed: dict[str, Any]) -> list[tuple[QA, str]]:
    """The model's own parsed answers as upstream text ('unknown' where it gave none)."""
    from drivechain.prompts import format_value

    out = []
    for qa in targets:
        p = parsed.get(qa.qid)
        # value None is a real answer for numbers ("none"); only a missing/unparsed answer is unknown
        out.append((qa, UNKNOWN if p is None or getattr(p, "unparsed", None) else format_value(qa, p.value)))
    return out


async def free_running(record: FrameRecord, ask: Ask, opts: AskOptions) -> list[dict[str, Any]]:
    """Per from V, Pred from the model's own Per, Plan from its own Per + Pred (with the image).

    A failed step stops the chain: later steps are recorded as failed (not asked with a made-up
    upstream), so a rerun that retries the failure asks exactly what an unbroken run asks.
    """
    from drivechain.evaluation.ask import ask_targets

    rows: list[dict[str, Any]] = []
    upstream: list[tuple[QA, str]] = []
    broken: str | None = None
    for step, stages in FREE_STEPS:
        targets = targets_of(record, stages)
        if not targets:
            continue
        base = {"protocol": "free", "link": step, "image": True}
        if broken is not None:
            for qa in targets:
                rows.append({**base, "frame_id": record.frame.frame_id, "key": None,
                             "qid": qa.qid, "family": qa.family, "stage": qa.stage, "type": qa.answer.type,
                             "score": 0.0, "status": "ambiguous" if qa.ambiguous else "failed", "unsafe": False,
                             "detail": f"upstream step {broken} failed", "raw": None, "value": None,
                             "error": f"upstream step {broken} failed",
                             **({"refs": list(qa.answer.references)} if qa.answer.type == "text" else {})})
            continue
        step_rows, parsed, ok = await ask_targets(record, targets, opts, ask, image=True, upstream=list(upstream), base=base)
        rows.extend(step_rows)
        if not ok:
            broken = step
            continue
        upstream.extend(own_answers(targets, parsed))
    return rows


async def chain_of_thought(record: FrameRecord, ask: Ask, opts: AskOptions) -> list[dict[str, Any]]:
    """One request for the whole chain, reasoning step by step.

    Answers come from the final JSON (a question it lacks is read from its stage's step); the steps
    are the stages in chain order, each rated +1/0/-1 from its grades; every row carries the first
    wrong step's stage ("none" when all steps are right, "failed" when the request failed).
    """
    from drivechain.grading import cot as cot_mod

    targets = list(record.graph.nodes)
    out = await ask(_build(record, targets, opts, image=True, upstream=[], cot=True))
    rows, _ = grade_reply(record, targets, out, {"protocol": "cot", "link": "cot", "image": True},
                          parse=cot_mod.cot_answers)
    first, n_steps, ratings = "failed", 0, []
    if out.ok:
        n_steps = len(cot_mod.split_steps(out.response.text))
        ratings = cot_mod.stage_ratings(rows)
        idx = cot_mod.first_wrong_step([r for _, r in ratings])
        first = "none" if idx < 0 else ratings[idx][0]
    for r in rows:
        r["first_wrong"] = first
        r["n_steps"] = n_steps
        r["step_ratings"] = [list(x) for x in ratings]
    return rows


PROTOCOL_FUNCS = {"transitions": transitions, "free": free_running, "cot": chain_of_thought}
PROTOCOL_FUNCS["probes"] = probes  # counterfactual probes (evaluation/probes.py); not part of "all"
PROTOCOL_FUNCS["g1"] = _g1  # multi-call reasoning loop (evaluation/g1.py); not part of "all"
