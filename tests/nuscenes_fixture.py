"""A small nuScenes-format table set with scripted motion, written by the tests (no real data needed).

Two scenes at 2 Hz, small 320x180 JPEGs for six cameras, a LIDAR_TOP key frame per sample and four
lidar sweeps between samples (non-key sample_data with their own ego poses, as the real data has):
- ``scene-0001`` (world heading 30 degrees): the ego cruises at 10 m/s and brakes to a stop from
  t = 2 s; a car 25 m ahead brakes hard (4 m/s^2) from t = 1 s; a pedestrian crosses from the right
  40 m ahead; a car is parked on the right; a truck follows behind (visibility
  40-60 %, then 0-40 % from t = 2 s: no longer visible).
- ``scene-0002`` (world heading -90 degrees): the ego drives at 8 m/s and turns left from t = 2.5 s
  (0.35 rad/s); a car in the left lane cuts in ahead; an oncoming car passes on the left.

Motion is scripted in a road frame aligned with the ego's initial heading, then placed in the world
so the ego-frame transform is non-trivial. ``SCRIPT`` keeps the road-frame truth for the tests.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from pyquaternion import Quaternion

VERSION = "v1.0-mini"
IMAGE_W, IMAGE_H = 320, 180
FOCAL_PX = 253.2  # nuScenes' 1266 px at 1600 px width, scaled to 320 px
CAMERA_YAWS_DEG = {
    "CAM_FRONT": 0.0, "CAM_FRONT_LEFT": 55.0, "CAM_FRONT_RIGHT": -55.0,
    "CAM_BACK_LEFT": 110.0, "CAM_BACK_RIGHT": -110.0, "CAM_BACK": 180.0,
}
CAMERA_XYZ_M = (1.5, 0.0, 1.5)  # every camera sits here in the ego frame (a simplification)
DT_S = 0.5
SWEEPS = 4
"""LIDAR_TOP sweeps (non-key sample_data with their own ego poses) between two key frames, as at 10 Hz."""
T0_US = 1_533_151_603_547_590


@dataclass
class Track:
    """A scripted agent: road-frame position / yaw / attribute / visibility per sample."""

    name: str
    category: str
    size_wlh: tuple[float, float, float]
    states: dict[int, tuple[float, float, float, str, str]] = field(default_factory=dict)  # k -> x, y, yaw, attr, vis


@dataclass
class SceneScript:
    """One scene's ego poses (road frame) and agents, and where the road frame sits in the world."""

    name: str
    origin_xy: tuple[float, float]
    heading_rad: float
    ego: list[tuple[float, float, float]]  # x, y, yaw per sample
    tracks: list[Track]
    ego_sweeps: list[list[tuple[float, float, float]]] = field(default_factory=list)  # poses between samples


def _ego_profile(n: int, v0: float, brake_from_s: float | None, decel: float,
                 turn_from_s: float | None = None, yaw_rate: float = 0.0) -> list[tuple[float, float, float]]:
    """Integrate a speed/yaw profile at 0.01 s and sample every DT_S."""
    return _ego_fine(n, v0, brake_from_s, decel, turn_from_s, yaw_rate)[::SWEEPS + 1][:n]


def _ego_fine(n: int, v0: float, brake_from_s: float | None, decel: float,
              turn_from_s: float | None = None, yaw_rate: float = 0.0) -> list[tuple[float, float, float]]:
    """The same profile sampled every DT_S / (SWEEPS + 1): the LIDAR_TOP sweeps' ego poses."""
    out, x, y, yaw, v = [], 0.0, 0.0, 0.0, v0
    steps = int(round(DT_S / (SWEEPS + 1) / 0.01))
    for i in range((n - 1) * (SWEEPS + 1) + 1):
        out.append((x, y, yaw))
        for j in range(steps):
            t = i * DT_S / (SWEEPS + 1) + j * 0.01
            if brake_from_s is not None and t >= brake_from_s:
                v = max(0.0, v - decel * 0.01)
            if turn_from_s is not None and t >= turn_from_s:
                yaw += yaw_rate * 0.01
            x += v * math.cos(yaw) * 0.01
            y += v * math.sin(yaw) * 0.01
    return out


def _braking(x0: float, v0: float, t_brake: float, decel: float, t: float) -> float:
    if t <= t_brake:
        return x0 + v0 * t
    tb = min(t - t_brake, v0 / decel)
    return x0 + v0 * t_brake + v0 * tb - 0.5 * decel * tb * tb


