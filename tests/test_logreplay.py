"""Non-reactive log replay: speed / lateral profiles, overlap, each manoeuvre against scripted tracks."""

from __future__ import annotations

import math

import pytest

from drivechain.sources import logreplay as lr
from drivechain.sources.logreplay import BoxState, Path, Track, check, check_all, to_ego


def _still(agent_id: int, x: float, y: float, length: float = 4.6, width: float = 2.0) -> Track:
    return Track(agent_id, [BoxState(0.0, x, y, 0.0, length, width)])


def _moving(agent_id: int, x: float, y: float, vx: float, vy: float = 0.0, horizon: float = 3.0) -> Track:
    return Track(agent_id, [BoxState(t / 2, x + vx * t / 2, y + vy * t / 2, math.atan2(vy, vx) if vx or vy else 0.0, 4.6, 2.0)
                            for t in range(int(horizon * 2) + 1)])


STRAIGHT = Path([(x, 0.0) for x in range(1, 60)])
ACTIONS = list(lr.MANOEUVRES)


def test_speed_profiles_and_lane_change_offset():
    assert lr.speed_profile("KEEP", 10.0, 2.0) == (20.0, 10.0)
    s, v = lr.speed_profile("STOP", 10.0, 3.0)  # stops after 2.5 s, 12.5 m
    assert v == 0.0 and abs(s - 12.5) < 1e-9
    s, v = lr.speed_profile("SLOW_DOWN", 10.0, 1.0)
    assert abs(v - 8.0) < 1e-9 and abs(s - 9.0) < 1e-9
    assert lr.lateral_offset("LANE_LEFT", lr.LANE_CHANGE_S, 3.5) == pytest.approx(3.5)
    assert lr.lateral_offset("LANE_RIGHT", lr.LANE_CHANGE_S / 2, 3.5) == pytest.approx(-1.75)
    assert lr.lateral_offset("KEEP", 1.0, 3.5) == 0.0


def test_overlap_separating_axis():
    a = lr._corners(BoxState(0, 0, 0, 0, 4, 2))
    assert lr.overlap(a, lr._corners(BoxState(0, 3.9, 0, 0.3, 4, 2)))
    assert not lr.overlap(a, lr._corners(BoxState(0, 4.5, 0, 0.0, 4, 2)))
    assert not lr.overlap(a, lr._corners(BoxState(0, 3.0, 2.3, 0.0, 4, 2)))


def test_gap_between_rectangles_and_closest_approach():
    a = lr._corners(BoxState(0, 0, 0, 0, 4, 2))
    assert lr.gap_m(a, lr._corners(BoxState(0, 7.0, 0, 0, 4, 2))) == pytest.approx(3.0)
    assert lr.gap_m(a, lr._corners(BoxState(0, 0, 5.0, 0, 4, 2))) == pytest.approx(3.0)
    assert lr.gap_m(a, lr._corners(BoxState(0, 1.0, 0.5, 0, 4, 2))) == 0.0
    g, t = lr.closest_approach("KEEP", STRAIGHT, 10.0, _still(5, 40.0, 0.0), 3.0, 4.6, 2.0)
    assert g == pytest.approx(40.0 - 30.0 - 4.6, abs=1e-6) and t == pytest.approx(3.0)


def test_a_stopped_car_ahead_makes_keep_unsafe_and_stop_safe():
    checks = check_all(ACTIONS, STRAIGHT, 10.0, [_still(5, 25.0, 0.0)], 3.0, 4.6, 2.0)
    assert not checks["KEEP"].safe and checks["KEEP"].conflict_id == 5
    assert checks["STOP"].safe and not checks["STOP"].ambiguous  # stops after 12.5 m, 15 m of room
    assert checks["LANE_LEFT"].safe and checks["LANE_RIGHT"].safe


def test_the_braking_tail_catches_a_stop_that_comes_too_late():
    # 3 s at 20 m/s = 60 m; the car stands 75 m ahead: no contact within 3 s, but no room to stop after
    got = check("KEEP", STRAIGHT, 20.0, [_still(5, 75.0, 0.0)], 3.0, 4.6, 2.0)
    assert not got.safe and "braking" in got.reason


def test_a_car_in_the_left_lane_alongside_makes_only_the_left_change_unsafe():
    tracks = [_moving(2, 0.0, 3.5, 10.0)]
    checks = check_all(ACTIONS, STRAIGHT, 10.0, tracks, 3.0, 4.6, 2.0)
    assert not checks["LANE_LEFT"].safe
    assert checks["KEEP"].safe and checks["LANE_RIGHT"].safe


def test_a_follower_is_ignored_for_braking_but_not_for_a_lane_change_in_front_of_it():
    follower = _moving(3, -8.0, 0.0, 10.0)
    assert check("STOP", STRAIGHT, 10.0, [follower], 3.0, 4.6, 2.0).safe
    fast_left = _moving(4, -12.0, 3.5, 16.0)
    assert not check("LANE_LEFT", STRAIGHT, 10.0, [fast_left], 3.0, 4.6, 2.0).safe


def test_a_close_pass_is_ambiguous():
    # the neighbour's side sits 0.3..0.8 m beyond the tight margin: safe but inside the band
    side = 2.0 / 2 + lr.MARGIN_LAT_M + 0.3 + 1.0
    got = check("KEEP", STRAIGHT, 10.0, [_moving(6, 0.0, side, 10.0)], 3.0, 4.6, 2.0)
    assert got.safe and got.ambiguous


def test_the_ego_follows_a_curved_reference_path():
    arc = Path([(20 * math.sin(a / 20), 20 - 20 * math.cos(a / 20)) for a in range(1, 40)])
    # a parked car on the curve ahead (left of a straight line): KEEP on the curve hits it
    x, y = 20 * math.sin(1.0), 20 - 20 * math.cos(1.0)
    assert not check("KEEP", arc, 8.0, [_still(9, x, y)], 3.0, 4.6, 2.0).safe
    assert check("KEEP", STRAIGHT, 8.0, [_still(9, x, y)], 3.0, 4.6, 2.0).safe


def test_to_ego_in_left_and_right_handed_worlds():
    # ego at (10, 10) heading +x; a point at world y + 2
    fx, fy, _ = to_ego(15.0, 12.0, 0.0, 10.0, 10.0, 0.0)
    assert (fx, fy) == (5.0, 2.0)  # right-handed: +y is left
    fx, fy, h = to_ego(15.0, 12.0, 0.3, 10.0, 10.0, 0.0, left_handed=True)
    assert (fx, fy) == (5.0, -2.0) and h == pytest.approx(-0.3)  # CARLA: +y is right


def test_unknown_manoeuvre_is_refused():
    with pytest.raises(ValueError):
        check("JUMP", STRAIGHT, 1.0, [], 3.0, 4.6, 2.0)
