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


@pytest.mark.parametrize("level", [0, 3])
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
