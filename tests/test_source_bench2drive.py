"""The Bench2Drive source on route folders built in the real layout: discovery, quirks, projection, futures."""

from __future__ import annotations

import gzip
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drivechain.errors import ConfigError, DatasetError
from drivechain.sources import bench2drive_anno as anno
from drivechain.sources.bench2drive import Bench2DriveSource, find_routes
from drivechain.sources.camera import Camera
from tests import b2d_fixture as fx
from tests.carla_geometry import project_unreal

CUT_IN = "HighwayCutIn/Town06_Weather0_Route303"
STATIC = "ParkedObstacle/Town04_Weather2_Route404"
PED = "PedestrianCrossing/Town03_Weather1_Route202"
RED = "SignalizedJunctionStop/Town12_Weather3_Route101"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return fx.shared_root(tmp_path_factory)


def frames(root: Path, clip: str, cameras: str = "front", stride: int = 5) -> dict[int, object]:
    src = Bench2DriveSource(root, routes=clip, cameras=cameras, stride=stride)
    return {lf.frame.step: lf for lf in src.frames(clip)}


def test_routes_are_discovered_and_filtered(root):
    assert [c for c, _ in find_routes(root)] == sorted([CUT_IN, STATIC, PED, RED])
    assert [c for c, _ in find_routes(root, "Ped*")] == [PED]
    assert [c for c, _ in find_routes(root / PED)] == [PED]  # a route folder itself
    with pytest.raises(ConfigError, match="matches --routes"):
        find_routes(root, "NoSuchScenario*")


def test_flat_release_folders_name_their_scenario(tmp_path, root):
    flat = tmp_path / "ParkingCutIn_Town12_Route1300_Weather2"
    shutil.copytree(root / PED, flat)
    assert [c for c, _ in find_routes(tmp_path)] == ["ParkingCutIn_Town12_Route1300_Weather2"]
    f0 = next(Bench2DriveSource(tmp_path, limit=1).frames("ParkingCutIn_Town12_Route1300_Weather2")).frame
    assert f0.scenario == "ParkingCutIn" and f0.frame_id == "bench2drive/ParkingCutIn_Town12_Route1300_Weather2/0"


def test_a_folder_that_is_not_a_route_names_what_is_missing(tmp_path, root):
    (tmp_path / "photos").mkdir()
    with pytest.raises(DatasetError, match="no anno/ folder") as err:
        find_routes(tmp_path)
    assert "\n" not in str(err.value)
    broken = tmp_path / "S" / "R"
    (broken / "anno").mkdir(parents=True)
    with pytest.raises(DatasetError, match="NNNNN.json.gz"):
        find_routes(tmp_path)
    shutil.copy(root / PED / "anno" / "00000.json.gz", broken / "anno")
    with pytest.raises(DatasetError, match="camera/rgb_front/ is missing"):
        find_routes(tmp_path)


def test_a_damaged_anno_file_is_named(tmp_path, root):
    route = tmp_path / "S" / "R"
    shutil.copytree(root / PED, route)
    (route / "anno" / "00003.json.gz").write_bytes(b"not gzip")
    src = Bench2DriveSource(tmp_path, stride=1)
    with pytest.raises(DatasetError, match="00003.json.gz"):
        list(src.frames("S/R"))


def test_a_missing_camera_image_or_folder_is_named(tmp_path, root):
    route = tmp_path / "S" / "R"
    shutil.copytree(root / PED, route)
    (route / "camera" / "rgb_front" / "00005.jpg").unlink()
    with pytest.raises(DatasetError, match="camera/rgb_front/00005.jpg is missing"):
        list(Bench2DriveSource(tmp_path, stride=5).frames("S/R"))
    shutil.rmtree(route / "camera" / "rgb_back_left")
    with pytest.raises(DatasetError, match="camera/rgb_back_left/ is missing"):
        Bench2DriveSource(tmp_path, cameras="all")


def test_left_handed_world_half_extents_and_stable_ids(root):
    got = frames(root, CUT_IN)
    f0 = got[0].frame
    car = f0.agent(1)
    assert car.rel_x_m == pytest.approx(12.0, abs=1e-3) and car.rel_y_m == pytest.approx(-3.5, abs=1e-3)  # CARLA +y = right
    assert car.length_m == pytest.approx(4.6) and car.width_m == pytest.approx(2.0)  # extent is half the size
    behind = f0.agent(2)
    assert behind.rel_x_m == pytest.approx(-12.0, abs=1e-3) and behind.rel_y_m == pytest.approx(3.5, abs=1e-3)
    assert {a.id for a in got[20].frame.agents} == {1, 2}  # same CARLA actor -> same id across the clip
    assert f0.meta["carla_ids"] == {"1": "501", "2": "502"}


