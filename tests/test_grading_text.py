"""Language metrics, the LLM judge's strict parser, and chain-of-thought step splitting."""

from __future__ import annotations

import shutil

import pytest

from drivechain.errors import ConfigError
from drivechain.grading.cot import (
    answer_rating,
    cot_answers,
    first_wrong_step,
    split_steps,
    stage_ratings,
    step_rating,
)
from drivechain.grading.graders import Grade, grade
from drivechain.grading.judge import judge_request, parse_judge
from drivechain.grading.text_metrics import drivelm_language, language_scores, regex_tokenize
from tests.test_grading_data import record

REFS = {
    "a": ["The ego slows down because vehicle 3 cuts in."],
    "b": ["Keep the lane, the road ahead is free."],
    "c": ["Change to the left lane to overtake vehicle 5."],
}


def test_identical_text_scores_one_and_cider_positive():
    hyps = {k: v[0] for k, v in REFS.items()}
    s = language_scores(hyps, REFS, tokenizer="regex")
    assert s["n"] == 3 and s["tokenizer"] == "regex"
    for k in ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l"):
        assert s[k] == pytest.approx(1.0, abs=1e-6), k
    assert s["cider"] > 1.0
    worse = language_scores({"a": "vehicle 3", "b": "", "c": "left lane"}, REFS, tokenizer="regex")
    assert worse["bleu1"] < 1 and worse["rouge_l"] < s["rouge_l"] and worse["cider"] < s["cider"]
    assert drivelm_language(s) > drivelm_language(worse)
    assert language_scores({}, {}, tokenizer="regex")["n"] == 0
    assert regex_tokenize("Slow down, 12.5 m/s! Don't.") == "slow down 12.5 m s don't"


def test_auto_tokenizer_uses_ptb_only_with_java():
    hyps = {k: v[0] for k, v in REFS.items()}
    s = language_scores(hyps, REFS, tokenizer="auto")
    assert s["tokenizer"] == ("ptb" if shutil.which("java") else "regex")
    assert s["bleu4"] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ConfigError):
        language_scores(hyps, REFS, tokenizer="spacy")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "reply,score",
    [("Score: 30", 30.0), ("score: 85/100", 85.0), ("**Score:** 100", 100.0), ("70", 70.0),
     ("Reasoning... The score is 42.", 42.0), ("Score: 0", 0.0), ("Score = 12.5", 12.5)],
)
def test_judge_parses_scores(reply, score):
    assert parse_judge(reply) == (score, None)


@pytest.mark.parametrize(
    "reply,reason",
    [("Score: 130", "outside"), ("Score: -5", "outside"), ("Looks good to me", "no 'Score"), ("", "empty"),
     ("Score: 30. Actually Score: 60", "several"), ("Score: 8/10", "scale"), (None, "empty"),
     ("I give it 70 out of 100 points", "no 'Score")],
)
def test_judge_failures_are_explicit(reply, reason):
    value, err = parse_judge(reply)
    assert value is None and reason in err


def test_judge_request_carries_the_three_texts():
    req = judge_request("What should the ego do?", "Slow down.", "Brake.")
    text = req.prompt_text()
    assert "REFERENCE: Slow down." in text and "ANSWER: Brake." in text and "0 to 100" in text
    assert req.temperature == 0.0 and req.meta["kind"] == "judge"


COT = """Let me think.
**Perception:** Vehicle 3 is 18 m ahead in my lane; the left lane is occupied.
## Prediction
Vehicle 3 will cut in; no collision with the lead.
3. Planning - SLOWER is the safe action.
Behavior: decelerate.
```json
{"plan.action": "E", "beh.longitudinal": "C"}
```"""


def test_split_steps_by_headers_numbered_and_paragraphs():
    steps = split_steps(COT)
    assert [s.stage for s in steps] == [None, "perception", "prediction", "planning", "behavior", None]
    assert steps[1].text.startswith("Vehicle 3 is 18 m") and steps[-1].text.startswith("```json")
    numbered = split_steps("Step 1: I see vehicle 3 ahead.\nStep 2: It will probably cut in, predict braking.\n"
                           "Step 3: plan: the safe action is to slow.")
    assert [s.stage for s in numbered] == ["perception", "prediction", "planning"]
    paras = split_steps("I see two cars.\n\nThe best action is SLOWER, it is safe.")
    assert [s.stage for s in paras] == ["perception", "planning"]
    assert split_steps("") == [] and split_steps(None) == []  # type: ignore[arg-type]


