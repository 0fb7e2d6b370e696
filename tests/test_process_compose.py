"""Composed best-of-N chains: upstream mistakes carry downstream (missed lead -> unsafe FASTER, missed cut-in -> no braking)."""

from __future__ import annotations

import asyncio
import random

import pytest

from drivechain.process.compose import compose_chain
from drivechain.process.perturb import PerturbGenerator, perturbations, step_perturbations
from drivechain.process.ratings import final_correct, rate
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
)

ACTIONS = ["LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER"]


def _qa(qid, stage, answer, parents=(), ambiguous=False):
    family = qid.rsplit(".", 1)[0] if qid.count(".") > 1 else qid
    return QA(qid=qid, family=family, stage=stage, question=f"{qid}?", answer=answer, parents=list(parents),
              ambiguous=ambiguous)


def cut_in_record() -> FrameRecord:
    """A lead vehicle 1 close ahead and vehicle 2 cutting in: the teacher brakes (SLOWER)."""
    ego = Agent(id=0, x_m=0, y_m=0, heading_rad=0, speed_mps=25)
    agents = [Agent(id=i, x_m=10 * i, y_m=0, heading_rad=0, speed_mps=20, rel_x_m=10 * i) for i in (1, 2, 3)]
    frame = Frame(frame_id="hand/highway/0/1", source="hand", scenario="highway", episode=0, step=1, seed=0, t_s=0,
                  ego=ego, agents=agents, actions=ACTIONS, available_actions=ACTIONS, images={"bev": "images/x.png"})
    safe = ("per.vehicles", "per.lead_vehicle", "pred.ttc_lead", "pred.cut_in.v2")
    nodes = [
        _qa("per.vehicles", "perception", ObjectsAnswer(ids=[1, 2])),
        _qa("per.lead_vehicle", "perception", ObjectsAnswer(ids=[1]), ["per.vehicles"]),
        _qa("per.lead_distance", "perception", NumberAnswer(value=12.0, unit="m", abs_tol=2.0), ["per.lead_vehicle"]),
        _qa("per.band", "perception", BooleanAnswer(value=True), ["per.lead_vehicle"], ambiguous=True),
        _qa("pred.ttc_lead", "prediction", NumberAnswer(value=2.0, unit="s", abs_tol=0.5), ["per.band", "per.lead_distance"]),
        _qa("pred.cut_in.v2", "prediction", BooleanAnswer(value=True), ["per.vehicles"]),
        _qa("plan.safe.IDLE", "planning", BooleanAnswer(value=False), safe),
        _qa("plan.safe.FASTER", "planning", BooleanAnswer(value=False), safe),
        _qa("plan.safe.SLOWER", "planning", BooleanAnswer(value=True), safe),
        _qa("plan.action", "planning", ChoiceAnswer(options=ACTIONS, acceptable=[4], preferred=4, safe=[4]),
            ["plan.safe.IDLE", "plan.safe.FASTER", "plan.safe.SLOWER"]),
        _qa("beh.longitudinal", "behavior", ChoiceAnswer(options=["keep speed", "accelerate", "decelerate"],
                                                          acceptable=[2], preferred=2), ["plan.action"]),
    ]
    return FrameRecord(frame=frame, graph=ChainGraph(nodes=nodes))


def _only(record, kind):
    """Per-step options holding just the perturbation of that kind (every other step: none)."""
    out = []
    for k in range(len(STAGES)):
        out.append([p for p in step_perturbations(record, k) if p.kind == kind])
    assert sum(map(len, out)) == 1, kind
    return out


@pytest.mark.parametrize("kind", ["missed_object_lead", "wrong_intent"])
def test_upstream_mistake_carries_to_an_unsafe_faster(kind):
    record = cut_in_record()
    steps = [rate(record, s) for s in compose_chain(record, _only(record, kind), random.Random(0), 0.0, 1.0)]
    ans = {q: a for s in steps for q, a in s.answers.items()}
    if kind == "missed_object_lead":  # no lead -> no distance -> no time to collision (through an ambiguous node)
        assert (ans["per.lead_vehicle"], ans["per.lead_distance"], ans["pred.ttc_lead"]) == ("none", "none", "none")
    else:
        assert ans["pred.cut_in.v2"] == "no" and ans["pred.ttc_lead"] == "2 s"
    # both hide a hazard: FASTER believed safe and chosen, then accelerating (no braking)
    assert (ans["plan.safe.FASTER"], ans["plan.action"], ans["beh.longitudinal"]) == ("yes", "D", "B")
    assert [s.rating for s in steps][1:] == [-1, -1, -1] and not final_correct(steps, "plan.action")
    assert steps[-1].kind == "propagated" and steps[-1].intent is None


def test_without_propagation_later_steps_are_the_teachers():
    record = cut_in_record()
    steps = [rate(record, s) for s in compose_chain(record, _only(record, "missed_object_lead"), random.Random(0), 0.0, 0.0)]
    assert [s.rating for s in steps] == [-1, 1, 1, 1] and final_correct(steps, "plan.action")


def test_invented_hazard_carries_to_braking_and_rates_by_the_shared_rule():
    record = cut_in_record()
    # an invented time to collision of 4 s for a free road, and the teacher preferring FASTER
    nodes = [n.model_copy(update={"answer": NumberAnswer(value=None, unit="s", abs_tol=0.5)}) if n.qid == "pred.ttc_lead"
             else n.model_copy(update={"answer": ChoiceAnswer(options=ACTIONS, acceptable=[3, 4], preferred=3, safe=[1, 3, 4])})
             if n.qid == "plan.action" else n.model_copy(update={"answer": BooleanAnswer(value=True)})
             if n.qid == "plan.safe.FASTER" else n for n in record.graph.nodes]
    record = record.model_copy(update={"graph": ChainGraph(nodes=nodes)})
    opts = [[], [p for p in perturbations(record, record.graph.get("pred.ttc_lead")) if p.kind == "invented_value"], [], []]
    steps = [rate(record, s) for s in compose_chain(record, opts, random.Random(0), 0.0, 1.0)]
    ans = {q: a for s in steps for q, a in s.answers.items()}
    assert ans["plan.action"] == "E" and ans["beh.longitudinal"] == "C"
    # FASTER declared unsafe is an error; SLOWER itself is acceptable, not preferred: grey (0), braking stays "safe"
    assert (ans["plan.safe.FASTER"], ans["plan.safe.SLOWER"]) == ("no", "yes")
    assert [s.rating for s in steps] == [1, -1, -1, 1]
    assert {g.qid: g.rating for g in steps[2].grades}["plan.action"] == 0
    assert final_correct(steps, "plan.action")


def test_propagation_makes_wrong_finals_likelier_after_upstream_mistakes():
    record = cut_in_record()

    def wrong_final_rate(propagate):
        gen = PerturbGenerator(seed=5, p_correct=0.6, propagate=propagate)
        chains = asyncio.run(gen.chains(record, 300))
        hit = [ch for ch in chains if any(s.kind for s in ch.steps[:2])]
        for ch in hit:
            for s in ch.steps:
                rate(record, s)
        return sum(not final_correct(ch.steps, "plan.action") for ch in hit) / len(hit)

    assert wrong_final_rate(0.9) > wrong_final_rate(0.0) + 0.2
    a = asyncio.run(PerturbGenerator(seed=5).chains(record, 20))
    b = asyncio.run(PerturbGenerator(seed=5).chains(record, 20))
    assert [s.text for ch in a for s in ch.steps] == [s.text for ch in b for s in ch.steps]
