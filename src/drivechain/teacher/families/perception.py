"""Perception families: lanes, visible vehicles, lead vehicle, lane-change gaps, counts, referring.

Lane-based families apply on straight multi-lane roads (highway, merge, exit); elsewhere they emit
nothing. Only visible agents are asked about. Thresholds and bands: teacher/bands.py.
"""

from __future__ import annotations

from drivechain.schema import QA, BooleanAnswer, ChoiceAnswer, NumberAnswer, ObjectsAnswer
from drivechain.teacher import bands
from drivechain.teacher.context import TeacherContext
from drivechain.teacher.families._common import in_band, lane_members, lane_phrase, qa, r1, visible_vehicles
from drivechain.teacher.geometry import LanePosition, road_view

P = "perception"
SIDES = {1: "left", -1: "right"}
LANE_OPTIONS = ["two or more lanes to the left", "left lane", "ego lane", "right lane", "two or more lanes to the right"]


def _lane_option(offset: int) -> int:
    return 2 - max(-2, min(2, offset))


def lanes(ctx: TeacherContext) -> list[QA]:
    """per.lanes (number of lanes in the ego's direction) and per.ego_lane (1-based from the left)."""
    view = road_view(ctx.frame)
    if view is None:
        return []
    n, k = view.lane_count, view.ego_index + 1
    return [
        qa("per.lanes", "per.lanes", P,
           "How many lanes does the road have in the ego vehicle's direction of travel at its position?",
           NumberAnswer(value=n, unit="lanes", abs_tol=0),
           f"The ego's road section has {n} lanes side by side."),
        qa("per.ego_lane", "per.ego_lane", P,
           "Which lane is the ego vehicle in, counting from the left with the leftmost lane as 1?",
           NumberAnswer(value=k, unit="lane from the left", abs_tol=0),
           f"There are {n} lanes and the ego is in lane {k} counting from the left.",
           parents=["per.lanes"]),
    ]


def vehicles(ctx: TeacherContext) -> list[QA]:
    """per.vehicles: every visible vehicle with its ego-relative position [m]."""
    seen = visible_vehicles(ctx.frame.agents)
    ids = [a.id for a in seen]
    positions = [(r1(a.rel_x_m), r1(a.rel_y_m)) for a in seen]
    listing = "; ".join(f"vehicle {a.id} at x={p[0]} m, y={p[1]} m" for a, p in zip(seen, positions)) or "none"
    return [qa("per.vehicles", "per.vehicles", P,
               "Which vehicles are visible around the ego vehicle? Give each one's number and position relative "
               "to the ego (x metres forward, y metres to the left).",
               ObjectsAnswer(ids=ids, positions_m=positions),
               f"Visible vehicles: {listing}.", objects=ids)]


def vehicle_relations(ctx: TeacherContext) -> list[QA]:
    """per.vehicle_side.vN (ahead/behind) everywhere; per.vehicle_lane.vN on lane roads."""
    view = road_view(ctx.frame)
    out: list[QA] = []
    for a in visible_vehicles(ctx.frame.agents):
        pos = view.locate(a) if view is not None else None
        ds = pos.ds_m if pos is not None else a.rel_x_m
        preferred = 0 if ds > 0 else 1
        both = abs(ds) < bands.AHEAD_BAND_M
        out.append(qa(
            f"per.vehicle_side.v{a.id}", "per.vehicle_side", P,
            f"Is vehicle {a.id} ahead of or behind the ego vehicle?",
            ChoiceAnswer(options=["ahead", "behind"], acceptable=[0, 1] if both else [preferred], preferred=preferred),
            f"Vehicle {a.id}'s centre is {abs(ds):.1f} m {'ahead of' if ds > 0 else 'behind'} the ego's centre"
            + (" (nearly alongside: both answers accepted)." if both else "."),
            parents=["per.vehicles"], objects=[a.id]))
        if pos is not None:
            out.append(_vehicle_lane(pos))
    return out


