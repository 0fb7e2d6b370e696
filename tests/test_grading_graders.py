"""Typed graders: tolerance decay, none, F1 with id/position matching, NDCG, unsafe, grey, statuses."""

from __future__ import annotations

import math

import pytest

from drivechain.grading.graders import grade, ndcg
from drivechain.grading.parse import Parsed
from drivechain.schema import BooleanAnswer, ChoiceAnswer, NumberAnswer, ObjectsAnswer, RankingAnswer, TextAnswer
from tests.test_grading_data import ACTIONS, qa


def g(answer, value, **kw):
    node = qa("x.y", "planning", answer, **kw)
    return grade(node, Parsed(qid="x.y", value=value))


@pytest.mark.parametrize(
    "value,score",
    [(10.0, 1.0), (11.0, 1.0), (9.0, 1.0), (11.5, 0.5), (8.5, 0.5), (12.0, 0.0), (30.0, 0.0), (None, 0.0)],
)
def test_number_tolerance_and_linear_decay(value, score):
    got = g(NumberAnswer(value=10.0, unit="m", abs_tol=1.0), value)
    assert got.score == pytest.approx(score)
    assert got.status == {1.0: "correct", 0.5: "partial", 0.0: "wrong"}[score]


def test_number_takes_the_looser_of_abs_and_rel():
    a = NumberAnswer(value=100.0, unit="m", abs_tol=1.0, rel_tol=0.1)  # tolerance 10 m
    assert g(a, 109.0).score == 1.0 and g(a, 115.0).score == pytest.approx(0.5)
    b = NumberAnswer(value=2.0, unit="s", abs_tol=1.0, rel_tol=0.1)  # tolerance 1 s
    assert g(b, 2.9).score == 1.0 and g(b, 3.5).score == pytest.approx(0.5)


def test_number_none_and_exact():
    none = NumberAnswer(value=None, unit="s", abs_tol=0.5)
    assert g(none, None).score == 1.0 and g(none, 0.0).score == 0.0 and g(none, 99.0).status == "wrong"
    exact = NumberAnswer(value=-3.125, unit="m")
    assert g(exact, -3.125).score == 1.0 and g(exact, -3.1).score == 0.0


def test_choice_acceptable_preferred_and_unsafe():
    a = ChoiceAnswer(options=ACTIONS, acceptable=[1, 4], preferred=4, safe=[1, 2, 4])
    best, ok, wrong, unsafe = g(a, 4), g(a, 1), g(a, 2), g(a, 0)
    assert (best.score, best.status, best.grey, best.unsafe) == (1.0, "correct", False, False)
    assert (ok.score, ok.status, ok.grey) == (1.0, "correct", True)
    assert (wrong.score, wrong.status, wrong.unsafe) == (0.0, "wrong", False)
    assert (unsafe.score, unsafe.status, unsafe.unsafe) == (0.0, "unsafe", True)
    no_safe_set = ChoiceAnswer(options=ACTIONS, acceptable=[1], preferred=1)
    assert not g(no_safe_set, 0).unsafe


def test_boolean_exact_and_accept_both():
    assert g(BooleanAnswer(value=True), True).score == 1.0
    assert g(BooleanAnswer(value=True), False).score == 0.0
    both = g(BooleanAnswer(value=True, accept_both=True), False)
    assert both.score == 1.0 and both.grey


def test_objects_f1_by_id_and_by_position():
    a = ObjectsAnswer(ids=[3, 5], positions_m=[(18.0, 0.0), (-6.0, 4.0)], match_radius_m=4.0)
    assert g(a, [3, 5]).score == 1.0
    assert g(a, [3]).score == pytest.approx(2 / 3)  # P 1, R 0.5
    assert g(a, [3, 5, 7, 8]).score == pytest.approx(2 * 0.5 / 1.5)  # P 0.5, R 1
    assert g(a, [(17.0, 1.0), (-5.0, 3.0)]).score == 1.0
    assert g(a, [(30.0, 0.0)]).score == 0.0  # outside the radius
    # one position cannot match a truth already matched by id
    assert g(a, [3, (18.5, 0.0)]).score == pytest.approx(0.5)  # P 0.5, R 0.5
    empty = ObjectsAnswer(ids=[])
    assert g(empty, []).score == 1.0 and g(empty, [3]).score == 0.0 and g(a, []).score == 0.0
    no_pos = ObjectsAnswer(ids=[3])
    assert g(no_pos, [(18.0, 0.0)]).score == 0.0


def test_ranking_ndcg():
    a = RankingAnswer(ids=[3, 5, 1])
    assert g(a, [3, 5, 1]).score == 1.0
    swapped = g(a, [5, 3, 1]).score
    reversed_ = g(a, [1, 5, 3]).score
    assert 0 < reversed_ < swapped < 1
    idcg = 3 + 2 / math.log2(3) + 1 / 2
    assert swapped == pytest.approx((2 + 3 / math.log2(3) + 1 / 2) / idcg)
    assert g(a, [9]).score == 0.0 and ndcg([], []) == 1.0 and ndcg([3], []) == 0.0


def test_unparsed_ambiguous_and_text_statuses():
    node = qa("x.y", "perception", BooleanAnswer(value=True))
    un = grade(node, Parsed(qid="x.y", unparsed="no yes/no"))
    assert (un.score, un.status, un.detail, un.scored) == (0.0, "unparsed", "no yes/no", True)
    amb = grade(qa("x.y", "perception", BooleanAnswer(value=True), ambiguous=True), Parsed(qid="x.y", value=True))
    assert amb.status == "ambiguous" and not amb.scored
    txt = grade(qa("x.t", "behavior", TextAnswer(references=["a"])), Parsed(qid="x.t", value="a"))
    assert txt.status == "language" and not txt.scored
    assert (un.family, un.stage, un.type) == ("x.y", "perception", "boolean")


def test_hand_made_values_of_the_wrong_shape_are_unparsed_not_crashes():
    bad = [
        (ChoiceAnswer(options=ACTIONS, acceptable=[1], preferred=1), 9),
        (ChoiceAnswer(options=ACTIONS, acceptable=[1], preferred=1), True),
        (BooleanAnswer(value=True), "yes"),
        (NumberAnswer(value=1.0, unit="m"), float("nan")),
        (ObjectsAnswer(ids=[3]), "3"),
        (RankingAnswer(ids=[3]), [(1.0, 2.0)]),
    ]
    for answer, value in bad:
        got = g(answer, value)
        assert got.status == "unparsed" and got.score == 0.0, (answer, value)


def test_objects_in_the_band_are_neither_required_nor_penalised():
    from drivechain.grading.graders import objects_f1

    truth = ObjectsAnswer(ids=[3], optional_ids=[5])
    assert objects_f1([3], truth)[0] == 1.0
    assert objects_f1([3, 5], truth)[0] == 1.0
    assert objects_f1([5], truth)[0] == 0.0  # the sure one is still required
    assert objects_f1([3, 7], truth)[0] < 1.0  # a vehicle outside the band is still penalised
