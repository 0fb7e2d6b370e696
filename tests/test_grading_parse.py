"""Parsers survive real model output; nothing crashes on any input."""

from __future__ import annotations

import random
import string

import pytest

from drivechain.grading.parse import parse_reply
from drivechain.schema import (
    BooleanAnswer,
    ChoiceAnswer,
    NumberAnswer,
    ObjectsAnswer,
    RankingAnswer,
    TextAnswer,
)
from tests.test_grading_data import ACTIONS, nodes, qa

CHOICE = qa("plan.action", "planning", ChoiceAnswer(options=ACTIONS, acceptable=[4], preferred=4))
BOOL = qa("per.left_free", "perception", BooleanAnswer(value=True))
NUM = qa("pred.ttc_lead", "prediction", NumberAnswer(value=3.0, unit="s", abs_tol=0.5))
OBJ = qa("per.nearby", "perception", ObjectsAnswer(ids=[3, 5]))
RANK = qa("plan.importance", "planning", RankingAnswer(ids=[3, 5, 1]))
TEXT = qa("beh.explain", "behavior", TextAnswer(references=["slow down"]))

OK = [
    # (question, reply, value)
    (CHOICE, '{"plan.action": "E"}', 4),
    (CHOICE, 'Sure! ```json\n{"plan.action": "(E)"}\n```', 4),
    (CHOICE, "{'plan.action': 'E',}", 4),
    (CHOICE, '{" Plan.Action ": "e"}', 4),
    (CHOICE, "The answer is (E).", 4),
    (CHOICE, "The answer is E", 4),
    (CHOICE, "E. SLOWER", 4),
    (CHOICE, '{"plan.action": "SLOWER"}', 4),
    (CHOICE, "I would slow down: SLOWER is the safe choice.", 4),
    (CHOICE, "plan.action: B", 1),
    (CHOICE, '{"plan.action": "lane_left"}', 0),
    (CHOICE, '{"answers": {"plan.action": "**C**"}}', 2),
    (CHOICE, '{"plan.action": "slow"}', 4),
    (BOOL, '{"per.left_free": "Yes, it is free."}', True),
    (BOOL, '{"per.left_free": true}', True),
    (BOOL, '{"per.left_free": "false"}', False),
    (BOOL, "per.left_free: no", False),
    (BOOL, "I think the answer is yes.", True),
    (NUM, '{"pred.ttc_lead": "12.5 s"}', 12.5),
    (NUM, '{"pred.ttc_lead": "about 3 s"}', 3.0),
    (NUM, '{"pred.ttc_lead": 2}', 2.0),
    (NUM, '{"pred.ttc_lead": "none"}', None),
    (NUM, '{"pred.ttc_lead": "No collision"}', None),
    (NUM, '{"pred.ttc_lead": "N/A"}', None),
    (NUM, '{"pred.ttc_lead": null}', None),
    (NUM, "pred.ttc_lead = -1.5e1 s", -15.0),
    (NUM, '{"pred.ttc_lead": "three seconds"}', 3.0),
    (NUM, '{"pred.ttc_lead": "1,200 s"}', 1200.0),
    (OBJ, '{"per.nearby": "vehicle 3, v5"}', [3, 5]),
    (OBJ, '{"per.nearby": [3, 5]}', [3, 5]),
    (OBJ, '{"per.nearby": "[3,5]"}', [3, 5]),
    (OBJ, '{"per.nearby": "none"}', []),
    (OBJ, '{"per.nearby": []}', []),
    (OBJ, '{"per.nearby": "vehicles 3 and 3"}', [3]),
    (OBJ, '{"per.nearby": "(18.0, 0.5), vehicle 5"}', [(18.0, 0.5), 5]),
    (OBJ, '{"per.nearby": [[18, 0.5]]}', [(18.0, 0.5)]),
    (OBJ, '{"per.nearby": {"x": 18, "y": -2}}', [(18.0, -2.0)]),
    (OBJ, "**per.nearby** - #3", [3]),
    (RANK, '{"plan.importance": "3 > 5 > 1"}', [3, 5, 1]),
    (RANK, '{"plan.importance": ["vehicle 5", "vehicle 3"]}', [5, 3]),
    (RANK, "plan.importance: 1, 3", [1, 3]),
    (TEXT, '{"beh.explain": "Slow down for vehicle 3."}', "Slow down for vehicle 3."),
]


