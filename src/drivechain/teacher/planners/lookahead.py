"""Look-ahead safety planner: each real action is forward-simulated (action, then IDLE) over H s.

An action is UNSAFE when, in its rollout (docs/planning.md "Safety margin"):
- the ego collides or leaves the road at any physics step, or
- from MARGIN_FROM_S on, some vehicle in the ego's path is closer (bumper to bumper, along the
  ego's heading) than max(MIN_GAP_M, HEADWAY_S x speed) where speed is the ego's speed for a vehicle
  ahead (the follower's speed for one behind), or the closing speed if larger.
A vehicle is "in the ego's path" when it shares the ego's lane id or overlaps the ego laterally
(ego frame) with less than LAT_CLEAR_M to spare. The margin of an action is min(gap - required) [m].
Preferred: the safe action with the most progress (distance driven over H), rounded to
PROGRESS_TIE_M; ties broken by vote.ACTION_ORDER.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from drivechain.schema import Agent
from drivechain.teacher.planners.vote import PlannerResult, order_key, real_actions

if TYPE_CHECKING:
    from drivechain.sources.base import Rollout
    from drivechain.teacher.context import TeacherContext

NAME = "lookahead"
MIN_GAP_M = 2.0
HEADWAY_S = 0.5
LAT_CLEAR_M = 0.5
MARGIN_FROM_S = 1.0  # the action needs one decision step (1 s) to act; collisions count from t = 0
PROGRESS_TIE_M = 1.0
SAFE_BAND_M = 1.0  # |margin| below this: plan.safe.<A> accepts both answers (not for collisions)


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
    margin_m: float | None  # None: nothing in the ego's path after MARGIN_FROM_S
    critical_id: int | None
    critical_t_s: float | None
    progress_m: float
    final_speed_mps: float

    def to_meta(self) -> dict[str, Any]:
        """JSON-ready fields, margins rounded to mm."""
        out = asdict(self)
        for key in ("margin_m", "progress_m", "final_speed_mps"):
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


def check_rollout(rollout: "Rollout", start: Agent) -> ActionCheck:
    """Apply the safety rule to one rollout; ``start`` is the ego at the frame (for progress)."""
    worst: PathGap | None = None
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
            g = path_gap(snap.ego, other, snap.t_s)
            if g is not None and (worst is None or g.margin_m < worst.margin_m):
                worst = g
    crashed = bool(rollout.crashed or any(s.crashed for s in rollout.samples))
    margin = worst.margin_m if worst is not None else None
    safe = not crashed and not off_road and (margin is None or margin >= 0.0)
    final = rollout.samples[-1].ego.speed_mps if rollout.samples else start.speed_mps
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
    return [check_rollout(ctx.rollout(a, reduced=reduced), ctx.frame.ego) for a in real_actions(ctx.frame)]


def plan(ctx: "TeacherContext", reduced: bool = True) -> PlannerResult:
    """The look-ahead planner's safe set, preferred action and per-action checks (meta['checks'])."""
    checks = check_actions(ctx, reduced=reduced)
    return PlannerResult(
        name=NAME,
        safe=[c.action for c in checks if c.safe],
        preferred=preferred_of(checks),
        meta={"checks": {c.action: c.to_meta() for c in checks}},
    )
