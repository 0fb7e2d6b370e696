"""Counterfactual edits of a highway-env state: change one vehicle, keep everything else (docs/probes.md).

A state is rebuilt by replay (``replay``: reset(seed) + the recorded actions, checked against the
recorded frame), then ``apply_edit`` changes one vehicle of a fork in place:
- ``remove``: the vehicle leaves the road;
- ``shift_lane``: it moves to a neighbouring lane at the same longitudinal position (the side
  with more room), keeping its speed;
- ``speed``: its speed changes by ``SPEED_DELTA_MPS`` (slower if it is faster than 10 m/s, else faster)
  and its driver keeps the new speed;
- ``brake``: its driver brakes to a standstill (target speed 0: IDM brakes at its maximum).
Ids are stored on the vehicles, so every untouched vehicle keeps its id and its mark in the image.
"""

from __future__ import annotations

from typing import Any

from drivechain.errors import ConfigError

EDITS = ("remove", "shift_lane", "speed", "brake")
SPEED_DELTA_MPS = 8.0
REPLAY_TOLERANCE_M = 1e-3  # a replayed state must match the recorded positions this closely
LANE_ROOM_M = 8.0  # a shifted vehicle needs this much free length around it in the new lane [m]


class EditError(ValueError):
    """The edit cannot be applied to this vehicle (no neighbouring lane, unknown id)."""


def vehicle(env: Any, vid: int) -> Any:
    """The road vehicle with drivechain id ``vid``."""
    for v in env.road.vehicles:
        if getattr(v, "dc_id", None) == vid:
            return v
    raise EditError(f"no vehicle {vid} on the road")


def replay(source: Any, seed: int, episode: int, actions: list[str]) -> None:
    """Reset ``source`` to the seed and step the recorded actions (the state of the next frame)."""
    source.reset(seed, episode)
    for action in actions:
        source.step(action)


def replay_error_m(frame_a: Any, frame_b: Any) -> float:
    """Largest position difference [m] between two frames' ego and agents (inf if ids differ)."""
    a = {x.id: x for x in [frame_a.ego, *frame_a.agents]}
    b = {x.id: x for x in [frame_b.ego, *frame_b.agents]}
    if set(a) != set(b):
        return float("inf")
    return max(max(abs(a[i].x_m - b[i].x_m), abs(a[i].y_m - b[i].y_m)) for i in a)


def _free_at(env: Any, lane_index: tuple, s_m: float, skip: Any) -> float:
    """Free length [m] around ``s_m`` in a lane (distance to the nearest other vehicle on it)."""
    lane = env.road.network.get_lane(lane_index)
    gaps = [abs(lane.local_coordinates(v.position)[0] - s_m) for v in env.road.vehicles
            if v is not skip and v.lane_index == lane_index]
    return min(gaps, default=1e9)


def shift_target(env: Any, v: Any) -> tuple:
    """The neighbouring lane ``shift_lane`` moves ``v`` to: the side with more room."""
    a, b, i = v.lane_index
    lanes = env.road.network.graph[a][b]
    s_m = v.lane.local_coordinates(v.position)[0]
    options = [(a, b, j) for j in (i - 1, i + 1) if 0 <= j < len(lanes)
               and not getattr(lanes[j], "forbidden", False)]
    if not options:
        raise EditError(f"vehicle {v.dc_id} has no neighbouring lane")
    best = max(options, key=lambda idx: (_free_at(env, idx, s_m, v), -idx[2]))
    if _free_at(env, best, s_m, v) < LANE_ROOM_M:
        raise EditError(f"no room for vehicle {v.dc_id} in a neighbouring lane")
    return best


def apply_edit(env: Any, vid: int, edit: str) -> dict[str, Any]:
    """Apply one edit to vehicle ``vid`` in place; returns what was changed (for the probe record)."""
    if edit not in EDITS:
        raise ConfigError(f"unknown edit '{edit}'; choose from: {', '.join(EDITS)}")
    if vid == 0:
        raise EditError("the ego is never edited")
    v = vehicle(env, vid)
    if edit == "remove":
        env.road.vehicles.remove(v)
        return {"edit": edit, "agent": vid}
    if edit == "shift_lane":
        target = shift_target(env, v)
        lane = env.road.network.get_lane(target)
        s_m = v.lane.local_coordinates(v.position)[0]
        v.position = lane.position(s_m, 0.0)
        v.heading = lane.heading_at(s_m)
        v.lane_index, v.lane, v.target_lane_index = target, lane, target
        return {"edit": edit, "agent": vid, "to_lane": "{}>{}>{}".format(*target)}
    if edit == "speed":
        new = v.speed - SPEED_DELTA_MPS if v.speed > 10.0 else v.speed + SPEED_DELTA_MPS
        v.speed = v.target_speed = float(new)
        if hasattr(v, "dc_cruise_mps"):  # a scripted vehicle keeps its own cruise speed
            v.dc_cruise_mps = float(new)
        return {"edit": edit, "agent": vid, "speed_mps": round(float(new), 3)}
    # brake: highway-env's IDM with target speed 0 brakes at ACC_MAX until it stops
    v.target_speed = 0.0
    if hasattr(v, "dc_cruise_mps"):
        v.dc_cruise_mps = 0.0
    return {"edit": edit, "agent": vid}


def edited_fork(source: Any, vid: int, edit: str) -> tuple[Any, dict[str, Any]]:
    """A fork of ``source`` with the edit applied (its look-ahead cache cleared)."""
    fork = source.fork()
    info = apply_edit(fork.env, vid, edit)
    fork._rollouts = {}  # the cached look-aheads describe the unedited world
    return fork, info


def render_edited(source: Any, fork: Any) -> Any:
    """Render ``fork`` through ``source``'s viewer (a fork has none; a new one per probe is slow)."""
    viewer = getattr(source.env, "viewer", None)
    if viewer is None:
        return fork.render()
    fork.env.viewer, viewer.env = viewer, fork.env
    try:
        return fork.render()
    finally:
        viewer.env, fork.env.viewer = source.env, None
