"""Bench2Drive ``anno/NNNNN.json.gz`` -> compact per-frame records, with every quirk of the format handled.

The format (Bench2Drive's docs/anno.md, written by its tools/data_collect.py straight from the
CARLA API) and what this reader does about each known problem:
- CARLA world coordinates are left-handed (x forward, y RIGHT, z up); yaw turns x toward y.
  World positions are kept as recorded; the ego-frame conversion flips y to the left.
- ``extent`` is HALF the box size: length = 2 * extent[0], width = 2 * extent[1].
- static vehicles (``state == 'static'``): ``location`` / ``rotation`` come from a level bounding
  box matched by distance and are wrong: the position is ``center`` and the yaw comes from
  ``world2vehicle`` (the actor's own transform).
- pedestrians' ``speed`` is always recorded as 0: it is derived from consecutive frames.
- the ego's ``speed`` (speedometer) and ``theta`` (compass) may be None: the speed then comes from
  the ego box's ``speed``, else from consecutive ego positions; the heading always comes from the ego box's yaw, never from the
  compass (whose 0 is north = -y).
- ``trigger_volume_rotation`` is the parent's rotation plus the volume's own relative rotation,
  written modulo 360: the yaw is normalised to (-180, 180].
- a traffic light's ``state`` is CARLA's TrafficLightState written as an int (Red 0, Yellow 1,
  Green 2, Off 3, Unknown 4); names are accepted too.
- actors more than ``MAX_DZ_M`` above or below the ego ("cars in the sky / underground") are skipped.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drivechain.errors import DatasetError

MAX_DZ_M = 10.0
LIGHT_STATES = {0: "red", 1: "yellow", 2: "green", 3: "off", 4: "unknown"}
ROAD_OPTIONS = {
    -1: "follow the route", 1: "turn left at the next junction", 2: "turn right at the next junction",
    3: "go straight at the next junction", 4: "follow the lane", 5: "change to the left lane",
    6: "change to the right lane",
}
"""CARLA's RoadOption values (command_near / command_far) -> the navigation text of Frame.command."""
JUNCTION_OPTIONS = frozenset({1, 2, 3})
TWO_WHEELERS = frozenset({"motorcycle", "bicycle"})
OBSTACLE_PROPS = ("static.prop.",)


@dataclass
class Box:
    """One recorded actor at one frame, corrected: world centre, yaw [rad], full sizes [m]."""

    key: str  # CARLA actor id (a string in the anno)
    cls: str  # ego_vehicle | vehicle | walker | obstacle
    category: str
    x_m: float
    y_m: float
    z_m: float
    yaw_rad: float
    length_m: float
    width_m: float
    height_m: float
    speed_mps: float | None
    static: bool = False
    road_id: int | None = None
    lane_id: int | None = None
    section_id: int | None = None
    corners: list[list[float]] | None = None  # the recorded 8 world vertices, when trustworthy


@dataclass
class Signal:
    """A traffic light or a stop / other trigger sign."""

    key: str
    kind: str  # traffic_light | stop_sign | sign
    x_m: float
    y_m: float
    z_m: float
    state: str | None
    affects_ego: bool
    distance_m: float
    trigger: tuple[float, float, float, float, float] | None  # x, y, yaw [rad], half length, half width
    road_id: int | None = None
    lane_id: int | None = None
    yaw_rad: float = 0.0
    extent: tuple[float, float, float] = (0.0, 0.0, 0.0)  # half sizes [m]


@dataclass
class AnnoFrame:
    """One anno file, compact."""

    index: int
    ego: Box
    boxes: list[Box] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    sensors: dict = field(default_factory=dict)
    controls: dict = field(default_factory=dict)
    command_near: int | None = None
    command_far: int | None = None
    near_xy: tuple[float, float] | None = None
    acceleration: list[float] | None = None
    _by_key: dict[str, Box] | None = field(default=None, repr=False)

    def box(self, key: str) -> Box | None:
        """The actor with this CARLA id in this frame, or None."""
        if self._by_key is None:
            self._by_key = {b.key: b for b in self.boxes}
        return self._by_key.get(key)


