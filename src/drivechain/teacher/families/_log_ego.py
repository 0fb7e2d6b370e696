"""What the recorded ego did next (Frame.meta['ego_future'] and ['ego_path']): the expert's manoeuvre,
its lane change and its turn, with the thresholds the planning and behavior families of logs use.
"""

from __future__ import annotations

import math

from drivechain.schema import Frame
from drivechain.teacher.families import _log as L
from drivechain.teacher.families.behavior import DV_MPS, STOP_MPS

TURN_RAD = math.radians(30.0)
"""The ego's heading change along its path above this is a turn."""
TURN_BAND_RAD = math.radians(10.0)
"""Heading changes within TURN_RAD +- this accept the turn and 'straight'."""
TURN_PAST_M = 15.0
"""The turn is judged only when the recorded path reaches this far past the route's next waypoint [m]."""


def ego_future(frame: Frame, horizon_s: float) -> list[dict]:
    """The ego's recorded states up to H (0.5 s steps); empty when the clip ends before H."""
    fut = [s for s in frame.meta.get("ego_future", []) if s["t_s"] <= horizon_s + 1e-9]
    return fut if fut and abs(fut[-1]["t_s"] - horizon_s) < 1e-6 else []


def lane_change(frame: Frame, horizon_s: float) -> tuple[str | None, bool]:
    """('LANE_LEFT' / 'LANE_RIGHT' / None for keep, unsure) from the ego's lane ids over H; unknown road -> (None, True)."""
    fut = ego_future(frame, horizon_s)
    now = L.lane_ids(frame.ego.lane_id)
    if not fut or now is None:
        return None, True
    end = L.lane_ids(fut[-1].get("lane_id"))
    before = L.lane_ids(fut[-2].get("lane_id")) if len(fut) > 1 else now
    if end is None or end[0] != now[0] or end[1] * now[1] <= 0:
        return None, True  # another road (a junction) or the other direction: not a lane change we can name
    if end[1] == now[1]:
        return None, False
    move = "LANE_LEFT" if abs(end[1]) < abs(now[1]) else "LANE_RIGHT"
    return move, before != end  # crossed the line only in the last half second: unsure


def expert_manoeuvre(frame: Frame, horizon_s: float) -> str | None:
    """The recorded expert's manoeuvre over H; None when the clip ends before H or the ego clearly speeds up."""
    fut = ego_future(frame, horizon_s)
    if not fut:
        return None
    move, _ = lane_change(frame, horizon_s)
    if move is not None:
        return move
    v0, v1 = frame.ego.speed_mps, fut[-1]["speed_mps"]
    if v1 < STOP_MPS:
        return "STOP"
    if v1 - v0 < -DV_MPS or (frame.meta.get("controls") or {}).get("should_brake"):
        return "SLOW_DOWN"
    if v1 - v0 > DV_MPS:
        return None  # a clear speed-up is none of the manoeuvres (KEEP holds the speed): no expert vote
    return "KEEP"


def turn(frame: Frame) -> tuple[int, set[int], float] | None:
    """(preferred, acceptable) indices into ['turn left', 'go straight', 'turn right'] and the heading change [rad]."""
    path = frame.meta.get("driven_path") or []
    near = frame.meta.get("near_command_rel_m")
    if len(path) < 3 or not near:
        return None
    length = sum(math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip([[0.0, 0.0]] + path, path))
    if length < math.hypot(*near) + TURN_PAST_M:
        return None
    (x0, y0), (x1, y1) = path[-3], path[-1]
    dh = math.atan2(y1 - y0, x1 - x0)  # ego frame, y left: positive = left
    pref = 0 if dh > TURN_RAD else (2 if dh < -TURN_RAD else 1)
    ok = {pref}
    if abs(abs(dh) - TURN_RAD) <= TURN_BAND_RAD:
        ok |= {1, 0 if dh > 0 else 2}
    return pref, ok, dh
