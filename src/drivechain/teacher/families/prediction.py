"""Prediction families over the horizon H = TeacherContext.horizon_s (Frame.horizon_s, 3 s by default).

All read Frame.future: a privileged forward simulation in which the ego keeps its lane and speed
(IDLE) and every other vehicle follows its own driver model. Only visible agents are asked about.
Thresholds and bands: teacher/bands.py.
"""

from __future__ import annotations

import math

from drivechain.schema import QA, Agent, BooleanAnswer, ChoiceAnswer, NumberAnswer, ObjectsAnswer
from drivechain.teacher import bands
from drivechain.teacher.context import TeacherContext
from drivechain.teacher.families._common import in_band, lane_members, qa, r1, visible_vehicles
from drivechain.teacher.geometry import first_crossing, road_view, route_ahead

P = "prediction"


def _visible(ctx: TeacherContext) -> list[Agent]:
    return [a for a in visible_vehicles(ctx.frame.agents) if ctx.frame.future.get(a.id)]


def cut_in(ctx: TeacherContext) -> list[QA]:
    """pred.cut_in.vN: will an adjacent-lane vehicle's centre enter the ego lane AHEAD of the ego within H s?

    Entering = its centre comes within half a lane width of the ego lane's centre line while its centre
    is ahead of the (future) ego's; entering within AHEAD_BAND_M of alongside, or within CUT_IN_BAND_M
    of the lane edge, accepts both answers. A vehicle merging in behind the ego is not a cut-in.
    """
    view = road_view(ctx.frame)
    if view is None:
        return []
    h, half = ctx.horizon_s, view.width_m / 2
    out = []
    for a in _visible(ctx):
        pos = view.locate(a)
        if 0 in pos.offsets() or not pos.offsets() & {1, -1} or abs(pos.ds_m) > bands.CUT_IN_RANGE_M:
            continue
        future = [s for s in ctx.frame.future[a.id] if s.t_s <= h + 1e-9]
        lats = [(abs(view.locate_future(a, s).d_left_m), s.rel_x_m) for s in future]
        ahead = [lat for lat, rel_x in lats if rel_x > bands.AHEAD_BAND_M]
        near_alongside = [lat for lat, rel_x in lats if abs(rel_x) <= bands.AHEAD_BAND_M]
        closest = min(ahead, default=math.inf)
        enters = closest < half
        both = in_band(closest, half, bands.CUT_IN_BAND_M) or (
            not enters and min(near_alongside, default=math.inf) < half + bands.CUT_IN_BAND_M)
        side = "left" if pos.d_left_m > 0 else "right"
        if math.isfinite(closest):
            how = (f"while ahead of the ego its centre comes as close as {closest:.1f} m to the ego lane's centre line "
                   f"(the lane's edge is {half:.1f} m away), so it {'enters' if enters else 'stays out of'} the ego "
                   "lane ahead of the ego")
        else:
            how = "it is never ahead of the ego, so it cannot cut in ahead of it"
        out.append(qa(
            f"pred.cut_in.v{a.id}", "pred.cut_in", P,
            f"Will vehicle {a.id}, now in the {side} lane, cut in: enter the ego vehicle's lane ahead of the ego "
            f"within the next {h:g} s?",
            BooleanAnswer(value=enters, accept_both=both),
            f"Over the next {h:g} s {how}." + (" Close to the edge or alongside: both answers accepted." if both else ""),
            parents=[f"per.vehicle_lane.v{a.id}"], objects=[a.id],
            closest_lateral_m=r1(closest) if math.isfinite(closest) else None))
    return out


