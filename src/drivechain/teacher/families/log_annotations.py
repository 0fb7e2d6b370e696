"""Families of recorded logs that read per-agent annotations (``Frame.meta['agents']``) and recorded tracks.

- per.category.vN: the annotated kind of road user (car, truck, bus, pedestrian, ...);
- per.same_lane.vN (with a lane map): is the road user in the ego's lane (sources/nuscenes_map.py);
- per.status.vN: the annotated status attribute (moving / stopped / parked; moving / standing; with or
  without rider);
- pred.future_state.vN: where a vehicle or cycle goes over the horizon in the recording: stationary,
  straight, left or right turn (displacement and heading change of its annotated track);
- beh.direction: does the ego go straight or turn over the horizon (its recorded heading change; the
  junction turn of routes with a navigation command is beh.turn, log_behavior.py).
Thresholds and bands below (docs/sources/nuscenes.md). On simulator frames they emit nothing.
"""

from __future__ import annotations

import math

from drivechain.schema import QA, Agent, BooleanAnswer, ChoiceAnswer
from drivechain.teacher.context import TeacherContext
from drivechain.teacher.families._common import in_band, qa
from drivechain.teacher.families._log_ego import ego_future

CATEGORIES = ["car", "truck", "bus", "trailer", "construction vehicle", "emergency vehicle", "motorcycle",
              "bicycle", "pedestrian", "animal"]
STATUS_OPTIONS = {
    "pedestrian": ["moving", "standing", "sitting or lying"],
    "bicycle": ["with rider", "without rider"],
    "motorcycle": ["with rider", "without rider"],
}
VEHICLE_STATUS = ["moving", "stopped", "parked"]
TURNING_CATEGORIES = frozenset(CATEGORIES) - {"pedestrian", "animal"}
FUTURE_STATES = ["stationary", "go straight", "turn left", "turn right"]
TURNS = ["go straight", "turn left", "turn right"]

STATIONARY_M = 1.0
"""A road user whose annotated centre moves less than this over the horizon is stationary [m]."""
STATIONARY_BAND_M = 0.5
"""Displacements within STATIONARY_M +- this accept 'stationary' and the moving answer."""
TURN_RAD = 0.35
"""A heading change above this (about 20 degrees) over the horizon is a turn [rad]."""
TURN_BAND_RAD = 0.1
"""Heading changes within TURN_RAD +- this (about 6 degrees) accept both straight and the turn."""
SAME_LANE_BAND_M = 0.5
"""A road user whose centre is within this of the ego lane's edge accepts both answers of per.same_lane [m]."""
EGO_MOVES_M = 2.0
"""beh.direction is asked only if the ego travels at least this far over the horizon [m]."""
HORIZON_TOL_S = 0.05


def _is_log(ctx: TeacherContext) -> bool:
    return ctx.frame.meta.get("kind") == "log"


def _info(ctx: TeacherContext, a: Agent) -> dict:
    return ctx.frame.meta.get("agents", {}).get(str(a.id), {})


def _tag(ctx: TeacherContext, a: Agent) -> str | None:
    return ctx.frame.meta.get("drivelm_tags", {}).get(str(a.id))


def _visible(ctx: TeacherContext) -> list[Agent]:
    return sorted((a for a in ctx.frame.agents if a.visible), key=lambda a: a.id)


def name(ctx: TeacherContext, a: Agent) -> str:
    """'the car 3 <c3,CAM_FRONT,812.0,455.5>': category, id and (when shown) its DriveLM tag."""
    tag = _tag(ctx, a)
    return f"the {a.category} {a.id}" + (f" {tag}" if tag else "")


def _turn_options(turn_rad: float, labels: tuple[str, str, str]) -> tuple[str, set[str]]:
    """(label, acceptable) for a heading change [rad, + left] with the TURN_RAD band."""
    straight, left, right = labels
    label = straight if abs(turn_rad) < TURN_RAD else (left if turn_rad > 0 else right)
    ok = {label}
    if in_band(abs(turn_rad), TURN_RAD, TURN_BAND_RAD):
        ok |= {straight, left if turn_rad > 0 else right}
    return label, ok


# --------------------------------------------------------------------------- perception


def category(ctx: TeacherContext) -> list[QA]:
    """per.category.vN: what kind of road user a visible agent is (the annotated category)."""
    if not _is_log(ctx) or not ctx.frame.meta.get("agents"):
        return []
    out = []
    for a in _visible(ctx):
        if a.category not in CATEGORIES:
            continue
        i = CATEGORIES.index(a.category)
        tag = _tag(ctx, a)
        out.append(qa(f"per.category.v{a.id}", "per.category", "perception",
                      f"What kind of road user is object {a.id}" + (f" {tag}" if tag else "")
                      + f"? Options: {', '.join(CATEGORIES)}.",
                      ChoiceAnswer(options=CATEGORIES, acceptable=[i], preferred=i),
                      f"Object {a.id} is annotated as {_info(ctx, a).get('nuscenes_category', a.category)}.",
                      objects=[a.id]))
    return out


