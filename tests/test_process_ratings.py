"""Step ratings and perturbations: the teacher's steps are +1, every perturbation gets the rating it aims at."""

from __future__ import annotations

import asyncio

import pytest

from drivechain.grading.graders import grade
from drivechain.grading.parse import parse_reply
from drivechain.process.candidates import Candidate, teacher_chain, teacher_step
from drivechain.process.perturb import PerturbGenerator, apply, step_perturbations
from drivechain.process.ratings import grade_answers, rate, step_rating
from drivechain.schema import (
    QA,
    STAGES,
    Agent,
    BooleanAnswer,
    ChainGraph,
    ChoiceAnswer,
    Frame,
    FrameRecord,
    NumberAnswer,
    ObjectsAnswer,
    RankingAnswer,
    TextAnswer,
)

ACTIONS = ["LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER"]


def _qa(qid: str, stage: str, answer, *, ambiguous: bool = False, options_q: str = "?") -> QA:
    family = qid.rsplit(".", 1)[0] if qid.count(".") > 1 else qid
    return QA(qid=qid, family=family, stage=stage, question=f"question {qid} {options_q}", answer=answer,
              ambiguous=ambiguous)


def hand_record() -> FrameRecord:
    """A frame with one question of every answer type and family the perturbations know."""
    ego = Agent(id=0, x_m=0, y_m=0, heading_rad=0, speed_mps=25)
    agents = [Agent(id=i, x_m=10 * i, y_m=0, heading_rad=0, speed_mps=20, rel_x_m=10 * i) for i in (1, 2, 3, 4)]
    frame = Frame(frame_id="hand/highway/0/0", source="hand", scenario="highway", episode=0, step=0, seed=0, t_s=0,
                  ego=ego, agents=agents, actions=ACTIONS, available_actions=ACTIONS, images={"bev": "images/x.png"})
    nodes = [
        _qa("per.lead_vehicle", "perception", ObjectsAnswer(ids=[1])),
        _qa("per.vehicles", "perception", ObjectsAnswer(ids=[1, 2, 3])),
        _qa("per.lane_free.left", "perception", BooleanAnswer(value=True)),
        _qa("per.exists.left_behind", "perception", BooleanAnswer(value=False)),
        _qa("per.lead_distance", "perception", NumberAnswer(value=10.0, unit="m", abs_tol=2.0)),
        _qa("per.count.near", "perception", NumberAnswer(value=2.0, unit="vehicles")),
        _qa("per.ego_lane", "perception", NumberAnswer(value=3.0, unit="lane from the left")),
        _qa("per.refer.odd", "perception", ObjectsAnswer(ids=[2]), ambiguous=True),
        _qa("pred.cut_in.v2", "prediction", BooleanAnswer(value=False)),
        _qa("pred.near_ego.v3", "prediction", BooleanAnswer(value=True, accept_both=True)),
        _qa("pred.ttc_lead", "prediction", NumberAnswer(value=None, unit="s", abs_tol=0.5)),
        _qa("pred.motion.v1", "prediction", ChoiceAnswer(options=["keep", "accelerate", "brake"], acceptable=[0, 2],
                                                           preferred=0)),
        _qa("pred.cross_first.v3", "prediction", ChoiceAnswer(options=["ego", "vehicle 3"], acceptable=[1], preferred=1)),
        _qa("plan.safe.LANE_LEFT", "planning", BooleanAnswer(value=True)),
        _qa("plan.action", "planning", ChoiceAnswer(options=ACTIONS, acceptable=[0, 1], preferred=1, safe=[0, 1, 4])),
        _qa("plan.danger", "planning", ObjectsAnswer(ids=[1])),
        _qa("plan.danger_reason", "planning", TextAnswer(references=["vehicle 1 ahead is slower than the ego"])),
        _qa("plan.importance", "planning", RankingAnswer(ids=[1, 2, 3])),
        _qa("beh.longitudinal", "behavior", ChoiceAnswer(options=["keep speed", "accelerate", "brake"], acceptable=[0],
                                                          preferred=0)),
        _qa("beh.lateral", "behavior", ChoiceAnswer(options=["keep lane", "change left", "change right"],
                                                     acceptable=[0], preferred=0)),
    ]
    return FrameRecord(frame=frame, graph=ChainGraph(nodes=nodes))


BRIEF_KINDS = {
    "missed_object_lead", "invented_object_lead", "wrong_object_lead", "missed_object", "invented_object",
    "wrong_lane", "distance_beyond_tolerance", "distance_just_beyond_tolerance", "wrong_intent", "wrong_motion",
    "wrong_crossing_order", "unsafe_action", "dominated_action", "acceptable_not_preferred",
    "reason_wrong_object", "wrong_most_important", "tail_reordered", "band_flip", "invented_value",
    "wrong_count", "wrong_safety", "wrong_behavior", "missed_object_danger", "invented_object_danger",
}


