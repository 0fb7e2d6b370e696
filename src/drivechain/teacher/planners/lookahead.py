"""Look-ahead safety planner: each real action is forward-simulated over H s and checked with RSS.

The rollout (docs/planning.md "Safety rule"): the action at the first decision step (1 s), then the
ego drives like highway-env's own IDM vehicles longitudinally (ego_idm rollouts), keeping its
steering and route. An action is UNSAFE when, in its rollout:
- the ego collides or leaves the road at any physics step, or
- from t = RESPONSE_S (RSS's response time ρ) on, the ego is in an RSS dangerous situation it is
  responsible for (teacher/rss.py): a vehicle is closer than the RSS lateral distance (or shares the
  ego's lane) AND closer than the RSS longitudinal distance. The ego is responsible for vehicles
  ahead of it, and for vehicles behind it only in a lane it moves into (a lane change), never for a
  vehicle that was already following it in its own lane.
Crossing traffic (heading more than ALIGNED_RAD off the ego's) is in lateral conflict when its
footprint overlaps the ego's path laterally with less than LAT_CLEAR_M to spare; its speed along the
ego's heading is the front speed. The margin of an action is min(gap - RSS distance) [m].
Preferred: the safe action with the most progress (distance driven over H), rounded to
PROGRESS_TIE_M; ties broken by vote.ACTION_ORDER.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from drivechain.schema import Agent
from drivechain.teacher import rss
from drivechain.teacher.planners.vote import PlannerResult, order_key, real_actions

if TYPE_CHECKING:
    from drivechain.sources.base import Rollout
    from drivechain.teacher.context import TeacherContext

NAME = "lookahead"
MIN_GAP_M = 2.0  # plan.danger's risk (not plan.safe): the smallest gap counted as keeping distance
HEADWAY_S = 0.5  # plan.danger's risk (not plan.safe): the time headway counted as keeping distance
LAT_CLEAR_M = 0.5
ALIGNED_RAD = 0.5  # a vehicle heading within this of the ego's drives alongside/ahead (RSS lateral rule)
MARGIN_FROM_S = rss.RESPONSE_S  # distances count from the response time on; collisions from t = 0
PROGRESS_TIE_M = 1.0
SAFE_BAND_M = 1.0  # |margin| below this: plan.safe.<A> accepts both answers (not for collisions)
LANE_CHANGES = ("LANE_LEFT", "LANE_RIGHT")
DECISION_S = 1.0  # one decision step (1 Hz policy): the action itself acts this long, then the ego follows IDM


@dataclass
class PathGap:
    """One vehicle in the ego's path at one instant."""

    agent_id: int
    t_s: float
    gap_m: float
    required_m: float
    ahead: bool

    @property
    def margin_m(self) -> float:
        """gap - required [m]; negative breaks the margin."""
        return self.gap_m - self.required_m


@dataclass
class ActionCheck:
    """The look-ahead verdict for one action."""

    action: str
    safe: bool
    crashed: bool
    crashed_with: int | None
    off_road: bool
    margin_m: float | None  # None: no vehicle in RSS lateral conflict after MARGIN_FROM_S
    critical_id: int | None
    critical_t_s: float | None
    progress_m: float
    final_speed_mps: float
    speed_after_action_mps: float | None = None  # at the end of the action's decision step (DECISION_S)
    gap_m: float | None = None  # the critical vehicle's longitudinal gap [m]
    required_m: float | None = None  # the RSS longitudinal distance there [m]
    critical_ahead: bool | None = None
    rear_speed_mps: float | None = None  # the RSS pair's speeds along the ego's heading at critical_t_s
    front_speed_mps: float | None = None

    def to_meta(self) -> dict[str, Any]:
        """JSON-ready fields, distances rounded to mm."""
        out = asdict(self)
        for key in ("margin_m", "progress_m", "final_speed_mps", "speed_after_action_mps", "gap_m", "required_m",
                    "rear_speed_mps", "front_speed_mps"):
            if out[key] is not None:
                out[key] = round(out[key], 3)
        return out


