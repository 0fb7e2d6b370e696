"""Cheaper act/step for a throw-away copy of a highway-env Road, with the same results.

highway-env's traffic update is O(N^2) twice per physics step: every IDM vehicle's
``Road.neighbour_vehicles`` projects every other vehicle onto the queried lane, and ``Road.step``
calls ``handle_collisions`` on every pair. During one ``Road.act`` no position changes, so the
projection of all vehicles onto a lane is computed once per lane and reused by every query; and
a vectorised distance test drops the pairs that ``_is_colliding``'s own spherical pre-check would
reject (with 1 m of slack), calling highway-env's code on the rest in the original order.
``RoadNetwork.get_closest_lane_index`` (every vehicle, every physics step, every lane: most of
the time in the roundabout) first bounds each lane's distance from below by the distance to a
box around the lane (``lane_boxes``) and evaluates highway-env's own distance only for lanes whose
bound does not exceed the best distance found: same argmin, same ties.
Only look-ahead copies are patched (instance attributes; the env that makes the dataset is not);
a Road subclass's own ``step`` preamble is kept (``RegulatedRoad``: intersection right of way),
with each vehicle's predicted trajectory computed once per conflict search instead of once per pair.
Checked by tests/test_source_fast_road.py (patched == unpatched rollouts).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

PAIR_SLACK_M = 1.0  # safety slack over highway-env's spherical collision pre-check [m]
VECTOR_FROM_N = 8  # below this many vehicles the plain pair loop is as fast (measured, noisy)
BOUND_SLACK_M = 1e-6  # float rounding allowance on the lane-distance lower bounds [m]


def lane_boxes(network: Any) -> tuple[list[tuple[Any, Any, int]], list[Any], np.ndarray]:
    """Every lane in the network's order with a box [xmin, ymin, xmax, ymax] it never leaves.

    A lane's ``distance`` (|lateral| + length beyond either end) is at least the Euclidean
    distance to its centre line, hence to the box; lanes of unknown kind get an infinite box.
    """
    from highway_env.road.lane import CircularLane, SineLane, StraightLane

    indexes, lanes, boxes = [], [], []
    for _from, to_dict in network.graph.items():
        for _to, lane_list in to_dict.items():
            for _id, lane in enumerate(lane_list):
                if isinstance(lane, SineLane):
                    # the straight axis +- the amplitude; 3x: the formula extrapolates the sine
                    pad = 3.0 * abs(float(lane.amplitude))
                    lo, hi = np.minimum(lane.start, lane.end) - pad, np.maximum(lane.start, lane.end) + pad
                elif isinstance(lane, StraightLane):
                    lo, hi = np.minimum(lane.start, lane.end), np.maximum(lane.start, lane.end)
                elif isinstance(lane, CircularLane):
                    lo, hi = lane.center - lane.radius, lane.center + lane.radius
                else:
                    lo, hi = np.full(2, -np.inf), np.full(2, np.inf)
                indexes.append((_from, _to, _id))
                lanes.append(lane)
                boxes.append([lo[0], lo[1], hi[0], hi[1]])
    return indexes, lanes, np.asarray(boxes, dtype=float)


def patch_network(network: Any) -> None:
    """Replace ``network.get_closest_lane_index`` on this instance only (same results)."""
    if "get_closest_lane_index" in vars(network):
        return  # already patched (look-ahead copies that share one network)
    indexes, lanes, boxes = lane_boxes(network)

    def get_closest_lane_index(position: Any, heading: float | None = None) -> Any:
        x, y = float(position[0]), float(position[1])
        dx = np.maximum(np.maximum(boxes[:, 0] - x, x - boxes[:, 2]), 0.0)
        dy = np.maximum(np.maximum(boxes[:, 1] - y, y - boxes[:, 3]), 0.0)
        bound = np.hypot(dx, dy) - BOUND_SLACK_M
        best_k, best_d = -1, math.inf
        for k in np.argsort(bound, kind="stable"):
            if bound[k] > best_d:
                break  # every later lane is farther than the best one
            d = lanes[k].distance_with_heading(position, heading)
            # argmin keeps the first lane in network order among equal distances
            if d < best_d or (d == best_d and k < best_k):
                best_k, best_d = int(k), d
        return indexes[best_k]

    network.get_closest_lane_index = get_closest_lane_index


@contextmanager
def _memo_trajectories(vehicles: list[Any]) -> Iterator[None]:
    """Inside RegulatedRoad.enforce_road_rules every pair predicts both vehicles' constant-speed
    trajectories; no position, speed or route changes during the call, so each vehicle's is
    computed once (per ``times``) and reused: O(N) predictions instead of O(N^2)."""
    patched = []
    for v in vehicles:
        if not hasattr(v, "predict_trajectory_constant_speed"):
            continue
        original = v.predict_trajectory_constant_speed
        memo: list[tuple[Any, Any]] = []

        def predict(times: Any, original: Any = original, memo: list[tuple[Any, Any]] = memo) -> Any:
            for key, value in memo:
                if np.array_equal(key, times):
                    return value
            value = original(times)
            memo.append((np.array(times, copy=True), value))
            return value

        v.predict_trajectory_constant_speed = predict
        patched.append(v)
    try:
        yield
    finally:
        for v in patched:
            del v.predict_trajectory_constant_speed


def patch_road(road: Any, lane_memo: dict[tuple[int, Any], tuple[Any, float | None]] | None = None) -> None:
    """Replace ``act``, ``step``, ``neighbour_vehicles`` and the network's closest-lane search on
    this instance only. ``lane_memo``: shared by roads stepped in lockstep (sources/shared_rollout.py),
    which clears it before each act phase: a vehicle object on several roads is projected once."""
    from highway_env.road.regulation import RegulatedRoad
    from highway_env.road.road import Road
    from highway_env.vehicle.objects import Landmark

    patch_network(road.network)

    original_neighbours = road.neighbour_vehicles
    cache: dict[Any, tuple[Any, list[tuple[Any, float]]]] = {}
    acting = [False]

    offsets_memo: dict[Any, list[tuple[Any, float]]] = {}

    def search_lanes(lane_index: Any) -> list[tuple[Any, float]]:
        """The lane and (when searched) its connected lanes, with the offsets into the lane's frame."""
        hit = offsets_memo.get(lane_index)
        if hit is not None:
            return hit
        lane = road.network.get_lane(lane_index)
        lanes_offsets: list[tuple[Any, float]] = [(lane, 0.0)]
        if road.neighbour_vehicles_connected_lanes:
            _from, _to, _id = lane_index
            for next_lanes in road.network.graph.get(_to, {}).values():
                if _id < len(next_lanes):
                    lanes_offsets.append((next_lanes[_id], lane.length))
                elif next_lanes:
                    lanes_offsets.append((next_lanes[0], lane.length))
            for to_dict in road.network.graph.values():
                if _from in to_dict:
                    prev_lanes = to_dict[_from]
                    if _id < len(prev_lanes):
                        prev_lane = prev_lanes[_id]
                    elif prev_lanes:
                        prev_lane = prev_lanes[0]
                    else:
                        continue
                    lanes_offsets.append((prev_lane, -prev_lane.length))
        offsets_memo[lane_index] = lanes_offsets
        return lanes_offsets

    def lane_s(v: Any, lane_index: Any) -> float | None:
        """``v``'s longitudinal coordinate on the lane if Road.neighbour_vehicles would see it there."""
        for search_lane, offset in search_lanes(lane_index):
            s_v, lat_v = search_lane.local_coordinates(v.position)
            if search_lane.on_lane(v.position, s_v, lat_v, margin=1):
                return s_v + offset
        return None

    def lane_entries(lane_index: Any) -> tuple[Any, list[tuple[Any, float]]]:
        """Every vehicle on the lane (or its connected lanes) with its longitudinal coordinate."""
        hit = cache.get(lane_index)
        if hit is not None:
            return hit
        entries = []
        for v in road.vehicles + road.objects:
            if isinstance(v, Landmark):
                continue
            if lane_memo is None:
                s_v = lane_s(v, lane_index)
            else:
                key = (id(v), lane_index)
                hit = lane_memo.get(key)
                if hit is None:  # the object is kept in the value: its id cannot be reused meanwhile
                    hit = lane_memo[key] = (v, lane_s(v, lane_index))
                s_v = hit[1]
            if s_v is not None:
                entries.append((v, s_v))
        hit = cache[lane_index] = (road.network.get_lane(lane_index), entries)
        return hit

    def query(vehicle: Any, lane_index: Any) -> tuple[Any, Any, Any, Any, float]:
        """Road.neighbour_vehicles with the coordinates: front, s_front, rear, s_rear, the vehicle's s."""
        lane, entries = lane_entries(lane_index)
        s = lane.local_coordinates(vehicle.position)[0]
        s_front = s_rear = None
        v_front = v_rear = None
        # same scan order and tie rules as Road.neighbour_vehicles
        for v, s_v in entries:
            if v is vehicle:
                continue
            if s <= s_v and (s_front is None or s_v <= s_front):
                s_front, v_front = s_v, v
            if s_v < s and (s_rear is None or s_v > s_rear):
                s_rear, v_rear = s_v, v
        return v_front, s_front, v_rear, s_rear, s

    def neighbour_vehicles(vehicle: Any, lane_index: Any = None) -> tuple[Any, Any]:
        if not acting[0]:
            return original_neighbours(vehicle, lane_index)
        lane_index = lane_index or vehicle.lane_index
        if not lane_index:
            return None, None
        v_front, _, v_rear, _, _ = query(vehicle, lane_index)
        return v_front, v_rear

    def begin_act() -> None:
        cache.clear()
        acting[0] = True

    def end_act() -> None:
        acting[0] = False
        cache.clear()

    def act() -> None:
        begin_act()
        try:
            for vehicle in road.vehicles:
                vehicle.act()
        finally:
            end_act()

    def step(dt: float) -> None:
        for vehicle in road.vehicles:
            vehicle.step(dt)
        collide(dt)

    def collide(dt: float) -> None:
        vehicles = road.vehicles
        n = len(vehicles)
        vector = n >= VECTOR_FROM_N
        if vector:
            pos = np.array([v.position for v in vehicles], dtype=float)
            diag = np.array([v.diagonal for v in vehicles], dtype=float)
            reach = np.abs(np.array([v.speed for v in vehicles], dtype=float)) * dt
            dist = np.hypot(pos[:, None, 0] - pos[None, :, 0], pos[:, None, 1] - pos[None, :, 1])
            near = dist <= (diag[:, None] + diag[None, :]) / 2 + reach[:, None] + PAIR_SLACK_M
            near = np.triu(near, 1)
        for i, vehicle in enumerate(vehicles):  # the original pair order (impacts may overwrite)
            for j in np.flatnonzero(near[i]) if vector else range(i + 1, n):
                vehicle.handle_collisions(vehicles[j], dt)
            for other in road.objects:
                vehicle.handle_collisions(other, dt)

    def regulated_step(dt: float) -> None:
        # RegulatedRoad.step's own preamble (intersection: vehicles yield at priorities), then ours
        road.steps += 1
        if road.steps % int(1 / dt / road.REGULATION_FREQUENCY) == 0:
            with _memo_trajectories(road.vehicles):
                road.enforce_road_rules()
        step(dt)

    road.neighbour_vehicles = neighbour_vehicles
    # the pieces of act/step, for sources/shared_rollout.py (several roads stepped in lockstep)
    road.dc_begin_act, road.dc_end_act, road.dc_collide = begin_act, end_act, collide
    road.dc_query, road.dc_lane_s = query, lane_s
    # only where the class keeps highway-env's own act/step: a subclass may add rules we would skip
    if type(road).act is Road.act:
        road.act = act
    if type(road).step is Road.step:
        road.step = step
    elif type(road).step is RegulatedRoad.step:
        road.step = regulated_step
