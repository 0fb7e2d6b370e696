"""Analytic IDM + MOBIL planner: reads only the Frame, never simulates (docs/planning.md).

Vehicles heading within ALIGNED_RAD of the ego are binned into lanes by their lateral offset
(round(rel_y / lane width)); crossing vehicles whose straight-line path meets the ego's within
CONFLICT_WINDOW_S of the ego's own arrival become a virtual stopped lead at the conflict point.
- longitudinal: the IDM acceleration at the current target speed decides FASTER / IDLE / SLOWER;
  an action with target speed v_t is safe if matching the lead's speed before the bumper gap shrinks
  to MIN_GAP_M needs no more than B_SAFE braking (kinematic: dv^2 / (2 (gap - MIN_GAP_M)), rear
  speed max(v, v_t)). IDM's own braking term is no safety measure: it brakes hard to restore its
  desired 1.5 s gap even when nothing is closing (4 m/s^2 "needed" at a 13 s time to collision);
- lateral (MOBIL, politeness 0): a lane change is safe if, by the same kinematic rule, neither the
  ego behind the new lead nor the new follower behind the ego needs more than B_SAFE braking and
  both bumper gaps exceed MIN_GAP_M; it is preferred when the ego's IDM acceleration gains more
  than A_THRESHOLD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from drivechain.schema import Agent, Frame
from drivechain.teacher.planners.vote import PlannerResult, real_actions

NAME = "idm_mobil"
A_MAX = 3.0  # comfortable acceleration [m/s^2]
B_COMF = 5.0  # comfortable deceleration [m/s^2]
B_SAFE = 4.0  # the most braking a lane change or speed may impose [m/s^2]
S0_M = 5.0  # jam distance (bumper to bumper) [m]
T_S = 1.5  # desired time headway [s]
DELTA = 4.0
A_UP = 0.3  # IDM acceleration above this: FASTER
A_DOWN = -1.5  # below this: SLOWER
A_THRESHOLD = 0.2  # MOBIL incentive threshold [m/s^2]
MIN_GAP_M = 2.0
ALIGNED_RAD = 0.5
CONFLICT_WINDOW_S = 2.0
LANE_WIDTH_M = 4.0
DEFAULT_TARGET_SPEEDS = {"intersection": [0.0, 4.5, 9.0], "roundabout": [0.0, 8.0, 16.0]}
HIGHWAY_TARGET_SPEEDS = [20.0, 25.0, 30.0]


@dataclass
class Neighbour:
    """A vehicle (or virtual obstacle) seen along the ego's lane frame."""

    gap_m: float  # bumper to bumper
    speed_mps: float  # along the ego heading
    agent_id: int | None


def idm_acc(v: float, v0: float, gap_m: float | None, lead_speed_mps: float | None) -> float:
    """IDM acceleration [m/s^2] at speed v toward v0 behind a lead (None: free road)."""
    free = 1.0 - (v / v0) ** DELTA if v0 > 0.1 else -1.0
    if gap_m is None or lead_speed_mps is None:
        return A_MAX * free
    s_star = S0_M + max(0.0, v * T_S + v * (v - lead_speed_mps) / (2 * math.sqrt(A_MAX * B_COMF)))
    return A_MAX * (free - (s_star / max(gap_m, 0.1)) ** 2)


def needed_braking(rear_speed_mps: float, front_speed_mps: float, gap_m: float) -> float:
    """Constant deceleration [m/s^2] the rear vehicle needs to match the front's speed before the gap is MIN_GAP_M."""
    dv = rear_speed_mps - front_speed_mps
    if dv <= 0.0:
        return 0.0
    return dv * dv / (2.0 * max(gap_m - MIN_GAP_M, 0.1))


def target_speeds(frame: Frame) -> list[float]:
    """The scenario's target speeds [m/s] (from the frame, else the documented defaults)."""
    speeds = frame.meta.get("target_speeds_mps") or DEFAULT_TARGET_SPEEDS.get(frame.scenario, HIGHWAY_TARGET_SPEEDS)
    return sorted(float(s) for s in speeds)


def _lane_width(frame: Frame) -> float:
    lane = next((ln for ln in frame.lanes if ln.id == frame.ego.lane_id), None)
    return lane.width_m if lane is not None and lane.width_m > 1.0 else LANE_WIDTH_M


def _ext_long(ego: Agent, a: Agent) -> float:
    dh = a.heading_rad - ego.heading_rad
    return ego.length_m / 2 + abs(math.cos(dh)) * a.length_m / 2 + abs(math.sin(dh)) * a.width_m / 2


def _virtual_leads(frame: Frame, horizon_s: float) -> list[Neighbour]:
    """Crossing vehicles that reach the ego's straight path within the conflict window."""
    ego = frame.ego
    ux, uy = math.cos(ego.heading_rad), math.sin(ego.heading_rad)
    out = []
    for a in frame.agents:
        dh = math.remainder(a.heading_rad - ego.heading_rad, math.tau)
        if abs(dh) < ALIGNED_RAD or a.speed_mps < 0.5:
            continue
        vx, vy = math.cos(a.heading_rad), math.sin(a.heading_rad)
        det = ux * (-vy) - uy * (-vx)
        if abs(det) < 1e-6:
            continue
        dx, dy = a.x_m - ego.x_m, a.y_m - ego.y_m
        s = (dx * (-vy) - dy * (-vx)) / det  # distance along the ego ray
        r = (ux * dy - uy * dx) / det  # distance along the other's ray
        if s <= 0 or r < -a.length_m:
            continue
        t_ego = s / max(ego.speed_mps, 1.0)
        t_other = max(r, 0.0) / a.speed_mps
        if t_other <= horizon_s and abs(t_ego - t_other) < CONFLICT_WINDOW_S:
            gap = s - ego.length_m / 2 - a.width_m / 2
            out.append(Neighbour(max(gap, 0.0), 0.0, a.id))
    return out


