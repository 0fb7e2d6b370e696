"""Step ratings: a step's answers graded by the teacher's graders -> -1 / 0 / +1 (PRM800K's scale).

Per question (``question_rating``), from the typed grade of the step's own text:
- choice: +1 preferred option; 0 acceptable but not preferred (grey band); -1 not acceptable or unsafe;
- boolean: +1 the teacher's value; 0 the other value when the frame sits in the rule's band
  (``accept_both``); -1 otherwise;
- number: +1 within tolerance (grader score 1); -1 beyond it, partial credit included (the grader's
  linear decay between 1x and 2x tolerance is a score, not a grey band), and "none" against a value
  (and the reverse);
- objects: +1 the exact set (F1 1); -1 any missed or invented object (F1 < 1);
- ranking: +1 the exact order (NDCG 1); -1 otherwise;
- text: the vehicles it names ("vehicle N") must be those the teacher's reference names; +1 if so
  (or if the reference names none), -1 otherwise; the wording itself is not rated;
- unparsed: -1; ambiguous nodes are not in a step at all.
A step's rating is the minimum over its questions (+1 for a step with no questions). This agrees with
``grading.cot.step_rating`` except that there a band boolean answered with the teacher's own value is
0 (here +1, so the teacher's own step is always +1) and text answers are not rated.
"""

from __future__ import annotations

import json
import re

from drivechain.process.candidates import NO_ANSWER, Candidate, QuestionGrade, step_targets
from drivechain.schema import QA, BooleanAnswer, ChoiceAnswer, FrameRecord, TextAnswer

_VEHICLE = re.compile(r"\bvehicles?\s+#?(\d+)", re.IGNORECASE)
_FULL = 1.0 - 1e-9


def mentioned_vehicles(text: str) -> set[int]:
    """Vehicle numbers a sentence names ("vehicle 3", "vehicles 3 and 5" names 3 only: documented)."""
    return {int(m) for m in _VEHICLE.findall(text or "")}


def question_rating(qa: QA, value: object, status: str, score: float, unsafe: bool, answer_text: str) -> int:
    """The -1/0/+1 rating of one answer (rules in the module docstring)."""
    a = qa.answer
    if isinstance(a, TextAnswer):
        truth = set().union(*(mentioned_vehicles(r) for r in a.references)) if a.references else set()
        if status == "unparsed" or not answer_text.strip():
            return -1
        return 1 if not truth or mentioned_vehicles(answer_text) == truth else -1
    if status == "unparsed" or unsafe:
        return -1
    if isinstance(a, ChoiceAnswer):
        if value not in a.acceptable:
            return -1
        return 1 if value == a.preferred else 0
    if isinstance(a, BooleanAnswer):
        if bool(value) == a.value:
            return 1
        return 0 if a.accept_both else -1
    return 1 if score >= _FULL else -1


def grade_answers(record: FrameRecord, stage: str, answers: dict[str, str]) -> list[QuestionGrade]:
    """Grade a step's answer texts with the evaluation's parser and graders; one grade per question."""
    from drivechain.grading.graders import grade
    from drivechain.grading.parse import Parsed, parse_reply

    targets = step_targets(record, stage)
    # The step text is graded exactly as a model reply: one JSON object keyed by question id.
    parsed = parse_reply(json.dumps({q.qid: answers.get(q.qid, "") for q in targets}), targets)
    out = []
    for qa in targets:
        p = parsed[qa.qid]
        if answers.get(qa.qid, NO_ANSWER).strip() in (NO_ANSWER, ""):
            # "(no answer)" must not read as "no": an answer that was never given is unparsed
            p = Parsed(qid=qa.qid, unparsed="no answer")
        g = grade(qa, p)
        status = g.status
        if isinstance(qa.answer, TextAnswer):
            status = "unparsed" if p.unparsed else "text"
        rating = question_rating(qa, p.value, status, g.score, g.unsafe, answers.get(qa.qid, ""))
        out.append(QuestionGrade(qid=qa.qid, status=status, score=g.score, unsafe=g.unsafe, rating=rating,
                                 detail=g.detail))
    return out


def step_rating(grades: list[QuestionGrade]) -> int:
    """A step's rating: the worst of its questions' ratings (+1 when none is rated)."""
    rated = [g.rating for g in grades if g.rating is not None]
    return min(rated) if rated else 1


def rate(record: FrameRecord, cand: Candidate) -> Candidate:
    """Fill ``grades`` and ``rating`` of a candidate step (returns the same object)."""
    cand.grades = grade_answers(record, cand.stage, cand.answers)
    cand.rating = step_rating(cand.grades)
    return cand


def final_correct(steps: list[Candidate], qid: str | None) -> bool:
    """True when the chain's final answer (``qid``, normally plan.action) is rated 0 or +1.

    A frame without a scored final question falls back to the planning step's rating.
    """
    if qid is None:
        return any(s.stage == "planning" and (s.rating or 0) >= 0 for s in steps)
    for step in steps:
        for g in step.grades:
            if g.qid == qid:
                return g.rating is not None and g.rating >= 0
    return False
