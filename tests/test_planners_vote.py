"""The vote rule on hand-made planner outputs (docs/planning.md "Vote")."""

from __future__ import annotations

from drivechain.teacher.planners.vote import PlannerResult, agreement_rates, vote


def _three(la: tuple[list[str], str | None], idm: tuple[list[str], str | None], ttc: tuple[list[str], str | None]):
    return [PlannerResult("lookahead", *la), PlannerResult("idm_mobil", *idm), PlannerResult("ttc_rules", *ttc)]


def test_unanimous_pick_is_preferred_and_alone_acceptable():
    rs = _three((["IDLE", "FASTER"], "FASTER"), (["FASTER"], "FASTER"), (["IDLE", "FASTER"], "FASTER"))
    v = vote(rs, rs[0])
    assert (v.preferred, v.acceptable, v.ambiguous, v.majority) == ("FASTER", ["FASTER"], False, True)
    assert v.votes == {"lookahead": "FASTER", "idm_mobil": "FASTER", "ttc_rules": "FASTER"}
    assert v.safe_sets["idm_mobil"] == ["FASTER"]


def test_majority_wins_and_safe_dissent_widens_acceptable():
    rs = _three((["IDLE", "SLOWER", "LANE_LEFT"], "IDLE"), (["SLOWER"], "SLOWER"), (["IDLE"], "IDLE"))
    v = vote(rs, rs[0])
    assert v.preferred == "IDLE" and not v.ambiguous
    assert v.acceptable == ["IDLE", "SLOWER"]


def test_unsafe_dissent_never_becomes_acceptable():
    rs = _three((["IDLE", "SLOWER"], "IDLE"), (["IDLE", "FASTER"], "FASTER"), (["IDLE"], "IDLE"))
    v = vote(rs, rs[0])
    assert v.preferred == "IDLE" and v.acceptable == ["IDLE"] and not v.ambiguous


def test_unsafe_majority_marks_ambiguous_and_falls_back_to_lookahead():
    rs = _three((["SLOWER"], "SLOWER"), (["IDLE", "FASTER"], "FASTER"), (["FASTER"], "FASTER"))
    v = vote(rs, rs[0])
    assert v.ambiguous and not v.majority
    assert v.preferred == "SLOWER" and v.acceptable == ["SLOWER"] and v.safe == ["SLOWER"]
    assert "unsafe" in v.reason


def test_three_way_split_is_scored_with_safe_votes_acceptable():
    rs = _three((["IDLE", "SLOWER", "LANE_LEFT"], "IDLE"), (["SLOWER"], "SLOWER"), (["LANE_LEFT"], "LANE_LEFT"))
    v = vote(rs, rs[0])
    assert not v.ambiguous and not v.majority and v.preferred == "IDLE"
    assert v.acceptable == ["IDLE", "SLOWER", "LANE_LEFT"]


def test_nothing_safe_is_ambiguous_without_a_preferred_action():
    rs = _three(([], None), (["IDLE"], "IDLE"), (["IDLE"], "IDLE"))
    v = vote(rs, rs[0])
    assert v.ambiguous and v.preferred is None and v.acceptable == [] and v.safe == []


def test_agreement_rates_count_majorities_and_pairs():
    agree = _three((["IDLE"], "IDLE"), (["IDLE"], "IDLE"), (["IDLE"], "IDLE"))
    split = _three((["IDLE", "SLOWER"], "IDLE"), (["SLOWER"], "SLOWER"), (["IDLE"], "FASTER"))
    rates = agreement_rates([agree, split, agree, split])
    assert rates["frames"] == 4
    assert rates["majority_rate"] == 0.5 and rates["unanimous_rate"] == 0.5
    assert rates["agree_lookahead_idm_mobil"] == 0.5 and rates["agree_lookahead_ttc_rules"] == 0.5


def test_idm_mobil_calls_normal_following_safe_and_a_closing_rear_end_unsafe():
    """IDM's braking term restores a 1.5 s gap even when nothing closes; safety is the kinematic braking needed."""
    from drivechain.schema import Agent, Frame
    from drivechain.teacher.planners import idm_mobil

    def frame(gap_m: float, lead_speed: float) -> Frame:
        ego = Agent(id=0, x_m=0.0, y_m=0.0, heading_rad=0.0, speed_mps=25.0, lane_id="0>1>1")
        lead = Agent(id=1, x_m=gap_m + 5.0, y_m=0.0, heading_rad=0.0, speed_mps=lead_speed, lane_id="0>1>1",
                     rel_x_m=gap_m + 5.0, rel_y_m=0.0)
        return Frame(frame_id="t/highway/0/0", source="t", scenario="highway", episode=0, step=0, seed=0, t_s=0.0,
                     ego=ego, agents=[lead], actions=["LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER"],
                     available_actions=["IDLE", "FASTER", "SLOWER"], meta={"ego_target_speed_mps": 25.0})

    following = idm_mobil.plan(frame(26.0, 23.0))  # 2 m/s closing, TTC 13 s: ordinary following
    assert "IDLE" in following.safe and following.meta["acc_mps2"] < -B_SAFE_SHOWN
    rear_end = idm_mobil.plan(frame(8.0, 5.0))  # 20 m/s closing on an 8 m gap
    assert "IDLE" not in rear_end.safe and "FASTER" not in rear_end.safe


B_SAFE_SHOWN = 4.0  # the old rule called IDLE unsafe because IDM "needed" more braking than this
