"""Perception families: lanes, visible vehicles, lead vehicle, lane-change gaps, counts, referring.

Lane-based families apply on straight multi-lane roads (highway, merge, exit); elsewhere they emit
nothing. Only visible agents are asked about. Thresholds and bands: teacher/bands.py.
"""

from __future__ import annotations

from drivechain.schema import QA, BooleanAnswer, ChoiceAnswer, NumberAnswer, ObjectsAnswer
from drivechain.teacher import bands, rss
from drivechain.teacher.context import TeacherContext
from drivechain.teacher.families._common import in_band, lane_members, lane_phrase, qa, r1, visible_vehicles
from drivechain.teacher.families.gaps import gaps
from drivechain.teacher.geometry import LanePosition, project, road_view

P = "perception"
SIDES = {1: "left", -1: "right"}
LANE_OPTIONS = ["two or more lanes to the left", "left lane", "ego lane", "right lane", "two or more lanes to the right"]


def _lane_option(offset: int) -> int:
    return 2 - max(-2, min(2, offset))


def _edges_in_image(frame, view) -> tuple[bool, bool] | None:
    """Are the road's outermost lanes (their centre lines beside the ego) inside the image? None without camera data."""
    cam, size = frame.meta.get("camera"), frame.meta.get("image_size")
    if not cam or not size:
        return None
    import math

    scale, (cx, cy) = float(cam["scaling_px_per_m"]), cam["centering"]
    ego = frame.ego
    ox, oy = ego.x_m - cx * size[0] / scale, ego.y_m - cy * size[1] / scale
    _, d_ego = project(view.ego_lane.polyline_m, ego.x_m, ego.y_m)
    w, k, n = view.width_m, view.ego_index + 1, view.lane_count
    # left of heading h in highway-env's y-down world is (sin h, -cos h)
    lx, ly = math.sin(ego.heading_rad), -math.cos(ego.heading_rad)

    def inside(off_left_m: float) -> bool:
        px, py = (ego.x_m + lx * off_left_m - ox) * scale, (ego.y_m + ly * off_left_m - oy) * scale
        return 0.0 <= px <= size[0] and 0.0 <= py <= size[1]

    # an outermost lane whose centre line is in the image can be counted (its edge line may be a few pixels off)
    return inside((k - 1) * w - d_ego), inside(-((n - k) * w + d_ego))


def lanes(ctx: TeacherContext) -> list[QA]:
    """per.lanes (number of lanes in the ego's direction) and per.ego_lane (1-based from the left).

    Read from the image: per.lanes needs both outermost lanes in the image and per.ego_lane the
    leftmost one (on the 6-lane exit road they never both are); otherwise the node is ambiguous.
    """
    view = road_view(ctx.frame)
    if view is None:
        return []
    n, k = view.lane_count, view.ego_index + 1
    edges = _edges_in_image(ctx.frame, view)
    left_seen, right_seen = edges if edges is not None else (True, True)
    off = " The image does not show both outermost lanes, so the count cannot be read from it: ambiguous."
    left_off = " The image does not show the leftmost lane: ambiguous."
    return [
        qa("per.lanes", "per.lanes", P,
           "How many lanes does the road have in the ego vehicle's direction of travel at its position?",
           NumberAnswer(value=n, unit="lanes", abs_tol=0),
           f"The ego's road section has {n} lanes side by side." + ("" if left_seen and right_seen else off),
           ambiguous=not (left_seen and right_seen)),
        qa("per.ego_lane", "per.ego_lane", P,
           "Which lane is the ego vehicle in, counting from the left with the leftmost lane as 1?",
           NumberAnswer(value=k, unit="(lane number from the left)", abs_tol=0),
           f"There are {n} lanes and the ego is in lane {k} counting from the left." + ("" if left_seen else left_off),
           parents=["per.lanes"], ambiguous=not left_seen),
    ]


