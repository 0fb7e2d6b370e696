"""Whole chains for best-of-N composed from the teacher's own mistakes, with errors that carry downstream.

A real model that misses the lead vehicle also reports no time to collision, believes FASTER safe and
accelerates: its final answer is wrong because an upstream step was. Composition, per chain and step
(in chain order):
1. fresh error: with probability ``1 - p_correct`` one perturbation of the step (``perturb``);
2. propagation: the step's questions whose parents (``QA.parents``, through unanswered ambiguous nodes)
   hold an error of this chain are, with probability ``propagate`` (one draw per step), answered
   *consistently with that error* (below); otherwise the step recovers (answers them as the teacher).
   A changed answer is an error in turn, so errors cascade (perception -> prediction -> planning ->
   behavior). ``propagate = 0`` gives independent steps (the old composition).
Each error has a direction: +1 hides a hazard (a missed vehicle, a larger distance or time, "none" for
one, a free lane, no cut-in, "safe"), -1 invents one, 0 neither (then each consequence picks a side).
Consequences: yes/no hazard questions (``plan.safe``, ``lane_free``, ``exists``, ``cut_in``,
``cross_first``) take the direction's value; a distance or time becomes "none" (after a missed vehicle
or value) or 3x tolerance larger (+1) / smaller or invented (-1); a count one less / more; a missed
vehicle disappears from every later set and ranking; the lead's relative speed becomes faster / slower;
``plan.action`` becomes the most aggressive action the chain believes safe but is not (else the most
aggressive unsafe one, its ``plan.safe`` set to yes) for +1, SLOWER for -1; behaviour follows the
chain's action; the danger reason names the chain's first dangerous vehicle. Other answers keep the
teacher's value. Grey perturbations (intent 0) do not propagate.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from drivechain.process.candidates import Candidate, step_targets, teacher_step
from drivechain.schema import (
    QA,
    STAGES,
    BooleanAnswer,
    ChoiceAnswer,
    FrameRecord,
    NumberAnswer,
    ObjectsAnswer,
    RankingAnswer,
    TextAnswer,
)

AGGRESSIVE = ("FASTER", "LANE_LEFT", "LANE_RIGHT", "IDLE", "SLOWER")  # most aggressive first
# family fragment -> the yes/no value that means "no hazard"
_SAFE_VALUE = (("plan.safe", True), ("lane_free", True), ("exists", False), ("cut_in", False), ("cross_first", False))


@dataclass
class ChainError:
    """An error of one chain: its direction (+1 hides a hazard, -1 invents one, 0 neither) and origin."""

    direction: int
    origin: str
    missing: frozenset[int] = field(default_factory=frozenset)


def teacher_value(qa: QA) -> Any:
    """The teacher's typed answer (a text answer: its first reference)."""
    a = qa.answer
    if isinstance(a, ChoiceAnswer):
        return a.preferred
    if isinstance(a, (BooleanAnswer, NumberAnswer)):
        return a.value
    if isinstance(a, (ObjectsAnswer, RankingAnswer)):
        return list(a.ids)
    return a.references[0] if isinstance(a, TextAnswer) and a.references else ""


def _safe_value(family: str) -> bool | None:
    return next((v for frag, v in _SAFE_VALUE if frag in family), None)


def _option(a: ChoiceAnswer, *words: str) -> int | None:
    """Index of the first option containing one of the words (case-insensitive), in word order."""
    for w in words:
        for i, o in enumerate(a.options):
            if w.lower() in o.lower():
                return i
    return None


def _tol(a: NumberAnswer, value: float) -> float:
    return max(a.abs_tol or 0.0, (a.rel_tol or 0.0) * abs(value))


