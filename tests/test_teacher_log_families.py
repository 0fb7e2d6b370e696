"""The log families on the scripted Bench2Drive situations (red light, pedestrian, cut-in, static vehicle)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from drivechain.schema import QA, ChainGraph, ObjectsAnswer
from drivechain.sources.bench2drive import FAMILIES, Bench2DriveSource
from drivechain.teacher.families import _log_ego
from drivechain.teacher.graph import build_graph
from drivechain.teacher.restrict import restrict
from tests import b2d_fixture as fx
from tests.test_source_bench2drive import CUT_IN, PED, RED, STATIC


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> dict[tuple[str, int], tuple[object, ChainGraph]]:
    root = fx.shared_root(tmp_path_factory)
    src = Bench2DriveSource(root, stride=5)
    out = {}
    for clip in src.clips():
        for lf in src.frames(clip):
            graph, _ = restrict(build_graph(lf.frame, None), src.families)
            out[(clip, lf.frame.step)] = (lf.frame, graph)
    return out


def node(graphs, clip: str, step: int, qid: str) -> QA:
    got = graphs[(clip, step)][1].get(qid)
    assert got is not None, f"{qid} missing in {clip} {step}"
    return got


def choice(n: QA) -> tuple[str, set[str]]:
    a = n.answer
    return a.options[a.preferred], {a.options[i] for i in a.acceptable}


def test_every_node_belongs_to_a_declared_family(graphs):
    for _, graph in graphs.values():
        assert {n.family for n in graph.nodes} <= FAMILIES


def test_red_light_affecting_the_ego(graphs):
    assert choice(node(graphs, RED, 0, "per.traffic_light"))[0] == "red"
    assert node(graphs, RED, 0, "per.junction_ahead").answer.value is True
    action = node(graphs, RED, 0, "plan.action")
    preferred, ok = choice(action)
    assert preferred == "STOP" and ok == {"STOP", "SLOW_DOWN"}  # rules say stop, the expert is still slowing
    assert action.meta["votes"]["rules"] == "STOP" and not action.ambiguous
    assert choice(node(graphs, RED, 10, "beh.longitudinal"))[0] == "stop"


def test_no_light_means_none_and_a_green_light_elsewhere_is_ignored(graphs):
    assert choice(node(graphs, CUT_IN, 0, "per.traffic_light"))[0].startswith("no traffic light")


def test_a_light_outside_every_image_is_not_asked_about(graphs):
    from drivechain.teacher.families.log_perception import traffic_light
    from drivechain.teacher.context import TeacherContext

    frame = graphs[(RED, 0)][0].model_copy(deep=True)
    for s in frame.signals:
        s["boxes"] = {}
    assert traffic_light(TeacherContext(frame=frame)) == []


def test_pedestrian_crossing(graphs):
    enters = node(graphs, PED, 10, "pred.pedestrian_enters_path.p1")
    assert enters.answer.value is True and not enters.answer.accept_both
    later = node(graphs, PED, 35, "per.pedestrian_in_path").answer
    assert isinstance(later, ObjectsAnswer) and later.ids == [1]
    assert node(graphs, PED, 0, "per.pedestrian_in_path").answer.ids == []
    assert node(graphs, PED, 0, "per.stop_sign").answer.value is True
    assert node(graphs, PED, 0, "plan.safe.KEEP").answer.value is False  # the replay meets the pedestrian


def test_cut_in_on_a_multi_lane_road(graphs):
    cut = node(graphs, CUT_IN, 0, "pred.cut_in.v1")
    assert cut.answer.value is True and cut.meta["closest_lateral_m"] < 0.5
    assert graphs[(CUT_IN, 0)][1].get("pred.cut_in.v2") is None  # behind, not visible in the front camera
    assert node(graphs, CUT_IN, 0, "per.lead_vehicle").answer.ids == []  # still in the right lane
    assert node(graphs, CUT_IN, 20, "per.lead_vehicle").answer.ids == [1]
    assert node(graphs, CUT_IN, 0, "plan.safe.KEEP").answer.value is False
    assert node(graphs, CUT_IN, 0, "plan.safe.LANE_LEFT").answer.value is False  # vehicle 2 comes up on the left


def test_vehicle_lanes_from_the_map_ids(graphs):
    assert choice(node(graphs, CUT_IN, 0, "per.vehicle_lane.v1")) == ("right lane", {"right lane"})
    assert choice(node(graphs, CUT_IN, 30, "per.vehicle_lane.v1"))[0] == "ego lane"
    assert graphs[(RED, 0)][1].get("per.vehicle_lane.v1") is None  # a crossing road: not asked


def test_lane_counts_and_referring_by_lane_ids(graphs):
    assert node(graphs, CUT_IN, 0, "per.count.right_ahead").answer.value == 1
    assert node(graphs, CUT_IN, 0, "per.count.ego_ahead").answer.value == 0
    assert node(graphs, CUT_IN, 0, "per.refer.closest_ahead_right").answer.ids == [1]
    assert node(graphs, CUT_IN, 0, "per.refer.closest_behind_left").answer.ids == []  # vehicle 2: not in the front image
    assert node(graphs, CUT_IN, 20, "per.count.ego_ahead").answer.value == 1  # it has cut in
    assert graphs[(PED, 0)][1].get("per.count.left_ahead") is None  # lane -1 has no left lane


def test_static_vehicle_blocking_the_lane(graphs):
    assert node(graphs, STATIC, 0, "per.static_obstacle").answer.value is True
    assert node(graphs, STATIC, 0, "per.lead_vehicle").answer.ids == [1]
    assert node(graphs, STATIC, 0, "per.lead_distance").answer.value == pytest.approx(35.0 - 2.4 - 2.45, abs=0.5)
    assert node(graphs, STATIC, 0, "plan.safe.KEEP").answer.value is False
    assert choice(node(graphs, STATIC, 0, "plan.action"))[0] == "LANE_LEFT"
    assert choice(node(graphs, STATIC, 0, "beh.lateral"))[0] == "change to the left lane"
    assert node(graphs, STATIC, 30, "per.static_obstacle").answer.value is False  # passed it


def test_danger_and_importance_from_the_keep_replay(graphs):
    assert node(graphs, STATIC, 0, "plan.danger").answer.ids == [1]
    assert node(graphs, PED, 10, "plan.danger").answer.ids == [1]
    assert node(graphs, RED, 0, "plan.danger").answer.ids == []  # the crossing car stays far away
    assert "No road user" in node(graphs, RED, 0, "plan.danger_reason").answer.references[0]
    assert graphs[(CUT_IN, 0)][1].get("plan.importance") is None  # one visible road user: nothing to rank
    frame = graphs[(CUT_IN, 0)][0].model_copy(deep=True)
    frame.agent(2).visible = True  # as with --cameras all (the back camera sees it)
    ranked = build_graph(frame, None).get("plan.importance")
    assert ranked.answer.ids == [1, 2] and ranked.meta["gap_m"][0] <= ranked.meta["gap_m"][1]


def test_frames_near_the_clip_end_are_not_labelled_for_prediction_or_planning(graphs):
    nodes = graphs[(RED, 40)][1].nodes
    assert not [n for n in nodes if n.stage in ("planning", "behavior") or n.family.startswith("pred.cut")]


def test_disagreeing_votes_drop_the_action_and_count_it(graphs):
    frame = graphs[(RED, 0)][0].model_copy(deep=True)
    frame.meta["controls"] = {"should_brake": 0}
    frame.meta["ego_future"] = [dict(s, speed_mps=8.0) for s in frame.meta["ego_future"]]  # expert keeps 8 m/s
    frame.meta["tracks"]["1"] = [[t, 14.0, 0.0, 0.0] for t, *_ in frame.meta["tracks"]["1"]]  # a car stands ahead
    graph = build_graph(frame, None)
    assert graph.get("plan.action") is None and frame.meta["dropped"] == {"plan.action": 1}


def test_an_expert_that_speeds_up_votes_for_no_manoeuvre(graphs):
    frame = graphs[(RED, 0)][0].model_copy(deep=True)
    frame.meta["controls"] = {"should_brake": 0}
    v0 = frame.ego.speed_mps
    frame.meta["ego_future"] = [dict(s, speed_mps=v0 + 3.0 * s["t_s"]) for s in frame.meta["ego_future"]]
    assert _log_ego.expert_manoeuvre(frame, 3.0) is None  # not KEEP: the expert did not hold its speed
    frame.meta["ego_future"] = [dict(s, speed_mps=v0) for s in frame.meta["ego_future"]]
    assert _log_ego.expert_manoeuvre(frame, 3.0) == "KEEP"


def test_turn_at_the_junction_from_the_driven_path(graphs):
    frame = graphs[(RED, 0)][0].model_copy(deep=True)
    frame.meta["near_command_rel_m"] = [10.0, 0.0]
    arc = [[20 * math.sin(a / 20), 20 - 20 * math.cos(a / 20)] for a in range(1, 40)]  # bends to the left
    frame.meta["driven_path"] = arc
    assert _log_ego.turn(frame)[0] == 0
    frame.meta["driven_path"] = [[x, -y] for x, y in arc]
    assert _log_ego.turn(frame)[0] == 2
    frame.meta["driven_path"] = arc[:5]  # the recording stops before the junction: no label
    assert _log_ego.turn(frame) is None
    graph = build_graph(frame.model_copy(update={"meta": dict(frame.meta, driven_path=arc)}), None)
    assert choice(graph.get("beh.turn"))[0] == "turn left"


def test_restrict_drops_undeclared_families_and_their_children():
    from drivechain.schema import BooleanAnswer

    def mk(qid, family, parents=()):
        return QA(qid=qid, family=family, stage="perception", question="?", answer=BooleanAnswer(value=True),
                  parents=list(parents))

    g = ChainGraph(nodes=[mk("a", "fa"), mk("b", "fb", ["a"]), mk("c", "fa", ["b"]), mk("d", "fa", ["a"])])
    kept, dropped = restrict(g, frozenset({"fa"}))
    assert [n.qid for n in kept.nodes] == ["a", "d"] and dict(dropped) == {"fb": 1, "fa": 1}


def test_simulator_frames_get_no_log_family(tmp_path: Path):
    from drivechain.teacher.families import log_behavior, log_perception, log_planning, log_prediction
    from drivechain.teacher.context import TeacherContext

    from drivechain.schema import Agent, Frame

    f = Frame(frame_id="highway/highway/0/0", source="highway", scenario="highway", episode=0, step=0, seed=0,
              t_s=0.0, ego=Agent(id=0, x_m=0, y_m=0, heading_rad=0, speed_mps=20), actions=["IDLE"])
    ctx = TeacherContext(frame=f)
    for module in (log_perception, log_prediction, log_planning, log_behavior):
        for family in module.FAMILIES:
            assert family(ctx) == []