def _vehicle_lane(pos: LanePosition) -> QA:
    vid = pos.agent.id
    acceptable = sorted({_lane_option(o) for o in pos.offsets()})
    preferred = _lane_option(pos.lane_offset)
    note = " It is on a lane boundary, so both lanes are accepted." if pos.straddling else ""
    return qa(
        f"per.vehicle_lane.v{vid}", "per.vehicle_lane", P,
        f"Which lane is vehicle {vid} in, relative to the ego vehicle's lane?",
        ChoiceAnswer(options=LANE_OPTIONS, acceptable=acceptable, preferred=preferred),
        f"Vehicle {vid}'s centre is {pos.d_left_m:+.1f} m to the left of the ego lane's centre line, "
        f"i.e. in the {LANE_OPTIONS[preferred]}.{note}",
        parents=["per.vehicles", "per.ego_lane"], objects=[vid])


def _lead(ctx: TeacherContext) -> tuple[LanePosition | None, bool, str]:
    """The lead vehicle (nearest visible vehicle ahead in the ego lane), whether ambiguous, why."""
    view = road_view(ctx.frame)
    assert view is not None
    m = lane_members(view, 0, "ahead")
    cands = sorted(m.sure + m.unsure, key=lambda p: (p.ds_m, p.agent.id))
    if not m.sure:
        return None, bool(m.unsure), "no visible vehicle is clearly ahead in the ego lane"
    lead = m.sure[0]
    rivals = [p for p in cands if p is not lead and p.ds_m < lead.ds_m + bands.LEAD_TIE_M]
    why = ""
    if rivals:
        why = f" vehicle {rivals[0].agent.id} is on a lane boundary or within {bands.LEAD_TIE_M} m of it"
    return lead, bool(rivals), why


def lead_vehicle(ctx: TeacherContext) -> list[QA]:
    """per.lead_vehicle (objects), per.lead_distance (m, bumper to bumper), per.lead_speed (choice)."""
    if road_view(ctx.frame) is None:
        return []
    lead, ambiguous, why = _lead(ctx)
    q = ("Which vehicle is the lead vehicle, the nearest one ahead in the ego vehicle's lane among those visible in "
         "the image? Answer none if no vehicle ahead in the ego lane is visible.")
    if lead is None:
        return [qa("per.lead_vehicle", "per.lead_vehicle", P, q, ObjectsAnswer(ids=[]),
                   f"None: {why}.", parents=["per.vehicles"], ambiguous=ambiguous)]
    vid, gap = lead.agent.id, lead.gap_m
    nodes = [qa("per.lead_vehicle", "per.lead_vehicle", P, q,
                ObjectsAnswer(ids=[vid], positions_m=[(r1(lead.agent.rel_x_m), r1(lead.agent.rel_y_m))]),
                f"Vehicle {vid} is the nearest vehicle ahead in the ego lane ({lead.ds_m:.1f} m centre to centre)."
                + (f" Ambiguous:{why}." if ambiguous else ""),
                parents=["per.vehicles"], objects=[vid], ambiguous=ambiguous)]
    nodes.append(qa("per.lead_distance", "per.lead_distance", P,
                    f"How far ahead is the lead vehicle {vid}, bumper to bumper along the lane, in metres?",
                    NumberAnswer(value=r1(gap), unit="m", abs_tol=bands.LEAD_DISTANCE_ABS_TOL_M,
                                 rel_tol=bands.LEAD_DISTANCE_REL_TOL),
                    f"Centre distance {lead.ds_m:.1f} m minus half of each vehicle's length gives {gap:.1f} m.",
                    parents=["per.lead_vehicle"], objects=[vid], ambiguous=ambiguous))
    dv = lead.agent.speed_mps - ctx.frame.ego.speed_mps
    options = ["faster", "about the same speed", "slower"]
    preferred = 1 if abs(dv) < bands.SAME_SPEED_MPS else (0 if dv > 0 else 2)
    acceptable = {preferred}
    if in_band(abs(dv), bands.SAME_SPEED_MPS, bands.SAME_SPEED_BAND_MPS):
        acceptable |= {1, 0 if dv > 0 else 2}
    nodes.append(qa("per.lead_speed", "per.lead_speed", P,
                    f"Is the lead vehicle {vid} faster than, slower than or about as fast as the ego vehicle?",
                    ChoiceAnswer(options=options, acceptable=sorted(acceptable), preferred=preferred),
                    f"Vehicle {vid} drives {lead.agent.speed_mps:.1f} m/s, the ego {ctx.frame.ego.speed_mps:.1f} m/s "
                    f"(difference {dv:+.1f} m/s; 'about the same' below {bands.SAME_SPEED_MPS} m/s).",
                    parents=["per.lead_vehicle"], objects=[vid], ambiguous=ambiguous))
    return nodes


