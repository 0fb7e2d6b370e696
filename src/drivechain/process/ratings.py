"""Step ratings: a step's answers graded by the teacher's graders -> -1 / 0 / +1 (PRM800K's scale).

The rule itself lives in ONE place, ``grading.cot`` (``answer_rating`` per question, ``combine_ratings``
per step), shared with the evaluation's CoT protocol; this module only grades a candidate's answer
texts with the evaluation's parser and graders and applies it. Summary (docs/process.md):
choice +1 preferred / 0 acceptable-not-preferred / -1 otherwise or unsafe; boolean +1 the teacher's
value / 0 the other value inside the rule's band / -1 otherwise; number, objects, ranking +1 at full
score / -1 below (partial credit beyond tolerance included); text +1 when it names the vehicles its
references name / -1 otherwise; unparsed -1; ambiguous not rated. A step: the minimum (+1 if none).
"""

from __future__ import annotations

import json

from drivechain.grading.cot import answer_rating, combine_ratings
from drivechain.process.candidates import NO_ANSWER, Candidate, QuestionGrade, step_targets
from drivechain.schema import FrameRecord, TextAnswer

__all__ = ["grade_answers", "step_rating", "rate", "final_correct"]


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
            rating = answer_rating(g, text="" if p.unparsed else str(p.value), references=qa.answer.references)
        else:
            rating = answer_rating(g)
        out.append(QuestionGrade(qid=qa.qid, status=status, score=g.score, unsafe=g.unsafe, rating=rating,
                                 detail=g.detail))
    return out


def step_rating(grades: list[QuestionGrade]) -> int:
    """A step's rating: the worst of its questions' ratings (+1 when none is rated)."""
    return combine_ratings(g.rating for g in grades)


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
