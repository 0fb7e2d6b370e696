"""Perception families of recorded logs: lead vehicle, traffic light, stop sign, junction, pedestrian in
path, static obstacle. Each emits nothing on simulator frames. Thresholds: teacher/families/_log.py.
"""

from __future__ import annotations

import math

from drivechain.schema import QA, BooleanAnswer, ChoiceAnswer, NumberAnswer, ObjectsAnswer
from drivechain.teacher import bands
from drivechain.teacher.context import TeacherContext
from drivechain.teacher.families.log_annotations import category, same_lane, status
from drivechain.teacher.families import _log as L
from drivechain.teacher.families._common import qa, r1, visible_vehicles

P = "perception"
LIGHT_OPTIONS = ["red", "yellow", "green", "no traffic light controls the ego's lane"]


def lead_vehicle(ctx: TeacherContext) -> list[QA]:
    """per.lead_vehicle / per.lead_distance on logs: nearest visible vehicle ahead in the ego lane (ids + path)."""
    frame = ctx.frame
    if not L.is_log(frame):
        return []
    sure, unsure = [], []
    for a in visible_vehicles(frame.agents):
        inside, edge, s, _ = L.in_ego_lane(frame, a)
        if not 0 < s <= L.LEAD_RANGE_M + L.RANGE_BAND_M:
            continue
        if inside and not edge and s <= L.LEAD_RANGE_M:
            sure.append((s, a))
        elif inside or edge:
            unsure.append((s, a))
    sure.sort(key=lambda p: (p[0], p[1].id))
    q = ("Which vehicle is the lead vehicle, the nearest one ahead in the ego vehicle's lane among those visible in "
         "the images? Answer none if no vehicle ahead in the ego lane is visible.")
    if not sure:
        return [qa("per.lead_vehicle", "per.lead_vehicle", P, q, ObjectsAnswer(ids=[]),
                   "None: no visible vehicle is clearly ahead in the ego lane.", parents=["per.vehicles"],
                   ambiguous=bool(unsure))]
    s, lead = sure[0]
    rivals = [a for s2, a in sure[1:] + unsure if a.id != lead.id and s2 < s + L.LEAD_TIE_M]
    ambiguous = bool(rivals)
    gap = s - (lead.length_m + frame.ego.length_m) / 2
    why = f" Vehicle {rivals[0].id} is on a lane boundary or nearly as close: ambiguous." if rivals else ""
    return [
        qa("per.lead_vehicle", "per.lead_vehicle", P, q,
           ObjectsAnswer(ids=[lead.id], positions_m=[(r1(lead.rel_x_m), r1(lead.rel_y_m))]),
           f"Vehicle {lead.id} is {s:.1f} m ahead along the ego's path, in the ego's lane by the map's lane ids "
           f"and by its offset from the path.{why}", parents=["per.vehicles"], objects=[lead.id], ambiguous=ambiguous),
        qa("per.lead_distance", "per.lead_distance", P,
           f"How far ahead is the lead vehicle {lead.id}, bumper to bumper along the lane, in metres?",
           NumberAnswer(value=r1(gap), unit="m", abs_tol=bands.LEAD_DISTANCE_ABS_TOL_M, rel_tol=bands.LEAD_DISTANCE_REL_TOL),
           f"Centre distance {s:.1f} m along the path minus half of each vehicle's length gives {gap:.1f} m.",
           parents=["per.lead_vehicle"], objects=[lead.id], ambiguous=ambiguous),
    ]


LANE_OPTIONS = ["two or more lanes to the left", "left lane", "ego lane", "right lane", "two or more lanes to the right"]


def vehicle_lane(ctx: TeacherContext) -> list[QA]:
    """per.vehicle_lane.vN on logs: the vehicle's lane relative to the ego's, from the map's lane ids.

    Asked for visible vehicles on the ego's road and direction; where the ego's path stands for its
    lane and the offset from it (in lane widths, rounded) names another lane, both are accepted.
    """
    frame = ctx.frame
    if not L.is_log(frame):
        return []
    out = []
    for a in visible_vehicles(frame.agents):
        off = L.lane_offset(frame.ego, a)
        if off is None:
            continue
        pick = 2 - max(-2, min(2, off))
        ok = {pick}
        if L.path_is_lane(frame):
            _, d = L.path_sd(frame, a.rel_x_m, a.rel_y_m)
            ok.add(2 - max(-2, min(2, round(d / L.LANE_WIDTH_M))))
        out.append(qa(f"per.vehicle_lane.v{a.id}", "per.vehicle_lane", P,
                      f"Which lane is vehicle {a.id} in, relative to the ego vehicle's lane?",
                      ChoiceAnswer(options=LANE_OPTIONS, acceptable=sorted(ok), preferred=pick),
                      (f"The map puts vehicle {a.id} {abs(off)} lane(s) to the {'left' if off > 0 else 'right'} of "
                       "the ego's lane." if off else f"The map puts vehicle {a.id} in the ego's lane.")
                      + (" Its offset from the ego's path names a neighbouring lane: both accepted." if len(ok) > 1 else ""),
                      parents=["per.vehicles"], objects=[a.id], lane_offset=off))
    return out


