"""Safety labels checked against the world: every labelled action is replayed in a FRESH highway-env
(gym.make + reset(seed) + the same action history), never through the source's fork() or rollout().
The margin rule of docs/planning.md is re-implemented here on the raw highway-env objects."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import highway_env  # noqa: F401  (registers the env ids)
import pytest

from drivechain.schema import ChoiceAnswer
from drivechain.sources.base import make_source
from drivechain.sources.scenarios import get_scenario
from drivechain.teacher.graph import build_graph

H_S = 3.0
# docs/planning.md, written out here: RSS response time, a_acc, b_min = b_max; lateral a, b, mu
RHO_S, ACC_MPS2, BRAKE_MPS2 = 0.5, 3.0, 6.0
LAT_ACC_MPS2, LAT_BRAKE_MPS2, MU_M = 0.2, 0.8, 0.2
ALIGNED_RAD, LAT_CLEAR_M, MARGIN_FROM_S = 0.5, 0.5, 0.5
# (scenario, seed, decision steps driven by the teacher's preferred action)
PLAN = [("highway", 5, 4), ("merge", 3, 6), ("intersection", 3, 6), ("roundabout", 3, 6), ("intersection", 11, 5)]


def _rss_long(v_rear: float, v_front: float) -> float:
    v_rear, v_front = max(v_rear, 0.0), max(v_front, 0.0)
    d = v_rear * RHO_S + ACC_MPS2 * RHO_S**2 / 2 + (v_rear + RHO_S * ACC_MPS2) ** 2 / (2 * BRAKE_MPS2) \
        - v_front**2 / (2 * BRAKE_MPS2)
    return max(d, 0.0)


def _rss_lat(v_toward: float) -> float:
    def travel(v: float) -> float:
        end = v + RHO_S * LAT_ACC_MPS2
        return v * RHO_S + LAT_ACC_MPS2 * RHO_S**2 / 2 + end * abs(end) / (2 * LAT_BRAKE_MPS2)
    return MU_M + max(travel(v_toward) + travel(0.0), 0.0)


def _raw_margin(env, rear_ids: set[int]) -> tuple[float, int | None, bool]:
    """min(gap - RSS distance) over the vehicles in RSS lateral conflict the ego is responsible for, the culprit,
    and whether it crosses."""
    ego = env.vehicle
    c, s = math.cos(ego.heading), math.sin(ego.heading)
    worst, who, crossing = math.inf, None, False
    for v in env.road.vehicles:
        if v is ego:
            continue
        dx, dy = v.position[0] - ego.position[0], v.position[1] - ego.position[1]
        fwd, lat = dx * c + dy * s, -dx * s + dy * c
        dh = math.remainder(v.heading - ego.heading, math.tau)
        aligned = abs(dh) < ALIGNED_RAD
        if fwd < 0 and not (aligned and id(v) in rear_ids):
            continue
        e_lon = abs(math.cos(dh)) * v.LENGTH / 2 + abs(math.sin(dh)) * v.WIDTH / 2
        e_lat = abs(math.sin(dh)) * v.LENGTH / 2 + abs(math.cos(dh)) * v.WIDTH / 2
        gap_lat = abs(lat) - ego.WIDTH / 2 - e_lat
        if v.lane_index == ego.lane_index:
            gap_lat = min(gap_lat, 0.0)
        need_lat = _rss_lat(-v.speed * math.sin(dh) * (1.0 if lat >= 0 else -1.0)) if aligned else LAT_CLEAR_M
        if gap_lat >= need_lat:
            continue
        gap = abs(fwd) - ego.LENGTH / 2 - e_lon
        vo = v.speed * math.cos(dh)
        margin = gap - (_rss_long(ego.speed, vo) if fwd >= 0 else _rss_long(vo, ego.speed))
        if margin < worst:
            worst, who = margin, id(v)
            crossing = not aligned
    return worst, who, crossing


def _hand_over_to_idm(env) -> None:
    """From now on the ego drives with highway-env's own IDMVehicle.act (MOBIL off): its IDM code, bound to the
    ego. The ego stays an MDPVehicle, so the intersection's road rules do not make it yield (they never do)."""
    import types

    from highway_env.vehicle.behavior import IDMVehicle

    ego = env.vehicle
    for name in ("ACC_MAX", "COMFORT_ACC_MAX", "COMFORT_ACC_MIN", "DISTANCE_WANTED", "TIME_WANTED", "DELTA"):
        setattr(ego, name, getattr(IDMVehicle, name))
    ego.enable_lane_change = False
    for name in ("act", "acceleration", "desired_gap"):
        setattr(ego, name, types.MethodType(getattr(IDMVehicle, name), ego))