@pytest.mark.parametrize("q,reply,value", OK, ids=[f"{i}:{r[:30]}" for i, (_, r, _) in enumerate(OK)])
def test_parse_table(q, reply, value):
    p = parse_reply(reply, [q])[q.qid]
    assert p.unparsed is None, p
    assert p.value == value
    assert p.raw is not None


BAD = [
    (CHOICE, '{"plan.action": "Z"}', "out of range"),
    (CHOICE, '{"plan.action": 3}', "number"),
    (CHOICE, '{"plan.action": "LANE_LEFT or SLOWER"}', "several"),
    (CHOICE, '{"plan.action": "I am not sure"}', "no option"),
    (CHOICE, '{"plan.action": "lane"}', "no option"),
    (BOOL, '{"per.left_free": "maybe"}', "no yes/no"),
    (BOOL, '{"per.left_free": "maybe yes, maybe no"}', "both"),
    (NUM, '{"pred.ttc_lead": "soon"}', "no number"),
    (NUM, '{"pred.ttc_lead": true}', "true/false"),
    (OBJ, '{"per.nearby": "the red one"}', "no vehicle"),
    (OBJ, '{"per.nearby": "3.5"}', "not a vehicle number"),
    (RANK, '{"plan.importance": "(1.0, 2.0)"}', "positions"),
    (TEXT, '{"beh.explain": ""}', "empty"),
]


@pytest.mark.parametrize("q,reply,reason", BAD)
def test_unparseable_answers_say_why(q, reply, reason):
    p = parse_reply(reply, [q])[q.qid]
    assert p.value is None and p.unparsed and reason in p.unparsed


def test_several_targets_missing_keys_and_line_fallback():
    targets = [CHOICE, BOOL, NUM]
    out = parse_reply('Thinking...\nplan.action: E\nper.left_free - yes\n', targets)
    assert out["plan.action"].value == 4 and out["per.left_free"].value is True
    assert out["pred.ttc_lead"].unparsed == "no answer for this question id"
    # later JSON objects win (a CoT reply restating its final answer)
    out = parse_reply('{"plan.action": "A"} ... final: {"plan.action": "E", "per.left_free": "no"}', targets)
    assert out["plan.action"].value == 4 and out["per.left_free"].value is False
    # the key of one qid is not taken for a longer qid sharing its prefix
    long_q = qa("pred.ttc_lead2", "prediction", NumberAnswer(value=1.0, unit="s"))
    out = parse_reply("pred.ttc_lead2: 7 s", [NUM, long_q])
    assert out["pred.ttc_lead2"].value == 7.0 and out["pred.ttc_lead"].unparsed


def test_fuzz_never_crashes():
    targets = nodes()
    rng = random.Random(0)
    alphabet = string.printable + "{}[]\"':,>–∞é"
    pieces = ['{"plan.action": ', '"yes"', "[3, 5]", "null", "}", "{", "```json", "per.nearby:", "\\", "1e999"]
    for _ in range(400):
        n = rng.randint(0, 200)
        text = "".join(rng.choice(pieces) if rng.random() < 0.1 else rng.choice(alphabet) for _ in range(n))
        out = parse_reply(text, targets)
        assert set(out) == {q.qid for q in targets}
        for p in out.values():
            assert (p.unparsed is None) or (p.value is None)
    assert all(p.unparsed for p in parse_reply("{" * 5000, targets).values())
    assert all(p.unparsed for p in parse_reply("[" * 5000 + "]" * 5000, targets).values())
    assert parse_reply(None, [BOOL])["per.left_free"].unparsed  # type: ignore[arg-type]
