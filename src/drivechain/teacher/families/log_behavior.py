"""Behavior families of recorded logs, from what the recorded ego really did over H (thresholds and
bands of the simulator behavior families, plus the turn at the junction, _log_ego.py)."""

from __future__ import annotations

import math

from drivechain.schema import QA, ChoiceAnswer
from drivechain.teacher.context import TeacherContext
from drivechain.teacher.families.log_annotations import direction
from drivechain.teacher.families import _log as L
from drivechain.teacher.families._log_ego import ego_future, lane_change, turn
from drivechain.teacher.families.behavior import LATERAL, LONGITUDINAL, longitudinal_classes

B = "behavior"
TURNS = ["turn left", "go straight", "turn right"]


def _parents(ctx: TeacherContext) -> list[str]:
    return ["plan.action"] if ctx.node("plan.action") else []


def longitudinal(ctx: TeacherContext) -> list[QA]:
    """beh.longitudinal on logs: the recorded ego's speed change over H."""
    fut = ego_future(ctx.frame, ctx.horizon_s) if L.is_log(ctx.frame) else []
    if not fut:
        return []
    v0, v1 = ctx.frame.ego.speed_mps, fut[-1]["speed_mps"]
    label, ok = longitudinal_classes(v0, v1)
    return [QA(
        qid="beh.longitudinal", family="beh.longitudinal", stage=B,
        question=f"Over the next {ctx.horizon_s:g} s, should the ego accelerate, keep its speed, decelerate or stop?",
        answer=ChoiceAnswer(options=LONGITUDINAL, acceptable=sorted(LONGITUDINAL.index(x) for x in ok),
                            preferred=LONGITUDINAL.index(label)),
        explanation=f"The recorded expert went from {v0:.1f} to {v1:.1f} m/s in {ctx.horizon_s:g} s.",
        parents=_parents(ctx), meta={"speed_now_mps": round(v0, 3), "speed_end_mps": round(v1, 3)},
    )]


def lateral(ctx: TeacherContext) -> list[QA]:
    """beh.lateral on logs: the recorded ego's lane change over H (map lane ids)."""
    if not L.is_log(ctx.frame) or not ego_future(ctx.frame, ctx.horizon_s):
        return []
    move, unsure = lane_change(ctx.frame, ctx.horizon_s)
    if move is None and unsure:
        return []  # through a junction or onto another road: no lane to keep or change
    label = {"LANE_LEFT": LATERAL[1], "LANE_RIGHT": LATERAL[2]}.get(move or "", LATERAL[0])
    ok = {label} | ({LATERAL[0]} if unsure else set())
    return [QA(
        qid="beh.lateral", family="beh.lateral", stage=B,
        question="Should the ego keep its lane, change to the left lane or change to the right lane?",
        answer=ChoiceAnswer(options=LATERAL, acceptable=sorted(LATERAL.index(x) for x in ok), preferred=LATERAL.index(label)),
        explanation=f"Over {ctx.horizon_s:g} s the recorded expert's lane id says: {label}."
        + (" It crosses the line only at the end: keeping the lane is accepted too." if unsure else ""),
        parents=_parents(ctx),
    )]


def junction_turn(ctx: TeacherContext) -> list[QA]:
    """beh.turn: at the junction the route names next, does the ego turn left, go straight or turn right?"""
    frame = ctx.frame
    if not L.is_log(frame) or frame.meta.get("command_near") not in (1, 2, 3):
        return []
    got = turn(frame)
    if got is None:
        return []
    pref, ok, dh = got
    return [QA(
        qid="beh.turn", family="beh.turn", stage=B,
        question="At the junction ahead, will the ego turn left, go straight or turn right?",
        answer=ChoiceAnswer(options=TURNS, acceptable=sorted(ok), preferred=pref),
        explanation=f"Along its recorded path the ego's heading changes by {math.degrees(dh):+.0f} degrees "
                    f"(left positive; a turn beyond 30 +- 10 degrees).",
        parents=_parents(ctx) + (["per.junction_ahead"] if ctx.node("per.junction_ahead") else []),
    )]


FAMILIES = [longitudinal, lateral, junction_turn, direction]