def direction(qa: QA, teacher: Any, value: Any) -> int:
    """Whether a changed answer hides (+1) or invents (-1) a hazard, or neither (0)."""
    a = qa.answer
    if isinstance(a, BooleanAnswer):
        safe = _safe_value(qa.family)
        return 0 if safe is None else (1 if value == safe else -1)
    if isinstance(a, NumberAnswer):
        if a.unit in ("m", "s") or "count" in qa.family:
            if value is None or teacher is None:
                return 1 if value is None else -1
            bigger = value > teacher
            return (1 if bigger else -1) if a.unit in ("m", "s") else (-1 if bigger else 1)
        return 0
    if isinstance(a, (ObjectsAnswer, RankingAnswer)):
        missing, invented = set(teacher) - set(value or []), set(value or []) - set(teacher)
        return 1 if missing and not invented else -1 if invented and not missing else 0
    if isinstance(a, ChoiceAnswer) and isinstance(value, int):
        name = a.options[value]
        if qa.family == "plan.action" and name in AGGRESSIVE and a.options[a.preferred] in AGGRESSIVE:
            return 1 if AGGRESSIVE.index(name) < AGGRESSIVE.index(a.options[a.preferred]) else -1
        return 1 if "faster" in name.lower() else -1 if "slower" in name.lower() else 0
    return 0


def _action(a: ChoiceAnswer, d: int, values: dict[str, Any], graph_qids: set[str]) -> int:
    """plan.action consistent with the chain's beliefs: aggressive and unsafe for +1, SLOWER for -1."""
    if d < 0:
        slower = a.options.index("SLOWER") if "SLOWER" in a.options else len(a.options) - 1
        return slower
    order = sorted(range(len(a.options)),
                   key=lambda i: AGGRESSIVE.index(a.options[i]) if a.options[i] in AGGRESSIVE else len(AGGRESSIVE))
    unsafe = [i for i in order if a.safe is not None and i not in a.safe]
    believed = [i for i in unsafe if values.get(f"plan.safe.{a.options[i]}") is True]
    if believed:
        return believed[0]
    if unsafe:  # overconfident: the most aggressive unsafe action, declared safe by the chain
        if f"plan.safe.{a.options[unsafe[0]]}" in graph_qids:
            values[f"plan.safe.{a.options[unsafe[0]]}"] = True
        return unsafe[0]
    return next((i for i in order if i != a.preferred), a.preferred)


def consequence(qa: QA, err: ChainError, values: dict[str, Any], graph_qids: set[str], rng: random.Random,
                action: str | None = None) -> Any:
    """The answer of ``qa`` consistent with an upstream error (its current value when no rule applies).

    ``action``: the chain's own plan.action name when it differs from the teacher's (behaviour follows it).
    """
    a, cur = qa.answer, values[qa.qid]
    d = err.direction or rng.choice((1, -1))
    if isinstance(a, BooleanAnswer):
        safe = _safe_value(qa.family)
        if safe is None or (d < 0 and qa.qid == "plan.safe.SLOWER"):  # an invented hazard never makes braking unsafe
            return cur
        return safe if d > 0 else not safe
    if isinstance(a, NumberAnswer):
        if "count" in qa.family and cur is not None:
            return max(0.0, cur - max(1, len(err.missing))) if d > 0 else cur + 1.0
        if a.unit not in ("m", "s"):
            return cur
        if d > 0:
            hidden = "missed" in err.origin or "missing" in err.origin  # the thing measured was lost upstream
            return None if hidden or cur is None else cur + 3.0 * _tol(a, cur)
        return 4.0 if cur is None else max(0.5, cur - 3.0 * _tol(a, cur))
    if isinstance(a, (ObjectsAnswer, RankingAnswer)):
        return [i for i in cur if i not in err.missing]
    if isinstance(a, ChoiceAnswer):
        if qa.family == "plan.action":
            return _action(a, d, values, graph_qids)
        if qa.family == "per.lead_speed":
            pick = _option(a, "faster" if d > 0 else "slower")
            return cur if pick is None else pick
        if qa.family == "beh.lateral" and action:
            side = {"LANE_LEFT": "left", "LANE_RIGHT": "right"}.get(action)
            return _option(a, side) if side else _option(a, "keep")
        if qa.family == "beh.longitudinal" and action:
            words = {"FASTER": ("accelerat",), "SLOWER": ("decelerat", "brak")}.get(action, ("keep",))
            pick = _option(a, *words)
            return cur if pick is None else pick
        return cur
    if isinstance(a, TextAnswer) and "danger" in qa.family and isinstance(values.get("plan.danger"), list):
        danger = values["plan.danger"]
        if not danger:
            return "No vehicle is dangerous."
        return re.sub(r"\b(vehicles?\s+#?)\d+", rf"\g<1>{danger[0]}", cur, count=1, flags=re.IGNORECASE)
    return cur


