"""Closed-loop metrics on hand-built frames and step records: fault rule, completion, score, comfort."""

from __future__ import annotations

import pytest

from drivechain.closedloop.metrics import (
    PACE,
    PENALTIES,
    aggregate,
    classify_collision,
    collision_partner,
    comfort,
    completion,
    episode_metrics,
    latency_percentiles,
)
from drivechain.schema import Agent, Frame


def _agent(i: int, rel_x: float, rel_y: float, lane: str, speed: float = 20.0, crashed: bool = False) -> Agent:
    # ego at (100, 4) heading +x: world y grows to the right, so rel_y (left) = -(y - 4)
    return Agent(id=i, x_m=100.0 + rel_x, y_m=4.0 - rel_y, heading_rad=0.0, speed_mps=speed,
                 lane_id=lane, rel_x_m=rel_x, rel_y_m=rel_y, crashed=crashed)


def _frame(others: list[Agent], scenario: str = "highway", target: str | None = None, ego_speed: float = 25.0,
           ego_xy: tuple[float, float] = (100.0, 4.0)) -> Frame:
    ego = Agent(id=0, x_m=ego_xy[0], y_m=ego_xy[1], heading_rad=0.0, speed_mps=ego_speed, lane_id="a>b>1")
    return Frame(frame_id=f"highway/{scenario}/0/0", source="highway", scenario=scenario, episode=0, step=0, seed=0,
                 t_s=0.0, ego=ego, agents=others, actions=["LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER"],
                 meta={"ego_target_lane_id": target or "a>b>1"})


def test_rear_end_into_lead_is_at_fault_and_being_rear_ended_is_not() -> None:
    prev = _frame([_agent(1, 8.0, 0.0, "a>b>1", speed=10.0), _agent(2, -7.0, 0.0, "a>b>1", speed=30.0)])
    after = _frame([_agent(1, 5.0, 0.0, "a>b>1", crashed=True)])
    assert collision_partner(prev, after) == 1
    assert classify_collision(prev, after, "FASTER", 1) == {"partner": 1, "at_fault": True, "rule": "rear_end"}
    hit = classify_collision(prev, after, "SLOWER", 2)
    assert hit["at_fault"] is False and hit["rule"] == "rear_ended"


def test_lane_change_into_occupied_gap_is_at_fault_only_towards_the_partner() -> None:
    # partner in the lane on the right (lane index 2 is right of 1; rel_y < 0 is right)
    prev = _frame([_agent(3, 1.0, -4.0, "a>b>2")])
    after = _frame([])
    assert classify_collision(prev, after, "LANE_RIGHT", 3)["rule"] == "lane_change"
    # an unfinished change to the right (target lane differs) also counts
    prev_mid = _frame([_agent(3, 1.0, -4.0, "a>b>2")], target="a>b>2")
    assert classify_collision(prev_mid, after, "IDLE", 3)["at_fault"] is True
    # changing left while the partner on the right swerves in: not the ego's fault
    res = classify_collision(prev, after, "LANE_LEFT", 3)
    assert res["at_fault"] is False and res["rule"] == "cut_in"


def test_failed_to_yield_uses_first_come_first_served_at_intersections() -> None:
    # crash point 10 m ahead of the ego; the crossing vehicle is 3 m from it, the ego 10 m
    crossing = Agent(id=4, x_m=110.0, y_m=7.0, heading_rad=-1.57, speed_mps=8.0, lane_id="o1>ir1>0",
                     rel_x_m=10.0, rel_y_m=-3.0)
    prev = _frame([crossing], scenario="intersection", ego_speed=8.0)
    after = _frame([], scenario="intersection", ego_xy=(110.0, 4.0))
    assert classify_collision(prev, after, "FASTER", 4)["rule"] == "failed_to_yield"
    # the same geometry with the ego first at the point: the other vehicle failed to yield
    late = crossing.model_copy(update={"y_m": 40.0})
    assert classify_collision(_frame([late], scenario="intersection", ego_speed=8.0), after, "IDLE", 4)["at_fault"] is False
    # a stopped ego is never at fault for a crossing conflict
    stopped = _frame([crossing], scenario="intersection", ego_speed=0.0)
    assert classify_collision(stopped, after, "SLOWER", 4)["at_fault"] is False


