"""Perception labels recomputed from raw highway-env objects (not through the teacher's geometry)."""

from __future__ import annotations

import numpy as np
import pytest

from drivechain.schema import Frame
from drivechain.sources.base import make_source
from drivechain.teacher import bands
from drivechain.teacher.graph import build_graph

RUNS = {  # scenario -> (seed, actions): lane changes make straddling and lead changes happen
    "highway": (1, ["IDLE", "LANE_LEFT", "IDLE", "FASTER", "LANE_RIGHT", "IDLE"]),
    "merge": (5, ["IDLE", "FASTER", "IDLE", "LANE_RIGHT"]),
    "exit": (2, ["IDLE", "LANE_RIGHT", "IDLE", "IDLE"]),
}


def _frames(scenario: str):
    seed, actions = RUNS[scenario]
    src = make_source("highway", scenario)
    src.reset(seed=seed)
    out = []
    for action in actions:
        frame = src.frame()
        out.append((frame, build_graph(frame, src), _raw(src, frame)))
        if src.step(action).crashed:
            break
    return out


def _raw(src, frame: Frame) -> dict:
    """Independent truth from highway-env's own lane objects: lane-local coordinates of every vehicle."""
    u = src.env
    ego = u.vehicle
    lane = u.road.network.get_lane(ego.lane_index)
    s_ego, lat_ego = lane.local_coordinates(ego.position)
    visible = {a.id for a in frame.agents if a.visible}
    rows = {}
    for v in u.road.vehicles:
        if v is ego or v.dc_id not in visible:
            continue
        s, lat = lane.local_coordinates(v.position)
        # highway-env lateral grows to the right; lane offset +1 = one lane to the LEFT
        rows[v.dc_id] = dict(ds=float(s - s_ego), offset=-float(lat) / lane.width_at(s), lane_index=v.lane_index,
                             gap=float(abs(s - s_ego) - (v.LENGTH + ego.LENGTH) / 2), speed=float(v.speed))
    a, b, i = ego.lane_index
    return dict(n_lanes=len(u.road.network.graph[a][b]), ego_index=i, rows=rows, ego_speed=float(ego.speed),
                ego_edge=(a, b), ego_offset=-float(lat_ego) / lane.width_at(s_ego))


@pytest.fixture(scope="module", params=sorted(RUNS))
def frames(request):
    return _frames(request.param)


def test_lane_count_and_ego_lane_match_the_road_network(frames):
    for frame, graph, raw in frames:
        assert graph.get("per.lanes").answer.value == raw["n_lanes"]
        assert graph.get("per.ego_lane").answer.value == raw["ego_index"] + 1


def test_vehicle_lane_matches_lane_index_when_not_straddling(frames):
    checked = 0
    for frame, graph, raw in frames:
        for vid, row in raw["rows"].items():
            node = graph.get(f"per.vehicle_lane.v{vid}")
            assert node is not None
            expect = int(np.clip(round(row["offset"]), -2, 2))
            acceptable = [2 - k for k in node.answer.acceptable]  # option index -> offset
            assert expect in acceptable
            same_edge = row["lane_index"][:2] == raw["ego_edge"]
            if same_edge and abs(row["offset"] - round(row["offset"])) < 0.3:
                # its own lane index says the same as the geometry
                lane_offset = raw["ego_index"] - row["lane_index"][2]
                assert 2 - node.answer.preferred == max(-2, min(2, lane_offset))
                checked += 1
    assert checked > 0


def test_lead_vehicle_distance_and_speed(frames):
    leads = 0
    for frame, graph, raw in frames:
        node = graph.get("per.lead_vehicle")
        same = {vid: r for vid, r in raw["rows"].items() if abs(r["offset"]) < 0.5 and r["ds"] > 0}
        if node.ambiguous:
            continue
        if not same:
            assert node.answer.ids == []
            continue
        lead = min(same, key=lambda vid: same[vid]["ds"])
        assert node.answer.ids == [lead]
        dist = graph.get("per.lead_distance").answer
        assert abs(dist.value - same[lead]["gap"]) < 0.2
        dv = same[lead]["speed"] - raw["ego_speed"]
        speed = graph.get("per.lead_speed").answer
        if abs(abs(dv) - bands.SAME_SPEED_MPS) > bands.SAME_SPEED_BAND_MPS:
            want = "about the same speed" if abs(dv) < 1 else ("faster" if dv > 0 else "slower")
            assert speed.acceptable == [speed.options.index(want)]
        leads += 1
    assert leads > 0


def _rss_m(v_rear: float, v_front: float) -> float:
    """RSS safe longitudinal distance written out here (docs/planning.md: rho 0.5 s, a 3, b_min = b_max = 6 m/s^2)."""
    rho, acc, brake = 0.5, 3.0, 6.0
    return max(0.0, v_rear * rho + acc * rho**2 / 2 + (v_rear + rho * acc) ** 2 / (2 * brake) - v_front**2 / (2 * brake))