def motion(ctx: TeacherContext) -> list[QA]:
    """pred.motion.vN: accelerating / steady / braking, from the mean acceleration over H."""
    options = ["accelerating", "steady", "braking"]
    thr, band = bands.ACCEL_MPS2, bands.ACCEL_BAND_MPS2
    out = []
    for a in _visible(ctx):
        last = ctx.frame.future[a.id][-1]
        acc = (last.speed_mps - a.speed_mps) / last.t_s
        preferred = 1 if abs(acc) < thr else (0 if acc > 0 else 2)
        acceptable = {preferred}
        if in_band(abs(acc), thr, band):
            acceptable |= {1, 0 if acc > 0 else 2}
        out.append(qa(
            f"pred.motion.v{a.id}", "pred.motion", P,
            f"Over the next {ctx.horizon_s:g} s, will vehicle {a.id} accelerate, keep a steady speed or brake?",
            ChoiceAnswer(options=options, acceptable=sorted(acceptable), preferred=preferred),
            f"Its speed goes from {a.speed_mps:.1f} to {last.speed_mps:.1f} m/s in {last.t_s:g} s "
            f"({acc:+.2f} m/s^2; steady below {thr:g} m/s^2).",
            parents=["per.vehicles"], objects=[a.id], mean_accel_mps2=round(acc, 2)))
    return out


def ttc_lead(ctx: TeacherContext) -> list[QA]:
    """pred.ttc_lead: constant-velocity time to collision with the lead vehicle [s], none if not closing."""
    view = road_view(ctx.frame)
    node = ctx.node("per.lead_vehicle")
    if view is None or node is None or not isinstance(node.answer, ObjectsAnswer) or not node.answer.ids:
        return []
    vid = node.answer.ids[0]
    lead = view.locate(ctx.frame.agent(vid))  # type: ignore[arg-type]
    closing = ctx.frame.ego.speed_mps - lead.agent.speed_mps
    gap = max(lead.gap_m, 0.0)
    ttc = gap / closing if closing > bands.TTC_MIN_CLOSING_MPS else None
    ambiguous = node.ambiguous or in_band(closing, bands.TTC_MIN_CLOSING_MPS, bands.TTC_CLOSING_BAND_MPS)
    if ttc is not None and ttc > bands.TTC_MAX_S:
        ambiguous = ambiguous or ttc < bands.TTC_MAX_S * 1.2
        ttc = None
    elif ttc is not None and ttc > bands.TTC_MAX_S * 0.8:
        ambiguous = True
    why = (f"the gap of {gap:.1f} m closes at {closing:.1f} m/s, so the time to collision is {ttc:.1f} s"
           if ttc is not None else f"the ego is not closing on it (closing speed {closing:+.1f} m/s): none")
    return [qa("pred.ttc_lead", "pred.ttc_lead", P,
               f"If both keep their current speeds, in how many seconds would the ego vehicle reach the lead "
               f"vehicle {vid}? Answer none if it is not closing in.",
               NumberAnswer(value=None if ttc is None else round(ttc, 2), unit="s",
                            abs_tol=bands.TTC_ABS_TOL_S, rel_tol=bands.TTC_REL_TOL),
               f"Lead vehicle {vid}: {why}.", parents=["per.lead_distance", "per.lead_speed"] + ctx.qids("per.closing.ego_ahead"),
               objects=[vid], ambiguous=ambiguous)]


def near_ego(ctx: TeacherContext) -> list[QA]:
    """pred.near_ego: vehicles whose centre comes within D m of the ego's within H s (band optional)."""
    d, band, h = bands.NEAR_EGO_M, bands.NEAR_EGO_BAND_M, ctx.horizon_s
    sure, optional, closest = [], [], {}
    for a in _visible(ctx):
        dists = [math.hypot(a.rel_x_m, a.rel_y_m)] + [
            math.hypot(s.rel_x_m, s.rel_y_m) for s in ctx.frame.future[a.id] if s.t_s <= h + 1e-9]
        closest[a.id] = min(dists)
        if in_band(closest[a.id], d, band):
            optional.append(a.id)
        elif closest[a.id] < d:
            sure.append(a.id)
    listing = ", ".join(f"vehicle {i} ({closest[i]:.1f} m)" for i in sure) or "none"
    return [qa("pred.near_ego", "pred.near_ego", P,
               f"Which vehicles will come within {d:g} m of the ego vehicle (centre to centre) in the next {h:g} s, "
               "if the ego keeps its lane and speed?",
               ObjectsAnswer(ids=sure, optional_ids=optional),
               f"Closest approaches: {listing}."
               + (f" Vehicles {optional} come within {d:g}+-{band:g} m: not penalised either way." if optional else ""),
               parents=["per.vehicles"], objects=sure + optional)]