def _along(agent: Agent, heading_rad: float) -> float:
    return agent.speed_mps * math.cos(agent.heading_rad - heading_rad)


def path_gap(ego: Agent, other: Agent, t_s: float) -> PathGap | None:
    """The bumper gap to ``other`` if it is in the ego's path (same lane or lateral overlap), else None."""
    c, s = math.cos(ego.heading_rad), math.sin(ego.heading_rad)
    dx, dy = other.x_m - ego.x_m, other.y_m - ego.y_m
    fwd = dx * c + dy * s
    lat = -dx * s + dy * c
    dh = other.heading_rad - ego.heading_rad
    ext_long = abs(math.cos(dh)) * other.length_m / 2 + abs(math.sin(dh)) * other.width_m / 2
    ext_lat = abs(math.sin(dh)) * other.length_m / 2 + abs(math.cos(dh)) * other.width_m / 2
    same_lane = ego.lane_id is not None and other.lane_id == ego.lane_id
    if not same_lane and abs(lat) >= ego.width_m / 2 + ext_lat + LAT_CLEAR_M:
        return None
    gap = abs(fwd) - ego.length_m / 2 - ext_long
    v_ego = _along(ego, ego.heading_rad)
    v_other = _along(other, ego.heading_rad)
    if fwd >= 0:
        speed = max(ego.speed_mps, v_ego - v_other)
    else:
        speed = max(v_other, v_other - v_ego)
    required = max(MIN_GAP_M, HEADWAY_S * speed)
    return PathGap(other.id, t_s, gap, required, fwd >= 0)


def box_distance_m(ego: Agent, other: Agent) -> float:
    """Distance between the two footprints, measured in the ego's frame (0 when they overlap) [m]."""
    c, s = math.cos(ego.heading_rad), math.sin(ego.heading_rad)
    dx, dy = other.x_m - ego.x_m, other.y_m - ego.y_m
    dh = other.heading_rad - ego.heading_rad
    ext_long = abs(math.cos(dh)) * other.length_m / 2 + abs(math.sin(dh)) * other.width_m / 2
    ext_lat = abs(math.sin(dh)) * other.length_m / 2 + abs(math.cos(dh)) * other.width_m / 2
    lon = max(0.0, abs(dx * c + dy * s) - ego.length_m / 2 - ext_long)
    lat = max(0.0, abs(-dx * s + dy * c) - ego.width_m / 2 - ext_lat)
    return math.hypot(lon, lat)


def rss_check(ego: Agent, other: Agent, t_s: float, rear_responsible: bool) -> rss.Check | None:
    """RSS distances between the ego and ``other`` now; None when the ego is not responsible for it
    (a vehicle behind that is not in a lane the ego moves into, or crossing traffic behind)."""
    c, s = math.cos(ego.heading_rad), math.sin(ego.heading_rad)
    dx, dy = other.x_m - ego.x_m, other.y_m - ego.y_m
    fwd = dx * c + dy * s
    lat = -dx * s + dy * c
    dh = math.remainder(other.heading_rad - ego.heading_rad, math.tau)
    ext_long = abs(math.cos(dh)) * other.length_m / 2 + abs(math.sin(dh)) * other.width_m / 2
    ext_lat = abs(math.sin(dh)) * other.length_m / 2 + abs(math.cos(dh)) * other.width_m / 2
    ahead = fwd >= 0
    aligned = abs(dh) < ALIGNED_RAD
    if not ahead and not (rear_responsible and aligned):
        return None
    gap_long = abs(fwd) - ego.length_m / 2 - ext_long
    gap_lat = abs(lat) - ego.width_m / 2 - ext_lat
    if aligned:
        # lateral speeds in the ego's frame: the ego's own is zero there, the other's is the relative one
        toward = -other.speed_mps * math.sin(dh) * (1.0 if lat >= 0 else -1.0)
        required_lat = rss.lateral_m(toward, 0.0)
    else:
        required_lat = LAT_CLEAR_M
    if ego.lane_id is not None and other.lane_id == ego.lane_id:
        gap_lat = min(gap_lat, 0.0)  # same lane: always in lateral conflict
    v_ego = ego.speed_mps
    v_other = other.speed_mps * math.cos(dh)
    rear, front = (v_ego, v_other) if ahead else (v_other, v_ego)
    return rss.Check(other.id, t_s, ahead, gap_long, rss.longitudinal_m(rear, front), gap_lat, required_lat,
                     rear, front)