def status(ctx: TeacherContext) -> list[QA]:
    """per.status.vN: the annotated status of a visible road user, when it has one."""
    if not _is_log(ctx):
        return []
    out = []
    for a in _visible(ctx):
        st = _info(ctx, a).get("status")
        options = STATUS_OPTIONS.get(a.category, VEHICLE_STATUS if a.category in TURNING_CATEGORIES else [])
        if st not in options:
            continue
        parent = f"per.category.v{a.id}"
        out.append(qa(f"per.status.v{a.id}", "per.status", "perception",
                      f"What is the status of {name(ctx, a)}? Options: {', '.join(options)}.",
                      ChoiceAnswer(options=options, acceptable=[options.index(st)], preferred=options.index(st)),
                      f"{name(ctx, a)[0].upper() + name(ctx, a)[1:]} is annotated as {st}.",
                      parents=[parent] if ctx.node(parent) else [], objects=[a.id]))
    return out


def same_lane(ctx: TeacherContext) -> list[QA]:
    """per.same_lane.vN (with a lane map): is a visible vehicle's centre inside the ego's lane, ahead or behind?"""
    lane = ctx.frame.meta.get("ego_lane")
    if not _is_log(ctx) or not lane:
        return []
    out = []
    for a in _visible(ctx):
        m = lane["agents"].get(str(a.id))
        if a.category not in TURNING_CATEGORIES or m is None:
            continue
        both = m["edge_m"] < SAME_LANE_BAND_M
        parent = f"per.category.v{a.id}"
        out.append(qa(f"per.same_lane.v{a.id}", "per.same_lane", "perception",
                      f"Is {name(ctx, a)} in the ego vehicle's lane (ahead or behind)?",
                      BooleanAnswer(value=m["inside"], accept_both=both),
                      f"By the lane map its centre is {'inside' if m['inside'] else 'outside'} the ego's lane, "
                      f"{m['edge_m']:.1f} m from its edge" + (": near the edge, both answers accepted." if both else "."),
                      parents=[parent] if ctx.node(parent) else [], objects=[a.id], edge_m=m["edge_m"]))
    return out


# --------------------------------------------------------------------------- prediction


def future_state(ctx: TeacherContext) -> list[QA]:
    """pred.future_state.vN (vehicles, cycles): stationary / go straight / turn left / turn right over H."""
    if not _is_log(ctx):
        return []
    out = []
    for a in _visible(ctx):
        track = ctx.frame.meta.get("tracks", {}).get(str(a.id), [])
        if a.category not in TURNING_CATEGORIES or not track or track[-1][0] < ctx.horizon_s - HORIZON_TOL_S:
            continue
        t0, x0, y0, h0 = track[0]
        moved = max(math.hypot(x - x0, y - y0) for _, x, y, _ in track)
        turn = math.remainder(track[-1][3] - h0, math.tau)
        label, ok = _turn_options(turn, ("go straight", "turn left", "turn right"))
        if moved < STATIONARY_M:
            label = "stationary"
        ok = ({"stationary"} if moved < STATIONARY_M + STATIONARY_BAND_M else set()) | (
            ok if moved > STATIONARY_M - STATIONARY_BAND_M else set())
        ok.add(label)
        t = track[-1][0] - t0
        parent = f"per.category.v{a.id}"
        out.append(qa(f"pred.future_state.v{a.id}", "pred.future_state", "prediction",
                      f"Over the next {ctx.horizon_s:g} s, will {name(ctx, a)} stay stationary, go straight, turn left "
                      "or turn right?",
                      ChoiceAnswer(options=FUTURE_STATES, acceptable=sorted(FUTURE_STATES.index(x) for x in ok),
                                   preferred=FUTURE_STATES.index(label)),
                      f"In the recording it moves {moved:.1f} m and its heading changes by {math.degrees(turn):+.0f} "
                      f"degrees in {t:g} s (stationary below {STATIONARY_M:g} m, a turn beyond "
                      f"{math.degrees(TURN_RAD):.0f} degrees)."
                      + (" Near a threshold: both answers accepted." if len(ok) > 1 else ""),
                      parents=[parent] if ctx.node(parent) else [], objects=[a.id], moved_m=round(moved, 2),
                      heading_change_rad=round(turn, 3)))
    return out


# --------------------------------------------------------------------------- behavior


def direction(ctx: TeacherContext) -> list[QA]:
    """beh.direction: does the ego go straight, turn left or turn right over H (its recorded heading change)?"""
    fut = ego_future(ctx.frame, ctx.horizon_s) if _is_log(ctx) else []
    if not fut:
        return []
    end = fut[-1]
    if math.hypot(end["rel_x_m"], end["rel_y_m"]) < EGO_MOVES_M:
        return []
    d = end["heading_rad"]
    label, ok = _turn_options(d, ("go straight", "turn left", "turn right"))
    return [qa("beh.direction", "beh.direction", "behavior",
               f"Over the next {ctx.horizon_s:g} s, does the ego go straight, turn left or turn right?",
               ChoiceAnswer(options=TURNS, acceptable=sorted(TURNS.index(x) for x in ok), preferred=TURNS.index(label)),
               f"The recorded ego's heading changes by {math.degrees(d):+.0f} degrees in {end['t_s']:g} s "
               f"(a turn beyond {math.degrees(TURN_RAD):.0f} degrees)."
               + (" Near the threshold: both answers accepted." if len(ok) > 1 else ""),
               parents=[q for q in ("plan.action",) if ctx.node(q)], heading_change_rad=round(d, 3))]

