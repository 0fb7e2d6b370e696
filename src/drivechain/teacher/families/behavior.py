"""Behavior families: the longitudinal and lateral behaviour implied by the voted plan.action.

beh.longitudinal: from the speed change over the action's decision step (1 s; afterwards the look-ahead's
ego follows IDM, which is the traffic's doing, not the action's) in each acceptable action's rollout:
final speed < STOP_MPS -> stop; dv > +DV_MPS accelerate; dv < -DV_MPS decelerate; else keep;
dv within DV_MPS +- DV_BAND_MPS (or the final speed within STOP_MPS +- STOP_BAND_MPS) accepts both
neighbouring answers. beh.lateral: LANE_LEFT -> left, LANE_RIGHT -> right, anything else -> keep.
"""

from __future__ import annotations

from drivechain.schema import QA, ChoiceAnswer
from drivechain.teacher.context import TeacherContext
from drivechain.teacher.families.planning import planning_labels

B = "behavior"
LONGITUDINAL = ["accelerate", "keep speed", "decelerate", "stop"]
LATERAL = ["keep lane", "change to the left lane", "change to the right lane"]
DV_MPS = 1.0
DV_BAND_MPS = 0.5
STOP_MPS = 0.5
STOP_BAND_MPS = 0.5


def longitudinal_classes(v0_mps: float, v1_mps: float) -> tuple[str, set[str]]:
    """(label, acceptable labels) for a speed change v0 -> v1 over the horizon, with the bands."""
    dv = v1_mps - v0_mps
    if v1_mps < STOP_MPS:
        label = "stop"
    elif dv > DV_MPS:
        label = "accelerate"
    elif dv < -DV_MPS:
        label = "decelerate"
    else:
        label = "keep speed"
    ok = {label}
    if abs(dv - DV_MPS) < DV_BAND_MPS:
        ok |= {"accelerate", "keep speed"}
    if abs(dv + DV_MPS) < DV_BAND_MPS:
        ok |= {"decelerate", "keep speed"}
    if abs(v1_mps - STOP_MPS) < STOP_BAND_MPS and dv < 0:
        ok |= {"stop", "decelerate"}
    return label, ok


def lateral_class(action: str) -> str:
    """The lateral behaviour of a meta-action."""
    return {"LANE_LEFT": LATERAL[1], "LANE_RIGHT": LATERAL[2]}.get(action, LATERAL[0])


def _plan(ctx: TeacherContext) -> tuple[str, list[str], bool] | None:
    node = ctx.node("plan.action")
    if node is None or not isinstance(node.answer, ChoiceAnswer):
        return None
    a = node.answer
    return a.options[a.preferred], [a.options[i] for i in a.acceptable], node.ambiguous


def longitudinal(ctx: TeacherContext) -> list[QA]:
    """beh.longitudinal: accelerate / keep speed / decelerate / stop over the next H s."""
    plan = _plan(ctx)
    labels = planning_labels(ctx)
    if plan is None or labels is None:
        return []
    preferred, acceptable, ambiguous = plan
    v0 = ctx.frame.ego.speed_mps

    def after(action: str) -> float:
        c = labels.checks[action]
        return c.speed_after_action_mps if c.speed_after_action_mps is not None else c.final_speed_mps

    label, ok = longitudinal_classes(v0, after(preferred))
    for a in acceptable:
        if a in labels.checks:
            ok |= longitudinal_classes(v0, after(a))[1]
    v1 = after(preferred)
    return [QA(
        qid="beh.longitudinal", family="beh.longitudinal", stage=B,
        question="Over the next second, should the ego accelerate, keep its speed, decelerate or stop?",
        answer=ChoiceAnswer(options=LONGITUDINAL, acceptable=sorted(LONGITUDINAL.index(x) for x in ok),
                            preferred=LONGITUDINAL.index(label)),
        explanation=f"The chosen action {preferred} takes the ego from {v0:.1f} to {v1:.1f} m/s in its 1 s decision step.",
        parents=["plan.action"], ambiguous=ambiguous,
        meta={"speed_now_mps": round(v0, 3), "speed_end_mps": round(v1, 3)},
    )]


def lateral(ctx: TeacherContext) -> list[QA]:
    """beh.lateral: keep lane / change left / change right."""
    plan = _plan(ctx)
    if plan is None or ctx.world is None:  # recorded logs label behavior from the ego's own future
        return []
    preferred, acceptable, ambiguous = plan
    label = lateral_class(preferred)
    ok = {label} | {lateral_class(a) for a in acceptable}
    return [QA(
        qid="beh.lateral", family="beh.lateral", stage=B,
        question="Should the ego keep its lane, change to the left lane or change to the right lane?",
        answer=ChoiceAnswer(options=LATERAL, acceptable=sorted(LATERAL.index(x) for x in ok),
                            preferred=LATERAL.index(label)),
        explanation=f"The chosen action is {preferred}: {label}.",
        parents=["plan.action"], ambiguous=ambiguous,
    )]


FAMILIES = [longitudinal, lateral]
