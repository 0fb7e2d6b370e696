"""Ego-lane geometry from a Frame alone: lane-local coordinates, lane relations, gaps, paths.

highway-env's world is y-down (screen coordinates): for a direction (tx, ty) the LEFT unit vector is
(ty, -tx). Lane indices on a straight road grow to the right (LANE_LEFT = index - 1), so the lane
"from the left" is index + 1. Everything here reads only the Frame (works for recorded logs too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from drivechain.schema import Agent, Frame, FutureState, Lane
from drivechain.teacher import bands


def left_offset_m(tx: float, ty: float, dx: float, dy: float) -> float:
    """Signed offset of (dx, dy) to the LEFT of the unit direction (tx, ty), y-down world [m]."""
    return dx * ty - dy * tx


def parse_lane_id(lane_id: str | None) -> tuple[str, str, int] | None:
    """'from>to>index' -> (from, to, index); None when absent or malformed."""
    if not lane_id:
        return None
    parts = lane_id.split(">")
    if len(parts) != 3 or not parts[2].lstrip("-").isdigit():
        return None
    return parts[0], parts[1], int(parts[2])


def project(polyline: list[tuple[float, float]], x: float, y: float) -> tuple[float, float]:
    """(s along the polyline, d to its left) of a world point; ends extend straight [m]."""
    best: tuple[float, float, float] | None = None  # (distance^2, s, d)
    s_start = 0.0
    n = len(polyline)
    for i in range(n - 1):
        (ax, ay), (bx, by) = polyline[i], polyline[i + 1]
        seg = math.hypot(bx - ax, by - ay)
        if seg < 1e-9:
            continue
        tx, ty = (bx - ax) / seg, (by - ay) / seg
        u = (x - ax) * tx + (y - ay) * ty
        lo = -math.inf if i == 0 else 0.0
        hi = math.inf if i == n - 2 else seg
        uc = min(max(u, lo), hi)
        px, py = ax + uc * tx, ay + uc * ty
        dist2 = (x - px) ** 2 + (y - py) ** 2
        if best is None or dist2 < best[0]:
            best = (dist2, s_start + uc, left_offset_m(tx, ty, x - px, y - py))
        s_start += seg
    if best is None:
        raise ValueError("degenerate lane polyline")
    return best[1], best[2]


def max_turn_rad(polyline: list[tuple[float, float]]) -> float:
    """Largest heading difference between any two segments of a polyline [rad]."""
    heads = [
        math.atan2(b[1] - a[1], b[0] - a[0])
        for a, b in zip(polyline, polyline[1:])
        if math.hypot(b[0] - a[0], b[1] - a[1]) > 1e-9
    ]
    if not heads:
        return math.inf
    diffs = [abs(math.remainder(h - heads[0], math.tau)) for h in heads]
    return max(diffs)


@dataclass(frozen=True)
class LanePosition:
    """An agent seen from the ego lane: longitudinal offset, lane offset and its band."""

    agent: Agent
    ds_m: float  # centre longitudinal offset along the ego lane, + ahead
    d_left_m: float  # lateral offset of its centre from the ego lane centre line, + left
    lane_offset: int  # nearest lane: +1 left, 0 ego lane, -1 right, ...
    straddling: bool  # near a lane boundary: the neighbouring lane is accepted too
    alt_offset: int  # the other lane when straddling (== lane_offset otherwise)

    @property
    def gap_m(self) -> float:
        """Bumper-to-bumper longitudinal gap to the ego (negative if overlapping) [m]."""
        return abs(self.ds_m) - (self.agent.length_m + self._ego_len) / 2

    _ego_len: float = 5.0

    def offsets(self) -> set[int]:
        """Every lane offset this vehicle may be said to be in."""
        return {self.lane_offset, self.alt_offset}

    def ahead(self) -> bool:
        """Its centre is ahead of the ego's centre."""
        return self.ds_m > 0

    def alongside(self) -> bool:
        """Inside the ahead/behind band: both answers accepted."""
        return abs(self.ds_m) < bands.AHEAD_BAND_M


