"""Typed graders: one parsed answer against the teacher's typed truth -> a Grade (score in [0, 1]).

Statuses: correct (score 1), partial (0 < score < 1), wrong (0), unsafe (a choice outside the safe
set), unparsed (no readable answer: 0), ambiguous (the node is not scored), language (a text answer:
scored by language metrics, not here). Only ``Grade.scored`` grades enter typed means.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel

from drivechain.grading.parse import Parsed, parse_reply
from drivechain.schema import (
    QA,
    BooleanAnswer,
    ChoiceAnswer,
    NumberAnswer,
    ObjectsAnswer,
    RankingAnswer,
)

EXACT_TOL = 1e-6  # a number with neither abs_tol nor rel_tol must match to this

Status = Literal["correct", "partial", "wrong", "unsafe", "unparsed", "ambiguous", "language"]


class Grade(BaseModel):
    """One graded answer. ``grey``: acceptable but inside a documented grey band (not preferred)."""

    qid: str
    family: str
    stage: str
    type: str
    score: float
    status: Status
    unsafe: bool = False
    grey: bool = False
    detail: str = ""

    @property
    def scored(self) -> bool:
        """True when the grade counts in typed scores (not ambiguous, not a text answer)."""
        return self.status not in ("ambiguous", "language")


def _status(score: float) -> Status:
    return "correct" if score >= 1.0 else "wrong" if score <= 0.0 else "partial"


def number_score(value: float | None, truth: NumberAnswer) -> tuple[float, str]:
    """1 within tolerance (the looser of abs and rel), linear to 0 at twice it; none must be none."""
    if truth.value is None:
        return (1.0, "none, as the truth") if value is None else (0.0, f"{value:g} where the truth is none")
    if value is None:
        return 0.0, f"none where the truth is {truth.value:g}"
    tol = max(truth.abs_tol or 0.0, (truth.rel_tol or 0.0) * abs(truth.value)) or EXACT_TOL
    err = abs(value - truth.value)
    score = 1.0 if err <= tol else max(0.0, 1.0 - (err - tol) / tol)
    return score, f"error {err:.3g} {truth.unit} vs tolerance {tol:.3g}"


def objects_f1(pred: list[Any], truth: ObjectsAnswer) -> tuple[float, str]:
    """F1 after matching ids, then predicted positions to the unmatched truth within the radius."""
    optional = set(truth.optional_ids)
    pred = [v for v in pred if not (isinstance(v, int) and v in optional)]  # band: not penalised
    ids = [v for v in pred if isinstance(v, int)]
    pos = [v for v in pred if isinstance(v, tuple)]
    if not pred and not truth.ids:
        return 1.0, "none, as the truth"
    truth_ids = list(truth.ids)
    matched = set(ids) & set(truth_ids)
    tp = len(matched)
    has_pos = len(truth.positions_m) == len(truth_ids)
    free = [i for i, t in enumerate(truth_ids) if t not in matched] if has_pos else []
    # deterministic greedy matching, closest pairs first
    pairs = sorted(
        (math.dist(p, truth.positions_m[i]), j, i) for j, p in enumerate(pos) for i in free
    )
    used_p: set[int] = set()
    used_t: set[int] = set()
    for d, j, i in pairs:
        if d <= truth.match_radius_m and j not in used_p and i not in used_t:
            used_p.add(j)
            used_t.add(i)
    tp += len(used_p)
    n_pred = len(ids) + len(pos)
    if tp == 0:
        return 0.0, f"0 of {len(truth_ids)} found, {n_pred} given"
    precision, recall = tp / n_pred, tp / len(truth_ids)
    return 2 * precision * recall / (precision + recall), f"precision {precision:.2f} recall {recall:.2f}"


def ndcg(pred: list[int], truth: list[int]) -> float:
    """NDCG with linear gains: the truth's item at rank r of n has relevance n - r."""
    if not truth:
        return 1.0 if not pred else 0.0
    rel = {t: len(truth) - r for r, t in enumerate(truth)}
    dcg = sum(rel.get(p, 0) / math.log2(k + 2) for k, p in enumerate(pred))
    idcg = sum((len(truth) - r) / math.log2(r + 2) for r in range(len(truth)))
    return dcg / idcg


