"""Non-reactive log replay: is a candidate ego manoeuvre safe against the other agents' recorded futures?

A log cannot be forked, so the safety of an ego manoeuvre is checked kinematically: the ego follows
its reference path (the path it really drove, extended straight) with the manoeuvre's speed and
lateral-offset profile, and every other agent follows its *recorded* future (linearly interpolated
between samples, extrapolated at its last velocity past its last sample). Agents do not react to
the replayed ego: that is the limit of every log replay, stated wherever its labels are used.

Everything here is in the ego frame at the frame's instant: x forward, y LEFT, metres, right-handed.

Safe = over the horizon the ego's rectangle, grown by ``MARGIN_LON_M`` / ``MARGIN_LAT_M``, never
overlaps another agent's rectangle, and at the horizon the ego can still brake to a stop at
``TAIL_DECEL_MPS2`` without overlapping anything (others continue at their last velocity).
A conflict that appears only when the margins grow by ``BAND_M`` makes the check ambiguous.
An agent that starts behind the ego's rear bumper is not counted for keep / slow down / stop (a
recorded follower could not see the replayed ego brake), only for lane changes, where the ego
moves in front of it (the at-fault rule of open-loop log benchmarks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MANOEUVRES = ("KEEP", "SLOW_DOWN", "STOP", "LANE_LEFT", "LANE_RIGHT")
DESCRIPTIONS = {
    "KEEP": "keep the lane and the current speed",
    "SLOW_DOWN": "slow down gently",
    "STOP": "brake to a stop",
    "LANE_LEFT": "change to the left lane",
    "LANE_RIGHT": "change to the right lane",
}
SLOW_DECEL_MPS2 = 2.0
"""SLOW_DOWN brakes at this rate, floored at zero speed [m/s^2]."""
STOP_DECEL_MPS2 = 4.0
"""STOP brakes at this rate (Bench2Drive's comfort bound is -4.05 m/s^2) [m/s^2]."""
TAIL_DECEL_MPS2 = 6.0
"""After the horizon the ego must be able to stop at this rate without a collision [m/s^2]."""
LANE_CHANGE_S = 2.5
"""A lane change moves one lane width sideways over this time (smoothstep profile) [s]."""
LANE_WIDTH_M = 3.5
"""Default lateral offset of a lane change [m]."""
MARGIN_LON_M = 1.0
"""The ego's rectangle grows by this in front and behind for the overlap test [m]."""
MARGIN_LAT_M = 0.3
"""The ego's rectangle grows by this on each side for the overlap test [m]."""
BAND_M = 0.5
"""A conflict that appears only with margins grown by this makes the check ambiguous [m]."""
DT_S = 0.1
"""Time step of the replay [s]."""


@dataclass(frozen=True)
class BoxState:
    """An oriented rectangle at a time: ego frame [m], heading [rad], full length and width [m]."""

    t_s: float
    x_m: float
    y_m: float
    heading_rad: float
    length_m: float
    width_m: float


@dataclass(frozen=True)
class ReplayCheck:
    """The verdict on one manoeuvre."""

    action: str
    safe: bool
    ambiguous: bool
    conflict_id: int | None = None
    t_conflict_s: float | None = None
    ego_final_speed_mps: float = 0.0
    reason: str = ""


@dataclass
class Track:
    """One agent's recorded states (t = 0 first), interpolated linearly, extrapolated at its last velocity."""

    agent_id: int
    states: list[BoxState] = field(default_factory=list)

    def at(self, t_s: float) -> BoxState:
        """The agent's rectangle at time t [s]."""
        s = self.states
        if len(s) == 1:
            return BoxState(t_s, s[0].x_m, s[0].y_m, s[0].heading_rad, s[0].length_m, s[0].width_m)
        for a, b in zip(s, s[1:]):
            if a.t_s <= t_s <= b.t_s:
                return _lerp(a, b, (t_s - a.t_s) / max(b.t_s - a.t_s, 1e-9), t_s)
        a, b = (s[0], s[1]) if t_s < s[0].t_s else (s[-2], s[-1])
        return _lerp(a, b, (t_s - a.t_s) / max(b.t_s - a.t_s, 1e-9), t_s)


def _lerp(a: BoxState, b: BoxState, u: float, t_s: float) -> BoxState:
    dh = math.remainder(b.heading_rad - a.heading_rad, math.tau)
    return BoxState(t_s, a.x_m + u * (b.x_m - a.x_m), a.y_m + u * (b.y_m - a.y_m), a.heading_rad + u * dh,
                    a.length_m, a.width_m)


def speed_profile(action: str, v0_mps: float, t_s: float) -> tuple[float, float]:
    """(distance travelled [m], speed [m/s]) at time t under the manoeuvre's speed profile."""
    decel = {"SLOW_DOWN": SLOW_DECEL_MPS2, "STOP": STOP_DECEL_MPS2}.get(action, 0.0)
    v0 = max(v0_mps, 0.0)
    if decel == 0.0:
        return v0 * t_s, v0
    t_stop = v0 / decel
    if t_s >= t_stop:
        return v0 * t_stop / 2, 0.0
    return v0 * t_s - decel * t_s**2 / 2, v0 - decel * t_s


def lateral_offset(action: str, t_s: float, lane_width_m: float) -> float:
    """Sideways offset (+ left) [m] of a lane change at time t (smoothstep over LANE_CHANGE_S)."""
    sign = {"LANE_LEFT": 1.0, "LANE_RIGHT": -1.0}.get(action, 0.0)
    u = min(max(t_s / LANE_CHANGE_S, 0.0), 1.0)
    return sign * lane_width_m * u * u * (3 - 2 * u)


class Path:
    """The ego's reference path (ego frame polyline from the origin), extended straight past its end."""

    def __init__(self, points: list[tuple[float, float]]):
        pts = [(0.0, 0.0)] + [p for p in points if math.hypot(*p) > 1e-6]
        keep = [pts[0]]
        for p in pts[1:]:
            if math.hypot(p[0] - keep[-1][0], p[1] - keep[-1][1]) > 0.05:
                keep.append(p)
        if len(keep) < 2:
            keep.append((1.0, 0.0))  # a standing ego: straight ahead along its heading
        self.pts = np.array(keep)
        seg = np.diff(self.pts, axis=0)
        self.seg_len = np.hypot(seg[:, 0], seg[:, 1])
        self.cum = np.concatenate([[0.0], np.cumsum(self.seg_len)])
        self.dirs = seg / self.seg_len[:, None]

    def pose(self, s_m: float) -> tuple[float, float, float]:
        """(x, y, heading) at arc length s [m]; straight beyond the ends."""
        i = int(np.clip(np.searchsorted(self.cum, s_m, side="right") - 1, 0, len(self.seg_len) - 1))
        d = self.dirs[i]
        u = s_m - self.cum[i]
        x, y = self.pts[i] + u * d
        return float(x), float(y), math.atan2(d[1], d[0])


def ego_state(path: Path, action: str, v0_mps: float, t_s: float, length_m: float, width_m: float,
              lane_width_m: float = LANE_WIDTH_M) -> tuple[BoxState, float]:
    """The ego's rectangle at time t under a manoeuvre, and its speed [m/s]."""
    s, v = speed_profile(action, v0_mps, t_s)
    x, y, h = path.pose(s)
    d = lateral_offset(action, t_s, lane_width_m)
    return BoxState(t_s, x - d * math.sin(h), y + d * math.cos(h), h, length_m, width_m), v


def _corners(b: BoxState, grow_lon: float = 0.0, grow_lat: float = 0.0) -> np.ndarray:
    c, s = math.cos(b.heading_rad), math.sin(b.heading_rad)
    hl, hw = b.length_m / 2 + grow_lon, b.width_m / 2 + grow_lat
    return np.array([(b.x_m + dl * c - dw * s, b.y_m + dl * s + dw * c)
                     for dl, dw in ((hl, hw), (hl, -hw), (-hl, -hw), (-hl, hw))])


def overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Do two convex polygons (4 x 2 corners) overlap (separating-axis test)?"""
    for poly in (a, b):
        for i in range(len(poly)):
            e = poly[(i + 1) % len(poly)] - poly[i]
            axis = np.array([-e[1], e[0]])
            pa, pb = a @ axis, b @ axis
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


def _follower(track: Track, ego_length_m: float) -> bool:
    """The agent starts with its centre behind the ego's rear bumper (the ego is at the origin, heading +x)."""
    return track.at(0.0).x_m < -ego_length_m / 2


def check(action: str, path: Path, v0_mps: float, tracks: list[Track], horizon_s: float,
          ego_length_m: float, ego_width_m: float, lane_width_m: float = LANE_WIDTH_M) -> ReplayCheck:
    """Replay one manoeuvre over the horizon plus the braking tail against the recorded tracks."""
    if action not in MANOEUVRES:
        raise ValueError(f"unknown manoeuvre {action!r}; one of {MANOEUVRES}")
    lane_change = action in ("LANE_LEFT", "LANE_RIGHT")
    times = [round(k * DT_S, 6) for k in range(1, int(round(horizon_s / DT_S)) + 1)]
    _, v_end = speed_profile(action, v0_mps, horizon_s)
    s_end, _ = speed_profile(action, v0_mps, horizon_s)
    t_tail = v_end / TAIL_DECEL_MPS2
    times += [round(horizon_s + k * DT_S, 6) for k in range(1, int(math.ceil(t_tail / DT_S)) + 1)]
    near_miss: tuple[int, float] | None = None
    if not lane_change:
        tracks = [tr for tr in tracks if not _follower(tr, ego_length_m)]
    for t in times:
        if t <= horizon_s + 1e-9:
            ego, _ = ego_state(path, action, v0_mps, t, ego_length_m, ego_width_m, lane_width_m)
        else:  # braking tail on the path, at the lateral offset reached
            dt = min(t - horizon_s, t_tail)
            x, y, h = path.pose(s_end + v_end * dt - TAIL_DECEL_MPS2 * dt * dt / 2)
            d = lateral_offset(action, t, lane_width_m)
            ego = BoxState(t, x - d * math.sin(h), y + d * math.cos(h), h, ego_length_m, ego_width_m)
        tight = _corners(ego, MARGIN_LON_M, MARGIN_LAT_M)
        wide = _corners(ego, MARGIN_LON_M + BAND_M, MARGIN_LAT_M + BAND_M)
        ego_reach = math.hypot(ego_length_m / 2 + MARGIN_LON_M + BAND_M, ego_width_m / 2 + MARGIN_LAT_M + BAND_M)
        for track in tracks:
            other = track.at(t)
            if math.hypot(other.x_m - ego.x_m, other.y_m - ego.y_m) > ego_reach + math.hypot(other.length_m, other.width_m) / 2:
                continue  # the circles around both rectangles do not touch: no overlap possible
            poly = _corners(other)
            if overlap(tight, poly):
                when = "after the horizon, while braking" if t > horizon_s + 1e-9 else f"at {t:.1f} s"
                return ReplayCheck(action, False, False, track.agent_id, round(t, 2), round(v_end, 2),
                                   f"the replayed ego meets agent {track.agent_id} {when}")
            if near_miss is None and overlap(wide, poly):
                near_miss = (track.agent_id, t)
    if near_miss is not None:
        return ReplayCheck(action, True, True, near_miss[0], round(near_miss[1], 2), round(v_end, 2),
                           f"it passes within {BAND_M:g} m of the margin of agent {near_miss[0]} "
                           f"at {near_miss[1]:.1f} s")
    return ReplayCheck(action, True, False, None, None, round(v_end, 2), "no agent comes inside the margins")


def _point_segment_m(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    u = float(np.clip(np.dot(p - a, ab) / max(float(np.dot(ab, ab)), 1e-12), 0.0, 1.0))
    return float(np.hypot(*(a + u * ab - p)))


def gap_m(a: np.ndarray, b: np.ndarray) -> float:
    """Distance between two convex polygons (4 x 2 corners) [m]; 0 when they overlap."""
    if overlap(a, b):
        return 0.0
    best = math.inf
    for poly, other in ((a, b), (b, a)):
        for p in poly:
            for i in range(len(other)):
                best = min(best, _point_segment_m(p, other[i], other[(i + 1) % len(other)]))
    return best


def closest_approach(action: str, path: Path, v0_mps: float, track: Track, horizon_s: float,
                     ego_length_m: float, ego_width_m: float, lane_width_m: float = LANE_WIDTH_M) -> tuple[float, float]:
    """(smallest box-to-box gap [m], its time [s]) between the replayed ego and one recorded agent over H."""
    best = (math.inf, 0.0)
    for k in range(0, int(round(horizon_s / DT_S)) + 1):
        t = round(k * DT_S, 6)
        ego, _ = ego_state(path, action, v0_mps, t, ego_length_m, ego_width_m, lane_width_m)
        other = track.at(t)
        centre = math.hypot(other.x_m - ego.x_m, other.y_m - ego.y_m)
        if centre - (math.hypot(ego_length_m, ego_width_m) + math.hypot(other.length_m, other.width_m)) / 2 >= best[0]:
            continue  # cannot beat the best gap so far
        g = gap_m(_corners(ego), _corners(other))
        if g < best[0]:
            best = (g, t)
    return best


def check_all(actions: list[str], path: Path, v0_mps: float, tracks: list[Track], horizon_s: float,
              ego_length_m: float, ego_width_m: float, lane_width_m: float = LANE_WIDTH_M) -> dict[str, ReplayCheck]:
    """Replay each manoeuvre; action -> verdict."""
    return {a: check(a, path, v0_mps, tracks, horizon_s, ego_length_m, ego_width_m, lane_width_m) for a in actions}


def to_ego(x_m: float, y_m: float, heading_rad: float, ego_x_m: float, ego_y_m: float, ego_heading_rad: float,
           left_handed: bool = False) -> tuple[float, float, float]:
    """A world pose -> the ego frame (x forward, y left). ``left_handed``: world y points right of x (CARLA)."""
    dx, dy = x_m - ego_x_m, y_m - ego_y_m
    c, s = math.cos(ego_heading_rad), math.sin(ego_heading_rad)
    fwd, side = dx * c + dy * s, -dx * s + dy * c
    rel_h = math.remainder(heading_rad - ego_heading_rad, math.tau)
    if left_handed:  # side is measured to the right there: flip it and the heading's sense
        return fwd, -side, -rel_h
    return fwd, side, rel_h