def replay(scenario: str, seed: int, history: list[str], action: str) -> dict:
    """Rebuild the env from the seed, replay the history, then ``action`` for one decision step and the ego as
    an IDM vehicle for the rest of H s; watch every physics step."""
    from highway_env.vehicle.behavior import IDMVehicle

    spec = get_scenario(scenario)
    # intersection-v0 rewrites these on the class, process-wide: start from highway-env's own values
    IDMVehicle.DISTANCE_WANTED, IDMVehicle.COMFORT_ACC_MAX, IDMVehicle.COMFORT_ACC_MIN = 10.0, 3.0, -5.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make(spec.env_id, config=dict(spec.config)).unwrapped
        env.reset(seed=seed)
        names = {n: i for i, n in env.action_type.actions.items()}
        for a in history:
            env.step(names[a])
        start = env.vehicle.position.copy()
        hz = env.config["simulation_frequency"]
        out = {"crashed": False, "off_road": False, "margin": math.inf, "crossing": False, "lane_change": False,
               "start": start}
        lane0 = env.vehicle.lane_index
        rear_ids = ({id(v) for v in env.road.vehicles if v.lane_index != lane0}
                    if action in ("LANE_LEFT", "LANE_RIGHT") else set())
        frames = [0]
        road_step = env.road.step

        def watched(dt: float) -> None:
            road_step(dt)
            frames[0] += 1
            ego = env.vehicle
            out["crashed"] |= bool(ego.crashed)
            out["off_road"] |= not ego.on_road
            out["lane_change"] |= ego.lane_index[2] != lane0[2]
            if frames[0] / hz >= MARGIN_FROM_S - 1e-9 and frames[0] / hz <= H_S + 1e-9:
                m, _, crossing = _raw_margin(env, rear_ids)
                if m < out["margin"]:
                    out["margin"], out["crossing"] = m, crossing

        env.road.step = watched
        for k in range(int(math.ceil(H_S))):
            if k == 1:
                _hand_over_to_idm(env)
            env.step(names[action] if k == 0 else names["IDLE"])
        env.close()
    return out


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    """Labelled frames: drive each scenario with the voted preferred action, label every frame."""
    out = []
    for scenario, seed, steps in PLAN:
        src = make_source("highway", scenario, horizon_s=H_S)
        src.reset(seed)
        history: list[str] = []
        for _ in range(steps):
            frame = src.frame()
            graph = build_graph(frame, src, horizon_s=H_S)
            node = graph.get("plan.action")
            assert node is not None and isinstance(node.answer, ChoiceAnswer)
            checks = {n.qid.split(".", 2)[2]: n for n in graph.nodes if n.family == "plan.safe"}
            out.append({"scenario": scenario, "seed": seed, "history": list(history), "node": node,
                        "safe_nodes": checks, "graph": graph, "ego_xy": (frame.ego.x_m, frame.ego.y_m)})
            action = node.answer.options[node.answer.preferred]
            if src.step(action).done:
                break
            history.append(action)
        src.close()
    return out


def test_labelled_actions_replay_as_labelled(cases):
    kinds = {"rear_end": 0, "lane_change": 0, "crossing": 0}
    safe_checked = preferred_checked = 0
    for case in cases:
        ans = case["node"].answer
        safe = {ans.options[i] for i in (ans.safe or [])}
        if not case["node"].ambiguous:
            assert ans.options[ans.preferred] in safe, case["node"].explanation
            assert {ans.options[i] for i in ans.acceptable} <= safe
        for action, qa in case["safe_nodes"].items():
            assert qa.answer.value == (action in safe)  # plan.safe.<A> and plan.action agree
            r = replay(case["scenario"], case["seed"], case["history"], action)
            assert math.dist(r["start"], case["ego_xy"]) < 1e-3  # the replay reached the labelled state
            where = f"{case['scenario']} seed {case['seed']} step {len(case['history'])} {action}"
            if action in safe:
                assert not r["crashed"] and not r["off_road"], f"{where}: labelled safe but collides"
                assert r["margin"] >= 0.0, f"{where}: labelled safe but breaks the margin ({r['margin']:.2f} m)"
                safe_checked += 1
                preferred_checked += int(action == ans.options[ans.preferred])
            else:
                assert r["crashed"] or r["off_road"] or r["margin"] < 0.0, f"{where}: labelled unsafe but fine"
                if case["scenario"] == "intersection" and r["crossing"]:
                    kinds["crossing"] += 1
                elif action in ("LANE_LEFT", "LANE_RIGHT") and r["lane_change"]:
                    kinds["lane_change"] += 1
                elif action in ("IDLE", "FASTER") and not r["crossing"]:
                    kinds["rear_end"] += 1
    assert safe_checked >= 20 and preferred_checked >= 10
    assert all(n >= 1 for n in kinds.values()), kinds


def test_behavior_follows_plan_action(cases):
    from drivechain.teacher.families.behavior import LATERAL, LONGITUDINAL, lateral_class

    for case in cases:
        graph, plan = case["graph"], case["node"].answer
        chosen = plan.options[plan.preferred]
        lon, lat = graph.get("beh.longitudinal"), graph.get("beh.lateral")
        assert lon.parents == ["plan.action"] and lat.parents == ["plan.action"]
        assert lon.ambiguous == case["node"].ambiguous == lat.ambiguous
        assert LATERAL[lat.answer.preferred] == lateral_class(chosen)
        label = LONGITUDINAL[lon.answer.preferred]
        v0, v1 = lon.meta["speed_now_mps"], lon.meta["speed_end_mps"]
        # the label follows the chosen action's simulated speed change, never against its sign
        if chosen == "FASTER":
            assert label != "decelerate" and label != "stop"
        if chosen == "SLOWER":
            assert label != "accelerate"
        assert (label == "accelerate") <= (v1 > v0) and (label in ("decelerate", "stop")) <= (v1 < v0)