def lane_free(ctx: TeacherContext) -> list[QA]:
    """per.lane_free.left/right: no visible vehicle in that lane within LANE_FREE_GAP_M (bumper gap)."""
    view = road_view(ctx.frame)
    if view is None:
        return []
    out = []
    thr, band = bands.LANE_FREE_GAP_M, bands.LANE_FREE_BAND_M
    for offset, side in SIDES.items():
        q = f"Is the {side} lane free for a lane change (no vehicle within {thr:g} m ahead or behind in it)?"
        qid = f"per.lane_free.{side}"
        if not view.lane_exists(offset):
            out.append(qa(qid, "per.lane_free", P, q, BooleanAnswer(value=False),
                          f"There is no lane to the {side} of the ego.", parents=["per.ego_lane"]))
            continue
        if _closed(ctx, offset):
            # e.g. merge's on-ramp lane beside the motorway: it exists but the ego may not enter it
            out.append(qa(qid, "per.lane_free", P, q, BooleanAnswer(value=False),
                          f"The {side} lane is closed to the ego here (the simulator does not allow a lane change "
                          "into it, e.g. a merge lane that ends).", parents=["per.ego_lane"]))
            continue
        m = lane_members(view, offset, "any")
        sure_gap = min((p.gap_m for p in m.sure), default=float("inf"))
        unsure_gap = min((p.gap_m for p in m.unsure), default=float("inf"))
        free = sure_gap >= thr
        # inside the band, or a vehicle half in that lane that would flip the answer: both accepted
        both = in_band(sure_gap, thr, band) or (free and unsure_gap < thr + band)
        blockers = sorted({p.agent.id for p in m.sure + m.unsure if p.gap_m < thr + band})
        why = (f"the nearest vehicle in it is {sure_gap:.1f} m away (bumper to bumper)" if m.sure
               else "no visible vehicle is in it")
        out.append(qa(qid, "per.lane_free", P, q, BooleanAnswer(value=free, accept_both=both),
                      f"The {side} lane exists and {why}; free means at least {thr:g} m."
                      + (" Near the threshold: both answers accepted." if both else ""),
                      parents=["per.ego_lane", "per.vehicles"], objects=blockers))
    return out


def _closed(ctx: TeacherContext, offset: int) -> bool:
    """The source says the lane change toward ``offset`` is impossible although the lane exists."""
    action = "LANE_LEFT" if offset == 1 else "LANE_RIGHT"
    frame = ctx.frame
    return bool(frame.available_actions) and action in frame.actions and action not in frame.available_actions