def test_cot_answers_fall_back_to_the_stage_step():
    nodes = {n.qid: n for n in record().graph.nodes}
    targets = [nodes["per.left_free"], nodes["plan.action"], nodes["beh.longitudinal"]]
    text = COT.replace("the left lane is occupied.", "per.left_free: no")
    parsed = cot_answers(text, targets)
    assert parsed["plan.action"].value == 4 and parsed["beh.longitudinal"].value == 2
    assert parsed["per.left_free"].value is False


def _g(stage, score, status="correct", grey=False, unsafe=False):
    return Grade(qid="q", family="f", stage=stage, type="boolean", score=score, status=status, grey=grey, unsafe=unsafe)


def test_step_ratings_and_first_wrong_step():
    assert step_rating([_g("perception", 1.0)]) == 1
    assert step_rating([_g("planning", 1.0, grey=True)]) == 0
    assert step_rating([_g("planning", 1.0), _g("planning", 0.5, "partial")]) == -1
    assert step_rating([_g("planning", 0.0, "ambiguous")]) == 1  # nothing rated: "+1 otherwise"
    grades = [_g("perception", 1.0), _g("prediction", 1.0, grey=True), _g("planning", 0.0, "unsafe", unsafe=True)]
    ratings = stage_ratings(grades)
    assert ratings == [("perception", 1), ("prediction", 0), ("planning", -1)]
    assert first_wrong_step([r for _, r in ratings]) == 2
    assert first_wrong_step([[grades[0]], [grades[2]]]) == 1
    assert first_wrong_step([1, 0, 1]) == -1 and first_wrong_step([]) == -1
    rows = [g.model_dump() for g in grades]  # rows as stored by the runner
    assert stage_ratings(rows) == ratings
    n = record().graph.nodes[0]
    assert grade(n, cot_answers("Perception: yes", [n])[n.qid]).score == 1.0


def test_one_rule_for_band_booleans_and_text_in_cot_rows():
    """The CoT protocol's rows (dicts) are rated by the same rule as process steps."""
    from drivechain.grading.parse import Parsed
    from drivechain.schema import QA, BooleanAnswer, TextAnswer

    band = QA(qid="b", family="per.lane_free", stage="perception", question="?",
              answer=BooleanAnswer(value=True, accept_both=True))
    own, other = grade(band, Parsed(qid="b", value=True)), grade(band, Parsed(qid="b", value=False))
    assert (answer_rating(own), answer_rating(other)) == (1, 0)  # teacher's value +1; the other only thanks to the band
    reason = QA(qid="r", family="plan.danger_reason", stage="planning", question="?",
                answer=TextAnswer(references=["Vehicle 3 cuts in ahead."]))

    def row(text):
        g = grade(reason, Parsed(qid="r", value=text) if text else Parsed(qid="r", unparsed="empty"))
        return {**g.model_dump(), "value": text, "refs": list(reason.answer.references)}

    assert [answer_rating(row(t)) for t in ("vehicle 3 is cutting in", "vehicle 5 is cutting in", None)] == [1, -1, -1]
    assert answer_rating(grade(reason, Parsed(qid="r", value="vehicle 5"))) is None  # no references known
    rows = [{**own.model_dump(), "stage": "perception"}, {**row("vehicle 5 brakes"), "stage": "planning"}]
    assert stage_ratings(rows) == [("perception", 1), ("planning", -1)]


def test_rouge_l_scored_once_per_distinct_pair_equals_pycocoevalcap():
    from pycocoevalcap.rouge.rouge import Rouge

    from drivechain.grading.text_metrics import _rouge_l

    texts = ["the lead car brakes", "ego keeps its lane", "a truck merges from the right", "the lead car brakes"]
    refs = [["the lead vehicle brakes hard"], ["ego keeps lane", "ego stays in its lane"], ["a truck merges"],
            ["the lead vehicle brakes hard"]]
    res = {i: [texts[i % 4]] for i in range(12)}
    gts = {i: refs[i % 4] for i in range(12)}
    expected, _ = Rouge().compute_score(gts, res)
    assert _rouge_l(gts, res) == float(expected) and 0 < expected < 1