def _lanes(frame) -> list[int]:
    """Lane offsets that exist: the ego's, the left one when |lane id| > 1, the right one when seen."""
    return [o for o, ok in ((1, "LANE_LEFT" in frame.available_actions), (0, True),
                            (-1, "LANE_RIGHT" in frame.available_actions)) if ok]


def lane_counts_and_refer(ctx: TeacherContext) -> list[QA]:
    """per.count.<lane>_ahead and per.refer.closest_<ahead|behind>_<left|right> on logs, by the map's lane ids."""
    frame = ctx.frame
    if not L.is_log(frame) or L.lane_ids(frame.ego.lane_id) is None:
        return []
    members = [(a, *L.lane_member(frame, a)) for a in visible_vehicles(frame.agents)]
    out = []
    names = {1: "left", 0: "ego", -1: "right"}
    for off in _lanes(frame):
        lane = [(a, unsure, s) for a, o, unsure, s in members if o == off]
        ahead = [a.id for a, unsure, s in lane if s > 0 and not unsure]
        shaky = [a.id for a, unsure, s in lane if unsure and s > -L.AHEAD_BAND_M]
        where = {1: "the left lane", 0: "the ego vehicle's lane", -1: "the right lane"}[off]
        out.append(qa(f"per.count.{names[off]}_ahead", "per.count", P,
                      f"How many visible vehicles are ahead of the ego vehicle in {where}?",
                      NumberAnswer(value=len(ahead), unit="vehicles", abs_tol=0),
                      f"{len(ahead)} visible vehicles are ahead in {where} (the map's lane ids)."
                      + (" Some are alongside or on a lane boundary: ambiguous." if shaky else ""),
                      parents=["per.vehicles"], objects=ahead, ambiguous=bool(shaky)))
        if off == 0:
            continue
        for side in ("ahead", "behind"):
            on_side = [(abs(s), a.id, unsure or abs(s) < L.AHEAD_BAND_M) for a, unsure, s in lane
                       if (s > 0) == (side == "ahead") or abs(s) < L.AHEAD_BAND_M]
            cands = sorted(on_side)
            sure = [c for c in cands if not c[2]]
            q = (f"Among the vehicles visible in the images, which one is the closest {side} of the ego vehicle in "
                 f"the {names[off]} lane? Answer none if there is none.")
            qid = f"per.refer.closest_{side}_{names[off]}"
            if not sure:
                out.append(qa(qid, "per.refer", P, q, ObjectsAnswer(ids=[]),
                              f"No visible vehicle is clearly {side} in the {names[off]} lane.",
                              parents=["per.vehicles"], ambiguous=bool(cands)))
                continue
            dist, vid, _ = sure[0]
            rivals = [c for c in cands if c[1] != vid and c[0] < dist + L.LEAD_TIE_M]
            target = frame.agent(vid)
            out.append(qa(qid, "per.refer", P, q,
                          ObjectsAnswer(ids=[vid], positions_m=[(r1(target.rel_x_m), r1(target.rel_y_m))]),  # type: ignore[union-attr]
                          f"Vehicle {vid} is {dist:.1f} m {side} in the {names[off]} lane, the closest there."
                          + (f" Vehicle {rivals[0][1]} is nearly as close or unsure: ambiguous." if rivals else ""),
                          parents=["per.vehicles"], objects=[vid], ambiguous=bool(rivals)))
    return out


def traffic_light(ctx: TeacherContext) -> list[QA]:
    """per.traffic_light: the state of the light that affects the ego (CARLA's affects_ego), or none;
    asked only when that light is inside a camera image."""
    frame = ctx.frame
    if not L.is_log(frame):
        return []
    light = L.traffic_light(frame)
    q = "What colour is the traffic light that controls the ego vehicle's lane?"
    if light is None:
        return [qa("per.traffic_light", "per.traffic_light", P, q,
                   ChoiceAnswer(options=LIGHT_OPTIONS, acceptable=[3], preferred=3),
                   "No traffic light affects the ego vehicle now (the recorder's affects_ego).")]
    if light.get("state") not in ("red", "yellow", "green") or not light.get("boxes"):
        return []  # off / unknown, or outside every image: nothing the image can be checked against
    i = LIGHT_OPTIONS.index(light["state"])
    return [qa("per.traffic_light", "per.traffic_light", P, q, ChoiceAnswer(options=LIGHT_OPTIONS, acceptable=[i], preferred=i),
               f"The light that affects the ego is {light['state']}; its stop line is "
               f"{L.stop_line_ahead_m(light):.1f} m ahead.", stop_line_m=round(L.stop_line_ahead_m(light), 1))]


