"""Coherence: every parent -> child edge has a rule; the checker finds contradictions; generated chains have none."""

from __future__ import annotations

import json

import pytest

from drivechain.schema import QA, BooleanAnswer, ChainGraph, ChoiceAnswer, NumberAnswer, ObjectsAnswer
from drivechain.teacher.coherence import CONTEXT, check_graph, rule_for


def _qa(qid, family, stage, answer, parents=(), objects=(), ambiguous=False, **meta):
    return QA(qid=qid, family=family, stage=stage, question="q", answer=answer, explanation="e",
              parents=list(parents), objects=list(objects), ambiguous=ambiguous, meta=meta)


def _graph(free: bool, safe: bool, lateral: str = "keep lane", ego_lane: int = 2, **safe_meta) -> ChainGraph:
    actions = ["LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER"]
    return ChainGraph(nodes=[
        _qa("per.lanes", "per.lanes", "perception", NumberAnswer(value=3, unit="lanes", abs_tol=0)),
        _qa("per.ego_lane", "per.ego_lane", "perception", NumberAnswer(value=ego_lane, unit="x", abs_tol=0),
            ["per.lanes"]),
        _qa("per.vehicles", "per.vehicles", "perception", ObjectsAnswer(ids=[3, 4])),
        _qa("per.lane_free.left", "per.lane_free", "perception", BooleanAnswer(value=free),
            ["per.ego_lane", "per.vehicles"], objects=[] if free else [3]),
        _qa("plan.safe.LANE_LEFT", "plan.safe", "planning", BooleanAnswer(value=safe),
            ["per.vehicles", "per.lane_free.left"], **safe_meta),
        _qa("plan.safe.IDLE", "plan.safe", "planning", BooleanAnswer(value=True), ["per.vehicles"]),
        _qa("plan.action", "plan.action", "planning",
            ChoiceAnswer(options=actions, acceptable=[1], preferred=1), ["plan.safe.LANE_LEFT", "plan.safe.IDLE"]),
        _qa("beh.lateral", "beh.lateral", "behavior",
            ChoiceAnswer(options=["keep lane", "change to the left lane", "change to the right lane"],
                         acceptable=[0], preferred=["keep lane", "change to the left lane"].index(lateral)),
            ["plan.action"]),
    ])


def test_a_coherent_chain_has_no_violation():
    checked, violated, lines = check_graph(_graph(free=True, safe=True))
    assert not violated and not lines
    for edge in ("per.lanes -> per.ego_lane", "per.lane_free -> plan.safe", "plan.safe -> plan.action",
                 "plan.action -> beh.lateral", "per.vehicles -> plan.safe"):
        assert checked[edge] >= 1, edge


@pytest.mark.parametrize("graph, edge", [
    (_graph(free=False, safe=True), "per.lane_free -> plan.safe"),  # not free, yet called safe
    (_graph(free=True, safe=False, cause_id=3, cause_outside_lane=False), "per.lane_free -> plan.safe"),
    (_graph(free=True, safe=True, lateral="change to the left lane"), "plan.action -> beh.lateral"),
    (_graph(free=True, safe=True, ego_lane=4), "per.lanes -> per.ego_lane"),
])
def test_contradictions_are_found_on_their_edge(graph, edge):
    _, violated, lines = check_graph(graph)
    assert violated[edge] == 1 and len(lines) == sum(violated.values())


def test_a_cause_outside_the_lane_or_a_band_is_no_contradiction():
    # free lane, unsafe change because of a vehicle that is not in that lane (e.g. the lead): coherent
    assert not check_graph(_graph(free=True, safe=False, cause_id=4, cause_outside_lane=True))[1]
    g = _graph(free=False, safe=True)
    g.get("plan.safe.LANE_LEFT").answer.accept_both = True  # inside the margin band: either answer
    assert not check_graph(g)[1]


def test_every_edge_has_a_stated_rule():
    g = _graph(free=True, safe=True)
    for child in g.nodes:
        for pid in child.parents:
            rule = rule_for(g.get(pid), child)
            assert rule.text and (rule.check is not None or rule.text == CONTEXT)


@pytest.mark.slow
def test_generated_chains_are_coherent(tmp_path):
    """Every edge of freshly generated frames of all five scenarios, with exploration (off-expert states)."""
    from drivechain.generate import GenerateConfig, generate

    cfg = GenerateConfig(scenarios=["highway", "merge", "intersection", "roundabout", "exit"], episodes=1,
                         steps_per_episode=6, seed=31, epsilon=0.4, image_size=(160, 120))
    generate(cfg, tmp_path / "data", workers=1)
    counts = json.loads((tmp_path / "data" / "manifest.json").read_text())["counts"]
    coherence = counts["coherence"]
    assert {e: c["violations"] for e, c in coherence.items() if c["violations"]} == {}
    for edge in ("per.lane_free -> plan.safe", "plan.safe -> plan.action", "plan.action -> beh.lateral",
                 "per.lead_speed -> pred.ttc_lead", "per.vehicles -> plan.safe"):
        assert coherence.get(edge, {}).get("checked", 0) > 0, edge
    assert set(counts["ambiguous_share"]) == set(counts["families"])
