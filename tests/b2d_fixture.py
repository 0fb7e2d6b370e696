"""Build small Bench2Drive route folders in the real layout and anno schema, with scripted situations.

Each route: ``<Scenario>/<Route>/anno/NNNNN.json.gz`` (gzipped JSON, every top-level field
data_collect.py writes) and ``camera/rgb_<cam>/NNNNN.jpg`` with each actor's box painted where the
test-side projection (tests/carla_geometry.py, independent of drivechain) puts it. The quirks are
reproduced: extent is half the size, walkers' speed is 0, static vehicles carry a wrong location /
rotation (their centre and world2vehicle are right), the ego's speed / theta can be None, trigger
volume rotations are parent + own rotation modulo 360, light states are ints.

Scripts are written in a road frame (x along the road, y to the RIGHT as in CARLA) and placed in the
world by a rotation ``world_yaw_deg`` and an offset, so the tests also cover rotated worlds.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tests.carla_geometry import cube, intrinsics, project_unreal, transform_matrix

FPS = 10
SIZE = (400, 225)
CAMS = {  # name: (folder, x, y, z, yaw) as Bench2Drive mounts them
    "CAM_FRONT": ("rgb_front", 0.80, 0.0, 1.60, 0.0),
    "CAM_FRONT_LEFT": ("rgb_front_left", 0.27, -0.55, 1.60, -55.0),
    "CAM_FRONT_RIGHT": ("rgb_front_right", 0.27, 0.55, 1.60, 55.0),
    "CAM_BACK": ("rgb_back", -2.0, 0.0, 1.60, 180.0),
    "CAM_BACK_LEFT": ("rgb_back_left", -0.32, -0.55, 1.60, -110.0),
    "CAM_BACK_RIGHT": ("rgb_back_right", -0.32, 0.55, 1.60, 110.0),
}
COLOURS = {"vehicle": (220, 30, 30), "walker": (30, 30, 220), "static": (230, 200, 20)}
BACKGROUND = (100, 100, 100)

# a motion: t [s] -> (x, y_right, yaw_deg, speed) in the road frame; lane: t -> (road_id, lane_id)
Motion = Callable[[float], tuple[float, float, float, float]]


@dataclass
class Actor:
    key: str
    cls: str  # vehicle | walker | static
    extent: tuple[float, float, float]
    motion: Motion
    lane: Callable[[float], tuple[int, int]]
    base_type: str = "car"


@dataclass
class Light:
    key: str
    pos: tuple[float, float]
    state: int  # CARLA int enum
    affects_ego: bool
    trigger: tuple[float, float]  # trigger centre in the road frame
    kind: str = "traffic_light"  # or traffic.stop


@dataclass
class Script:
    scenario: str
    route: str
    frames: int
    ego: Motion
    ego_lane: Callable[[float], tuple[int, int]]
    actors: list[Actor] = field(default_factory=list)
    lights: list[Light] = field(default_factory=list)
    command_near: int = 4
    near_point: tuple[float, float] = (50.0, 0.0)
    should_brake: Callable[[float], bool] = lambda t: False
    speed_none_frames: tuple[int, ...] = ()
    world_yaw_deg: float = 0.0
    offset: tuple[float, float] = (100.0, 200.0)


def const(x0: float, y0: float, v: float, yaw: float = 0.0) -> Motion:
    return lambda t: (x0 + v * t * math.cos(math.radians(yaw)), y0 + v * t * math.sin(math.radians(yaw)), yaw, v)


def braking(x0: float, y0: float, v0: float, decel: float, t_start: float = 0.0) -> Motion:
    def m(t: float):
        if t <= t_start:
            return (x0 + v0 * t, y0, 0.0, v0)
        tb = min(t - t_start, v0 / decel)
        v = max(v0 - decel * (t - t_start), 0.0)
        return (x0 + v0 * t_start + v0 * tb - decel * tb * tb / 2, y0, 0.0, v)
    return m


def lane_shift(x0: float, y0: float, y1: float, v: float, t0: float, t1: float) -> Motion:
    def m(t: float):
        u = min(max((t - t0) / (t1 - t0), 0.0), 1.0)
        s = u * u * (3 - 2 * u)
        dy = (y1 - y0) * 6 * u * (1 - u) / (t1 - t0)
        return (x0 + v * t, y0 + (y1 - y0) * s, math.degrees(math.atan2(dy, v)), math.hypot(v, dy))
    return m


def lane_of(road: int, centres: dict[int, float], motion: Motion) -> Callable[[float], tuple[int, int]]:
    return lambda t: (road, min(centres, key=lambda lid: abs(centres[lid] - motion(t)[1])))


# ----------------------------------------------------------------------------- the four situations


def red_light() -> Script:
    ego = braking(0.0, 0.0, 8.0, 2.0)  # stops after 16 m, at t = 4 s
    return Script(
        "SignalizedJunctionStop", "Town12_Weather3_Route101", 45, ego, lambda t: (10, -1),
        actors=[Actor("301", "vehicle", (2.2, 1.0, 0.8), const(40.0, -3.0, 7.0, 90.0), lambda t: (55, 1))],
        lights=[Light("900", (24.0, -5.0), 0, True, (19.0, 0.0)), Light("901", (30.0, 8.0), 2, False, (32.0, 6.0))],
        command_near=3, near_point=(26.0, 0.0), should_brake=lambda t: True)


def pedestrian_crossing() -> Script:
    ego = braking(0.0, 0.0, 6.0, 1.3)
    walker = const(20.0, 6.0, 1.4, -90.0)  # walks toward -y (to the left) across the ego lane
    return Script(
        "PedestrianCrossing", "Town03_Weather1_Route202", 45, ego, lambda t: (20, -1),
        actors=[Actor("410", "walker", (0.3, 0.3, 0.9), walker, lambda t: (20, -1), base_type="")],
        lights=[Light("950", (25.0, 4.0), 0, True, (22.0, 0.0), kind="traffic.stop")],
        should_brake=lambda t: True)


def cut_in() -> Script:
    centres = {-1: -3.5, -2: 0.0, -3: 3.5}
    ego = braking(0.0, 0.0, 10.0, 1.0, t_start=1.0)
    car = lane_shift(12.0, 3.5, 0.0, 8.0, 0.5, 2.5)
    left = const(-12.0, -3.5, 12.0)
    return Script(
        "HighwayCutIn", "Town06_Weather0_Route303", 45, ego, lane_of(30, centres, ego),
        actors=[Actor("501", "vehicle", (2.3, 1.0, 0.8), car, lane_of(30, centres, car)),
                Actor("502", "vehicle", (2.3, 1.0, 0.8), left, lane_of(30, centres, left))])


def static_block() -> Script:
    centres = {-1: -3.5, -2: 0.0}
    ego = lane_shift(0.0, 0.0, -3.5, 8.0, 1.0, 3.5)
    return Script(
        "ParkedObstacle", "Town04_Weather2_Route404", 45, ego, lane_of(40, centres, ego),
        actors=[Actor("601", "static", (2.4, 1.0, 0.8), lambda t: (35.0, 0.0, 0.0, 0.0), lambda t: (40, -2))],
        speed_none_frames=(3, 4, 5), world_yaw_deg=90.0)


SCRIPTS = {"red_light": red_light, "pedestrian_crossing": pedestrian_crossing, "cut_in": cut_in,
           "static_block": static_block}


# ----------------------------------------------------------------------------- writing


def _world(script: Script, x: float, y: float, yaw_deg: float) -> tuple[float, float, float]:
    a = math.radians(script.world_yaw_deg)
    return (script.offset[0] + x * math.cos(a) - y * math.sin(a),
            script.offset[1] + x * math.sin(a) + y * math.cos(a), yaw_deg + script.world_yaw_deg)


def _box(script, key, cls, extent, motion_xy, ego_loc, lane, base_type, t):
    x, y, yaw, v = motion_xy
    wx, wy, wyaw = _world(script, x, y, yaw)
    z = extent[2]
    m = transform_matrix((wx, wy, 0.0), (0.0, 0.0, wyaw))
    box = {
        "class": cls, "id": key, "location": [wx, wy, 0.0], "rotation": [0.0, 0.0, wyaw % 360.0],
        "bbx_loc": [0.0, 0.0, z], "center": [wx, wy, z], "extent": list(extent),
        "world_cord": cube((wx, wy, z), extent, wyaw), "semantic_tags": [10], "type_id": f"vehicle.test.{base_type}",
        "distance": math.hypot(wx - ego_loc[0], wy - ego_loc[1]), "speed": v,
        "road_id": lane[0], "lane_id": lane[1], "section_id": 0,
    }
    return box, m


def _anno(script: Script, i: int) -> dict:
    t = i / FPS
    ex, ey, eyaw, ev = script.ego(t)
    wx, wy, wyaw = _world(script, ex, ey, eyaw)
    ego_box, ego_m = _box(script, "100", "ego_vehicle", (2.45, 1.05, 0.78), script.ego(t), (wx, wy),
                          script.ego_lane(t), "car", t)
    ego_box.update({"type_id": "vehicle.lincoln.mkz_2020", "base_type": "car", "color": "0,0,0", "brake": 0.0,
                    "world2ego": np.linalg.inv(ego_m).tolist()})
    boxes = [ego_box]
    for a in script.actors:
        b, m = _box(script, a.key, "vehicle" if a.cls != "walker" else "walker", a.extent, a.motion(t), (wx, wy),
                    a.lane(t), a.base_type, t)
        if a.cls == "walker":
            b.update({"speed": 0.0, "world2ped": np.linalg.inv(m).tolist(), "gender": "female", "age": "adult",
                      "bone": [], "num_points": 50, "type_id": "walker.pedestrian.0001"})
        else:
            b.update({"state": "dynamic", "base_type": a.base_type, "color": "255,0,0", "num_points": 300,
                      "brake": 0.0, "light_state": "NONE", "world2vehicle": np.linalg.inv(m).tolist()})
        if a.cls == "static":
            # the quirk: location / rotation come from a mismatched level box and are wrong
            b.update({"state": "static", "location": [b["location"][0] + 3.0, b["location"][1] - 2.0, 0.0],
                      "rotation": [0.0, 0.0, (b["rotation"][2] + 90.0) % 360.0], "speed": 0.0,
                      "type_id": "/Game/Carla/Static/Car/Tesla"})
        boxes.append(b)
    for lt in script.lights:
        lx, ly, lyaw = _world(script, lt.pos[0], lt.pos[1], 180.0)
        tx, ty, _ = _world(script, lt.trigger[0], lt.trigger[1], 0.0)
        parent_yaw = lyaw % 360.0
        b = {"class": "traffic_light" if lt.kind == "traffic_light" else "traffic_sign", "id": lt.key,
             "location": [lx, ly, 0.0], "rotation": [0.0, 0.0, parent_yaw], "center": [lx, ly, 3.0],
             "extent": [0.3, 0.3, 1.0], "semantic_tags": [18], "type_id": "traffic.traffic_light" if lt.kind == "traffic_light" else lt.kind,
             "distance": math.hypot(lx - wx, ly - wy), "affects_ego": lt.affects_ego,
             "trigger_volume_location": [tx, ty, 0.0],
             # parent rotation + the volume's own (relative) rotation, modulo 360 as data_collect writes it
             "trigger_volume_rotation": [0.0, 0.0, (parent_yaw + 180.0) % 360.0],
             "trigger_volume_extent": [1.5, 1.75, 1.0], "road_id": 10, "lane_id": -1, "section_id": 0}
        if lt.kind == "traffic_light":
            b["state"] = lt.state
        else:
            b["world2sign"] = np.identity(4).tolist()
        boxes.append(b)
    nx, ny, _ = _world(script, *script.near_point, 0.0)
    sensors = {}
    for cam, (_, cx, cy, cz, cyaw) in CAMS.items():
        loc = ego_m @ np.array([cx, cy, cz, 1.0])
        c2w = transform_matrix(tuple(loc[:3]), (0.0, 0.0, wyaw + cyaw))
        sensors[cam] = {"location": loc[:3].tolist(), "rotation": [0.0, 0.0, wyaw + cyaw],
                        "intrinsic": intrinsics(*SIZE, 70.0).tolist(), "world2cam": np.linalg.inv(c2w).tolist(),
                        "cam2ego": transform_matrix((cx, cy, cz), (0.0, 0.0, cyaw)).tolist(), "fov": 70.0,
                        "image_size_x": SIZE[0], "image_size_y": SIZE[1]}
    speed = None if i in script.speed_none_frames else ev
    return {
        "x": wx, "y": wy, "throttle": 0.3, "steer": 0.0, "brake": 0.0, "reverse": False,
        "theta": None if i in script.speed_none_frames else math.radians(wyaw + 90.0),
        "speed": speed, "x_command_far": nx + 30, "y_command_far": ny, "command_far": 4,
        "x_command_near": nx, "y_command_near": ny, "command_near": script.command_near,
        "should_brake": int(script.should_brake(t)), "only_ap_brake": False, "x_target": nx, "y_target": ny,
        "next_command": 4, "weather": {"cloudiness": 10.0}, "acceleration": [0.0, 0.0, 9.8],
        "angular_velocity": [0.0, 0.0, 0.0], "bounding_boxes": boxes, "sensors": sensors,
    }


def paint(anno: dict, cam: str) -> Image.Image:
    """The camera image: grey, with each actor's projected box hull filled (far first)."""
    s = anno["sensors"][cam]
    K, w2c = np.array(s["intrinsic"]), np.array(s["world2cam"])
    img = Image.new("RGB", SIZE, BACKGROUND)
    draw = ImageDraw.Draw(img)
    items = []
    for b in anno["bounding_boxes"]:
        if b["class"] not in ("vehicle", "walker"):
            continue
        proj = [project_unreal(c, K, w2c) for c in b["world_cord"]]
        if min(p[2] for p in proj) < 0.5:
            continue
        colour = COLOURS["static" if b.get("state") == "static" else b["class"]]
        items.append((-float(np.mean([p[2] for p in proj])), [(p[0], p[1]) for p in proj], colour))
    for _, pts, colour in sorted(items, key=lambda it: it[0]):
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        draw.rectangle((min(xs), min(ys), max(xs), max(ys)), fill=colour)
    return img