def counts(ctx: TeacherContext) -> list[QA]:
    """NuScenes-QA style: per.count.<lane>_ahead, per.exists.<side>_behind, per.count.near."""
    frame = ctx.frame
    out: list[QA] = []
    near = [a for a in visible_vehicles(frame.agents) if (a.rel_x_m ** 2 + a.rel_y_m ** 2) ** 0.5 <= bands.EXISTS_RANGE_M]
    edge = [a.id for a in visible_vehicles(frame.agents)
            if in_band((a.rel_x_m ** 2 + a.rel_y_m ** 2) ** 0.5, bands.EXISTS_RANGE_M, bands.EXISTS_BAND_M)]
    out.append(qa("per.count.near", "per.count", P,
                  f"How many vehicles visible in the image are within {bands.EXISTS_RANGE_M:g} m of the ego vehicle "
                  "(centre to centre)?",
                  NumberAnswer(value=len(near), unit="vehicles", abs_tol=0),
                  f"{len(near)} visible vehicles are within {bands.EXISTS_RANGE_M:g} m."
                  + (f" Vehicles {edge} are near that range: ambiguous." if edge else ""),
                  parents=["per.vehicles"], objects=[a.id for a in near], ambiguous=bool(edge)))
    view = road_view(frame)
    if view is None:
        return out
    for offset in (1, 0, -1):
        if not view.lane_exists(offset):
            continue
        m = lane_members(view, offset, "ahead")
        name = lane_phrase(offset).replace("your", "the ego vehicle's")
        out.append(qa(f"per.count.{('left', 'ego', 'right')[1 - offset]}_ahead", "per.count", P,
                      f"How many visible vehicles are ahead of the ego vehicle in {name}?",
                      NumberAnswer(value=len(m.sure), unit="vehicles", abs_tol=0),
                      f"{len(m.sure)} visible vehicles are ahead in {name}."
                      + (" Some are on a lane boundary or alongside: ambiguous." if m.unsure else ""),
                      parents=["per.ego_lane", "per.vehicles"], objects=[p.agent.id for p in m.sure],
                      ambiguous=bool(m.unsure)))
    rng, band = bands.EXISTS_RANGE_M, bands.EXISTS_BAND_M
    for offset, side in SIDES.items():
        if not view.lane_exists(offset):
            continue
        m = lane_members(view, offset, "behind")
        sure = [p for p in m.sure if -p.ds_m <= rng]
        edge_ids = [p.agent.id for p in m.sure if in_band(-p.ds_m, rng, band)]
        unsure = [p.agent.id for p in m.unsure if -p.ds_m <= rng + band]
        value = bool(sure)
        both = bool(edge_ids) or (not value and bool(unsure)) or (value and not [p for p in sure if p.agent.id not in edge_ids] and bool(unsure))
        out.append(qa(f"per.exists.{side}_behind", "per.exists", P,
                      f"Is there a vehicle behind the ego vehicle in the {side} lane within {rng:g} m?",
                      BooleanAnswer(value=value, accept_both=both),
                      (f"Vehicle {sure[0].agent.id} is {-sure[0].ds_m:.1f} m behind in the {side} lane."
                       if sure else f"No visible vehicle is within {rng:g} m behind in the {side} lane.")
                      + (" A vehicle is near the range or a lane boundary: both answers accepted." if both else ""),
                      parents=["per.ego_lane", "per.vehicles"], objects=[p.agent.id for p in sure]))
    return out


def referring(ctx: TeacherContext) -> list[QA]:
    """NuPrompt style: per.refer.closest_<ahead|behind>_<left|right> -> the vehicle, or none."""
    view = road_view(ctx.frame)
    if view is None:
        return []
    out = []
    for offset, lane in SIDES.items():
        if not view.lane_exists(offset):
            continue
        for side in ("ahead", "behind"):
            m = lane_members(view, offset, side)
            cands = sorted(m.sure + m.unsure, key=lambda p: (abs(p.ds_m), p.agent.id))
            target = m.sure[0] if m.sure else None
            q = (f"Among the vehicles visible in the image, which one is the closest {side} of the ego vehicle in "
                 f"the {lane} lane? Answer none if there is none.")
            qid = f"per.refer.closest_{side}_{lane}"
            if target is None:
                out.append(qa(qid, "per.refer", P, q, ObjectsAnswer(ids=[]),
                              f"No visible vehicle is clearly {side} in the {lane} lane.",
                              parents=["per.vehicles", "per.ego_lane"], ambiguous=bool(m.unsure)))
                continue
            rivals = [p for p in cands if p is not target and abs(p.ds_m) < abs(target.ds_m) + bands.REFER_TIE_M]
            vid = target.agent.id
            out.append(qa(qid, "per.refer", P, q,
                          ObjectsAnswer(ids=[vid], positions_m=[(r1(target.agent.rel_x_m), r1(target.agent.rel_y_m))]),
                          f"Vehicle {vid} is {abs(target.ds_m):.1f} m {side} in the {lane} lane, the closest there."
                          + (f" Vehicle {rivals[0].agent.id} is nearly as close or on a boundary: ambiguous." if rivals else ""),
                          parents=["per.vehicles", "per.ego_lane"], objects=[vid], ambiguous=bool(rivals)))
    return out


FAMILIES = [lanes, vehicles, vehicle_relations, lead_vehicle, lane_free, counts, referring]