def _ego_path(frame) -> list[tuple[float, float, float]]:
    """The ego's (x, y, t) path: its IDLE future over H, then its route for EGO_ROUTE_AHEAD_M more.

    Beyond H the ego is timed at its last future speed (a stopped ego never gets there), so a vehicle
    crossing the ego's route ahead of it counts even where the ego itself needs more than H to arrive.
    """
    path = [(frame.ego.x_m, frame.ego.y_m, 0.0)] + [(s.x_m, s.y_m, s.t_s) for s in frame.future[0]]
    last = frame.future[0][-1]
    tail = route_ahead(frame, last.lane_id, last.x_m, last.y_m, bands.EGO_ROUTE_AHEAD_M)
    speed = max(last.speed_mps, bands.EGO_STOPPED_MPS)
    path += [(x, y, last.t_s + s_m / speed) for x, y, s_m in tail if s_m > 0]
    return path


def crossing_band(hit) -> bool:
    """Both answers hold: arrivals within CROSS_ORDER_BAND_S, or a contact that only grazes the radius."""
    return (abs(hit.t_other_s - hit.t_ego_s) < bands.CROSS_ORDER_BAND_S
            or hit.closest_m > bands.PATH_CROSS_RADIUS_M - bands.PATH_CROSS_GRAZE_M)


def cross_first(ctx: TeacherContext) -> list[QA]:
    """pred.cross_first.vN (intersection, roundabout): does X cross the ego's path before the ego?"""
    frame = ctx.frame
    if frame.scenario not in bands.CROSSING_SCENARIOS or not frame.future.get(0):
        return []
    h = ctx.horizon_s
    ego_path = _ego_path(frame)
    out = []
    for a in _visible(ctx):
        path = [(a.x_m, a.y_m, 0.0)] + [(s.x_m, s.y_m, s.t_s) for s in frame.future[a.id]]
        hit = first_crossing(ego_path, path, other_heading_rad=a.heading_rad)
        wide = hit or first_crossing(ego_path, path, bands.PATH_CROSS_RADIUS_M + bands.PATH_CROSS_BAND_M,
                                     other_heading_rad=a.heading_rad)
        if wide is not None and wide.angle_rad < bands.PATH_CROSS_MIN_ANGLE_RAD:
            continue  # following or merging, not crossing: the question does not fit
        q = (f"If the ego keeps its lane and speed, will vehicle {a.id} cross the ego vehicle's path within the "
             f"next {h:g} s, before the ego gets there?")
        if hit is None:
            both = wide is not None
            out.append(qa(f"pred.cross_first.v{a.id}", "pred.cross_first", P, q,
                          BooleanAnswer(value=False, accept_both=both),
                          f"Its path does not meet the ego's path within {h:g} s."
                          + (" It passes close to it: both answers accepted." if both else ""),
                          parents=["per.vehicles"], objects=[a.id]))
            continue
        first = hit.t_other_s < hit.t_ego_s
        both = crossing_band(hit)
        out.append(qa(f"pred.cross_first.v{a.id}", "pred.cross_first", P, q,
                      BooleanAnswer(value=first, accept_both=both),
                      f"The paths cross at ({hit.x_m:.1f}, {hit.y_m:.1f}); vehicle {a.id} gets there at "
                      f"{hit.t_other_s:.1f} s and the ego at {hit.t_ego_s:.1f} s."
                      + (" Nearly together, or the paths only graze: both answers accepted." if both else ""),
                      parents=["per.vehicles"], objects=[a.id],
                      t_other_s=round(hit.t_other_s, 2), t_ego_s=round(hit.t_ego_s, 2)))
    return out


FAMILIES = [cut_in, motion, ttc_lead, near_ego, cross_first]