def load_json_gz(path: Path) -> dict:
    """One gzipped JSON file; a broken one is a DataError naming it."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, EOFError, ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path} is not a gzipped JSON anno file ({type(exc).__name__}); re-download that route") from None
    if not isinstance(data, dict) or "bounding_boxes" not in data:
        raise DatasetError(f"{path} has no 'bounding_boxes'; it is not a Bench2Drive anno file")
    return data


def norm_deg(angle_deg: float) -> float:
    """An angle in degrees normalised to (-180, 180]."""
    a = math.fmod(float(angle_deg), 360.0)
    if a <= -180.0:
        a += 360.0
    elif a > 180.0:
        a -= 360.0
    return a


def yaw_from_matrix(world2actor: list) -> float:
    """The actor's world yaw [rad] from its world->actor 4x4 matrix."""
    actor2world = np.linalg.inv(np.asarray(world2actor, dtype=float))
    return math.atan2(actor2world[1, 0], actor2world[0, 0])


def light_state(value) -> str:
    """TrafficLightState as int or name -> 'red' / 'yellow' / 'green' / 'off' / 'unknown'."""
    if isinstance(value, bool):
        return "unknown"
    if isinstance(value, (int, float)):
        return LIGHT_STATES.get(int(value), "unknown")
    name = str(value or "").rsplit(".", 1)[-1].lower()
    return name if name in LIGHT_STATES.values() else "unknown"