def test_static_vehicle_uses_centre_and_world2vehicle_not_the_wrong_location(root):
    f0 = frames(root, STATIC)[0].frame  # this world is rotated by 90 degrees
    obstacle = f0.agent(1)
    assert obstacle.rel_x_m == pytest.approx(35.0, abs=1e-3) and obstacle.rel_y_m == pytest.approx(0.0, abs=1e-3)
    assert math.degrees(obstacle.heading_rad) == pytest.approx(90.0, abs=1e-6)  # not the recorded 180
    assert f0.meta["static_ids"] == [1]
    raw = anno.load_json_gz(root / STATIC / "anno" / "00000.json.gz")
    recorded = next(b for b in raw["bounding_boxes"] if b.get("state") == "static")
    assert recorded["location"][:2] != pytest.approx([obstacle.x_m, obstacle.y_m])


def test_pedestrian_speed_is_derived_and_a_missing_speedometer_falls_back(root):
    ped = frames(root, PED, stride=1)
    assert anno.load_json_gz(root / PED / "anno" / "00010.json.gz")["bounding_boxes"][1]["speed"] == 0.0
    assert ped[10].frame.agent(1).speed_mps == pytest.approx(1.4, abs=1e-6)
    static = frames(root, STATIC, stride=1)
    assert anno.load_json_gz(root / STATIC / "anno" / "00004.json.gz")["speed"] is None
    assert static[4].frame.ego.speed_mps == pytest.approx(8.0, abs=0.2)


def test_two_wheelers_and_roadwork_props():
    ego = {"class": "ego_vehicle", "id": "1", "center": [0, 0, 0.7], "rotation": [0, 0, 0], "extent": [2.4, 1, 0.7]}
    bike = {"class": "vehicle", "state": "dynamic", "id": "2", "base_type": "bicycle", "center": [9, 0, 0.7],
            "rotation": [0, 0, 0], "extent": [0.9, 0.3, 0.8], "speed": 4.0}
    cone = {"class": "traffic_sign", "id": "3", "type_id": "static.prop.constructioncone", "center": [15, 1, 0.3],
            "rotation": [0, 0, 0], "extent": [0.2, 0.2, 0.3]}
    sky = dict(bike, id="4", center=[20, 0, 30.0])  # a "car in the sky": skipped
    got = anno.parse(0, {"bounding_boxes": [ego, bike, cone, sky], "speed": None}, Path("x.json.gz"))
    assert [(b.category, b.static) for b in got.boxes] == [("bicycle", False), ("obstacle", True)]
    assert got.ego.speed_mps is None  # neither the speedometer nor the box has it: derived from positions
    later = anno.parse(1, {"bounding_boxes": [dict(ego, center=[0.8, 0, 0.7]), bike], "speed": None}, Path("y"))
    anno.fill_speeds([got, later], 10.0)
    assert got.ego.speed_mps == pytest.approx(8.0) and later.ego.speed_mps == pytest.approx(8.0)


def test_light_states_trigger_rotations_and_commands():
    assert [anno.light_state(v) for v in (0, 1, 2, 3, 4, "Red", "TrafficLightState.Green", None)] == [
        "red", "yellow", "green", "off", "unknown", "red", "green", "unknown"]
    assert anno.norm_deg(350.0) == pytest.approx(-10.0) and anno.norm_deg(-190.0) == pytest.approx(170.0)
    assert anno.norm_deg(540.0) == pytest.approx(180.0)


def test_signals_in_the_ego_frame(root):
    f0 = frames(root, RED)[0].frame
    red = next(s for s in f0.signals if s["affects_ego"])
    assert red["state"] == "red" and red["kind"] == "traffic_light"
    assert red["trigger_rel_x_m"] == pytest.approx(19.0, abs=1e-2) and red["trigger_rel_y_m"] == pytest.approx(0.0, abs=1e-2)
    assert abs(red["trigger_heading_rad"]) < 1e-3  # (180 + 180) mod 360 -> 0, the ego's heading
    assert set(red["boxes"]) == {"CAM_FRONT"}  # the light's box is inside the front image
    assert f0.command == "go straight at the next junction"
    stop = frames(root, PED)[0].frame.signals[0]
    assert stop["kind"] == "stop_sign" and stop["trigger_rel_x_m"] == pytest.approx(22.0, abs=1e-2)


