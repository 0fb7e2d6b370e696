"""nuScenes source: the real nuscenes-devkit loads a table set the tests write (tests/nuscenes_fixture.py);
the loader, the camera projection and the annotation labels are checked against the scripted truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests import nuscenes_fixture as fx


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory):
    return fx.write_fixture(tmp_path_factory.mktemp("nuscenes"))


@pytest.fixture(scope="module")
def source(dataroot):
    from drivechain.sources.nuscenes import NuScenesSource

    return NuScenesSource(dataroot, cameras="all")


@pytest.fixture(scope="module")
def frames(source):
    return {clip: [lf.frame for lf in source.frames(clip)] for clip in source.clips()}


def _road(script: fx.SceneScript, k: int, x: float, y: float) -> tuple[float, float]:
    """Scripted road-frame point -> the ego frame at sample k (independent of the source's maths)."""
    ex, ey, eyaw = script.ego[k]
    dx, dy = x - ex, y - ey
    return dx * math.cos(eyaw) + dy * math.sin(eyaw), -dx * math.sin(eyaw) + dy * math.cos(eyaw)


def test_devkit_loads_the_written_tables_and_scenes_are_selected(dataroot, source):
    from drivechain.errors import ConfigError
    from drivechain.sources.nuscenes import NuScenesSource

    assert len(source.nusc.sample) == 24 and len(source.nusc.scene) == 2  # the real NuScenes class read them
    assert source.clips() == ["scene-0001", "scene-0002"]
    assert NuScenesSource(dataroot, routes="scene-0002", cameras="front").clips() == ["scene-0002"]
    with pytest.raises(ConfigError, match="no scene matches scene-9"):
        NuScenesSource(dataroot, routes="scene-9").clips()
    with pytest.raises(ConfigError, match="no nuScenes tables"):
        NuScenesSource(dataroot, version="v1.0-trainval")
    with pytest.raises(ConfigError, match="--cameras"):
        NuScenesSource(dataroot, cameras="left")


def test_agents_in_the_ego_frame_match_the_script(frames):
    scripts = {s.name: s for s in fx.scripts()}
    checked = 0
    for scene, fs in frames.items():
        script = scripts[scene]
        names = {}
        for f in fs:
            assert f.frame_id == f"nuscenes/{scene}/{f.episode}/{f.step}" and f.meta["kind"] == "log"
            for a in f.agents:
                tok = f.meta["agents"][str(a.id)]["instance_token"]
                track = next(t for t in script.tracks if tok.endswith(t.name))
                names.setdefault(a.id, track.name)
                assert names[a.id] == track.name  # ids are stable over a scene
                x, y, *_ = track.states[f.step]
                rx, ry = _road(script, f.step, x, y)
                assert a.rel_x_m == pytest.approx(rx, abs=2e-3) and a.rel_y_m == pytest.approx(ry, abs=2e-3)
                checked += 1
        assert "cone" not in names.values()  # static objects are not agents
    assert checked > 60


def test_category_status_visibility_and_speed(frames):
    f = frames["scene-0001"][2]
    by_name = {f.meta["agents"][str(a.id)]["instance_token"].rsplit("-", 1)[1]: a for a in f.agents}
    assert {k: a.category for k, a in by_name.items()} == {
        "lead": "car", "ped": "pedestrian", "parked": "car", "truck": "truck"}
    info = {k: f.meta["agents"][str(a.id)] for k, a in by_name.items()}
    assert info["parked"]["status"] == "parked" and f.meta["static_ids"] == [by_name["parked"].id]
    assert info["ped"]["status"] == "moving" and info["ped"]["nuscenes_category"] == "human.pedestrian.adult"
    assert by_name["truck"].visible and by_name["truck"].boxes.keys() == {"CAM_BACK"}
    late = frames["scene-0001"][4]
    truck = next(a for a in late.agents if late.meta["agents"][str(a.id)]["instance_token"].endswith("truck"))
    assert not truck.visible and truck.boxes == {}  # annotated visibility 0-40 %: not shown, not asked
    # devkit box_velocity: centred difference of the scripted braking (t = 0.5 .. 1.5 s)
    lead_v = (fx._braking(25, 10, 1, 4, 1.5) - fx._braking(25, 10, 1, 4, 0.5)) / 1.0
    assert by_name["lead"].speed_mps == pytest.approx(lead_v, abs=1e-3)
    assert by_name["ped"].speed_mps == pytest.approx(1.4, abs=1e-3)
    assert f.ego.speed_mps == pytest.approx(10.0, abs=0.05)


def test_a_known_point_lands_on_the_expected_pixel(source):
    from drivechain.sources.camera import box_corners, pixel_box

    sample = source.samples("scene-0001")[3]
    cam = source.camera(sample, "CAM_FRONT")
    pose = source.nusc.get("ego_pose", source.nusc.get("sample_data", sample["data"]["CAM_FRONT"])["ego_pose_token"])
    yaw = source.nusc.get("ego_pose", pose["token"])
    from pyquaternion import Quaternion

    q = Quaternion(yaw["rotation"])
    for ego_pt, pixel in (((20.0, 0.0, 1.5), (160.0, 90.0)), ((11.5, 2.0, 1.5), (160.0 - fx.FOCAL_PX * 0.2, 90.0)),
                          ((11.5, 0.0, 0.5), (160.0, 90.0 + fx.FOCAL_PX * 0.1))):
        world = q.rotate(np.array(ego_pt)) + np.array(pose["translation"])
        uv, depth = cam.project(world[None, :])
        assert uv[0] == pytest.approx(pixel, abs=1e-6) and depth[0] == pytest.approx(ego_pt[0] - 1.5, abs=1e-6)
    left = source.camera(sample, "CAM_FRONT_LEFT")  # 55 degrees to the left: the same point is right of centre there
    world = q.rotate(np.array((10.0, 10.0, 1.5))) + np.array(pose["translation"])
    assert left.project(world[None, :])[0][0][0] > 160.0
    # the shared projection agrees with the devkit's own view_points on every annotated box in view
    from nuscenes.utils.geometry_utils import BoxVisibility, view_points

    _, boxes, K = source.nusc.get_sample_data(sample["data"]["CAM_FRONT"], box_vis_level=BoxVisibility.ALL)
    assert boxes
    for box in boxes:
        ann = source.nusc.get("sample_annotation", box.token)
        w, length, h = ann["size"]
        got = pixel_box(cam, box_corners(tuple(ann["translation"]), (length / 2, w / 2, h / 2),
                                         Quaternion(ann["rotation"]).yaw_pitch_roll[0]))
        pts = view_points(box.corners(), np.asarray(K), normalize=True)
        assert got is not None
        assert got[0] == pytest.approx([round(pts[0].min(), 1), round(pts[1].min(), 1),
                                        round(pts[0].max(), 1), round(pts[1].max(), 1)], abs=0.11)


def test_drivelm_tags_name_the_camera_that_shows_most_of_the_agent(frames):
    f = frames["scene-0001"][2]
    for a in f.agents:
        tag = f.meta["drivelm_tags"].get(str(a.id))
        if not a.visible:
            assert tag is None
            continue
        cam = tag.split(",")[1]
        box = a.boxes[cam]
        assert tag == f"<c{a.id},{cam},{(box[0] + box[2]) / 2:.1f},{(box[1] + box[3]) / 2:.1f}>"
        area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
        assert all(area(box) >= area(b) for b in a.boxes.values())


def test_recorded_futures_tracks_and_ego_future(frames):
    s1 = fx.scripts()[0]
    f = frames["scene-0001"][1]
    assert f.meta["prediction"] and not frames["scene-0001"][7].meta["prediction"]  # 2 s left < H
    assert frames["scene-0001"][7].future == {}
    lead = next(a for a in f.agents if f.meta["agents"][str(a.id)]["instance_token"].endswith("lead"))
    assert [s.t_s for s in f.future[lead.id]] == [1.0, 2.0, 3.0]
    for s in f.future[lead.id]:
        k = 1 + int(s.t_s / fx.DT_S)
        x, *_ = s1.tracks[0].states[k]
        wx, wy, _ = fx._to_world(s1, x, 0.0, 0.0)
        assert (s.x_m, s.y_m) == pytest.approx((wx, wy), abs=2e-3)
    track = f.meta["tracks"][str(lead.id)]
    assert [p[0] for p in track] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert track[-1][1] == pytest.approx(_road(s1, 1, s1.tracks[0].states[7][0], 0.0)[0], abs=2e-3)
    truck = next(a for a in f.agents if f.meta["agents"][str(a.id)]["instance_token"].endswith("truck"))
    assert truck.id not in f.future  # annotated only 2 s more: no prediction question about it
    ego_end = f.meta["ego_future"][-1]
    assert ego_end["t_s"] == 3.0 and ego_end["rel_x_m"] == pytest.approx(s1.ego[7][0] - s1.ego[1][0], abs=2e-3)
    assert ego_end["speed_mps"] < 8.0  # the ego brakes from t = 2 s
    # the path follows every lidar sweep's ego pose (10 Hz here), not only the 2 Hz key frames
    path = f.meta["ego_path"]
    fine = [(x - s1.ego[1][0], y) for x, y, _ in s1.ego_sweeps[(fx.SWEEPS + 1) * 1 + 1:]]
    assert len(path) == len(fine) and path[0][0] == pytest.approx(1.0, abs=1e-3)  # 10 m/s x 0.1 s
    assert all(p == pytest.approx(q, abs=2e-3) for p, q in zip(path, fine))


def test_annotation_and_turn_labels(frames):
    from drivechain.teacher.graph import build_graph

    f = frames["scene-0001"][1]
    g = build_graph(f, None)
    ids = {f.meta["agents"][str(a.id)]["instance_token"].rsplit("-", 1)[1]: a.id for a in f.agents}
    cat = g.get(f"per.category.v{ids['ped']}").answer
    assert cat.options[cat.preferred] == "pedestrian"
    st = g.get(f"per.status.v{ids['parked']}").answer
    assert st.options[st.preferred] == "parked"
    fs = g.get(f"pred.future_state.v{ids['parked']}").answer
    assert [fs.options[i] for i in fs.acceptable] == ["stationary"]
    fs = g.get(f"pred.future_state.v{ids['lead']}").answer
    assert fs.options[fs.preferred] == "go straight"
    assert g.get(f"pred.future_state.v{ids['ped']}") is None  # pedestrians do not "turn"
    # scene 2: the ego turns left at 0.35 rad/s from t = 2.5 s: heading change over 3 s grows 0 -> 60 degrees
    turns = {}
    for f2 in frames["scene-0002"]:
        node = build_graph(f2, None).get("beh.direction")
        if node is not None:
            d = math.degrees(node.meta["heading_change_rad"])
            turns[f2.step] = (round(d), {node.answer.options[i] for i in node.answer.acceptable})
    assert turns[0] == (10, {"go straight"})
    assert turns[1] == (20, {"go straight", "turn left"})  # inside the 20 +- 6 degree band
    assert turns[3] == (40, {"turn left"})


def test_map_expansion_gives_lanes_and_the_ego_lane(tmp_path):
    from drivechain.sources.nuscenes import FAMILIES, NuScenesSource
    from drivechain.teacher.graph import build_graph

    root = fx.write_fixture(tmp_path / "withmap", n=8, with_map=True)
    src = NuScenesSource(root, routes="scene-0001", cameras="all")
    assert "per.same_lane" in src.families and "per.same_lane" not in FAMILIES
    assert src.notes["map"].startswith("map expansion read for singapore-onenorth")
    f = next(src.frames("scene-0001")).frame
    assert f.meta["map"] is True and {ln.id for ln in f.lanes} == set(fx.MAP_LANES)
    centre = next(ln for ln in f.lanes if ln.id == "lane-left").polyline_m
    s1 = fx.scripts()[0]
    for x, y in centre[::20]:  # the left lane's centre line is 3.5 m left of the ego's in the road frame
        rx, ry = _road(s1, 0, *_road_of(s1, x, y))
        assert ry == pytest.approx(3.5, abs=1e-3)
    assert f.ego.lane_id == "lane-ego-a"
    # successors its path enters, the single predecessor; never the parallel lanes
    assert f.meta["ego_lane"]["lanes"] == ["lane-ego-0", "lane-ego-a", "lane-ego-b"]
    names = {f.meta["agents"][str(a.id)]["instance_token"].rsplit("-", 1)[1]: a.id for a in f.agents}
    g = build_graph(f, None)
    answers = {k: g.get(f"per.same_lane.v{names[k]}") for k in ("lead", "parked", "truck")}
    assert answers["lead"].answer.value is True and answers["truck"].answer.value is True  # ahead and behind
    assert answers["parked"].answer.value is False and not answers["parked"].answer.accept_both
    assert g.get(f"per.same_lane.v{names['ped']}") is None  # asked about vehicles only


def _road_of(script: fx.SceneScript, wx: float, wy: float) -> tuple[float, float]:
    """World -> the scripted road frame (the inverse of the fixture's placement)."""
    dx, dy = wx - script.origin_xy[0], wy - script.origin_xy[1]
    c, s = math.cos(script.heading_rad), math.sin(script.heading_rad)
    return c * dx + s * dy, -s * dx + c * dy