def vehicles(ctx: TeacherContext) -> list[QA]:
    """per.vehicles: every visible vehicle with its ego-relative position [m]."""
    seen = visible_vehicles(ctx.frame.agents)
    ids = [a.id for a in seen]
    positions = [(r1(a.rel_x_m), r1(a.rel_y_m)) for a in seen]
    listing = "; ".join(f"vehicle {a.id} at x={p[0]} m, y={p[1]} m" for a, p in zip(seen, positions)) or "none"
    return [qa("per.vehicles", "per.vehicles", P,
               "Which vehicles are visible in the image? Give each one's number (its id mark) and its position "
               "relative to the ego vehicle in metres (x forward, y to the left).",
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


def _rss_short_m(p: LanePosition, ego_speed_mps: float) -> tuple[float, float]:
    """(gap - RSS longitudinal distance, that distance) [m] between the ego and a vehicle, at the current speeds."""
    v = p.agent.speed_mps
    required = rss.longitudinal_m(ego_speed_mps, v) if p.ds_m >= 0 else rss.longitudinal_m(v, ego_speed_mps)
    return p.gap_m - required, required


def lane_free(ctx: TeacherContext) -> list[QA]:
    """per.lane_free.left/right: every visible vehicle in that lane keeps its RSS distance at the current speeds.

    Ahead of the ego the ego is the rear vehicle, behind it the other one (teacher/rss.py). A gap within
    LANE_FREE_BAND_M of its RSS distance, or a vehicle half in that lane, accepts both answers; so does
    a frame where the lane change's look-ahead (plan.safe.LANE_*) disagrees because of a vehicle in
    that lane (its speed changes over the horizon), so the child never contradicts its parent.
    """
    view = road_view(ctx.frame)
    if view is None:
        return []
    out = []
    band = bands.LANE_FREE_BAND_M
    v_ego = ctx.frame.ego.speed_mps
    for offset, side in SIDES.items():
        q = (f"Is the {side} lane free for a lane change now, i.e. does every vehicle in it keep at least its "
             "safe (RSS) distance from the ego at the current speeds?")
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
        sure = [(p, *_rss_short_m(p, v_ego)) for p in m.sure]
        unsure = [(p, *_rss_short_m(p, v_ego)) for p in m.unsure]
        free = all(short >= 0 for _, short, _ in sure)
        both = any(abs(short) <= band for _, short, _ in sure) or (free and any(short < band for _, short, _ in unsure))
        blockers = sorted({p.agent.id for p, short, _ in sure + unsure if short < band})
        worst = min(sure, key=lambda r: r[1], default=None)
        if worst is None:
            why = "no visible vehicle is in it"
        else:
            p, short, req = worst
            where = "ahead" if p.ds_m >= 0 else "behind"
            why = (f"the tightest vehicle in it, vehicle {p.agent.id}, is {p.gap_m:.1f} m {where} (bumper to bumper) "
                   f"where RSS needs {req:.1f} m at {v_ego:.1f} m/s (ego) and {p.agent.speed_mps:.1f} m/s")
        note = " Near the RSS distance: both answers accepted." if both else ""
        disagree = _lookahead_disagrees(ctx, offset, free, view) if not both else None
        if disagree:
            both, note = True, f" {disagree} both answers accepted."
        out.append(qa(qid, "per.lane_free", P, q, BooleanAnswer(value=free, accept_both=both),
                      f"The {side} lane exists and {why}; free means every vehicle keeps its RSS distance." + note,
                      parents=["per.ego_lane", "per.vehicles"] + ctx.qids(f"per.gap.{side}_") + ctx.qids(f"per.closing.{side}_"),
                      objects=blockers))
    return out


def _lookahead_disagrees(ctx: TeacherContext, offset: int, free: bool, view) -> str | None:
    """Why the lane change's look-ahead contradicts ``free`` through a vehicle in that lane, or None."""
    if ctx.world is None:
        return None
    from drivechain.teacher.families.planning import lane_change_cause, planning_labels

    labels = planning_labels(ctx)
    action = "LANE_LEFT" if offset == 1 else "LANE_RIGHT"
    check = labels.checks.get(action) if labels is not None else None
    if check is None or check.safe == free:
        return None
    cause, outside = lane_change_cause(ctx, check, view)
    if not check.safe and outside:
        return None  # the child names a cause outside that lane: no contradiction
    verdict = "safe" if check.safe else "unsafe"
    return (f"Over the next {ctx.horizon_s:g} s the speeds in that lane change and the simulated lane change is "
            f"{verdict}:")


def _closed(ctx: TeacherContext, offset: int) -> bool:
    """The source says the lane change toward ``offset`` is impossible although the lane exists."""
    action = "LANE_LEFT" if offset == 1 else "LANE_RIGHT"
    frame = ctx.frame
    return bool(frame.available_actions) and action in frame.actions and action not in frame.available_actions


def _vehicles(n: int) -> str:
    """'1 vehicle is' / '3 vehicles are'."""
    return f"{n} vehicle is" if n == 1 else f"{n} vehicles are"


def counts(ctx: TeacherContext) -> list[QA]:
    """NuScenes-QA style: per.count.<lane>_ahead, per.exists.<side>_behind, per.count.near."""
    frame = ctx.frame
    out: list[QA] = []
    seen = visible_vehicles(frame.agents)
    dist = {a.id: (a.rel_x_m ** 2 + a.rel_y_m ** 2) ** 0.5 for a in seen}
    near = [a for a in seen if dist[a.id] <= bands.EXISTS_RANGE_M]
    edge = sorted(i for i, d in dist.items() if in_band(d, bands.EXISTS_RANGE_M, bands.COUNT_NEAR_BAND_M))
    out.append(qa("per.count.near", "per.count", P,
                  f"How many vehicles visible in the image are within {bands.EXISTS_RANGE_M:g} m of the ego vehicle "
                  "(centre to centre)?",
                  NumberAnswer(value=len(near), unit="vehicles", abs_tol=len(edge)),
                  f"{_vehicles(len(near))} visible within {bands.EXISTS_RANGE_M:g} m."
                  + (f" {_vehicles(len(edge)).capitalize()} within {bands.COUNT_NEAR_BAND_M:g} m of that range: "
                     f"the count may be off by {len(edge)}." if edge else ""),
                  parents=["per.vehicles"], objects=[a.id for a in near]))
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
                      f"{_vehicles(len(m.sure))} visible ahead in {name}."
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
            rel = "ahead of" if side == "ahead" else "behind"
            q = (f"Among the vehicles visible in the image, which one is the closest {rel} the ego vehicle in "
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


# per.gap / per.closing (gaps.py) name per.refer's vehicles and are per.lane_free's parents: that order
FAMILIES = [lanes, vehicles, vehicle_relations, lead_vehicle, counts, referring, gaps, lane_free]
