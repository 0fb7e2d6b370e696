"""Perception families: the gap [m] and closing speed [m/s] to the vehicles a lane change or the lead depends on.

The safety labels (plan.safe.*, teacher/rss.py) rest on bumper-to-bumper gaps and on how fast they
close; these questions state those facts so a chain gives its child what the child uses:

- ``per.gap.<left|right>_<ahead|behind>``: the gap to the vehicle ``per.refer.closest_*`` names
  (the closest visible one on that side in that lane), bumper to bumper along the ego lane [m];
- ``per.closing.<left|right>_<ahead|behind>`` and ``per.closing.ego_ahead`` (the lead vehicle): the
  speed [m/s] at which that gap shrinks if both keep their current speeds (negative: it opens).

Lane roads only (teacher/geometry.road_view); tolerances in teacher/bands.py, rules in docs/questions.md.
"""

from __future__ import annotations

from drivechain.schema import QA, NumberAnswer, ObjectsAnswer
from drivechain.teacher import bands
from drivechain.teacher.context import TeacherContext
from drivechain.teacher.families._common import qa, r1
from drivechain.teacher.geometry import LanePosition, road_view

P = "perception"
SIDES = {1: "left", -1: "right"}


def closing_mps(p: LanePosition, ego_speed_mps: float) -> float:
    """Speed [m/s] at which the bumper gap between the ego and ``p`` shrinks at the current speeds."""
    v = p.agent.speed_mps
    return ego_speed_mps - v if p.ds_m >= 0 else v - ego_speed_mps


def _target(ctx: TeacherContext, qid: str) -> tuple[QA, int] | None:
    node = ctx.node(qid)
    if node is None or not isinstance(node.answer, ObjectsAnswer) or not node.answer.ids:
        return None
    return node, node.answer.ids[0]


def _closing_node(qid: str, parent: QA, p: LanePosition, v_ego: float, where: str) -> QA:
    vid, c = p.agent.id, closing_mps(p, v_ego)
    trend = "shrinks" if c > 0 else "opens" if c < 0 else "stays"
    return qa(qid, "per.closing", P,
              f"At what speed does the gap between the ego vehicle and vehicle {vid} ({where}) shrink, in m/s, if "
              "both keep their current speeds? Give a negative number if it grows.",
              NumberAnswer(value=r1(c), unit="m/s", abs_tol=bands.CLOSING_ABS_TOL_MPS),
              f"The ego drives {v_ego:.1f} m/s, vehicle {vid} drives {p.agent.speed_mps:.1f} m/s and is "
              f"{'ahead of' if p.ds_m >= 0 else 'behind'} the ego, so the gap {trend} at {abs(c):.1f} m/s.",
              parents=[parent.qid], objects=[vid], ambiguous=parent.ambiguous, ego_speed_mps=round(v_ego, 3))


def gaps(ctx: TeacherContext) -> list[QA]:
    """per.gap.* and per.closing.* for the closest visible vehicles in the side lanes, per.closing.ego_ahead."""
    view = road_view(ctx.frame)
    if view is None:
        return []
    v_ego = ctx.frame.ego.speed_mps
    out: list[QA] = []
    for offset, lane in SIDES.items():
        for side in ("ahead", "behind"):
            found = _target(ctx, f"per.refer.closest_{side}_{lane}")
            if found is None:
                continue
            parent, vid = found
            p = view.locate(ctx.frame.agent(vid))  # type: ignore[arg-type]
            where = f"the closest {side} in the {lane} lane"
            gap = p.gap_m
            out.append(qa(
                f"per.gap.{lane}_{side}", "per.gap", P,
                f"How far is vehicle {vid} ({where}) from the ego vehicle, bumper to bumper along the lane, in "
                "metres? Give a negative number if they overlap alongside.",
                NumberAnswer(value=r1(gap), unit="m", abs_tol=bands.LEAD_DISTANCE_ABS_TOL_M,
                             rel_tol=bands.LEAD_DISTANCE_REL_TOL),
                f"Vehicle {vid}'s centre is {abs(p.ds_m):.1f} m {side} of the ego's along the lane; minus half of "
                f"each vehicle's length the gap is {gap:.1f} m.",
                parents=[parent.qid], objects=[vid], ambiguous=parent.ambiguous, ego_speed_mps=round(v_ego, 3)))
            out.append(_closing_node(f"per.closing.{lane}_{side}", parent, p, v_ego, where))
    found = _target(ctx, "per.lead_vehicle")
    if found is not None:
        parent, vid = found
        out.append(_closing_node("per.closing.ego_ahead", parent, view.locate(ctx.frame.agent(vid)),  # type: ignore[arg-type]
                                 v_ego, "the lead vehicle"))
    return out