def scripts(n: int = 12) -> list[SceneScript]:
    """The two scripted scenes (n samples each)."""
    lead = Track("lead", "vehicle.car", (1.9, 4.6, 1.6))
    ped = Track("ped", "human.pedestrian.adult", (0.7, 0.7, 1.8))
    parked = Track("parked", "vehicle.car", (1.9, 4.5, 1.5))
    truck = Track("truck", "vehicle.truck", (2.5, 8.0, 3.2))
    cone = Track("cone", "movable_object.trafficcone", (0.4, 0.4, 0.8))
    for k in range(n):
        t = k * DT_S
        xl = _braking(25.0, 10.0, 1.0, 4.0, t)
        lead.states[k] = (xl, 0.0, 0.0, "vehicle.moving" if t < 3.5 else "vehicle.stopped", "4")
        ped.states[k] = (40.0, -6.0 + 1.4 * t, math.pi / 2, "pedestrian.moving", "3")
        parked.states[k] = (15.0, -4.0, 0.0, "vehicle.parked", "4")
        if k < 6:
            truck.states[k] = (-15.0 + 10.0 * t, 0.0, 0.0, "vehicle.moving", "2" if k < 4 else "1")
        cone.states[k] = (30.0, 4.5, 0.0, "", "4")
    s1 = SceneScript("scene-0001", (400.0, 1100.0), math.radians(30.0),
                     _ego_profile(n, 10.0, 2.0, 3.0), [lead, ped, parked, truck, cone], _ego_fine(n, 10.0, 2.0, 3.0))

    cutter = Track("cutter", "vehicle.car", (1.9, 4.6, 1.6))
    oncoming = Track("oncoming", "vehicle.car", (1.9, 4.6, 1.6))
    for k in range(n):
        t = k * DT_S
        y = 3.5 * max(0.0, 1.0 - t / 2.0)  # left lane -> ego lane in 2 s
        cutter.states[k] = (8.0 + 9.0 * t, y, -0.2 if 0 < t <= 2.0 else 0.0, "vehicle.moving", "4")
        if k < 8:
            oncoming.states[k] = (60.0 - 9.0 * t, 6.0, math.pi, "vehicle.moving", "3")
    s2 = SceneScript("scene-0002", (1500.0, 900.0), math.radians(-90.0),
                     _ego_profile(n, 8.0, None, 0.0, turn_from_s=2.5, yaw_rate=0.35), [cutter, oncoming],
                     _ego_fine(n, 8.0, None, 0.0, turn_from_s=2.5, yaw_rate=0.35))
    return [s1, s2]


def _to_world(s: SceneScript, x: float, y: float, yaw: float) -> tuple[float, float, float]:
    c, sn = math.cos(s.heading_rad), math.sin(s.heading_rad)
    return s.origin_xy[0] + c * x - sn * y, s.origin_xy[1] + sn * x + c * y, yaw + s.heading_rad


def _q(yaw: float) -> list[float]:
    return list(Quaternion(axis=[0, 0, 1], angle=yaw).elements)


def camera_rotation(yaw_deg: float) -> Quaternion:
    """Sensor -> ego rotation of a camera looking along ego yaw ``yaw_deg`` (z forward, x right, y down)."""
    front = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    yaw = math.radians(yaw_deg)
    rz = np.array([[math.cos(yaw), -math.sin(yaw), 0.0], [math.sin(yaw), math.cos(yaw), 0.0], [0.0, 0.0, 1.0]])
    return Quaternion(matrix=rz @ front)


def intrinsic() -> list[list[float]]:
    """The cameras' 3x3 intrinsic matrix [px]."""
    return [[FOCAL_PX, 0.0, IMAGE_W / 2], [0.0, FOCAL_PX, IMAGE_H / 2], [0.0, 0.0, 1.0]]


MAP_LANES = {  # scene-0001's road in its road frame: token -> (x0, x1, y_right, y_left), and successors
    "lane-ego-0": (-100.0, -40.0, -1.75, 1.75), "lane-ego-a": (-40.0, 30.0, -1.75, 1.75),
    "lane-ego-b": (30.0, 100.0, -1.75, 1.75), "lane-left": (-100.0, 100.0, 1.75, 5.25),
    "lane-right": (-100.0, 100.0, -5.25, -1.75),
}
MAP_NEXT = {"lane-ego-0": ["lane-ego-a"], "lane-ego-a": ["lane-ego-b"]}


