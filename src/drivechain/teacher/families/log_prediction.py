"""Prediction families of recorded logs, answered from the log's own future (where each agent really is
over the next H s, Frame.meta['tracks'] in the ego frame at the frame's instant). Frames too close to
the clip's end for the horizon (meta['prediction'] false) get none. Thresholds: _log.py.
"""

from __future__ import annotations

from drivechain.schema import QA, BooleanAnswer
from drivechain.teacher.context import TeacherContext
from drivechain.teacher.families.log_annotations import future_state
from drivechain.teacher.families import _log as L
from drivechain.teacher.families._common import qa, visible_vehicles

P = "prediction"


def _ready(ctx: TeacherContext) -> bool:
    return L.is_log(ctx.frame) and bool(ctx.frame.meta.get("prediction"))


def _closest_d(ctx: TeacherContext, agent_id: int) -> float | None:
    track = [p for p in L.future_track(ctx.frame, agent_id) if p[0] <= ctx.horizon_s + 1e-9]
    if len(track) < 2:
        return None
    return min(abs(L.path_sd(ctx.frame, x, y)[1]) for _, x, y in track)


def cut_in(ctx: TeacherContext) -> list[QA]:
    """pred.cut_in.vN on logs: will a vehicle now in a neighbouring lane enter the ego lane within H s?"""
    if not _ready(ctx) or not L.path_is_lane(ctx.frame):  # the path must stand for the ego lane
        return []
    h, half, band = ctx.horizon_s, L.HALF_LANE_M, L.LANE_BAND_M
    out = []
    for a in visible_vehicles(ctx.frame.agents):
        rel = L.lane_relation(ctx.frame.ego, a)
        s, d = L.path_sd(ctx.frame, a.rel_x_m, a.rel_y_m)
        if rel not in (1, -1) or abs(d) <= half + band or abs(s) > L.CUT_IN_RANGE_M:
            continue
        closest = _closest_d(ctx, a.id)
        if closest is None:
            continue
        enters = closest < half
        both = abs(closest - half) <= band
        side = "left" if rel == 1 else "right"
        out.append(qa(
            f"pred.cut_in.v{a.id}", "pred.cut_in", P,
            f"Will vehicle {a.id}, now in the {side} lane, enter the ego vehicle's lane within the next {h:g} s?",
            BooleanAnswer(value=enters, accept_both=both),
            f"In the recording its centre comes as close as {closest:.1f} m to the ego lane's centre (the ego's path; "
            f"the lane edge is {half:.1f} m away), so it {'enters' if enters else 'stays out of'} the ego lane."
            + (" Close to the edge: both answers accepted." if both else ""),
            parents=["per.vehicles"], objects=[a.id], closest_lateral_m=round(closest, 1)))
    return out


def pedestrian_enters_path(ctx: TeacherContext) -> list[QA]:
    """pred.pedestrian_enters_path.pN: will a visible pedestrian ahead be in the ego's path within H s?"""
    if not _ready(ctx):
        return []
    h, half, band = ctx.horizon_s, L.PATH_HALF_WIDTH_M, L.PATH_BAND_M
    out = []
    for a in L.pedestrians(ctx.frame):
        s, _ = L.path_sd(ctx.frame, a.rel_x_m, a.rel_y_m)
        if not 0 < s <= L.PED_RANGE_M:
            continue
        closest = _closest_d(ctx, a.id)
        if closest is None:
            continue
        enters = closest < half
        both = abs(closest - half) <= band
        out.append(qa(
            f"pred.pedestrian_enters_path.p{a.id}", "pred.pedestrian_enters_path", P,
            f"Will pedestrian {a.id} be in the ego vehicle's path within the next {h:g} s?",
            BooleanAnswer(value=enters, accept_both=both),
            f"In the recording the pedestrian comes within {closest:.1f} m of the ego's path (inside means closer "
            f"than {half:g} m)." + (" Close to the edge: both answers accepted." if both else ""),
            parents=["per.pedestrian_in_path"], objects=[a.id], closest_lateral_m=round(closest, 1)))
    return out


FAMILIES = [cut_in, pedestrian_enters_path, future_state]
