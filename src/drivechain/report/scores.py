"""One pass over an eval run's scores.jsonl: per-frame sums for intervals, answers for the browser.

Answer *views* are the ways a model answered a node: ``tf`` = the teacher-forced link into the
node's stage that the free-running step mirrors (V->Per, Per->Pred, Pred->Plan; with the image),
``free`` = the free-running chain, ``cot`` = the one-request chain of thought.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from drivechain.evaluation.summary import FREE_MIRROR, typed
from drivechain.report.loaders import Run
from drivechain.schema import STAGES

VIEWS = {"tf": "teacher-forced link", "free": "free-running chain", "cot": "chain of thought"}
WRONG = ("wrong", "unsafe", "unparsed", "failed")


@dataclass
class RunScores:
    """What the report needs from one eval run's graded rows."""

    model: str
    frames: list[str] = field(default_factory=list)
    # cell ("family:per.lanes", "link:V->Per", ...) -> frame -> [score sum, count]
    cells: dict[str, dict[str, list[float]]] = field(default_factory=lambda: defaultdict(dict))
    # frame -> view -> qid -> [raw, status, score, detail, request key]
    answers: dict[str, dict[str, dict[str, list[Any]]]] = field(default_factory=dict)
    # frame -> request key -> label ("V->Per with image")
    requests: dict[str, dict[str, str]] = field(default_factory=dict)


def _view(row: dict[str, Any]) -> str | None:
    protocol = row.get("protocol")
    if protocol in ("free", "cot"):
        return protocol
    if protocol == "transitions" and row.get("image") is True and row.get("link") == FREE_MIRROR.get(row.get("stage")):
        return "tf"
    return None


def _label(row: dict[str, Any]) -> str:
    protocol = row.get("protocol")
    if protocol == "transitions":
        return f"link {row.get('link')}, {'with' if row.get('image') else 'without'} the image"
    return {"free": f"free-running chain, {row.get('stage')} step", "cot": "chain of thought"}.get(
        str(protocol), str(protocol))


def _add(cells: dict[str, dict[str, list[float]]], cell: str, frame: str, score: float) -> None:
    slot = cells[cell].setdefault(frame, [0.0, 0.0])
    slot[0] += score
    slot[1] += 1


def read_scores(run: Run) -> RunScores:
    """Read scores.jsonl once (rows of a torn last line are skipped by ``Run.jsonl``)."""
    out = RunScores(model=run.model)
    seen: set[str] = set()
    for row in run.jsonl("scores.jsonl"):
        frame = row.get("frame_id")
        if not isinstance(frame, str):
            continue
        if frame not in seen:
            seen.add(frame)
            out.frames.append(frame)
        key = row.get("key")
        if isinstance(key, str):
            out.requests.setdefault(frame, {}).setdefault(key, _label(row))
        view = _view(row)
        if view is not None and isinstance(row.get("qid"), str):
            score = row.get("score")
            out.answers.setdefault(frame, {}).setdefault(view, {})[row["qid"]] = [
                row.get("raw"), row.get("status"), score, row.get("detail") or "", key]
        if not typed(row) or not isinstance(row.get("score"), (int, float)):
            continue
        score = float(row["score"])
        if row.get("protocol") == "transitions":
            suffix = "" if row.get("image") is True else " (no image)"
            _add(out.cells, f"link:{row.get('link')}{suffix}", frame, score)
            if row.get("image") is True:
                _add(out.cells, f"family:{row.get('family')}", frame, score)
                _add(out.cells, f"stage:{row.get('stage')}", frame, score)
        elif row.get("protocol") == "cot":
            _add(out.cells, "cot", frame, score)
        elif row.get("protocol") == "free":
            _add(out.cells, f"free:{row.get('stage')}", frame, score)
    return out


def stage_outcomes(answers: dict[str, list[Any]], stage_of: dict[str, str]) -> str:
    """One letter per stage: r = no wrong answer (partials allowed), p = some partial, w = some wrong
    (wrong, unparsed or failed), u = some unsafe, '-' = not asked; ambiguous and text answers ignored."""
    worst: dict[str, str] = {}
    order = {"r": 0, "p": 1, "w": 2, "u": 3}
    for qid, (_, status, *_rest) in answers.items():
        stage = stage_of.get(qid)
        if stage is None or status in ("ambiguous", "language"):
            continue
        code = "u" if status == "unsafe" else "w" if status in WRONG else "p" if status == "partial" else "r"
        worst[stage] = max(worst.get(stage, code), code, key=order.__getitem__)
    return "".join(worst.get(s, "-") for s in STAGES)


def stage_percent(answers: dict[str, list[Any]], stage_of: dict[str, str]) -> list[int]:
    """Per stage, the mean score of its scored answers in percent (rounded down), -1 where none."""
    sums: dict[str, list[float]] = {}
    for qid, (_, status, score, *_rest) in answers.items():
        stage = stage_of.get(qid)
        if stage is None or status in ("ambiguous", "language") or not isinstance(score, (int, float)):
            continue
        slot = sums.setdefault(stage, [0.0, 0.0])
        slot[0] += float(score)
        slot[1] += 1
    return [int(100 * sums[s][0] / sums[s][1] + 1e-9) if s in sums else -1 for s in STAGES]


def first_wrong_stage(outcomes: str) -> str | None:
    """The first stage (in chain order) with a wrong or unsafe answer, or None."""
    return next((s for s, c in zip(STAGES, outcomes) if c in "wu"), None)