@dataclass(frozen=True)
class RoadView:
    """The ego's straight lane and its neighbours, in lane-local coordinates."""

    frame: Frame
    ego_lane: Lane
    width_m: float
    lane_count: int
    ego_index: int  # 0 = leftmost
    ego_s_m: float

    def lane_exists(self, offset: int) -> bool:
        """A lane at this offset (+ left) exists on the ego's road section."""
        idx = self.ego_index - offset
        return 0 <= idx < self.lane_count

    def locate(self, agent: Agent) -> LanePosition:
        """Where an agent is relative to the ego lane."""
        s, d = project(self.ego_lane.polyline_m, agent.x_m, agent.y_m)
        return self._position(agent, s, d)

    def locate_future(self, agent: Agent, state: FutureState) -> LanePosition:
        """Where an agent's future state is relative to the ego lane (which the ego keeps)."""
        s, d = project(self.ego_lane.polyline_m, state.x_m, state.y_m)
        return self._position(agent, s, d)

    def _position(self, agent: Agent, s: float, d: float) -> LanePosition:
        k = d / self.width_m
        nearest = round(k)
        frac = k - math.floor(k)  # position inside the lane-width cell [0, 1)
        near_boundary = abs(frac - 0.5) < bands.LANE_STRADDLE_BAND
        alt = (math.floor(k) if nearest != math.floor(k) else math.floor(k) + 1) if near_boundary else nearest
        return LanePosition(agent, s - self.ego_s_m, d, int(nearest), near_boundary, int(alt),
                            _ego_len=self.frame.ego.length_m)

    def visible_positions(self) -> list[LanePosition]:
        """Every visible agent located, ordered by id (deterministic)."""
        return [self.locate(a) for a in sorted(self.frame.agents, key=lambda a: a.id) if a.visible]


def road_view(frame: Frame) -> RoadView | None:
    """The ego's lane view on a straight multi-lane road; None where lane families do not apply."""
    if frame.scenario not in bands.LANE_FAMILY_SCENARIOS:
        return None
    key = parse_lane_id(frame.ego.lane_id)
    if key is None:
        return None
    lanes = {lane.id: lane for lane in frame.lanes}
    ego_lane = lanes.get(frame.ego.lane_id or "")
    if ego_lane is None or len(ego_lane.polyline_m) < 2:
        return None
    if max_turn_rad(ego_lane.polyline_m) > bands.STRAIGHT_LANE_MAX_TURN_RAD:
        return None
    prefix = f"{key[0]}>{key[1]}>"
    count = sum(1 for lane_id in lanes if lane_id.startswith(prefix))
    s, _ = project(ego_lane.polyline_m, frame.ego.x_m, frame.ego.y_m)
    return RoadView(frame, ego_lane, ego_lane.width_m, count, key[2], s)


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Euclidean distance [m]."""
    return math.hypot(a[0] - b[0], a[1] - b[1])


def densify(points: list[tuple[float, float, float]], step_m: float) -> list[tuple[float, float, float]]:
    """Resample (x, y, t) samples at about ``step_m`` spacing, interpolating time linearly."""
    out: list[tuple[float, float, float]] = []
    for (x0, y0, t0), (x1, y1, t1) in zip(points, points[1:]):
        n = max(1, math.ceil(math.hypot(x1 - x0, y1 - y0) / step_m))
        out += [(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n, t0 + (t1 - t0) * i / n) for i in range(n)]
    if points:
        out.append(points[-1])
    return out


@dataclass(frozen=True)
class Crossing:
    """Where two future paths meet: the point, each one's arrival time and the crossing angle."""

    x_m: float
    y_m: float
    t_ego_s: float
    t_other_s: float
    angle_rad: float
    gap_m: float
    closest_m: float = 0.0  # the closest the paths come within this contact [m]


def _heading_at(path: list[tuple[float, float, float]], i: int) -> float:
    j0, j1 = max(0, i - 1), min(len(path) - 1, i + 1)
    return math.atan2(path[j1][1] - path[j0][1], path[j1][0] - path[j0][0])


STILL_M = 0.05
"""A path moving less than this around a point has no direction there: the body heading is used."""


def first_crossing(
    ego_path: list[tuple[float, float, float]],
    other_path: list[tuple[float, float, float]],
    radius_m: float = bands.PATH_CROSS_RADIUS_M,
    other_heading_rad: float | None = None,
) -> Crossing | None:
    """The earliest point (in the ego's time) where the paths (x, y, t) come within ``radius_m``.

    The point and times are those of the first contact; the angle is taken where the paths come
    closest within that contact (a graze at the radius's edge says little about how they meet: an
    oncoming car passed before a left turn across its lane, a merge first touched mid-turn). Where
    the other vehicle stands still its path has no direction: ``other_heading_rad`` (its body) is used.
    """
    ego = densify(ego_path, bands.PATH_DENSIFY_M)
    other = densify(other_path, bands.PATH_DENSIFY_M)
    if len(ego) < 2 or len(other) < 2:
        return None

    def nearest(i: int) -> tuple[int, float]:
        ex, ey, _ = ego[i]
        j = min(range(len(other)), key=lambda k: math.hypot(other[k][0] - ex, other[k][1] - ey))
        return j, math.hypot(other[j][0] - ex, other[j][1] - ey)

    for i, (ex, ey, et) in enumerate(ego):
        j, gap = nearest(i)
        if gap >= radius_m:
            continue
        k, jk, closest = i, j, gap
        for m in range(i + 1, len(ego)):  # the rest of this contact: where do the paths come closest?
            jm, gm = nearest(m)
            if gm >= radius_m:
                break
            if gm < closest:
                k, jk, closest = m, jm, gm
        other_heading = _heading_at(other, jk)
        a, b = other[max(0, jk - 1)], other[min(len(other) - 1, jk + 1)]
        if other_heading_rad is not None and math.hypot(b[0] - a[0], b[1] - a[1]) < STILL_M:
            other_heading = other_heading_rad
        angle = abs(math.remainder(_heading_at(ego, k) - other_heading, math.tau))
        # fold: paths overlapping head-on count as parallel (angle near 0), not crossing
        return Crossing(ex, ey, et, other[j][2], min(angle, math.pi - angle), gap, closest)
    return None