def effective_parents(record: FrameRecord, answered: set[str]) -> dict[str, list[str]]:
    """Each node's parents, an unanswered (ambiguous) parent replaced by its own effective parents."""
    memo: dict[str, list[str]] = {}

    def eff(qid: str, depth: int = 0) -> list[str]:
        if qid in memo:
            return memo[qid]
        qa = record.graph.get(qid)
        out: list[str] = []
        for p in (qa.parents if qa is not None and depth < 50 else []):
            for x in ([p] if p in answered else eff(p, depth + 1)):
                if x not in out:
                    out.append(x)
        memo[qid] = out
        return out

    return {qa.qid: eff(qa.qid) for qa in record.graph.nodes}


def compose_chain(record: FrameRecord, options: list[list[Any]], rng: random.Random, p_correct: float,
                  propagate: float) -> list[Candidate]:
    """One chain (four steps): fresh perturbations, then upstream errors carried with probability ``propagate``."""
    from drivechain.process.perturb import apply

    targets = [step_targets(record, st) for st in STAGES]
    answered = {qa.qid for ts in targets for qa in ts}
    parents = effective_parents(record, answered)
    values: dict[str, Any] = {qa.qid: teacher_value(qa) for ts in targets for qa in ts}
    errors: dict[str, ChainError] = {}
    steps = []
    for k, step_qas in enumerate(targets):
        step = teacher_step(record, k)
        fresh = None
        if options[k] and rng.random() >= p_correct:
            fresh = rng.choice(options[k])
            step = apply(record, step, fresh)
            if not fresh.is_text:
                values[fresh.qid] = fresh.value
            if fresh.intent < 0:
                qa = record.graph.get(fresh.qid)
                assert qa is not None
                t = teacher_value(qa)
                missing = frozenset(set(t) - set(fresh.value or [])) if isinstance(t, list) else frozenset()
                errors[fresh.qid] = ChainError(direction(qa, t, fresh.value), fresh.kind, missing)
        carry: bool | None = None
        changed: list[str] = []
        for qa in step_qas:
            if fresh is not None and qa.qid == fresh.qid:
                continue
            upstream = [errors[p] for p in parents[qa.qid] if p in errors]
            if not upstream:
                continue
            if carry is None:
                carry = rng.random() < propagate
            if not carry:
                continue
            d = sum(e.direction for e in upstream)
            err = ChainError((d > 0) - (d < 0), upstream[0].origin, frozenset().union(*(e.missing for e in upstream)))
            new = consequence(qa, err, values, answered, rng, _action_name(record, values, errors))
            if new != values[qa.qid]:
                values[qa.qid] = new
                errors[qa.qid] = ChainError(err.direction, err.origin, err.missing)
                changed.append(qa.qid)
        step = _render(record, step, values, changed, fresh)
        steps.append(step)
    return steps


def _action_name(record: FrameRecord, values: dict[str, Any], errors: dict[str, ChainError]) -> str | None:
    """The chain's plan.action name when it is wrong (an error of the chain), else None."""
    qa = record.graph.get("plan.action")
    if "plan.action" not in errors or qa is None or not isinstance(qa.answer, ChoiceAnswer):
        return None
    v = values.get("plan.action")
    return qa.answer.options[v] if isinstance(v, int) and 0 <= v < len(qa.answer.options) else None


def _render(record: FrameRecord, step: Candidate, values: dict[str, Any], changed: list[str], fresh: Any) -> Candidate:
    """The step with the propagated answers written in (plus a plan.safe set to yes by ``_action``)."""
    from drivechain.prompts import format_value

    answers = dict(step.answers)
    for qid in step.answers:
        qa = record.graph.get(qid)
        assert qa is not None
        if qid in changed or (qid.startswith("plan.safe.") and values[qid] != qa.answer.value  # type: ignore[union-attr]
                              and (fresh is None or fresh.qid != qid)):
            v = values[qid]
            answers[qid] = v if isinstance(qa.answer, TextAnswer) else format_value(qa, v)
    if not changed and answers == step.answers:
        return step
    kind = "propagated" if fresh is None else f"{fresh.kind}+propagated"
    return step.model_copy(update={"answers": answers, "source": "perturb", "kind": kind,
                                   "target_qid": fresh.qid if fresh is not None else changed[0],
                                   "intent": None}, deep=True)