def test_unknown_partner_counts_against_the_ego() -> None:
    prev = _frame([])
    assert classify_collision(prev, prev, "IDLE", None) == {"partner": None, "at_fault": True, "rule": "unknown_partner"}


def test_completion_goal_and_pace() -> None:
    goal = {"kind": "exited", "distance_m": 60.0}
    assert completion(goal, 30.0, False, 10.0, 10.0) == 0.5
    assert completion(goal, 200.0, False, 10.0, 10.0) == 0.9  # far but not exited: capped below success
    assert completion(goal, 10.0, True, 10.0, 10.0) == 1.0
    pace = {"kind": "pace"}
    limit, dur = 30.0, 10.0
    assert completion(pace, PACE * limit * dur, False, dur, limit) == 1.0
    crawl = 20.0 * dur  # constant SLOWER on the motorway: 20 m/s
    assert completion(pace, crawl, False, dur, limit) == pytest.approx(20.0 / (PACE * limit))
    assert completion(pace, 10 * crawl, False, dur, limit) == 1.0


def test_comfort_counts_reversals_and_harsh_changes() -> None:
    actions = ["LANE_LEFT", "IDLE", "LANE_RIGHT", "IDLE", "IDLE", "IDLE", "LANE_LEFT"]
    speeds = [20.0, 25.0, 25.0, 19.0, 19.0, 19.0, 19.0, 19.0]
    c = comfort(actions, speeds, 1.0, 7.0)
    assert c["lane_change_reversals"] == 1  # the second LEFT comes 4 steps after the RIGHT
    assert c["harsh_speed_changes"] == 2  # +5 m/s^2 and -6 m/s^2
    assert c["lane_change_reversals_per_min"] == pytest.approx(60.0 / 7.0)


def _step(x: float, speed: float, action: str = "IDLE", agree: bool | None = True, fallback: bool = False) -> dict:
    teacher = {"preferred": "IDLE", "acceptable": ["IDLE"], "safe": ["IDLE", "SLOWER"]}
    return {"ego": {"x_m": x, "y_m": 0.0, "speed_mps": speed, "on_road": True}, "action": action,
            "teacher": teacher, "agree": agree, "unsafe": not agree, "fallback": fallback,
            "qa": {"planning": 1.0 if agree else 0.0}, "abilities": ["overtaking"] if not agree else []}


def test_episode_metrics_score_and_success() -> None:
    info = {"goal": {"kind": "pace"}, "planned_s": 4.0, "dt_s": 1.0, "limit_mps": 25.0}
    steps = [_step(0, 20), _step(20, 20), _step(40, 20, agree=False, fallback=True), _step(60, 20)]
    clean = episode_metrics(steps, {"ego": {"x_m": 80.0, "y_m": 0.0, "speed_mps": 20.0}, "collision": None}, info)
    assert clean["route_completion"] == 1.0 and clean["success"] and clean["driving_score"] == 1.0
    assert clean["teacher_agreement"] == 0.75 and clean["unsafe_action_rate"] == 0.25 and clean["failures"] == 1
    assert clean["qa"] == {"planning": 0.75} and clean["abilities"]["overtaking"]["steps"] == 1
    crash = {"partner": 1, "at_fault": True, "rule": "rear_end"}
    hit = episode_metrics(steps[:2], {"ego": {"x_m": 40.0, "y_m": 0.0, "speed_mps": 0.0}, "collision": crash}, info)
    assert hit["collision"] and hit["at_fault_collision"] and not hit["success"]
    assert hit["route_completion"] == 0.5  # distance until the crash over the planned duration
    assert hit["driving_score"] == pytest.approx(0.5 * PENALTIES["vehicle_collision"])
    summary = aggregate([{"metrics": clean}, {"metrics": hit}])
    assert summary["collision_rate"] == 0.5 and summary["success_rate"] == 0.5
    assert summary["driving_score"] == pytest.approx((1.0 + 0.3) / 2)
    assert summary["teacher_agreement"] == pytest.approx(5 / 6)  # weighted by decisions (4 + 2)


def test_latency_percentiles_nearest_rank() -> None:
    lat = latency_percentiles([float(i) for i in range(1, 101)])
    assert lat["p50"] == 50.0 and lat["p95"] == 95.0
    assert latency_percentiles([])["p50"] is None