def _edge(lane_id: str) -> str:
    return lane_id.rsplit(">", 1)[0]


def _next_lane(lanes: dict[str, Lane], current: str, edge: str) -> str | None:
    """highway-env's next_lane rule: the same index if the next road has as many lanes, else the
    next road's lane starting closest to where the current lane ends."""
    here = [lid for lid in lanes if _edge(lid) == _edge(current)]
    there = sorted(lid for lid in lanes if _edge(lid) == edge)
    if not there:
        return None
    same = f"{edge}>{current.rsplit('>', 1)[1]}"
    if len(here) == len(there) and same in lanes:
        return same
    end = lanes[current].polyline_m[-1]
    return min(there, key=lambda lid: distance_m(lanes[lid].polyline_m[0], end))


def route_ahead(frame: Frame, lane_id: str | None, x_m: float, y_m: float, length_m: float,
                step_m: float = bands.PATH_DENSIFY_M) -> list[tuple[float, float, float]]:
    """Points (x, y, s) along the ego's route from (x, y) for ``length_m``: its lane, then the next route lanes.

    Reads Frame.lanes and Frame.meta['ego_route'] only. A vehicle's lane id is the geometrically
    closest lane (near a junction it can be a lane the route never uses), so the start is the route
    lane nearest to (x, y); the route's later edges keep the lane index where it exists (highway-env's
    next_lane does the same), else index 0. When no route lane is near (a stopped ego at a ring entry,
    whose route already starts on the ring), the path is its own lane, its target lane, then the
    route. Stops early where the frame's lanes end.
    """
    lanes = {lane.id: lane for lane in frame.lanes if len(lane.polyline_m) >= 2}
    edges = [_edge(r) for r in (frame.meta.get("ego_route") or []) if r]
    on_route = [lid for lid in lanes if _edge(lid) in edges]
    if on_route:
        def off(lid: str) -> float:
            pts = lanes[lid].polyline_m
            s, d = project(pts, x_m, y_m)
            length = sum(math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(pts, pts[1:]))
            return abs(d) + max(0.0, -s, s - length)  # beyond the ends counts as off the lane
        start = min(sorted(on_route), key=off)
        if off(start) > 3.0:
            on_route = []
    if on_route:
        chain, rest = [start], edges[edges.index(_edge(start)) + 1:]
    elif lane_id in lanes:
        # off the remaining route: highway-env drops a lane from the route as soon as the ego's target
        # moves on, so a vehicle stopped at the end of a ring entry still sits on the entry lane while
        # its route starts on the ring. Its path is its own lane, then the route from there.
        chain, rest = [lane_id], edges
        target = frame.meta.get("ego_target_lane_id")
        if target in lanes and _edge(target) in edges and _edge(target) != _edge(lane_id):
            chain.append(target)
            rest = edges[edges.index(_edge(target)) + 1:]
    else:
        return []
    for e in rest:
        nxt = _next_lane(lanes, chain[-1], e)
        if nxt is None:
            break
        chain.append(nxt)
    out: list[tuple[float, float, float]] = []
    travelled = 0.0
    for k, lid in enumerate(chain):
        lane = lanes.get(lid)
        if lane is None:
            break
        pts = lane.polyline_m
        s0 = project(pts, x_m, y_m)[0] if k == 0 else 0.0
        walked = 0.0
        for (ax, ay), (bx, by) in zip(pts, pts[1:]):
            seg = math.hypot(bx - ax, by - ay)
            u = max(0.0, s0 - walked)
            while u < seg and travelled < length_m:
                out.append((ax + (bx - ax) * u / seg, ay + (by - ay) * u / seg, travelled))
                u += step_m
                travelled += step_m
            walked += seg
            if travelled >= length_m:
                return out
    return out
