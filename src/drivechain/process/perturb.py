"""The teacher's own plausible mistakes: process data without any model.

Each perturbation changes ONE answer of the teacher's step and says which rating it aims at
(``intent``): -1 for a real mistake, 0 for a grey-band answer. Kinds (the family decides the name of a
flipped yes/no or a wrong option, see ``_SEMANTIC``):
- objects: ``missed_object`` (drop one), ``invented_object`` (add a visible vehicle not in the set,
  or a number no vehicle has), ``wrong_object`` (swap one for another vehicle); families naming the
  lead vehicle or the danger get ``*_lead`` / ``*_danger`` names;
- boolean: ``wrong_lane`` (free/occupied lane), ``wrong_intent`` (cut-in), ``wrong_safety``
  (plan.safe.*), ``missed_object`` / ``invented_object`` ("is there a vehicle ...") ... (-1);
  ``band_flip`` (0) when the frame is inside the rule's band;
- number: ``<quantity>_beyond_tolerance`` at 3x tolerance (-1), ``<quantity>_just_beyond_tolerance``
  at 1.5x (-1: partial credit from the grader, still an error, a harder negative), ``missing_value`` ("none" for a distance or time, -1), ``invented_value`` (a value for "none",
  -1); an exact number (no tolerance) is one off: ``wrong_lane`` (lane index, lane count) or
  ``wrong_count``;
- choice: ``unsafe_action`` (outside the safe set), ``dominated_action`` (safe, not acceptable),
  ``acceptable_not_preferred`` (0); other choices ``wrong_motion`` / ``wrong_crossing_order`` /
  ``wrong_behavior`` ... (-1) and ``acceptable_not_preferred`` (0);
- ranking: ``wrong_most_important`` (first two swapped), ``tail_reordered`` (last two) (-1);
- text: ``reason_wrong_object`` (the reason names another vehicle, -1).
Chains for best-of-N are composed by ``compose.compose_chain``: each step gets a fresh perturbation
with probability ``1 - p_correct``, and an earlier error of the chain is carried into the later
answers that depend on it with probability ``propagate`` (a missed lead vehicle -> no time to
collision -> FASTER believed safe -> accelerate), so a wrong upstream step makes a wrong final answer
likely, as in a real model's chains.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from drivechain.grading.cot import mentioned_vehicles
from drivechain.process.candidates import Candidate, Chain, step_targets, teacher_step
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

# family fragment -> name of "the wrong yes/no or option" for that family (first match wins)
_SEMANTIC: tuple[tuple[str, str], ...] = (
    ("cut_in", "wrong_intent"),
    ("side", "wrong_side"),
    ("speed", "wrong_relative_speed"),
    ("motion", "wrong_motion"),
    ("cross", "wrong_crossing_order"),
    ("plan.safe", "wrong_safety"),
    ("free", "wrong_lane"),
    ("lane", "wrong_lane"),
    ("yield", "wrong_yield"),
    ("beh.", "wrong_behavior"),
)
_QUANTITY = {"m": "distance", "s": "time", "m/s": "speed", "m/s2": "acceleration", "m/s^2": "acceleration"}


@dataclass(frozen=True)
class Perturbation:
    """One changed answer: the question, the new typed value (or text), the kind and its aimed rating."""

    qid: str
    kind: str
    value: Any
    intent: int
    is_text: bool = False


def _semantic(family: str) -> str:
    return next((name for frag, name in _SEMANTIC if frag in family), "wrong_answer")


def _object_suffix(qa: QA) -> str:
    if "lead" in qa.family:
        return "_lead"
    if "danger" in qa.family:
        return "_danger"
    return ""


def perturbations(record: FrameRecord, qa: QA) -> list[Perturbation]:
    """Every perturbation of one question, in a fixed order."""
    a, q, out = qa.answer, qa.qid, []
    visible = [ag.id for ag in record.frame.agents if ag.visible]
    if isinstance(a, ObjectsAnswer):
        suf = _object_suffix(qa)
        ids = list(a.ids)
        # a vehicle inside the rule's band (optional_ids) is neither required nor penalised: never "invented"
        others = [i for i in visible if i not in ids and i not in a.optional_ids]
        ghost = max([0, *visible, *ids, *a.optional_ids]) + 1  # a number no vehicle of the frame carries
        if ids:
            out.append(Perturbation(q, f"missed_object{suf}", ids[1:], -1))
        out.append(Perturbation(q, f"invented_object{suf}", ids + [others[0] if others else ghost], -1))
        if ids and others:
            out.append(Perturbation(q, f"wrong_object{suf}", [others[-1]] + ids[1:], -1))
    elif isinstance(a, BooleanAnswer):
        kind = _semantic(qa.family)
        if "exists" in qa.family:  # "is there a vehicle ...": no for yes misses it, yes for no invents one
            kind = "missed_object" if a.value else "invented_object"
        out.append(Perturbation(q, "band_flip" if a.accept_both else kind, not a.value, 0 if a.accept_both else -1))
    elif isinstance(a, NumberAnswer):
        name = _QUANTITY.get(a.unit, "value")
        if a.value is None:
            out.append(Perturbation(q, "invented_value", 4.0, -1))
        else:
            tol = max(a.abs_tol or 0.0, (a.rel_tol or 0.0) * abs(a.value))
            if tol == 0:  # an exact count (lanes, vehicles, lane index): one off
                kind = "wrong_lane" if "lane" in a.unit or "lane" in qa.family else "wrong_count"
                out.append(Perturbation(q, kind, a.value - 1.0 if a.value >= 2 else a.value + 1.0, -1))
            else:
                # away from zero: keeps the sign, so a distance never turns negative
                sign = 1.0 if a.value >= 0 else -1.0
                out.append(Perturbation(q, f"{name}_beyond_tolerance", a.value + sign * 3.0 * tol, -1))
                out.append(Perturbation(q, f"{name}_just_beyond_tolerance", a.value + sign * 1.5 * tol, -1))
            if a.unit in ("m", "s"):  # a distance or time "none" is a plausible slip; a count "none" is not
                out.append(Perturbation(q, "missing_value", None, -1))
    elif isinstance(a, ChoiceAnswer):
        for i in range(len(a.options)):
            if i == a.preferred:
                continue
            if a.safe is not None and i not in a.safe:
                out.append(Perturbation(q, "unsafe_action", i, -1))
            elif i not in a.acceptable:
                out.append(Perturbation(q, "dominated_action" if a.safe is not None else _semantic(qa.family), i, -1))
            else:
                out.append(Perturbation(q, "acceptable_not_preferred", i, 0))
    elif isinstance(a, RankingAnswer):
        ids = list(a.ids)
        if len(ids) >= 2:
            out.append(Perturbation(q, "wrong_most_important", [ids[1], ids[0], *ids[2:]], -1))
        if len(ids) >= 3:
            out.append(Perturbation(q, "tail_reordered", [*ids[:-2], ids[-1], ids[-2]], -1))
    elif isinstance(a, TextAnswer) and a.references:
        ref = a.references[0]
        named = sorted(mentioned_vehicles(ref))
        others = [i for i in visible if i not in named]
        if named and others:
            wrong = others[0]
            text = re.sub(rf"\b(vehicles?\s+#?){named[0]}\b", rf"\g<1>{wrong}", ref, flags=re.IGNORECASE)
            out.append(Perturbation(q, "reason_wrong_object", text, -1, is_text=True))
    return out


def apply(record: FrameRecord, step: Candidate, p: Perturbation) -> Candidate:
    """The step with one answer replaced by the perturbation."""
    from drivechain.prompts import format_value

    qa = record.graph.get(p.qid)
    assert qa is not None
    text = p.value if p.is_text else format_value(qa, p.value)
    return step.model_copy(update={
        "answers": {**step.answers, p.qid: text}, "source": "perturb", "kind": p.kind,
        "target_qid": p.qid, "intent": p.intent,
    }, deep=True)


def step_perturbations(record: FrameRecord, step_index: int) -> list[Perturbation]:
    """Every perturbation of every question of one step."""
    return [p for qa in step_targets(record, STAGES[step_index]) for p in perturbations(record, qa)]


def _spread(items: list[Perturbation], rng: random.Random) -> list[Perturbation]:
    """Shuffle, then interleave kinds so the first N cover as many kinds as possible."""
    items = items[:]
    rng.shuffle(items)
    by_kind: dict[str, list[Perturbation]] = {}
    for p in items:
        by_kind.setdefault(p.kind, []).append(p)
    out: list[Perturbation] = []
    while any(by_kind.values()):
        for kind in list(by_kind):
            if by_kind[kind]:
                out.append(by_kind[kind].pop(0))
    return out


class PerturbGenerator:
    """Seeded perturbations of the teacher's steps; chains mix correct and perturbed steps."""

    name = "perturb"

    def __init__(self, seed: int = 0, p_correct: float = 0.7, propagate: float = 0.8) -> None:
        self.seed = seed
        self.p_correct = p_correct
        self.propagate = propagate

    def _rng(self, record: FrameRecord, what: str) -> random.Random:
        # a string seed is hashed with sha512 by random: stable across processes and PYTHONHASHSEED
        return random.Random(f"{self.seed}/{record.frame.frame_id}/{what}")

    async def candidates(self, record: FrameRecord, step_index: int, prefix: list[Candidate], n: int) -> list[Candidate]:
        """Up to N distinct perturbations of the teacher's step k (the prefix is the teacher's anyway)."""
        base = teacher_step(record, step_index)
        chosen = _spread(step_perturbations(record, step_index), self._rng(record, f"step{step_index}"))[:n]
        out = []
        for i, p in enumerate(chosen):
            c = apply(record, base, p)
            c.sample = i
            out.append(c)
        return out

    async def chains(self, record: FrameRecord, n: int) -> list[Chain]:
        """N chains: fresh perturbations per step (1 - p_correct), upstream errors carried (propagate)."""
        from drivechain.process.compose import compose_chain

        rng = self._rng(record, "chains")
        options = [step_perturbations(record, k) for k in range(len(STAGES))]
        chains = []
        for i in range(n):
            steps = compose_chain(record, options, rng, self.p_correct, self.propagate)
            for s in steps:
                s.sample = i
            chains.append(Chain(frame_id=record.frame.frame_id, chain_id=i, source=self.name, steps=steps))
        return chains