def _lanes(frame: Frame) -> dict[int, list[tuple[float, Agent]]]:
    """Aligned vehicles by lane offset (+1 left, -1 right), with their forward offset."""
    ego = frame.ego
    w = _lane_width(frame)
    out: dict[int, list[tuple[float, Agent]]] = {}
    for a in frame.agents:
        if abs(math.remainder(a.heading_rad - ego.heading_rad, math.tau)) >= ALIGNED_RAD:
            continue
        out.setdefault(int(round(a.rel_y_m / w)), []).append((a.rel_x_m, a))
    return out


def _lead_follow(frame: Frame, lane: list[tuple[float, Agent]]) -> tuple[Neighbour | None, Neighbour | None]:
    ego = frame.ego
    lead = follow = None
    for fwd, a in lane:
        gap = abs(fwd) - _ext_long(ego, a)
        n = Neighbour(gap, a.speed_mps * math.cos(a.heading_rad - ego.heading_rad), a.id)
        if fwd >= 0 and (lead is None or gap < lead.gap_m):
            lead = n
        if fwd < 0 and (follow is None or gap < follow.gap_m):
            follow = n
    return lead, follow


def _acc(v: float, v0: float, lead: Neighbour | None) -> float:
    return idm_acc(v, v0, lead.gap_m if lead else None, lead.speed_mps if lead else None)


def plan(frame: Frame, horizon_s: float = 3.0) -> PlannerResult:
    """The IDM/MOBIL planner's safe set and preferred action for one frame."""
    actions = real_actions(frame)
    speeds = target_speeds(frame)
    v0 = speeds[-1]
    current = float(frame.meta.get("ego_target_speed_mps", frame.ego.speed_mps))
    idx = min(range(len(speeds)), key=lambda i: abs(speeds[i] - current))
    targets = {"IDLE": speeds[idx], "FASTER": speeds[min(idx + 1, len(speeds) - 1)],
               "SLOWER": speeds[max(idx - 1, 0)]}
    lanes = _lanes(frame)
    lead, _ = _lead_follow(frame, lanes.get(0, []))
    leads = [n for n in [lead, *_virtual_leads(frame, horizon_s)] if n is not None]
    lead = min(leads, key=lambda n: n.gap_m) if leads else None
    acc = {a: _acc(targets[a], v0, lead) for a in targets}
    v_ego = frame.ego.speed_mps
    brake = {a: (needed_braking(max(v_ego, targets[a]), lead.speed_mps, lead.gap_m) if lead else 0.0) for a in targets}
    safe = [a for a in actions if a in targets and brake[a] <= B_SAFE]
    # judged at the speed IDLE holds (the current target), not the transient speed: an ego still
    # settling onto its target (e.g. 10 -> 9 m/s at the intersection) is not "braking"
    v = targets["IDLE"]
    a_now = acc["IDLE"]
    incentive: dict[str, float] = {}
    for action, side in (("LANE_LEFT", 1), ("LANE_RIGHT", -1)):
        if action not in actions:
            continue
        new_lead, new_follow = _lead_follow(frame, lanes.get(side, []))
        a_new = _acc(v, v0, new_lead)
        ok = new_lead is None or (new_lead.gap_m > MIN_GAP_M
                                  and needed_braking(v_ego, new_lead.speed_mps, new_lead.gap_m) <= B_SAFE)
        if new_follow is not None:
            ok = ok and new_follow.gap_m > MIN_GAP_M and needed_braking(
                new_follow.speed_mps, v_ego, new_follow.gap_m) <= B_SAFE
        if ok:
            safe.append(action)
            incentive[action] = a_new - a_now
    safe = [a for a in actions if a in safe]
    gains = {a: g for a, g in incentive.items() if g > A_THRESHOLD}
    if gains:
        preferred: str | None = max(gains, key=lambda a: (gains[a], a == "LANE_LEFT"))
    elif a_now > A_UP and "FASTER" in safe:
        preferred = "FASTER"
    elif a_now < A_DOWN and "SLOWER" in safe:
        preferred = "SLOWER"
    elif "IDLE" in safe:
        preferred = "IDLE"
    else:
        preferred = "SLOWER" if "SLOWER" in safe else (safe[0] if safe else None)
    return PlannerResult(
        name=NAME,
        safe=safe,
        preferred=preferred,
        meta={"acc_mps2": round(a_now, 3), "lead_id": lead.agent_id if lead else None,
              "lead_gap_m": round(lead.gap_m, 3) if lead else None,
              "incentive_mps2": {a: round(g, 3) for a, g in incentive.items()}},
    )