def stop_sign(ctx: TeacherContext) -> list[QA]:
    """per.stop_sign: a stop sign that applies to the ego, its stop line within STOP_SIGN_RANGE_M ahead."""
    frame = ctx.frame
    if not L.is_log(frame):
        return []
    rng, band = L.STOP_SIGN_RANGE_M, L.RANGE_BAND_M
    ahead = sorted(L.stop_line_ahead_m(s) for s in L.stop_signs(frame) if L.stop_line_ahead_m(s) > 0)
    value = bool(ahead) and ahead[0] <= rng
    both = bool(ahead) and abs(ahead[0] - rng) <= band
    return [qa("per.stop_sign", "per.stop_sign", P,
               f"Is there a stop sign that applies to the ego vehicle within {rng:g} m ahead?",
               BooleanAnswer(value=value, accept_both=both),
               (f"A stop sign applies to the ego; its stop line is {ahead[0]:.1f} m ahead." if ahead
                else "No stop sign applies to the ego ahead.")
               + (" Near the range limit: both answers accepted." if both else ""))]


def junction_ahead(ctx: TeacherContext) -> list[QA]:
    """per.junction_ahead: the route's next junction command, or a light / stop sign's line, within range."""
    frame = ctx.frame
    if not L.is_log(frame) or frame.meta.get("command_near") is None:
        return []
    dists = []
    if frame.meta.get("command_near") in (1, 2, 3) and frame.meta.get("near_command_rel_m"):
        nx, ny = frame.meta["near_command_rel_m"]
        if nx > 0:
            dists.append(math.hypot(nx, ny))
    controls = ([L.traffic_light(frame)] if L.traffic_light(frame) else []) + L.stop_signs(frame)
    dists += [L.stop_line_ahead_m(s) for s in controls if L.stop_line_ahead_m(s) > 0]
    rng, band = L.JUNCTION_RANGE_M, L.RANGE_BAND_M
    d = min(dists) if dists else None
    value = d is not None and d <= rng
    both = d is not None and abs(d - rng) <= band
    return [qa("per.junction_ahead", "per.junction_ahead", P,
               f"Is the ego vehicle within {rng:g} m of a junction ahead?",
               BooleanAnswer(value=value, accept_both=both),
               (f"The route's next junction (junction command or stop line) is {d:.1f} m ahead." if d is not None
                else "Neither the route's next command nor a light or stop sign marks a junction ahead.")
               + (" Near the range limit: both answers accepted." if both else ""))]


def pedestrian_in_path(ctx: TeacherContext) -> list[QA]:
    """per.pedestrian_in_path: visible pedestrians inside the ego's path corridor ahead now."""
    frame = ctx.frame
    if not L.is_log(frame):
        return []
    sure, optional = [], []
    for a in L.pedestrians(frame):
        s, d = L.path_sd(frame, a.rel_x_m, a.rel_y_m)
        if s <= 0 or s > L.PED_RANGE_M + L.RANGE_BAND_M:
            continue
        edge = abs(abs(d) - L.PATH_HALF_WIDTH_M) <= L.PATH_BAND_M or abs(s - L.PED_RANGE_M) <= L.RANGE_BAND_M
        inside = abs(d) < L.PATH_HALF_WIDTH_M and s <= L.PED_RANGE_M
        if edge:
            optional.append(a.id)
        elif inside:
            sure.append(a.id)
    return [qa("per.pedestrian_in_path", "per.pedestrian_in_path", P,
               f"Which pedestrians are in the ego vehicle's path within {L.PED_RANGE_M:g} m ahead? Answer none if none.",
               ObjectsAnswer(ids=sure, optional_ids=optional),
               (f"Pedestrians {sure} are within {L.PATH_HALF_WIDTH_M:g} m of the ego's path ahead." if sure
                else "No pedestrian is in the ego's path ahead.")
               + (f" Pedestrians {optional} are on the corridor's edge: not penalised either way." if optional else ""),
               objects=sure + optional)]


def static_obstacle(ctx: TeacherContext) -> list[QA]:
    """per.static_obstacle: a parked / broken-down vehicle or roadwork object in the ego lane within range."""
    frame = ctx.frame
    if not L.is_log(frame):
        return []
    static = set(frame.meta.get("static_ids", []))
    rng, band = L.STATIC_RANGE_M, L.RANGE_BAND_M
    sure, edge_ids = [], []
    for a in sorted((a for a in frame.agents if a.visible and a.id in static), key=lambda a: a.id):
        inside, unsure, s, _ = L.in_ego_lane(frame, a)
        if s <= 0 or s > rng + band or not (inside or unsure):
            continue
        if unsure or abs(s - rng) <= band:
            edge_ids.append(a.id)
        else:
            sure.append((s, a.id))
    value = bool(sure)
    both = bool(edge_ids) and not sure
    return [qa("per.static_obstacle", "per.static_obstacle", P,
               f"Is there a stationary obstacle (a parked or broken-down vehicle, roadwork) in the ego vehicle's lane "
               f"within {rng:g} m ahead?",
               BooleanAnswer(value=value, accept_both=both),
               (f"Static object {sure[0][1]} stands {sure[0][0]:.1f} m ahead in the ego lane." if sure
                else "No static object stands in the ego lane ahead.")
               + (f" Objects {edge_ids} are on a lane edge or at the range limit: both answers accepted." if both else ""),
               objects=[i for _, i in sure] + edge_ids)]


FAMILIES = [vehicle_lane, lane_counts_and_refer, lead_vehicle, traffic_light, stop_sign, junction_ahead, pedestrian_in_path,
            static_obstacle, category, status, same_lane]
