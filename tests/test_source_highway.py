"""highway-env source: geometry against the raw simulator objects, ids, rollouts, images."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivechain.errors import DrivechainError
from drivechain.sources.base import make_source


@pytest.fixture(scope="module")
def sources():
    made = {}

    def get(scenario: str, seed: int = 11):
        src = made.get(scenario) or make_source("highway", scenario, image_size=(200, 120))
        made[scenario] = src
        src.reset(seed)
        return src

    yield get
    for src in made.values():
        src.close()


def _raw_rel(ego, v):
    """Ego-relative coordinates recomputed here: forward along the heading, left = +90 degrees on the road."""
    dx, dy = v.position[0] - ego.position[0], v.position[1] - ego.position[1]
    # highway-env draws y downwards: the left of heading h is the direction (sin h, -cos h)
    return (dx * math.cos(ego.heading) + dy * math.sin(ego.heading), dx * math.sin(ego.heading) - dy * math.cos(ego.heading))


@pytest.mark.parametrize("scenario", ["highway", "intersection", "roundabout"])
def test_frame_geometry_matches_raw_objects(sources, scenario):
    src = sources(scenario)
    src.step("IDLE")
    frame = src.frame()
    u = src.env
    ego = u.vehicle
    assert frame.ego.id == 0 and frame.ego.x_m == pytest.approx(ego.position[0], abs=1e-3)
    assert frame.ego.lane_id == ">".join(str(p) for p in ego.lane_index)
    assert frame.actions == list(u.action_type.actions.values())
    assert frame.available_actions == [u.action_type.actions[i] for i in sorted(u.get_available_actions())]
    by_id = {a.id: a for a in frame.agents}
    raw_near = [v for v in u.road.vehicles if v is not ego and np.linalg.norm(v.position - ego.position) <= src.agent_radius_m]
    assert len(by_id) == len(raw_near) > 0
    for v in raw_near:
        agent = by_id[v.dc_id]
        rx, ry = _raw_rel(ego, v)
        assert agent.rel_x_m == pytest.approx(rx, abs=1e-3) and agent.rel_y_m == pytest.approx(ry, abs=1e-3)
        assert agent.speed_mps == pytest.approx(v.speed, abs=1e-3)
        assert agent.lane_id == ">".join(str(p) for p in v.lane_index)
        box = agent.boxes["bev"]
        assert agent.visible == (box[2] > 0 and box[0] < 200 and box[3] > 0 and box[1] < 120)
    # the ego's lane is among the listed lanes, with polylines near the ego
    assert frame.ego.lane_id in {lane.id for lane in frame.lanes}


def test_left_is_positive_rel_y_and_lane_left_lowers_the_index(sources):
    src = sources("highway", seed=3)
    u = src.env
    start = u.vehicle.lane_index[2]
    assert "LANE_LEFT" in src.available_actions() and start > 0
    before = src.frame()
    fork = src.fork()
    fork.step("LANE_LEFT")
    fork.step("IDLE")
    after = fork.env.vehicle
    assert after.lane_index[2] == start - 1
    # where the ego went, measured in the earlier ego frame: to the left means rel_y > 0
    dx = after.position[0] - before.ego.x_m
    dy = after.position[1] - before.ego.y_m
    h = before.ego.heading_rad
    assert dx * math.sin(h) - dy * math.cos(h) > 2.0
    # agents in lanes with a lower index (to the left) have rel_y > 0
    for a in before.agents:
        lane = int(a.lane_id.split(">")[2])
        if lane < start:
            assert a.rel_y_m > 0
        elif lane > start:
            assert a.rel_y_m < 0


def test_ids_stay_on_their_vehicles_across_steps_and_forks(sources):
    src = sources("intersection", seed=5)
    previous = {a.id: a for a in src.frame().agents}
    fork = src.fork()
    for _ in range(3):
        src.step("IDLE")
        fork.step("IDLE")
        frame, frame_fork = src.frame(), fork.frame()
        assert frame.model_dump_json() == frame_fork.model_dump_json()
        for a in frame.agents:
            if a.id in previous:  # 1 s at <= 15 m/s: a vehicle cannot jump further
                old = previous[a.id]
                assert math.hypot(a.x_m - old.x_m, a.y_m - old.y_m) < 20.0
        previous = {a.id: a for a in frame.agents}
    ids = [v.dc_id for v in src.env.road.vehicles]
    assert src.env.vehicle.dc_id == 0 and ids.count(0) == 1 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("reduced", [True, False])
def test_rollout_leaves_the_state_unchanged(sources, reduced):
    src = sources("merge", seed=2)
    before = src.frame().model_dump_json()
    roll = src.rollout("SLOWER", 3.0, reduced=reduced)
    assert src.frame().model_dump_json() == before
    assert len(roll.samples) == 45 and roll.samples[0].t_s == pytest.approx(1 / 15, abs=1e-5)
    assert roll.samples[-1].t_s == pytest.approx(3.0)
    # SLOWER lowers the ego target speed: it ends slower than an IDLE rollout
    idle = src.rollout("IDLE", 3.0, reduced=reduced)
    assert roll.samples[-1].ego.speed_mps < idle.samples[-1].ego.speed_mps - 1.0


def test_reduced_and_full_rollouts_agree_on_the_highway(sources):
    src = sources("highway", seed=4)
    full = src.rollout("IDLE", 3.0, reduced=False)
    red = src.rollout("IDLE", 3.0, reduced=True)
    assert full.crashed == red.crashed
    a, b = full.samples[-1].ego, red.samples[-1].ego
    assert math.hypot(a.x_m - b.x_m, a.y_m - b.y_m) < 0.5


def test_future_keeps_the_ego_lane_and_is_relative_to_the_future_ego(sources):
    src = sources("highway", seed=8)
    frame = src.frame()
    ego_future = frame.future[0]
    assert [f.t_s for f in ego_future] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert all(f.lane_id == frame.ego.lane_id for f in ego_future)
    assert all(f.rel_x_m == pytest.approx(0, abs=1e-6) and f.rel_y_m == pytest.approx(0, abs=1e-6) for f in ego_future)
    # the ego moves forward at about its speed
    assert ego_future[-1].x_m - frame.ego.x_m == pytest.approx(3.0 * frame.ego.speed_mps, rel=0.2)
    some = next(i for i in frame.future if i != 0)
    other, me = frame.future[some][-1], ego_future[-1]
    h = frame.ego.heading_rad  # straight road: the heading hardly changes over 3 s
    assert other.rel_x_m == pytest.approx((other.x_m - me.x_m) * math.cos(h) + (other.y_m - me.y_m) * math.sin(h), abs=0.3)


def test_images_are_not_blank_differ_between_steps_and_carry_marks(sources):
    src = sources("roundabout", seed=1)
    first = src.render()
    assert first.shape == (120, 200, 3) and first.dtype == np.uint8 and first.std() > 5
    src.step("IDLE")
    second = src.render()
    assert not np.array_equal(first, second)
    visible = [a for a in src.frame().agents if a.visible]
    assert visible
    src.marks = False
    plain = src.render()
    src.marks = True
    assert not np.array_equal(plain, second)
    assert np.array_equal(plain, src.env.render())


def test_unknown_scenario_and_source_name_the_choices():
    with pytest.raises(DrivechainError, match="choose from: highway, merge, intersection, roundabout"):
        make_source("highway", "parking")
    with pytest.raises(DrivechainError, match="unknown source 'carla'"):
        make_source("carla", "highway")


def _drawn_ids(src) -> set[int]:
    """Vehicles highway-env's own viewer draws into the image: its WorldSurface transform, its visibility
    test (VehicleGraphics skips a vehicle whose centre is off-surface), and a rectangle that reaches the window."""
    u = src.env
    u.render()
    surf = u.viewer.sim_surface
    w, h = surf.get_width(), surf.get_height()
    out = set()
    for v in u.road.vehicles:
        if v is u.vehicle or not surf.is_visible(v.position):
            continue
        c, s = math.cos(v.heading), math.sin(v.heading)
        corners = [surf.pos2pix(v.position[0] + dl * c - dw * s, v.position[1] + dl * s + dw * c)
                   for dl in (-v.LENGTH / 2, v.LENGTH / 2) for dw in (-v.WIDTH / 2, v.WIDTH / 2)]
        xs, ys = [p[0] for p in corners], [p[1] for p in corners]
        if max(xs) > 0 and min(xs) < w and max(ys) > 0 and min(ys) < h:
            out.add(v.dc_id)
    return out


@pytest.mark.parametrize("scenario", ["highway", "merge", "intersection", "roundabout", "exit"])
def test_every_drawn_vehicle_is_listed(scenario):
    """The agent radius follows each scenario's camera footprint: a vehicle drawn in the image is a visible agent."""
    src = make_source("highway", scenario)  # the scenario's own camera (size, scaling, centering)
    try:
        assert src.agent_radius_m >= src.camera.reach_m()
        drawn_total = 0
        for seed in (0, 3):
            src.reset(seed)
            for _ in range(4):
                frame = src.frame()
                drawn = _drawn_ids(src)
                listed = {a.id for a in frame.agents if a.visible}
                assert drawn <= listed, f"{scenario} seed {seed} step {frame.step}: drawn but unlisted {drawn - listed}"
                drawn_total += len(drawn)
                if src.step("IDLE").done:
                    break
        assert drawn_total > 0
    finally:
        src.close()
