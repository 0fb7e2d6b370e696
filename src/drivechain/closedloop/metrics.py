"""Closed-loop driving metrics (docs/closedloop.md): collisions and fault, completion, score, comfort.

Everything here is a pure function of the per-step records the loop writes, so the same records
always give the same numbers and a resumed run aggregates exactly like an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from drivechain.schema import Agent, Frame
from drivechain.sources.corner_cases import base_scenario

# Bench2Drive-style multiplicative penalties (FACTS.md); the ones highway-env can produce.
PENALTIES: dict[str, float] = {
    "vehicle_collision": 0.60,  # per collision
    "off_road": 0.65,  # once per episode (Bench2Drive's static-object collision)
    "timeout": 0.70,  # a goal scenario ran out of its own time without reaching the goal
}
SUCCESS_COMPLETION = 0.95
# Scenarios without a goal complete at distance / (PACE x speed limit x duration): highway-env's
# traffic drives 20-25 m/s under a 30 m/s limit, so keeping pace with it is 0.8 of the limit.
PACE = 0.8
# A goal scenario that has not reached its goal completes at most this much (distance-based).
UNREACHED_CAP = 0.9
# Harsh speed change per decision interval (Bench2Drive's longitudinal bounds) [m/s^2].
HARSH_ACCEL_MPS2 = 2.40
HARSH_DECEL_MPS2 = 4.05
REVERSAL_WINDOW_STEPS = 3  # a lane change back within this many decisions is a reversal
YIELD_SCENARIOS = ("intersection", "roundabout")
YIELD_MARGIN_S = 0.5
LATERAL_OVERLAP_SLACK_M = 0.3
ABILITIES = ("merging", "overtaking", "yielding", "emergency_braking")
LANE_CHANGES = {"LANE_LEFT": -1, "LANE_RIGHT": 1}


# --------------------------------------------------------------------------- collisions


def _same_lane(ego: Agent, other: Agent) -> bool:
    if ego.lane_id is not None and other.lane_id == ego.lane_id:
        return True
    # different lane keys but overlapping laterally (mid lane change, lane boundaries)
    return abs(other.rel_y_m) < (ego.width_m + other.width_m) / 2 - LATERAL_OVERLAP_SLACK_M


def _arrival_s(agent: Agent, point: tuple[float, float]) -> float:
    dist = math.hypot(agent.x_m - point[0], agent.y_m - point[1])
    return dist / max(agent.speed_mps, 0.1)


def classify_collision(prev: Frame, after: Frame, action: str, partner_id: int | None) -> dict[str, Any]:
    """Who is at fault for a collision that happened during the step from ``prev`` with ``action``.

    The ego is at fault (first matching rule) when:
    - ``rear_end``: the partner was ahead of it in its lane (or laterally overlapping) at ``prev``;
    - ``lane_change``: it was changing lane (this action or an unfinished change) towards the side
      the partner was on;
    - ``failed_to_yield`` (intersection, roundabout): it was moving and the partner would have
      reached the collision point first (first come, first served, ``YIELD_MARGIN_S`` slack);
    - ``unknown_partner``: the partner cannot be identified (counted against the ego).
    Otherwise the ego was hit: ``rear_ended`` (partner behind in its lane), ``cut_in`` or ``other``.
    """
    ego = prev.ego
    partner = prev.agent(partner_id) if partner_id is not None else None
    if partner is None or partner_id == 0:
        return {"partner": partner_id, "at_fault": True, "rule": "unknown_partner"}
    same = _same_lane(ego, partner)
    if same and partner.rel_x_m > 0:
        return {"partner": partner_id, "at_fault": True, "rule": "rear_end"}
    target = prev.meta.get("ego_target_lane_id")
    changing = action in LANE_CHANGES or (target is not None and target != ego.lane_id)
    if changing and not same:
        side = 1 if partner.rel_y_m > 0 else -1  # +1: partner on the left
        going_left = action == "LANE_LEFT" or (
            action not in LANE_CHANGES and target is not None and _lane_index(target) < _lane_index(ego.lane_id)
        )
        if (side > 0) == going_left:
            return {"partner": partner_id, "at_fault": True, "rule": "lane_change"}
    if base_scenario(prev.scenario) in YIELD_SCENARIOS and ego.speed_mps > 1.0 and not (same and partner.rel_x_m < 0):
        point = (after.ego.x_m, after.ego.y_m)
        if _arrival_s(partner, point) <= _arrival_s(ego, point) + YIELD_MARGIN_S:
            return {"partner": partner_id, "at_fault": True, "rule": "failed_to_yield"}
    if same and partner.rel_x_m <= 0:
        return {"partner": partner_id, "at_fault": False, "rule": "rear_ended"}
    return {"partner": partner_id, "at_fault": False, "rule": "cut_in" if partner.lane_id != ego.lane_id else "other"}


def _lane_index(lane_id: str | None) -> int:
    try:
        return int(str(lane_id).rsplit(">", 1)[-1])
    except ValueError:
        return 0


def collision_partner(prev: Frame, after: Frame) -> int | None:
    """The vehicle the ego hit during the step: newly crashed, nearest to the ego after it."""
    before = {a.id for a in prev.agents if a.crashed}
    hit = [a for a in after.agents if a.crashed and a.id not in before]
    if not hit:
        return None
    return min(hit, key=lambda a: math.hypot(a.rel_x_m, a.rel_y_m)).id


# --------------------------------------------------------------------------- one episode


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def completion(goal: dict[str, Any], distance_m: float, reached: bool, planned_s: float, limit_mps: float) -> float:
    """Route completion in [0, 1]: the goal where the scenario has one, else distance at pace."""
    if goal.get("kind", "pace") != "pace":
        if reached:
            return 1.0
        need = max(float(goal.get("distance_m") or 0.0), 1.0)
        return round(min(UNREACHED_CAP, distance_m / need), 6)
    ref = PACE * max(limit_mps, 1.0) * max(planned_s, 1e-6)
    return round(min(1.0, distance_m / ref), 6)


def comfort(actions: Sequence[str], speeds_mps: Sequence[float], dt_s: float, duration_s: float) -> dict[str, float]:
    """Lane-change reversals and harsh speed changes, per minute of driving."""
    reversals = 0
    last: tuple[int, int] | None = None  # (direction, step)
    for i, act in enumerate(actions):
        direction = LANE_CHANGES.get(act)
        if direction is None:
            continue
        if last is not None and direction == -last[0] and i - last[1] <= REVERSAL_WINDOW_STEPS:
            reversals += 1
        last = (direction, i)
    harsh = 0
    for a, b in zip(speeds_mps, speeds_mps[1:]):
        acc = (b - a) / dt_s
        if acc > HARSH_ACCEL_MPS2 or acc < -HARSH_DECEL_MPS2:
            harsh += 1
    minutes = max(duration_s, dt_s) / 60.0
    return {
        "lane_change_reversals_per_min": round(reversals / minutes, 6),
        "harsh_speed_changes_per_min": round(harsh / minutes, 6),
        "lane_change_reversals": reversals,
        "harsh_speed_changes": harsh,
    }


def episode_metrics(steps: list[dict[str, Any]], final: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """The metrics of one episode from its step records, its last observation and its set-up.

    ``info``: scenario, goal, planned_s (max steps x decision period), dt_s, limit_mps.
    ``final``: the observation after the last step (ego, collision, goal_reached, truncated).
    """
    dt = float(info["dt_s"])
    egos = [s["ego"] for s in steps] + [final["ego"]]
    distance = sum(math.hypot(b["x_m"] - a["x_m"], b["y_m"] - a["y_m"]) for a, b in zip(egos, egos[1:]))
    speeds = [e["speed_mps"] for e in egos]
    actions = [s["action"] for s in steps]
    collision = final.get("collision")
    collided = collision is not None
    at_fault = bool(collided and collision.get("at_fault"))
    off_road = any(not e.get("on_road", True) for e in egos)
    reached = bool(final.get("goal_reached"))
    goal = info["goal"]
    timeout = goal.get("kind", "pace") != "pace" and not reached and bool(final.get("truncated"))
    comp = completion(goal, distance, reached, float(info["planned_s"]), float(info["limit_mps"]))
    penalties: list[str] = []
    if collided:
        penalties.append("vehicle_collision")
    if off_road:
        penalties.append("off_road")
    if timeout:
        penalties.append("timeout")
    factor = math.prod(PENALTIES[p] for p in penalties)
    duration_s = len(steps) * dt
    mean_speed = sum(speeds) / len(speeds)
    decided = [s for s in steps if s.get("teacher") is not None]
    agree = [s["agree"] for s in decided if s.get("agree") is not None]
    unsafe = [s["unsafe"] for s in decided if s.get("unsafe") is not None]
    qa: dict[str, list[float]] = {}
    for s in steps:
        for stage, score in (s.get("qa") or {}).items():
            if score is not None:
                qa.setdefault(stage, []).append(score)
    return {
        "steps": len(steps),
        "duration_s": round(duration_s, 6),
        "distance_m": round(distance, 4),
        "collision": collided,
        "at_fault_collision": at_fault,
        "collision_detail": collision,
        "off_road": off_road,
        "goal_reached": reached,
        "timeout": timeout,
        "route_completion": comp,
        "penalties": penalties,
        "penalty_factor": round(factor, 6),
        "driving_score": round(comp * factor, 6),
        "success": comp >= SUCCESS_COMPLETION and not collided,
        "mean_speed_mps": round(mean_speed, 4),
        "speed_vs_limit": round(mean_speed / max(float(info["limit_mps"]), 1e-6), 6),
        "comfort": comfort(actions, speeds, dt, duration_s),
        "decisions": len(decided),
        "teacher_agreement": _mean(agree),
        "unsafe_action_rate": _mean(unsafe),
        "failures": sum(1 for s in steps if s.get("fallback")),
        # fallbacks split by cause: a failed request (server fault) vs an answer that could not be used
        "fallback_request_failed": sum(1 for s in steps if s.get("fallback") and s.get("request_failed")),
        "fallback_unusable": sum(1 for s in steps if s.get("fallback") and not s.get("request_failed")),
        "model_decisions": sum(1 for s in steps if not s.get("fallback")),
        "qa": {stage: round(sum(v) / len(v), 6) for stage, v in sorted(qa.items())},
        "abilities": _ability_counts(steps),
        "actions": {a: actions.count(a) for a in sorted(set(actions))},
    }


def _ability_counts(steps: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for s in steps:
        for ab in s.get("abilities") or []:
            row = out.setdefault(ab, {"steps": 0, "agree": 0, "unsafe": 0, "judged": 0})
            row["steps"] += 1
            if s.get("agree") is not None:
                row["judged"] += 1
                row["agree"] += int(bool(s["agree"]))
                row["unsafe"] += int(bool(s.get("unsafe")))
    return out


# --------------------------------------------------------------------------- abilities


def abilities(frame: Frame, teacher: dict[str, Any] | None, goal_reached: bool) -> list[str]:
    """The abilities a decision step exercises, from the scenario and the situation (documented)."""
    tags: list[str] = []
    ego = frame.ego
    if base_scenario(frame.scenario) == "merge" and not goal_reached:
        tags.append("merging")
    lead = [
        a for a in frame.agents
        if a.lane_id == ego.lane_id and 0 < a.rel_x_m < 60 and a.speed_mps < ego.speed_mps - 2.0
    ]
    if base_scenario(frame.scenario) not in YIELD_SCENARIOS and lead and any(a in frame.actions for a in LANE_CHANGES):
        tags.append("overtaking")
    safe = set(teacher.get("safe") or []) if teacher else set()
    if base_scenario(frame.scenario) in YIELD_SCENARIOS and teacher and teacher.get("safe") is not None and "FASTER" in frame.actions:
        if "FASTER" not in safe:
            tags.append("yielding")
    if teacher and teacher.get("safe") is not None and safe and safe <= {"SLOWER"}:
        tags.append("emergency_braking")
    return tags


# --------------------------------------------------------------------------- aggregation


def _rate(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [bool(r[key]) for r in rows if r.get(key) is not None]
    return round(sum(vals) / len(vals), 6) if vals else None


def _avg(rows: list[dict[str, Any]], key: str) -> float | None:
    m = _mean(r.get(key) for r in rows)
    return None if m is None else round(m, 6)


def _step_weighted(rows: list[dict[str, Any]], key: str) -> float | None:
    num = sum((r[key] or 0.0) * r["decisions"] for r in rows if r.get(key) is not None)
    den = sum(r["decisions"] for r in rows if r.get(key) is not None)
    return round(num / den, 6) if den else None


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Summary metrics over episode rows (each: ``metrics`` of episode_metrics + efficiency)."""
    ms = [r["metrics"] for r in rows]
    if not ms:
        return {"episodes": 0}
    stages = sorted({s for m in ms for s in m["qa"]})
    qa = {}
    for stage in stages:
        num = sum(m["qa"][stage] * m["decisions"] for m in ms if stage in m["qa"])
        den = sum(m["decisions"] for m in ms if stage in m["qa"])
        qa[stage] = round(num / den, 6) if den else None
    vs_teacher = _mean(r.get("efficiency", {}).get("speed_vs_teacher") for r in rows)
    return {
        "episodes": len(ms),
        "driving_score": _avg(ms, "driving_score"),
        "success_rate": _rate(ms, "success"),
        "collision_rate": _rate(ms, "collision"),
        "at_fault_collision_rate": _rate(ms, "at_fault_collision"),
        "off_road_rate": _rate(ms, "off_road"),
        "route_completion": _avg(ms, "route_completion"),
        "efficiency": {
            "speed_vs_limit": _avg(ms, "speed_vs_limit"),
            "speed_vs_teacher": None if vs_teacher is None else round(vs_teacher, 6),
        },
        "comfort": {
            "lane_change_reversals_per_min": _mean(m["comfort"]["lane_change_reversals_per_min"] for m in ms),
            "harsh_speed_changes_per_min": _mean(m["comfort"]["harsh_speed_changes_per_min"] for m in ms),
        },
        "teacher_agreement": _step_weighted(ms, "teacher_agreement"),
        "unsafe_action_rate": _step_weighted(ms, "unsafe_action_rate"),
        "qa": qa,
        "decisions": sum(m["decisions"] for m in ms),
        "model_failures": sum(m["failures"] for m in ms),
        "fallback_request_failed": sum(m.get("fallback_request_failed", 0) for m in ms),
        "fallback_unusable": sum(m.get("fallback_unusable", 0) for m in ms),
    }