def write_map_expansion(root: Path) -> Path:
    """A minimal map expansion (lanes as rectangles, straight centre lines, connectivity) for scene-0001."""
    s1 = scripts()[0]
    layers: dict = {k: [] for k in ("polygon", "line", "node", "drivable_area", "road_segment", "road_block", "lane",
                                    "ped_crossing", "walkway", "stop_line", "carpark_area", "road_divider",
                                    "lane_divider", "traffic_light", "lane_connector")}
    arcs, conn = {}, {}
    for tok, (x0, x1, yr, yl) in MAP_LANES.items():
        nodes = []
        for i, (x, y) in enumerate(((x0, yr), (x1, yr), (x1, yl), (x0, yl))):
            wx, wy, _ = _to_world(s1, x, y, 0.0)
            nodes.append(f"{tok}-n{i}")
            layers["node"].append({"token": nodes[-1], "x": wx, "y": wy})
        layers["polygon"].append({"token": f"{tok}-poly", "exterior_node_tokens": nodes, "holes": []})
        layers["lane"].append({"token": tok, "polygon_token": f"{tok}-poly", "lane_type": "CAR",
                               "from_edge_line_token": "", "to_edge_line_token": "",
                               "left_lane_divider_segments": [], "right_lane_divider_segments": []})
        a, b = _to_world(s1, x0, (yr + yl) / 2, 0.0), _to_world(s1, x1, (yr + yl) / 2, 0.0)
        arcs[tok] = [{"start_pose": [a[0], a[1], a[2]], "end_pose": [b[0], b[1], b[2]], "shape": "LSR",
                      "radius": 999.0, "segment_length": [0.0, x1 - x0, 0.0]}]
        conn[tok] = {"outgoing": MAP_NEXT.get(tok, []), "incoming": [k for k, v in MAP_NEXT.items() if tok in v]}
    layers.update({"version": "1.3", "canvas_edge": [3000.0, 3000.0], "arcline_path_3": arcs, "connectivity": conn})
    path = root / "maps" / "expansion" / "singapore-onenorth.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(layers))
    return path