def _check_perturbations(record: FrameRecord) -> list[str]:
    kinds = []
    for k in range(len(STAGES)):
        base = teacher_step(record, k)
        for p in step_perturbations(record, k):
            cand = rate(record, apply(record, base, p))
            kinds.append(p.kind)
            assert cand.rating == p.intent, (p.kind, p.qid, cand.text)
            by_qid = {g.qid: g for g in cand.grades}
            assert by_qid[p.qid].rating == p.intent, p
            assert all(g.rating == 1 for q, g in by_qid.items() if q != p.qid), p
            # the grader itself agrees: a mistake loses credit, a grey answer is flagged grey or partial
            qa = record.graph.get(p.qid)
            g = grade(qa, parse_reply('{"%s": %s}' % (p.qid, _json(cand.answers[p.qid])), [qa])[p.qid])
            if qa.answer.type == "text":
                assert cand.answers[p.qid] != qa.answer.references[0]
            elif p.intent == -1:
                assert g.score < 1.0 or g.unsafe, (p, g)
            else:
                assert g.grey or 0.0 < g.score < 1.0, (p, g)
    return kinds


def _json(text: str) -> str:
    import json

    return json.dumps(text)


def test_teacher_steps_are_rated_plus_one_on_hand_frame():
    record = hand_record()
    for step in teacher_chain(record):
        rate(record, step)
        assert step.rating == 1
        assert {g.qid for g in step.grades} == {q.qid for q in record.graph.stage(step.stage) if not q.ambiguous}
        assert all(g.rating == 1 for g in step.grades)


def test_every_perturbation_kind_gets_its_intended_rating():
    kinds = set(_check_perturbations(hand_record()))
    assert BRIEF_KINDS <= kinds, BRIEF_KINDS - kinds


def test_tiny_dataset_teacher_plus_one_and_perturbations_as_intended(tiny_dataset):
    from drivechain.dataset import load_dataset

    records = list(load_dataset(tiny_dataset).records())
    kinds = []
    for record in records:
        assert [rate(record, s).rating for s in teacher_chain(record)] == [1, 1, 1, 1]
        kinds += _check_perturbations(record)
    assert {"unsafe_action", "wrong_motion", "missed_object_danger", "reason_wrong_object"} <= set(kinds)


def test_rating_rules_grey_bands_and_unparsed():
    record = hand_record()
    per = teacher_step(record, 0)
    cases = {
        "11.9 m": 1,    # inside tolerance (2 m)
        "13 m": -1,     # 1.5x tolerance: partial credit from the grader, still beyond tolerance
        "14.1 m": -1,   # beyond 2x tolerance
        "none": -1,     # none for a value
        "far away": -1,  # unparsed
    }
    for text, want in cases.items():
        grades = grade_answers(record, "perception", {**per.answers, "per.lead_distance": text})
        assert step_rating(grades) == want, text
    pred = teacher_step(record, 1)
    # accept_both band: the other answer is grey (0), the teacher's +1
    assert step_rating(grade_answers(record, "prediction", {**pred.answers, "pred.near_ego.v3": "no"})) == 0
    assert step_rating(grade_answers(record, "prediction", {**pred.answers, "pred.ttc_lead": "4 s"})) == -1
    plan = teacher_step(record, 2)
    assert step_rating(grade_answers(record, "planning", {**plan.answers, "plan.action": "A"})) == 0
    assert step_rating(grade_answers(record, "planning", {**plan.answers, "plan.action": "E"})) == -1  # dominated
    assert step_rating(grade_answers(record, "planning", {**plan.answers, "plan.importance": "1 > 3 > 2"})) == -1
    assert step_rating(grade_answers(record, "planning", {**plan.answers, "plan.importance": "2 > 1 > 3"})) == -1
    reason = {**plan.answers, "plan.danger_reason": "vehicle 2 ahead is slower than the ego"}
    assert step_rating(grade_answers(record, "planning", reason)) == -1


def test_perturb_generator_is_seeded_and_mixes_chains():
    record = hand_record()
    a = asyncio.run(PerturbGenerator(seed=3).candidates(record, 2, [], 5))
    b = asyncio.run(PerturbGenerator(seed=3).candidates(record, 2, [], 5))
    c = asyncio.run(PerturbGenerator(seed=4).candidates(record, 2, [], 50))
    assert [x.text for x in a] == [x.text for x in b]
    assert len(a) == 5 and len({x.kind for x in a}) == 5  # kinds spread before repeating
    assert len({x.text for x in c}) == len(c)
    chains = asyncio.run(PerturbGenerator(seed=3).chains(record, 64))
    for ch in chains:
        for s in ch.steps:
            rate(record, s)
    first = [ch.first_error for ch in chains]
    assert -1 in first and any(f >= 0 for f in first)
    assert all(isinstance(s, Candidate) and s.stage == STAGES[i] for ch in chains for i, s in enumerate(ch.steps))


@pytest.mark.parametrize("text", ["", "qid without colon"])
def test_missing_answers_rate_minus_one(text):
    record = hand_record()
    answers = {q.qid: text for q in record.graph.stage("behavior")}
    assert step_rating(grade_answers(record, "behavior", answers)) == -1