def write_route(root: Path, script: Script, cameras: tuple[str, ...] = tuple(CAMS)) -> Path:
    """Write one route folder; returns its path."""
    route = Path(root) / script.scenario / script.route
    (route / "anno").mkdir(parents=True, exist_ok=True)
    for cam in cameras:
        (route / "camera" / CAMS[cam][0]).mkdir(parents=True, exist_ok=True)
    for i in range(script.frames):
        data = _anno(script, i)
        with gzip.open(route / "anno" / f"{i:05d}.json.gz", "wt", encoding="utf-8") as fh:
            json.dump(data, fh, indent=4)
        for cam in cameras:
            paint(data, cam).save(route / "camera" / CAMS[cam][0] / f"{i:05d}.jpg", format="JPEG", quality=85)
    return route


def build(root: Path, names: tuple[str, ...] = tuple(SCRIPTS), cameras: tuple[str, ...] = tuple(CAMS)) -> Path:
    """Write the named scripted routes under ``root``; returns root."""
    for name in names:
        write_route(root, SCRIPTS[name](), cameras)
    return Path(root)


_BUILT: dict[str, Path] = {}


def shared_root(tmp_path_factory) -> Path:
    """The four scripted routes with six cameras, built once per test session."""
    key = str(tmp_path_factory.getbasetemp())
    if key not in _BUILT:
        _BUILT[key] = build(tmp_path_factory.mktemp("bench2drive"))
    return _BUILT[key]