def _opt_int(v) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _opt_float(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _box(raw: dict, cls: str) -> Box:
    ext = [float(e) for e in raw["extent"]]
    static = raw.get("state") == "static"
    if static and raw.get("world2vehicle") is not None:
        x, y, z = (float(c) for c in raw["center"])
        yaw = yaw_from_matrix(raw["world2vehicle"])
    else:
        x, y, z = (float(c) for c in raw.get("center") or raw["location"])
        yaw = math.radians(norm_deg(raw["rotation"][2]))
    if cls == "walker":
        category = "pedestrian"
    elif cls == "obstacle":
        category = "obstacle"
    else:
        category = str(raw.get("base_type") or "car").lower()
    corners = raw.get("world_cord") if (cls in ("vehicle", "walker", "ego_vehicle") and not static) else None
    return Box(
        key=str(raw.get("id")), cls=cls, category=category, x_m=x, y_m=y, z_m=z, yaw_rad=yaw,
        length_m=2 * ext[0], width_m=2 * ext[1], height_m=2 * ext[2],
        speed_mps=None if cls == "walker" else _opt_float(raw.get("speed")),
        static=static or cls == "obstacle", road_id=_opt_int(raw.get("road_id")), lane_id=_opt_int(raw.get("lane_id")),
        section_id=_opt_int(raw.get("section_id")), corners=corners,
    )


def _trigger(raw: dict) -> tuple[float, float, float, float, float] | None:
    loc, rot, ext = raw.get("trigger_volume_location"), raw.get("trigger_volume_rotation"), raw.get("trigger_volume_extent")
    if not (loc and rot and ext):
        return None
    return (float(loc[0]), float(loc[1]), math.radians(norm_deg(rot[2])), float(ext[0]), float(ext[1]))


def _signal(raw: dict, cls: str) -> Signal | None:
    type_id = str(raw.get("type_id") or "")
    if cls == "traffic_light":
        kind, state = "traffic_light", light_state(raw.get("state"))
    elif "stop" in type_id:
        kind, state = "stop_sign", None
    else:
        kind, state = "sign", None
    x, y, z = (float(c) for c in raw.get("center") or raw["location"])
    ext = tuple(float(e) for e in (raw.get("extent") or (0.0, 0.0, 0.0)))
    return Signal(key=str(raw.get("id")), kind=kind, x_m=x, y_m=y, z_m=z, state=state,
                  affects_ego=str(raw.get("affects_ego")) == "True", distance_m=float(raw.get("distance") or 0.0),
                  trigger=_trigger(raw), road_id=_opt_int(raw.get("road_id")), lane_id=_opt_int(raw.get("lane_id")),
                  yaw_rad=math.radians(norm_deg((raw.get("rotation") or [0, 0, 0])[2])), extent=ext)  # type: ignore[arg-type]


def parse(index: int, data: dict, path: Path) -> AnnoFrame:
    """One anno dict -> AnnoFrame (quirks handled); a missing required field is a DataError naming it."""
    try:
        raw_boxes = data["bounding_boxes"]
        ego_raw = next(b for b in raw_boxes if b.get("class") == "ego_vehicle")
        ego = _box(ego_raw, "ego_vehicle")
        ego.speed_mps = _opt_float(data.get("speed")) if data.get("speed") is not None else ego.speed_mps
        frame = AnnoFrame(index=index, ego=ego, sensors=data.get("sensors") or {},
                          controls={k: data.get(k) for k in ("throttle", "steer", "brake", "should_brake", "only_ap_brake")},
                          command_near=_opt_int(data.get("command_near")), command_far=_opt_int(data.get("command_far")),
                          acceleration=data.get("acceleration"))
        if data.get("x_command_near") is not None and data.get("y_command_near") is not None:
            frame.near_xy = (float(data["x_command_near"]), float(data["y_command_near"]))
        for raw in raw_boxes:
            cls = raw.get("class")
            if cls == "ego_vehicle":
                continue
            z = (raw.get("center") or raw.get("location") or [0, 0, ego.z_m])[2]
            if abs(float(z) - ego.z_m) > MAX_DZ_M:
                continue
            if cls in ("vehicle", "walker"):
                frame.boxes.append(_box(raw, cls))
            elif cls == "traffic_sign" and str(raw.get("type_id", "")).startswith(OBSTACLE_PROPS):
                frame.boxes.append(_box(raw, "obstacle"))
            elif cls in ("traffic_light", "traffic_sign"):
                sig = _signal(raw, cls)
                if sig is not None:
                    frame.signals.append(sig)
    except StopIteration:
        raise DatasetError(f"{path} has no ego_vehicle box; it is not a Bench2Drive anno file") from None
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: a box lacks a required field ({type(exc).__name__}: {exc}); the file is damaged") from None
    return frame


def fill_speeds(frames: list[AnnoFrame], fps: float) -> None:
    """Pedestrians' speed (recorded 0) and a missing ego speed, from consecutive positions [m/s]."""
    def track_speed(pos: dict[int, tuple[float, float]], i: int) -> float | None:
        prev, nxt = pos.get(i - 1), pos.get(i + 1)
        here = pos.get(i)
        if prev and nxt:
            return math.hypot(nxt[0] - prev[0], nxt[1] - prev[1]) * fps / 2
        other = nxt or prev
        if here and other:
            return math.hypot(other[0] - here[0], other[1] - here[1]) * fps
        return None

    ego_pos = {f.index: (f.ego.x_m, f.ego.y_m) for f in frames}
    walkers: dict[str, dict[int, tuple[float, float]]] = {}
    for f in frames:
        for b in f.boxes:
            if b.cls == "walker":
                walkers.setdefault(b.key, {})[f.index] = (b.x_m, b.y_m)
    for f in frames:
        if f.ego.speed_mps is None:
            f.ego.speed_mps = track_speed(ego_pos, f.index) or 0.0
        for b in f.boxes:
            if b.cls == "walker":
                b.speed_mps = track_speed(walkers[b.key], f.index) or 0.0
            elif b.speed_mps is None:
                b.speed_mps = 0.0