def _value_problem(qa: QA, v: Any) -> str | None:
    """Why a parsed value (possibly made by hand, e.g. a perturbation) does not fit the type, or None."""
    a = qa.answer
    if isinstance(a, ChoiceAnswer):
        ok = isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(a.options)
        return None if ok else f"option index {v!r} outside 0-{len(a.options) - 1}"
    if isinstance(a, BooleanAnswer):
        return None if isinstance(v, bool) else f"{v!r} is not yes/no"
    if isinstance(a, NumberAnswer):
        ok = v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
        return None if ok else f"{v!r} is not a finite number or none"
    if isinstance(a, (ObjectsAnswer, RankingAnswer)):
        if not isinstance(v, (list, tuple)):
            return f"{v!r} is not a list of vehicles"
        for x in v:
            pos = isinstance(a, ObjectsAnswer) and isinstance(x, tuple) and len(x) == 2
            if not (pos or (isinstance(x, int) and not isinstance(x, bool))):
                return f"{x!r} is not a vehicle number" + (" or position" if isinstance(a, ObjectsAnswer) else "")
    return None


def grade(qa: QA, parsed: Parsed) -> Grade:
    """Grade one parsed answer against its QA node."""
    base = {"qid": qa.qid, "family": qa.family, "stage": qa.stage, "type": qa.answer.type}
    if qa.ambiguous:
        return Grade(**base, score=0.0, status="ambiguous", detail="inside a rule's band: not scored")
    if qa.answer.type == "text":
        if parsed.unparsed:
            return Grade(**base, score=0.0, status="language", detail=f"unparsed: {parsed.unparsed}")
        return Grade(**base, score=0.0, status="language", detail="scored by language metrics")
    if parsed.unparsed is not None:
        return Grade(**base, score=0.0, status="unparsed", detail=parsed.unparsed)
    a, v = qa.answer, parsed.value
    problem = _value_problem(qa, v)
    if problem:
        return Grade(**base, score=0.0, status="unparsed", detail=problem)
    if isinstance(a, ChoiceAnswer):
        ok = v in a.acceptable
        unsafe = a.safe is not None and v not in a.safe
        grey = ok and v != a.preferred
        detail = f"picked {a.options[v]!r}" + (" (acceptable, not preferred)" if grey else "")
        status: Status = "unsafe" if unsafe else ("correct" if ok else "wrong")
        return Grade(**base, score=float(ok), status=status, unsafe=unsafe, grey=grey, detail=detail)
    if isinstance(a, BooleanAnswer):
        if a.accept_both:
            # both accepted; only the teacher's other value is grey (accepted thanks to the band)
            grey = bool(v) != a.value
            return Grade(**base, score=1.0, status="correct", grey=grey,
                         detail="inside the band: both accepted" + (", not the preferred value" if grey else ""))
        ok = bool(v) == a.value
        return Grade(**base, score=float(ok), status=_status(float(ok)), detail=f"answered {'yes' if v else 'no'}")
    if isinstance(a, NumberAnswer):
        score, detail = number_score(v, a)
        return Grade(**base, score=score, status=_status(score), detail=detail)
    if isinstance(a, ObjectsAnswer):
        score, detail = objects_f1(list(v or []), a)
        return Grade(**base, score=score, status=_status(score), detail=detail)
    if isinstance(a, RankingAnswer):
        score = ndcg([int(x) for x in (v or [])], list(a.ids))
        return Grade(**base, score=score, status=_status(score), detail=f"NDCG {score:.3f}")
    return Grade(**base, score=0.0, status="unparsed", detail=f"unknown answer type {a.type}")


def grade_reply(text: str, targets: list[QA]) -> list[Grade]:
    """Parse a reply and grade every target, in target order."""
    parsed = parse_reply(text, targets)
    return [grade(qa, parsed[qa.qid]) for qa in targets]
