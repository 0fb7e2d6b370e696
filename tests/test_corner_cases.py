"""The corner-case library: each scripted hazard really happens in the rollout, at its difficulty."""

from __future__ import annotations

import pytest

from drivechain.sources.corner_cases import CASES, CORNER_CASES, corner_meta
from drivechain.sources.highway import HighwaySource
from drivechain.sources.scenarios import get_scenario


def _run(name: str, level: int, seed: int = 5, steps: int = 8, variant: str | None = None):
    """Drive IDLE from a seed (trying seeds until the variant matches); every step's frame + meta."""
    src = HighwaySource(name, env_config={"corner_level": level})
    for s in range(seed, seed + 40):
        src.reset(s)
        if variant is None or corner_meta(src.env)["corner"]["variant"] == variant:
            break
    out = []
    for _ in range(steps):
        out.append((src.frame(), corner_meta(src.env)["corner"]))
        if src.step("IDLE").done or src.env.vehicle.crashed:
            out.append((src.frame(), corner_meta(src.env)["corner"]))
            break
    src.close()
    return out


def _agent(frame, vid):
    return next((a for a in frame.agents if a.id == vid), None)


def test_every_case_is_a_scenario_with_ability_levels_and_critical_question():
    for case in CASES:
        spec = get_scenario(case.name)
        assert spec.env_id == case.env_id
        assert case.ability in ("merging", "overtaking", "emergency brake", "give way", "traffic signs")
        assert len(case.levels) >= 3
        ttcs = [lv["ttc_s"] for lv in case.levels]
        assert ttcs == sorted(ttcs, reverse=True) and ttcs[0] >= 4.0  # easy -> hard


@pytest.mark.parametrize("level", [1])
def test_hardbrake_lead_brakes_to_a_stop_at_the_level_ttc(level):
    rows = _run("hardbrake", level)
    meta = rows[-1][1]
    assert meta["triggered"]
    assert abs(meta["ttc_at_trigger_s"] - CORNER_CASES["hardbrake"].levels[level]["ttc_s"]) < 0.15
    first = rows[0][0]
    lead = _agent(first, meta["hazard_id"])
    assert lead.lane_id == first.ego.lane_id and lead.rel_x_m > 0 and lead.speed_mps > 20
    speeds = [_agent(f, meta["hazard_id"]).speed_mps for f, _ in rows if _agent(f, meta["hazard_id"])]
    # it brakes hard: >= 15 m/s lost (a standstill, unless the IDLE ego hits it first at the hard level)
    assert min(speeds) < speeds[0] - 15
    drops = [a - b for a, b in zip(speeds, speeds[1:])]
    assert max(drops) > 6.0  # ~7 m/s^2 over a 1 s step


@pytest.mark.parametrize("variant", ["left", "right"])
def test_cutin_enters_the_ego_lane_from_either_side(variant):
    rows = _run("cutin", 2, variant=variant)
    meta = rows[0][1]
    first = rows[0][0]
    cutter = _agent(first, meta["hazard_id"])
    assert cutter.lane_id != first.ego.lane_id and cutter.rel_x_m > 0
    assert (cutter.rel_y_m > 0) == (variant == "left")  # rel_y positive = left of the ego
    entered = [f.step for f, m in rows if m["triggered"] and _agent(f, m["hazard_id"])
               and _agent(f, m["hazard_id"]).lane_id == f.ego.lane_id]
    assert entered, "the cut-in never entered the ego lane"
    assert abs(rows[-1][1]["ttc_at_trigger_s"] - 2.0) < 0.3


def test_stalled_vehicle_is_revealed_when_the_vehicle_in_front_moves_out():
    rows = _run("stalled", 1)
    screen_id = rows[0][1]["extra_ids"][0]
    first = rows[0][0]
    assert _agent(first, screen_id).lane_id == first.ego.lane_id  # the lead before the reveal
    after = [(f, m) for f, m in rows if m["triggered"]]
    assert after, "the reveal never happened"
    f, m = after[-1]
    assert _agent(f, screen_id) is None or _agent(f, screen_id).lane_id != f.ego.lane_id
    stalled = _agent(f, m["hazard_id"])
    assert stalled is not None and stalled.speed_mps < 0.1 and stalled.lane_id == f.ego.lane_id
    assert abs(m["ttc_at_trigger_s"] - 3.0) < 0.3


def test_onramp_vehicle_merges_into_the_ego_lane_without_yielding():
    rows = _run("onramp", 1, steps=10)
    merged = [f for f, m in rows if m["triggered"] and _agent(f, m["hazard_id"])
              and _agent(f, m["hazard_id"]).lane_id == f.ego.lane_id and _agent(f, m["hazard_id"]).rel_x_m > 0]
    assert merged, "the on-ramp vehicle never entered the ego lane in front of it"
    assert merged[0].ego.lane_id == "b>c>1"
    assert 0 < rows[-1][1]["ttc_at_trigger_s"] < 5.0  # it turns in ahead of the ego, closing (measured TTC)


@pytest.mark.parametrize("variant", ["free", "occupied"])
def test_overtake_has_a_slow_lead_and_a_free_or_occupied_left_lane(variant):
    rows = _run("overtake", 0, steps=2, variant=variant)
    first, meta = rows[0]
    lead = _agent(first, meta["hazard_id"])
    assert lead.lane_id == first.ego.lane_id and lead.speed_mps < first.ego.speed_mps - 5
    left = [a for a in first.agents if a.rel_y_m > 2 and abs(a.rel_x_m) < 10]
    assert bool(left) == (variant == "occupied")


