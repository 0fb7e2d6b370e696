"""Planning families on constructed states (vehicles placed by hand in highway-env) and without a world."""

from __future__ import annotations

import numpy as np

from drivechain.schema import ChoiceAnswer
from drivechain.sources.base import make_source
from drivechain.teacher.graph import build_graph


def _blocked_highway():
    """Ego in the middle lane at 25 m/s, one vehicle 12 m ahead in its lane at 8 m/s, nothing else near."""
    src = make_source("highway", "highway")
    src.reset(1)
    env = src.env
    ego = env.vehicle
    ego_lane = ("0", "1", 1)
    ego.lane_index = ego.target_lane_index = ego_lane
    ego.lane = env.road.network.get_lane(ego_lane)
    ego.position = ego.lane.position(100.0, 0.0)
    ego.heading = ego.lane.heading_at(100.0)
    ego.speed = 25.0
    slow = next(v for v in env.road.vehicles if v is not ego)
    slow.lane_index = slow.target_lane_index = ego_lane
    slow.lane = ego.lane
    slow.position = ego.lane.position(100.0 + 5.0 + 12.0, 0.0)
    slow.heading = ego.heading
    slow.speed = slow.target_speed = 8.0
    # everyone else far away so the scene is exactly the constructed one
    others = [v for v in env.road.vehicles if v is not ego and v is not slow]
    for k, v in enumerate(others):
        v.position = np.array([600.0 + 30.0 * k, v.position[1]])
    return src, slow.dc_id


def test_rear_end_state_is_labelled_unsafe_and_the_slow_vehicle_is_the_danger():
    src, slow_id = _blocked_highway()
    frame = src.frame()
    graph = build_graph(frame, src)
    safe = {n.qid.rsplit(".", 1)[1]: n.answer.value for n in graph.nodes if n.family == "plan.safe"}
    assert safe["IDLE"] is False and safe["FASTER" if "FASTER" in safe else "IDLE"] is False
    assert safe["LANE_LEFT"] is True and safe["LANE_RIGHT"] is True  # both neighbour lanes are empty
    plan = graph.get("plan.action").answer
    assert isinstance(plan, ChoiceAnswer)
    assert plan.options[plan.preferred] in {"LANE_LEFT", "LANE_RIGHT"}
    assert {plan.options[i] for i in plan.safe} == {a for a, ok in safe.items() if ok}
    danger = graph.get("plan.danger")
    assert danger.answer.ids == [slow_id] and not danger.ambiguous
    assert f"Vehicle {slow_id}" in graph.get("plan.danger_reason").answer.references[0]
    lateral = graph.get("beh.lateral").answer
    assert lateral.options[lateral.preferred].startswith("change to the")
    src.close()


def test_intersection_asks_only_about_speed_actions():
    src = make_source("highway", "intersection")
    src.reset(2)
    graph = build_graph(src.frame(), src)
    asked = {n.qid for n in graph.nodes if n.family == "plan.safe"}
    assert asked and asked <= {"plan.safe.SLOWER", "plan.safe.IDLE", "plan.safe.FASTER"}
    assert set(graph.get("plan.action").answer.options) == {"SLOWER", "IDLE", "FASTER"}
    assert graph.get("beh.lateral").answer.preferred == 0  # keep lane
    src.close()


def test_no_world_means_no_planning_or_behavior_nodes():
    src = make_source("highway", "merge")
    src.reset(0)
    graph = build_graph(src.frame(), None)
    assert not graph.stage("planning") and not graph.stage("behavior")
    src.close()


def test_driving_into_an_earlier_wreck_is_credited_to_the_wreck():
    """Vehicles that crashed before the ego arrives are still what the ego hits (crashed_with, plan.danger)."""
    src, wreck_id = _blocked_highway()
    env = src.env
    ego = env.vehicle
    wreck = next(v for v in env.road.vehicles if v.dc_id == wreck_id)
    wreck.speed = wreck.target_speed = 0.0
    wreck.crashed = True
    # a second wreck beside it (the vehicle it collided with), also crashed before the frame
    partner = next(v for v in env.road.vehicles if v is not ego and v is not wreck)
    partner.lane_index = partner.target_lane_index = ("0", "1", 2)
    partner.lane = env.road.network.get_lane(partner.lane_index)
    partner.position = partner.lane.position(100.0 + 5.0 + 14.0, 0.0)
    partner.heading = partner.lane.heading_at(100.0)
    partner.speed = partner.target_speed = 0.0
    partner.crashed = True
    roll = src.rollout("IDLE", 3.0)
    assert roll.crashed and roll.crashed_with == wreck_id
    graph = build_graph(src.frame(), src)
    assert graph.get("plan.danger").answer.ids == [wreck_id]
    assert graph.get("plan.safe.IDLE").answer.value is False
    assert f"vehicle {wreck_id}" in graph.get("plan.safe.IDLE").explanation
    src.close()


def test_when_every_action_collides_the_teacher_brakes_in_lane():
    """hardbrake (issue #14, the look-ahead before the IDM ego): with every action colliding the old
    fallback took the first action in order, a lane change into the blocker beside the ego."""
    from drivechain.teacher.families.planning import least_bad_action
    from drivechain.teacher.planners.lookahead import ActionCheck

    def check(action, crashed, margin=None, off_road=False):
        return ActionCheck(action=action, safe=False, crashed=crashed, crashed_with=3 if crashed else None,
                           off_road=off_road, margin_m=margin, critical_id=None, critical_t_s=None,
                           progress_m=50.0, final_speed_mps=20.0)

    every = ["LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER"]
    assert least_bad_action([check(a, True) for a in every]) == "SLOWER"
    assert least_bad_action([check(a, True) for a in every if a != "SLOWER"]) == "IDLE"
    # an action without a collision still beats braking into one; among those the larger RSS margin wins
    assert least_bad_action([check("SLOWER", True), check("LANE_LEFT", False, -3.0), check("IDLE", False, -1.0)]) == "IDLE"
    assert least_bad_action([check("SLOWER", True), check("LANE_RIGHT", False, None, off_road=True)]) == "SLOWER"