def ability_breakdown(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per ability: steps, agreement, unsafe rate, and the collision rate of the episodes involved."""
    out: dict[str, Any] = {}
    for ab in ABILITIES:
        involved = [r["metrics"] for r in rows if ab in r["metrics"]["abilities"]]
        steps = sum(m["abilities"][ab]["steps"] for m in involved)
        judged = sum(m["abilities"][ab]["judged"] for m in involved)
        agree = sum(m["abilities"][ab]["agree"] for m in involved)
        unsafe = sum(m["abilities"][ab]["unsafe"] for m in involved)
        out[ab] = {
            "episodes": len(involved),
            "steps": steps,
            "teacher_agreement": round(agree / judged, 6) if judged else None,
            "unsafe_action_rate": round(unsafe / judged, 6) if judged else None,
            "collision_rate": _rate(involved, "collision"),
            "driving_score": _avg(involved, "driving_score"),
        }
    return out


def latency_percentiles(latencies_s: list[float]) -> dict[str, float | None]:
    """p50 and p95 of request latencies (nearest-rank)."""
    if not latencies_s:
        return {"p50": None, "p95": None, "mean": None}
    xs = sorted(latencies_s)

    def pct(p: float) -> float:
        return round(xs[min(len(xs) - 1, max(0, math.ceil(p * len(xs)) - 1))], 6)

    return {"p50": pct(0.50), "p95": pct(0.95), "mean": round(sum(xs) / len(xs), 6)}
