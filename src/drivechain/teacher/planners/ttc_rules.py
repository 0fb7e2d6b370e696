"""Time-gap / TTC rule planner: a constant-velocity kinematic prediction from the Frame alone.

Every other vehicle keeps its speed and heading; the ego follows each action's idealised profile
(speed first-order toward the action's target speed with TAU_S, lane change = a cosine lateral shift
of one lane width over LANE_CHANGE_S, straight along its current heading). From CHECK_FROM_S to H,
every STEP_S, an action is unsafe if a vehicle overlapping the ego laterally (ego's initial frame,
LAT_CLEAR_M to spare) has a bumper gap below MIN_GAP_M, a time gap below MIN_TIME_GAP_S, or a
time to collision below MIN_TTC_S. Preferred: FASTER if safe, else IDLE, else the safe lane change
with the largest clearance, else SLOWER (docs/planning.md).
"""

from __future__ import annotations

import math

from drivechain.schema import Frame
from drivechain.teacher.planners.idm_mobil import target_speeds
from drivechain.teacher.planners.vote import PlannerResult, real_actions

NAME = "ttc_rules"
TAU_S = 0.6
ACC_LIMIT_MPS2 = 5.0
LANE_CHANGE_S = 2.0
LANE_WIDTH_M = 4.0
STEP_S = 0.25
CHECK_FROM_S = 1.0
LAT_CLEAR_M = 0.3
MIN_GAP_M = 2.0
MIN_TIME_GAP_S = 0.4
MIN_TTC_S = 1.5


def _ego_profile(v0: float, v_target: float, side: int, horizon_s: float) -> list[tuple[float, float, float, float]]:
    """(t, forward, left, speed) samples of the ego's idealised motion."""
    out = []
    x, v, t = 0.0, v0, 0.0
    n = int(round(horizon_s / STEP_S))
    for _ in range(n):
        acc = max(-ACC_LIMIT_MPS2, min(ACC_LIMIT_MPS2, (v_target - v) / TAU_S))
        x += v * STEP_S + 0.5 * acc * STEP_S**2
        v = max(0.0, v + acc * STEP_S)
        t += STEP_S
        phase = min(1.0, t / LANE_CHANGE_S)
        y = side * LANE_WIDTH_M * (1 - math.cos(math.pi * phase)) / 2
        out.append((t, x, y, v))
    return out


def _clearance(frame: Frame, v_target: float, side: int, horizon_s: float) -> float:
    """Smallest normalised clearance over H (>= 0 safe): min of gap/MIN_GAP, time gap, TTC ratios - 1."""
    ego = frame.ego
    worst = math.inf
    for t, ex, ey, ev in _ego_profile(ego.speed_mps, v_target, side, horizon_s):
        if t < CHECK_FROM_S - 1e-9:
            continue
        for a in frame.agents:
            dh = a.heading_rad - ego.heading_rad
            vx, vy = a.speed_mps * math.cos(dh), a.speed_mps * math.sin(dh)
            # the ego's frame has y to the LEFT; highway-env's heading grows to the right (y down)
            ox, oy = a.rel_x_m + vx * t, a.rel_y_m - vy * t
            ext_lat = abs(math.sin(dh)) * a.length_m / 2 + abs(math.cos(dh)) * a.width_m / 2
            if abs(oy - ey) >= ego.width_m / 2 + ext_lat + LAT_CLEAR_M:
                continue
            ext_long = ego.length_m / 2 + abs(math.cos(dh)) * a.length_m / 2 + abs(math.sin(dh)) * a.width_m / 2
            gap = abs(ox - ex) - ext_long
            closing = (ev - vx) if ox >= ex else (vx - ev)
            follower_speed = ev if ox >= ex else max(vx, 0.0)
            ratios = [gap / MIN_GAP_M - 1]
            if follower_speed > 0.5:
                ratios.append(gap / follower_speed / MIN_TIME_GAP_S - 1)
            if closing > 0.1:
                ratios.append(gap / closing / MIN_TTC_S - 1)
            worst = min(worst, *ratios)
    return worst


def plan(frame: Frame, horizon_s: float = 3.0) -> PlannerResult:
    """The TTC-rule planner's safe set and preferred action for one frame."""
    actions = real_actions(frame)
    speeds = target_speeds(frame)
    current = float(frame.meta.get("ego_target_speed_mps", frame.ego.speed_mps))
    idx = min(range(len(speeds)), key=lambda i: abs(speeds[i] - current))
    spec = {
        "IDLE": (speeds[idx], 0),
        "FASTER": (speeds[min(idx + 1, len(speeds) - 1)], 0),
        "SLOWER": (speeds[max(idx - 1, 0)], 0),
        "LANE_LEFT": (speeds[idx], 1),
        "LANE_RIGHT": (speeds[idx], -1),
    }
    clear = {a: _clearance(frame, *spec[a], horizon_s) for a in actions if a in spec}
    safe = [a for a in actions if a in clear and clear[a] >= 0.0]
    lane_changes = sorted((a for a in safe if a in ("LANE_LEFT", "LANE_RIGHT")), key=lambda a: -clear[a])
    if "FASTER" in safe:
        preferred: str | None = "FASTER"
    elif "IDLE" in safe:
        preferred = "IDLE"
    elif lane_changes:
        preferred = lane_changes[0]
    elif "SLOWER" in safe:
        preferred = "SLOWER"
    else:
        preferred = None
    return PlannerResult(
        name=NAME,
        safe=safe,
        preferred=preferred,
        meta={"clearance": {a: (round(c, 3) if math.isfinite(c) else None) for a, c in clear.items()}},
    )
