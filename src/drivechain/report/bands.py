"""Each family's documented band in words (docs/questions.md, docs/planning.md), from the teacher's constants,
and what the band did to a given node (both answers accepted, ambiguous, optional vehicles)."""

from __future__ import annotations

from drivechain.schema import QA
from drivechain.teacher import bands as b


def _band_texts() -> dict[str, str]:
    from drivechain.teacher.families import behavior, planning
    from drivechain.teacher.planners import lookahead

    return {
        "per.vehicle_side": f"centres within {b.AHEAD_BAND_M:g} m along the lane: ahead and behind both accepted",
        "per.vehicle_lane": f"within {b.LANE_STRADDLE_BAND:g} lane widths of a lane boundary: both lanes accepted",
        "per.lead_vehicle": f"a rival lead within {b.LEAD_TIE_M:g} m (or straddling): ambiguous, not scored",
        "per.lead_distance": (f"tolerance {b.LEAD_DISTANCE_ABS_TOL_M:g} m or {b.LEAD_DISTANCE_REL_TOL:.0%}; "
                              "ambiguous with the lead"),
        "per.lead_speed": (f"|speed difference| {b.SAME_SPEED_MPS - b.SAME_SPEED_BAND_MPS:g}-"
                           f"{b.SAME_SPEED_MPS + b.SAME_SPEED_BAND_MPS:g} m/s: 'about the same' and the neighbour"),
        "per.lane_free": f"gap {b.LANE_FREE_GAP_M:g} ± {b.LANE_FREE_BAND_M:g} m, or a straddler that flips it: yes and no",
        "per.count": (f"a vehicle at {b.EXISTS_RANGE_M:g} ± {b.EXISTS_BAND_M:g} m, straddling or alongside: "
                      "ambiguous, not scored"),
        "per.exists": f"a vehicle at {b.EXISTS_RANGE_M:g} ± {b.EXISTS_BAND_M:g} m or a straddler: yes and no",
        "per.refer": f"a runner-up within {b.REFER_TIE_M:g} m or straddling: ambiguous, not scored",
        "pred.cut_in": f"closest approach within {b.CUT_IN_BAND_M:g} m of half a lane width: yes and no",
        "pred.motion": (f"|mean acceleration| {b.ACCEL_MPS2 - b.ACCEL_BAND_MPS2:g}-{b.ACCEL_MPS2 + b.ACCEL_BAND_MPS2:g}"
                        " m/s²: 'steady' and the neighbour"),
        "pred.ttc_lead": (f"tolerance {b.TTC_ABS_TOL_S:g} s or {b.TTC_REL_TOL:.0%}; closing speed near "
                          f"{b.TTC_MIN_CLOSING_MPS:g} m/s or TTC near {b.TTC_MAX_S:g} s: ambiguous"),
        "pred.near_ego": f"closest approach {b.NEAR_EGO_M:g} ± {b.NEAR_EGO_BAND_M:g} m: naming it or not both fine",
        "pred.cross_first": f"arrival times within {b.CROSS_ORDER_BAND_S:g} s or paths 2-3 m apart: yes and no",
        "plan.safe": f"no collision and |safety margin| < {lookahead.SAFE_BAND_M:g} m: yes and no",
        "plan.action": "the planners' vote: every action some planner recommends inside the safe set is accepted",
        "plan.danger": f"top risk within {planning.DANGER_BAND_M:g} m of the danger limit: ambiguous",
        "beh.longitudinal": (f"speed change within {behavior.DV_MPS:g} ± {behavior.DV_BAND_MPS:g} m/s: both "
                             "neighbouring classes"),
    }


_TEXTS: dict[str, str] | None = None


def band_of(qa: QA) -> str:
    """The family's band in words plus what applies to this node ('' when the family has none)."""
    global _TEXTS
    if _TEXTS is None:
        try:
            _TEXTS = _band_texts()
        except (ImportError, AttributeError):  # a renamed constant must not break the report
            _TEXTS = {}
    text = _TEXTS.get(qa.family, "")
    a = qa.answer
    here = ""
    if qa.ambiguous:
        here = "this frame is inside the band: ambiguous, not scored"
    elif getattr(a, "accept_both", False):
        here = "this frame is inside the band: yes and no both accepted"
    elif a.type == "choice" and len(a.acceptable) > 1:
        here = "accepted here: " + ", ".join(a.options[i] for i in a.acceptable)
    elif a.type == "objects" and a.optional_ids:
        here = "inside the band here (may be named or not): " + ", ".join(f"vehicle {i}" for i in a.optional_ids)
    return "; ".join(p for p in (text, here) if p)