def _painted_box(path: Path) -> tuple[int, int, int, int] | None:
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    red = (img[:, :, 0] > 170) & (img[:, :, 1] < 90) & (img[:, :, 2] < 90)
    ys, xs = np.nonzero(red)
    if not len(xs):
        return None
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def test_projected_boxes_land_on_the_painted_boxes_in_every_camera(root):
    lf = frames(root, CUT_IN, cameras="all")[10]
    car = lf.frame.agent(1)
    assert set(car.boxes) == {"CAM_FRONT", "CAM_FRONT_RIGHT"}
    for cam, box in car.boxes.items():
        painted = _painted_box(lf.camera_files[cam])
        assert painted is not None
        assert np.allclose(box, painted, atol=3.0), (cam, box, painted)
    # and each of the 8 recorded corners lands inside the painted box (front camera)
    raw = anno.load_json_gz(root / CUT_IN / "anno" / "00010.json.gz")
    s = raw["sensors"]["CAM_FRONT"]
    cam = Camera.from_unreal("CAM_FRONT", s["intrinsic"], s["world2cam"], s["image_size_x"], s["image_size_y"])
    corners = next(b for b in raw["bounding_boxes"] if b["id"] == "501")["world_cord"]
    uv, _ = cam.project(np.array(corners))
    x0, y0, x1, y1 = _painted_box(lf.camera_files["CAM_FRONT"])
    for (u, v), c in zip(uv, corners):
        eu, ev, _ = project_unreal(c, np.array(s["intrinsic"]), np.array(s["world2cam"]))
        assert (u, v) == pytest.approx((eu, ev))
        assert x0 - 3 <= u <= x1 + 3 and y0 - 3 <= v <= y1 + 3


def test_front_only_visibility_and_all_cameras(root):
    front = frames(root, CUT_IN)[0].frame
    assert not front.agent(2).visible  # behind: only the back camera sees it
    every = frames(root, CUT_IN, cameras="all")[0]
    assert every.frame.agent(2).visible and set(every.frame.agent(2).boxes) == {"CAM_BACK"}
    box = every.frame.agent(2).boxes["CAM_BACK"]
    assert every.frame.meta["drivelm_tags"]["2"] == (
        f"<c2,CAM_BACK,{(box[0] + box[2]) / 2:.1f},{(box[1] + box[3]) / 2:.1f}>")
    assert every.frame.meta["drivelm_tags"]["1"].startswith("<c1,CAM_FRONT,")
    assert list(every.camera_files) == ["CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT", "CAM_BACK",
                                        "CAM_BACK_LEFT", "CAM_BACK_RIGHT"]


def test_future_is_the_recorded_one_and_clip_ends_get_none(root):
    got = frames(root, CUT_IN)
    f0 = got[0].frame
    assert [s.t_s for s in f0.future[1]] == [1.0, 2.0, 3.0]
    raw = anno.load_json_gz(root / CUT_IN / "anno" / "00020.json.gz")
    later = next(b for b in raw["bounding_boxes"] if b["id"] == "501")
    assert (f0.future[1][1].x_m, f0.future[1][1].y_m) == pytest.approx(tuple(later["center"][:2]))
    # relative to an ego that keeps its path and its 10 m/s: 20 m ahead of where it starts
    assert f0.future[1][1].rel_x_m == pytest.approx(later["center"][0] - 100.0 - 20.0, abs=0.05)
    assert f0.meta["prediction"] and not got[20].frame.meta["prediction"] and got[20].frame.future == {}
    assert len(f0.meta["tracks"]["1"]) == 7  # 0 .. 3 s every 0.5 s


def test_stride_and_limit(root):
    src = Bench2DriveSource(root, stride=20, limit=5)
    got = [lf.frame.step for clip in src.clips() for lf in src.frames(clip)]
    assert got == [0, 20, 40, 0, 20]


def test_the_anno_schema_of_the_fixture_is_the_recorders(root):
    data = json.loads(gzip.open(root / RED / "anno" / "00000.json.gz", "rt").read())
    for key in ("x", "y", "throttle", "steer", "brake", "reverse", "theta", "speed", "x_command_far",
                "y_command_far", "command_far", "x_command_near", "y_command_near", "command_near", "should_brake",
                "only_ap_brake", "x_target", "y_target", "next_command", "weather", "acceleration",
                "angular_velocity", "bounding_boxes", "sensors"):
        assert key in data
    assert {b["class"] for b in data["bounding_boxes"]} == {"ego_vehicle", "vehicle", "traffic_light"}
