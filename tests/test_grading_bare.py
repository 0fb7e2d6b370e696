"""Bare answers to one question: what a model fine-tuned on driving QA writes, read with its parse mode."""

from __future__ import annotations

import pytest

from drivechain.grading.bare import parse_one
from drivechain.schema import QA, BooleanAnswer, ChoiceAnswer, NumberAnswer, ObjectsAnswer, RankingAnswer

CHOICE = QA(qid="plan.action", family="plan.action", stage="planning", question="Which action?",
            answer=ChoiceAnswer(options=["accelerate", "steady", "brake"], acceptable=[1], preferred=1))
YESNO = QA(qid="per.left_free", family="per.left_free", stage="perception", question="Is the left lane free?",
           answer=BooleanAnswer(value=True))
NUMBER = QA(qid="per.gap", family="per.gap", stage="perception", question="Gap?",
            answer=NumberAnswer(value=20.0, unit="m", abs_tol=2.0))
OBJECTS = QA(qid="per.near", family="per.near", stage="perception", question="Which vehicles are near?",
             answer=ObjectsAnswer(ids=[3, 5]))
RANK = QA(qid="pred.rank", family="pred.rank", stage="prediction", question="Rank.",
          answer=RankingAnswer(ids=[5, 3]))


@pytest.mark.parametrize("qa, text, value, mode", [
    (CHOICE, "B", 1, "bare"),
    (CHOICE, "B. steady", 1, "bare"),
    (CHOICE, "The answer is **B**", 1, "bare"),
    (CHOICE, "The answer is: C. brake", 2, "bare"),
    (CHOICE, "steady", 1, "bare"),
    (CHOICE, "Looking at the gap, the car should keep going.\nFinal answer: (A)", 0, "bare"),
    (CHOICE, '{"plan.action": "C"}', 2, "json"),
    (CHOICE, "plan.action: A", 0, "keyed"),
    (CHOICE, '{"answer": "B"}', 1, "json_single"),
    (YESNO, "yes.", True, "bare"),
    (YESNO, "No. The left lane has a car in it.", False, "bare"),
    (NUMBER, "about 20 m", 20.0, "bare"),
    (NUMBER, "The gap is about 18.5 m.", 18.5, "bare"),
    (NUMBER, "none", None, "bare"),
    (OBJECTS, "vehicles 3 and 5", [3, 5], "bare"),
    (OBJECTS, "none", [], "bare"),
    (OBJECTS, "Answer: vehicle 3, vehicle 5.", [3, 5], "bare"),
    (RANK, "5 > 3", [5, 3], "bare"),
])
def test_bare_answers_are_read_with_their_mode(qa, text, value, mode):
    parsed, got_mode = parse_one(text, qa)
    assert parsed.unparsed is None, parsed.unparsed
    assert parsed.value == value
    assert got_mode == mode


@pytest.mark.parametrize("qa, text", [
    (CHOICE, "I am not sure what to do here"),
    (CHOICE, "F"),            # out of range
    (YESNO, "maybe"),
    (NUMBER, "far away"),
    (OBJECTS, "the red car"),
    (CHOICE, ""),
    (CHOICE, None),
])
def test_what_is_not_an_answer_stays_unparsed(qa, text):
    parsed, mode = parse_one(text, qa)
    assert mode == "unparsed" and parsed.value is None and parsed.unparsed


def test_a_keyed_answer_wins_over_words_and_the_last_answer_phrase_wins():
    parsed, mode = parse_one('I first thought A.\n{"plan.action": "C"}', CHOICE)
    assert (parsed.value, mode) == (2, "json")
    parsed, mode = parse_one("The answer is A.\nWait, no: the answer is C.", CHOICE)
    assert (parsed.value, mode) == (2, "bare")