def write_fixture(root: Path, n: int = 12, with_images: bool = True, with_map: bool = False) -> Path:
    """Write the table set under ``root/VERSION`` (and JPEGs under ``root/samples``; the map expansion of
    scene-0001's road with ``with_map``); returns root."""
    root = Path(root)
    tables: dict[str, list[dict]] = {k: [] for k in (
        "category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor", "ego_pose",
        "log", "scene", "sample", "sample_data", "sample_annotation", "map")}
    cats = sorted({t.category for s in scripts(n) for t in s.tracks})
    for i, c in enumerate(cats):
        tables["category"].append({"token": f"cat-{c}", "name": c, "description": c, "index": i})
    for a in ("vehicle.moving", "vehicle.stopped", "vehicle.parked", "pedestrian.moving", "pedestrian.standing"):
        tables["attribute"].append({"token": f"attr-{a}", "name": a, "description": a})
    for v, lvl in (("1", "v0-40"), ("2", "v40-60"), ("3", "v60-80"), ("4", "v80-100")):
        tables["visibility"].append({"token": v, "level": lvl, "description": lvl})
    channels = list(CAMERA_YAWS_DEG) + ["LIDAR_TOP"]
    for ch in channels:
        cam = ch.startswith("CAM")
        tables["sensor"].append({"token": f"sensor-{ch}", "channel": ch, "modality": "camera" if cam else "lidar"})
        tables["calibrated_sensor"].append({
            "token": f"cs-{ch}", "sensor_token": f"sensor-{ch}",
            "translation": list(CAMERA_XYZ_M) if cam else [0.9, 0.0, 1.8],
            "rotation": list(camera_rotation(CAMERA_YAWS_DEG[ch]).elements) if cam else [1.0, 0.0, 0.0, 0.0],
            "camera_intrinsic": intrinsic() if cam else [],
        })
    for si, s in enumerate(scripts(n)):
        log = f"log-{si}"
        tables["log"].append({"token": log, "logfile": f"log{si}", "vehicle": "n015", "date_captured": "2018-08-01",
                              "location": "singapore-onenorth"})
        samples = [f"s{si}-{k:02d}" for k in range(n)]
        tables["scene"].append({"token": f"scene-tok-{si}", "name": s.name, "description": "scripted",
                                "log_token": log, "nbr_samples": n,
                                "first_sample_token": samples[0], "last_sample_token": samples[-1]})
        for k, tok in enumerate(samples):
            ts = T0_US + si * 100_000_000 + int(k * DT_S * 1e6)
            tables["sample"].append({"token": tok, "timestamp": ts, "scene_token": f"scene-tok-{si}",
                                     "prev": samples[k - 1] if k else "", "next": samples[k + 1] if k + 1 < n else ""})
            ex, ey, eyaw = _to_world(s, *s.ego[k])
            pose = f"pose-{tok}"
            tables["ego_pose"].append({"token": pose, "translation": [ex, ey, 0.0], "rotation": _q(eyaw),
                                       "timestamp": ts})
            for ch in channels:
                cam = ch.startswith("CAM")
                fname = f"samples/{ch}/{s.name}__{ch}__{ts}.{'jpg' if cam else 'pcd.bin'}"
                sweeps = 0 if cam or k + 1 == n else SWEEPS
                tables["sample_data"].append({
                    "token": f"sd-{tok}-{ch}", "sample_token": tok, "ego_pose_token": pose,
                    "calibrated_sensor_token": f"cs-{ch}", "timestamp": ts,
                    "fileformat": "jpg" if cam else "pcd", "is_key_frame": True,
                    "height": IMAGE_H if cam else 0, "width": IMAGE_W if cam else 0, "filename": fname,
                    "prev": (f"sd-{samples[k - 1]}-{ch}" + ("" if cam else f"-sw{SWEEPS}")) if k else "",
                    "next": (f"sd-{tok}-{ch}-sw1" if sweeps else f"sd-{samples[k + 1]}-{ch}") if k + 1 < n else "",
                })
                for j in range(1, sweeps + 1):  # the lidar's non-key sweeps, each with its own ego pose
                    sts = ts + int(j * DT_S / (SWEEPS + 1) * 1e6)
                    wx, wy, wyaw = _to_world(s, *s.ego_sweeps[k * (SWEEPS + 1) + j])
                    tables["ego_pose"].append({"token": f"{pose}-sw{j}", "translation": [wx, wy, 0.0],
                                               "rotation": _q(wyaw), "timestamp": sts})
                    tables["sample_data"].append({
                        "token": f"sd-{tok}-{ch}-sw{j}", "sample_token": samples[k + 1], "ego_pose_token": f"{pose}-sw{j}",
                        "calibrated_sensor_token": f"cs-{ch}", "timestamp": sts, "fileformat": "pcd",
                        "is_key_frame": False, "height": 0, "width": 0,
                        "filename": f"sweeps/{ch}/{s.name}__{ch}__{sts}.pcd.bin",
                        "prev": f"sd-{tok}-{ch}" + (f"-sw{j - 1}" if j > 1 else ""),
                        "next": f"sd-{tok}-{ch}-sw{j + 1}" if j < sweeps else f"sd-{samples[k + 1]}-{ch}",
                    })
                if cam and with_images:
                    path = root / fname
                    path.parent.mkdir(parents=True, exist_ok=True)
                    shade = 40 + 30 * list(CAMERA_YAWS_DEG).index(ch)
                    Image.new("RGB", (IMAGE_W, IMAGE_H), (shade, 90, 120)).save(path, quality=90)
        for track in s.tracks:
            inst = f"inst-{s.name}-{track.name}"
            keys = sorted(track.states)
            anns = [f"ann-{s.name}-{track.name}-{k:02d}" for k in keys]
            tables["instance"].append({"token": inst, "category_token": f"cat-{track.category}",
                                       "nbr_annotations": len(keys), "first_annotation_token": anns[0],
                                       "last_annotation_token": anns[-1]})
            for j, k in enumerate(keys):
                x, y, yaw, attr, vis = track.states[k]
                wx, wy, wyaw = _to_world(s, x, y, yaw)
                tables["sample_annotation"].append({
                    "token": anns[j], "sample_token": samples[k], "instance_token": inst,
                    "visibility_token": vis, "attribute_tokens": [f"attr-{attr}"] if attr else [],
                    "translation": [wx, wy, track.size_wlh[2] / 2], "size": list(track.size_wlh),
                    "rotation": _q(wyaw), "prev": anns[j - 1] if j else "",
                    "next": anns[j + 1] if j + 1 < len(keys) else "", "num_lidar_pts": 50, "num_radar_pts": 2,
                })
    mask = root / "maps" / "fixture-mask.png"
    mask.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8), 255).save(mask)
    tables["map"].append({"token": "map-0", "log_tokens": [f"log-{i}" for i in range(len(scripts(n)))],
                          "category": "semantic_prior", "filename": "maps/fixture-mask.png"})
    if with_map:
        write_map_expansion(root)
    out = root / VERSION
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        (out / f"{name}.json").write_text(json.dumps(rows, indent=1))
    return root