def responsible_rear_ids(action: str, ego: Agent, agents: list[Agent]) -> set[int]:
    """Vehicles behind the ego it is responsible for under ``action``: for a lane change, every vehicle
    not in the ego's lane now (it may end up behind the ego in the lane it moves into); else none."""
    if action not in LANE_CHANGES:
        return set()
    return {a.id for a in agents if a.lane_id != ego.lane_id}


def check_rollout(rollout: "Rollout", start: Agent, agents: list[Agent] | None = None) -> ActionCheck:
    """Apply the RSS safety rule to one rollout; ``start``/``agents`` are the ego and vehicles at the frame."""
    rear_ids = responsible_rear_ids(rollout.action, start, agents or [])
    worst: rss.Check | None = None
    off_road = False
    progress = 0.0
    px, py = start.x_m, start.y_m
    for snap in rollout.samples:
        progress += math.hypot(snap.ego.x_m - px, snap.ego.y_m - py)
        px, py = snap.ego.x_m, snap.ego.y_m
        off_road = off_road or not snap.ego_on_road
        if snap.t_s < MARGIN_FROM_S - 1e-9:
            continue
        for other in snap.agents:
            g = rss_check(snap.ego, other, snap.t_s, other.id in rear_ids)
            if g is None or not g.lateral_conflict:
                continue
            if worst is None or g.margin_m < worst.margin_m:
                worst = g
    crashed = bool(rollout.crashed or any(s.crashed for s in rollout.samples))
    margin = worst.margin_m if worst is not None else None
    safe = not crashed and not off_road and (margin is None or margin >= 0.0)
    final = rollout.samples[-1].ego.speed_mps if rollout.samples else start.speed_mps
    after = min(rollout.samples, key=lambda snap: abs(snap.t_s - DECISION_S)).ego.speed_mps if rollout.samples else final
    return ActionCheck(
        action=rollout.action,
        safe=safe,
        crashed=crashed,
        crashed_with=rollout.crashed_with,
        off_road=off_road,
        margin_m=margin,
        critical_id=worst.agent_id if worst is not None else None,
        critical_t_s=worst.t_s if worst is not None else None,
        progress_m=progress,
        final_speed_mps=final,
        speed_after_action_mps=after,
        gap_m=worst.gap_long_m if worst is not None else None,
        required_m=worst.required_long_m if worst is not None else None,
        critical_ahead=worst.ahead if worst is not None else None,
        rear_speed_mps=worst.rear_speed_mps if worst is not None else None,
        front_speed_mps=worst.front_speed_mps if worst is not None else None,
    )


def preferred_of(checks: list[ActionCheck]) -> str | None:
    """The safe action with most progress (rounded to PROGRESS_TIE_M), ties by ACTION_ORDER."""
    safe = [c for c in checks if c.safe]
    if not safe:
        return None
    best = max(safe, key=lambda c: (round(c.progress_m / PROGRESS_TIE_M), -order_key(c.action)))
    return best.action


def check_actions(ctx: "TeacherContext", reduced: bool = True) -> list[ActionCheck]:
    """Roll out every real action of the frame and check it (cached rollouts via the context)."""
    frame = ctx.frame
    return [check_rollout(ctx.rollout(a, reduced=reduced, ego_idm=True), frame.ego, frame.agents)
            for a in real_actions(frame)]


def plan(ctx: "TeacherContext", reduced: bool = True) -> PlannerResult:
    """The look-ahead planner's safe set, preferred action and per-action checks (meta['checks'])."""
    checks = check_actions(ctx, reduced=reduced)
    return PlannerResult(
        name=NAME,
        safe=[c.action for c in checks if c.safe],
        preferred=preferred_of(checks),
        meta={"checks": {c.action: c.to_meta() for c in checks}},
    )