def test_same_seed_same_episode_and_level_drawn_from_the_seed():
    a, b = HighwaySource("cutin"), HighwaySource("cutin")
    levels = set()
    for seed in range(8):
        a.reset(seed)
        b.reset(seed)
        assert a.frame().model_dump() == b.frame().model_dump()
        levels.add(corner_meta(a.env)["corner"]["level"])
    assert len(levels) >= 2


def test_lookahead_does_not_foresee_an_unfired_hazard():
    src = HighwaySource("hardbrake", env_config={"corner_level": 0})
    src.reset(3)
    frame = src.frame()
    lead = corner_meta(src.env)["corner"]["hazard_id"]
    assert not corner_meta(src.env)["corner"]["triggered"]
    # the teacher's future (a look-ahead copy) keeps the lead cruising: a surprise stays a surprise
    assert min(s.speed_mps for s in frame.future[lead]) > 15
    for _ in range(4):
        src.step("IDLE")
    frame = src.frame()
    assert corner_meta(src.env)["corner"]["triggered"]
    assert frame.future[lead][-1].speed_mps < _agent(frame, lead).speed_mps - 5  # once fired, it is foreseen


def _meta(case, level, unavoidable=False):
    c = CORNER_CASES[case]
    return {"case": case, "ability": c.ability, "level": level, "params": dict(c.levels[level]),
            "unavoidable": unavoidable, "critical_qid": f"{c.critical}.v1"}


def test_open_loop_corner_block_scores_per_ability_and_level_and_excludes_unavoidable():
    from types import SimpleNamespace

    from drivechain.evaluation.corner_scores import corner_summary

    recs = [SimpleNamespace(frame=SimpleNamespace(frame_id=f"f{i}", meta={"corner": m}))
            for i, m in enumerate([_meta("cutin", 0), _meta("cutin", 3, unavoidable=True), _meta("overtake", 1)])]
    rows = []
    for fid, crit_score, other in (("f0", 1.0, 0.0), ("f1", 0.0, 0.0), ("f2", 0.0, 1.0)):
        crit = {"f0": "pred.cut_in.v1", "f1": "pred.cut_in.v1", "f2": "plan.safe.LANE_LEFT.v1"}[fid]
        for qid, score in ((crit, crit_score), ("per.vehicles", other)):
            rows.append({"frame_id": fid, "protocol": "transitions", "image": True, "type": "boolean",
                         "status": "ok", "qid": qid, "score": score})
    block = corner_summary(rows, recs)
    assert block["unavoidable_frames_excluded"] == 1
    assert block["by_ability"]["emergency brake"]["frames"] == 1  # the unavoidable cut-in frame is not scored
    assert block["by_ability"]["emergency brake"]["score"] == 0.5
    assert block["by_ability"]["emergency brake"]["critical"] == 1.0
    assert block["by_ability"]["overtaking"]["critical"] == 0.0
    assert set(block["by_level"]) == {"cutin L0 (TTC 4.0 s)", "overtake L1 (TTC 3.0 s)"}


def test_closed_loop_corner_block_reports_model_and_teacher_per_level():
    from drivechain.closedloop.corner import corner_block

    def ep(case, level, fault, unavoidable=False):
        return {"info": {"corner": _meta(case, level, unavoidable)},
                "metrics": {"driving_score": 0.6 if fault else 1.0, "at_fault_collision": fault, "success": not fault}}

    rows = [ep("hardbrake", 0, False), ep("hardbrake", 0, True), ep("hardbrake", 3, True, unavoidable=True)]
    teacher = [ep("hardbrake", 0, False), ep("hardbrake", 3, True, unavoidable=True)]
    block = corner_block(rows, teacher)
    cell = block["by_level"]["hardbrake L0 (TTC 4.0 s)"]
    assert cell["episodes"] == 2 and cell["at_fault_rate"] == 0.5 and cell["driving_score"] == 0.8
    assert "hardbrake L3 (TTC 1.5 s)" not in block["by_level"] and block["unavoidable_episodes_excluded"] == 1
    assert block["teacher_by_level"]["hardbrake L3 (TTC 1.5 s)"]["at_fault_rate"] == 1.0
    assert corner_block([], []) is None


@pytest.mark.parametrize("variant", ["left", "right"])
def test_crossing_vehicle_ignores_the_ego_priority(variant):
    rows = _run("crossing", 1, variant=variant)
    first, meta = rows[0]
    violator = _agent(first, meta["hazard_id"])
    assert (violator.rel_y_m > 0) == (variant == "left")
    assert first.ego.lane_id.startswith("o1") and violator.lane_id.split(">")[0] in ("o0", "o2")  # minor road
    speeds = [_agent(f, meta["hazard_id"]).speed_mps for f, _ in rows
              if _agent(f, meta["hazard_id"]) and not _agent(f, meta["hazard_id"]).crashed]
    assert len(speeds) >= 2 and min(speeds) > speeds[0] - 1.0  # it never yields before the impact
    assert rows[-1][0].ego.crashed  # an IDLE ego with priority is hit at the conflict point