def test_lane_free_matches_gaps(frames):
    for frame, graph, raw in frames:
        for side, offset in (("left", 1), ("right", -1)):
            ans = graph.get(f"per.lane_free.{side}").answer
            target = raw["ego_index"] - offset
            if not 0 <= target < raw["n_lanes"]:
                assert ans.value is False and not ans.accept_both
                continue
            if ans.accept_both:
                continue
            v_ego = raw["ego_speed"]
            shorts = [r["gap"] - (_rss_m(v_ego, r["speed"]) if r["ds"] >= 0 else _rss_m(r["speed"], v_ego))
                      for r in raw["rows"].values() if abs(r["offset"] - offset) < 0.5]
            assert ans.value == (min(shorts, default=1e9) >= 0.0)


def test_gap_and_closing_speed_of_the_vehicles_a_lane_change_depends_on(frames):
    """per.gap / per.closing against raw lane coordinates and speeds; the safety labels name them as parents."""
    asked = 0
    for frame, graph, raw in frames:
        v_ego = raw["ego_speed"]
        for lane, offset in (("left", 1), ("right", -1)):
            for side in ("ahead", "behind"):
                refer = graph.get(f"per.refer.closest_{side}_{lane}")
                gap, closing = graph.get(f"per.gap.{lane}_{side}"), graph.get(f"per.closing.{lane}_{side}")
                if refer is None or not refer.answer.ids:
                    assert gap is None and closing is None
                    continue
                row = raw["rows"][refer.answer.ids[0]]
                assert gap.objects == closing.objects == refer.answer.ids
                assert abs(gap.answer.value - row["gap"]) < 0.06
                want = v_ego - row["speed"] if row["ds"] >= 0 else row["speed"] - v_ego
                assert abs(closing.answer.value - want) < 0.06
                safe = graph.get(f"plan.safe.LANE_{lane.upper()}")
                assert {gap.qid, closing.qid} <= set(safe.parents)
                assert {gap.qid, closing.qid} <= set(graph.get(f"per.lane_free.{lane}").parents)
                asked += 1
        lead = graph.get("per.lead_vehicle")
        closing = graph.get("per.closing.ego_ahead")
        assert (closing is None) == (not lead.answer.ids)
        if closing is not None:
            assert abs(closing.answer.value - (v_ego - raw["rows"][lead.answer.ids[0]]["speed"])) < 0.06
            assert closing.qid in graph.get("plan.safe.IDLE").parents
            assert closing.qid in graph.get("pred.ttc_lead").parents
    assert asked > 0


def test_counts_and_referring(frames):
    for frame, graph, raw in frames:
        for name, offset in (("left", 1), ("ego", 0), ("right", -1)):
            node = graph.get(f"per.count.{name}_ahead")
            if node is None or node.ambiguous:
                continue
            ahead = [r for r in raw["rows"].values() if abs(r["offset"] - offset) < 0.5 and r["ds"] > 0]
            assert node.answer.value == len(ahead)
        for lane, offset in (("left", 1), ("right", -1)):
            node = graph.get(f"per.refer.closest_behind_{lane}")
            if node is None or node.ambiguous:
                continue
            behind = {vid: r for vid, r in raw["rows"].items() if abs(r["offset"] - offset) < 0.5 and r["ds"] < 0}
            want = [max(behind, key=lambda v: behind[v]["ds"])] if behind else []
            assert node.answer.ids == want


def test_vehicle_positions_are_ego_relative_left_positive(frames):
    for frame, graph, raw in frames:
        node = graph.get("per.vehicles")
        assert node.answer.ids == sorted(raw["rows"])
        for vid, (x, y) in zip(node.answer.ids, node.answer.positions_m):
            row = raw["rows"][vid]
            lateral_m = (row["offset"] - raw["ego_offset"]) * 4.0  # from the ego's centre, + left
            if abs(lateral_m) > 1.5 and abs(row["ds"]) < 20:  # left of the ego (smaller lane index) is y > 0
                assert np.sign(y) == np.sign(lateral_m)
            if row["ds"] > 3.0 or row["ds"] < -3.0:
                assert np.sign(x) == np.sign(row["ds"])


def test_merge_lane_beside_the_ego_is_counted_but_never_free():
    """On merge's b>c section the on-ramp's lane is a real third lane (counted), but highway-env
    forbids entering it: 'is the right lane free for a lane change' must be no there."""
    src = make_source("highway", "merge")
    src.reset(seed=2)  # seed 2, 9 IDLE steps: on b>c in lane 1 with no vehicle near it in the merge lane
    for _ in range(9):
        src.step("IDLE")
    ego = src.env.vehicle
    assert ego.lane_index == ("b", "c", 1)
    merge_lane = src.env.road.network.get_lane(("b", "c", 2))
    assert not merge_lane.is_reachable_from(ego.position)  # highway-env's own rule (forbidden lane)
    frame = src.frame()
    graph = build_graph(frame, src)
    assert graph.get("per.lanes").answer.value == len(src.env.road.network.graph["b"]["c"]) == 3
    right = graph.get("per.lane_free.right").answer
    assert right.value is False and not right.accept_both
