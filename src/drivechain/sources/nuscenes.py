"""nuScenes as a log source: one Frame per key frame (2 Hz), read through nuscenes-devkit.

What a frame holds (docs/sources/nuscenes.md):
- ego: the key frame's ego pose (LIDAR_TOP's: the instant the boxes are annotated at); speed from
  the neighbouring key frames' poses (centred difference over +-0.5 s);
- agents: every ``sample_annotation`` of a road user (vehicle.*, human.*, animal) with a stable id per
  scene (1, 2, ... by first appearance), world pose, size, speed from the devkit's ``box_velocity``
  and the ego-frame position (x forward, y left, metres); static objects (cones, barriers, debris,
  bicycle racks) are not agents but still occlude;
- per selected camera, each visible agent's clipped pixel box (sources/camera.py's rules, the camera
  built from ``calibrated_sensor`` and that camera's own ``ego_pose``) and a DriveLM-style tag
  ``<c{id},{CAM},{x},{y}>`` (``meta['drivelm_tags']``) in the camera that shows most of it; ``visible`` = shown by a selected
  camera AND annotated visibility of at least 40 % (nuScenes' level 2 of 4);
- the recorded-log conventions of sources/logs.py: ``meta['tracks']`` (each road user's annotations
  over H in the ego frame now: t, x, y, heading), ``meta['ego_path']`` (the ego's recorded positions
  over 10 s), ``meta['ego_future']`` (its key-frame states over H), ``meta['prediction']`` (the scene
  lasts at least H more), ``meta['static_ids']`` (parked vehicles); ``Frame.future`` holds the agents
  annotated through the whole horizon at t = 1 .. H s, relative to an ego that keeps its recorded path
  at its current speed (id 0), like the simulator's IDLE future;
- meta: scene, sample token, map availability, and per agent its nuScenes category, status
  (attribute) and visibility level.
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drivechain.errors import ConfigError
from drivechain.schema import Agent, Frame, FutureState
from drivechain.sources.camera import Camera, box_corners, drivelm_tag, visible_boxes
from drivechain.sources.logs import LogFrame
from drivechain.sources.nuscenes_map import LaneMap, expansion_file

CAMERAS = ("CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT")
"""DriveLM's camera order; CAM_FRONT first (single-image prompts show the first)."""
CAMERA_SETS = {"front": ("CAM_FRONT",), "all": CAMERAS}
MANOEUVRES = ["KEEP", "SLOW_DOWN", "STOP"]
"""Candidate ego manoeuvres checked by log replay; without a lane map no lane change is offered."""
VISIBLE_MIN_LEVEL = 2
"""nuScenes visibility tokens 1..4 = 0-40, 40-60, 60-80, 80-100 % of the object visible over all cameras."""
FUTURE_MIN_S = 1.0
"""An agent gets a recorded future only if it is annotated at least this long after the frame."""
EGO_LENGTH_M, EGO_WIDTH_M = 4.1, 1.8
"""nuScenes' data-collection car (Renault Zoe) [m]."""
FAMILIES = frozenset({
    # simulator families whose inputs a nuScenes frame has (vehicles, ahead/behind, counts, futures)
    "per.vehicles", "per.vehicle_side", "per.count", "pred.motion", "pred.near_ego",
    # recorded-log families that need no lane map (the ego's path is the path it really drove)
    "per.pedestrian_in_path", "pred.pedestrian_enters_path", "plan.safe", "plan.action", "plan.danger",
    "plan.danger_reason", "plan.importance", "beh.longitudinal",
    # annotation families (teacher/families/log_annotations.py)
    "per.category", "per.status", "pred.future_state", "beh.direction",
})
"""The families a nuScenes frame can be labelled with, map-free: lane families (lead vehicle, lanes,
cut-in, lane changes, obstacles in the lane) need lanes, and nuScenes has no traffic-light or sign
states, so no light, sign or junction family is declared."""
MAP_FAMILIES = frozenset({"per.same_lane"})
"""Added when the user has the map expansion of the scenes' locations (sources/nuscenes_map.py)."""
TIME_TOL_S = 0.05
"""Key frames are about 0.5 s apart, not exactly: times within this of a target count as that time [s]."""
PATH_AHEAD_S = 10.0
"""The ego's reference path (for log replay and path questions) is its recorded positions this far ahead [s]."""
STATIC_ID_BASE = 100_000
"""Static objects take part in occlusion under ids from here; they are never agents."""

_CATEGORY_PREFIXES = (
    ("vehicle.bus", "bus"), ("vehicle.car", "car"), ("vehicle.truck", "truck"), ("vehicle.trailer", "trailer"),
    ("vehicle.construction", "construction vehicle"), ("vehicle.emergency", "emergency vehicle"),
    ("vehicle.motorcycle", "motorcycle"), ("vehicle.bicycle", "bicycle"),
    ("human.pedestrian", "pedestrian"), ("animal", "animal"),
)
_STATUS = {
    "vehicle.moving": "moving", "vehicle.stopped": "stopped", "vehicle.parked": "parked",
    "cycle.with_rider": "with rider", "cycle.without_rider": "without rider",
    "pedestrian.moving": "moving", "pedestrian.standing": "standing",
    "pedestrian.sitting_lying_down": "sitting or lying",
}


def short_category(name: str) -> str | None:
    """nuScenes category -> drivechain category; None for static objects (not agents)."""
    return next((short for prefix, short in _CATEGORY_PREFIXES if name.startswith(prefix)), None)


def status_of(attribute_names: list[str]) -> str | None:
    """The annotated status (moving / stopped / parked / standing ...) or None when not annotated."""
    return next((_STATUS[a] for a in attribute_names if a in _STATUS), None)


def _yaw(rotation: list[float]) -> float:
    from pyquaternion import Quaternion

    return float(Quaternion(rotation).yaw_pitch_roll[0])


def _pose_matrix(translation: list[float], rotation: list[float]) -> np.ndarray:
    from pyquaternion import Quaternion

    m = np.eye(4)
    m[:3, :3] = Quaternion(rotation).rotation_matrix
    m[:3, 3] = translation
    return m


def ego_relative(ego_xy: tuple[float, float], ego_yaw: float, x: float, y: float) -> tuple[float, float]:
    """World (x, y) -> ego frame (forward, left) [m]."""
    dx, dy = x - ego_xy[0], y - ego_xy[1]
    c, s = math.cos(ego_yaw), math.sin(ego_yaw)
    return c * dx + s * dy, -s * dx + c * dy


@dataclass(frozen=True)
class EgoPose:
    """The ego at one key frame: world position [m], yaw [rad], time [s since the scene start]."""

    x_m: float
    y_m: float
    yaw_rad: float
    t_s: float


def _devkit_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("nuscenes-devkit")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def open_nuscenes(dataroot: Path, version: str) -> Any:
    """Load the tables with nuscenes-devkit; a missing devkit / folder or broken tables -> one-line ConfigError."""
    if not (dataroot / version).is_dir():
        raise ConfigError(f"no nuScenes tables at {dataroot / version}; pass --dataroot (the folder holding "
                          f"{version}/, samples/, maps/) and --version")
    try:
        from nuscenes.nuscenes import NuScenes
    except ImportError:
        raise ConfigError("nuscenes-devkit is not installed; run: pip install 'drivechain[nuscenes]'") from None
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return NuScenes(version=version, dataroot=str(dataroot), verbose=False)
    except Exception as exc:  # the devkit asserts / raises anything on a broken table set
        raise ConfigError(f"cannot load nuScenes {version} from {dataroot}: {type(exc).__name__}: {exc}") from None


class NuScenesSource:
    """Key frames of selected scenes of a nuScenes table set, as log frames (sources/logs.py protocol)."""

    name = "nuscenes"

    def __init__(self, dataroot: Path, routes: str = "*", cameras: str = "all", stride: int = 1,
                 limit: int | None = None, horizon_s: float = 3.0, version: str = "v1.0-mini") -> None:
        if cameras not in CAMERA_SETS:
            raise ConfigError(f"--cameras must be one of: {', '.join(CAMERA_SETS)} (got '{cameras}')")
        self.dataroot = Path(dataroot)
        self.version = version
        self.patterns = [p.strip() for p in routes.split(",") if p.strip()] or ["*"]
        self.cameras = CAMERA_SETS[cameras]
        self.stride, self.limit, self.horizon_s = stride, limit, horizon_s
        self.nusc = open_nuscenes(self.dataroot, version)
        self._maps: dict[str, LaneMap | None] = {}
        located = {self._location(s["name"]) for s in self.nusc.scene}
        with_map = sorted(loc for loc in located if expansion_file(self.dataroot, loc).is_file())
        self.families = FAMILIES | (MAP_FAMILIES if with_map else frozenset())
        self.notes = {
            "map": (f"map expansion read for {', '.join(with_map)}: lanes near the ego, lane under each road user, "
                    "the ego's lane (per.same_lane); other lane families are not asked" if with_map else
                    "none: no map expansion under maps/expansion/, lanes are not read; map-free families only"),
            "signals": "nuScenes records no traffic-light or sign states: no light, sign or junction family",
            "version": version,
            "nuscenes-devkit": _devkit_version(),
        }
        self._emitted = 0

    # ------------------------------------------------------------------ scenes
    def clips(self) -> list[str]:
        """The scene names matching the patterns (exact names or globs), in table order; none -> ConfigError."""
        known = [s["name"] for s in self.nusc.scene]
        chosen = [n for n in known if any(fnmatch.fnmatchcase(n, p) for p in self.patterns)]
        missing = [p for p in self.patterns if not any(fnmatch.fnmatchcase(n, p) for n in known)]
        if missing:
            raise ConfigError(f"no scene matches {', '.join(missing)}; this table set has: {', '.join(known[:12])}"
                              + (" ..." if len(known) > 12 else ""))
        return chosen

    def samples(self, scene_name: str) -> list[dict]:
        """The scene's key frames in time order."""
        scene = next(s for s in self.nusc.scene if s["name"] == scene_name)
        out, tok = [], scene["first_sample_token"]
        while tok:
            rec = self.nusc.get("sample", tok)
            out.append(rec)
            tok = rec["next"]
        return out

    def _location(self, scene_name: str) -> str:
        scene = next(s for s in self.nusc.scene if s["name"] == scene_name)
        return self.nusc.get("log", scene["log_token"])["location"]

    def lane_map(self, scene_name: str) -> LaneMap | None:
        """The map expansion of the scene's location, or None when the user does not have it."""
        loc = self._location(scene_name)
        if loc not in self._maps:
            try:
                self._maps[loc] = LaneMap(self.dataroot, loc) if expansion_file(self.dataroot, loc).is_file() else None
            except Exception as exc:  # the devkit asserts / raises anything on a broken expansion file
                raise ConfigError(f"cannot read the map expansion {expansion_file(self.dataroot, loc)}: "
                                  f"{type(exc).__name__}: {exc}") from None
        return self._maps[loc]

    def frames(self, clip: str) -> Iterator[LogFrame]:
        """Every ``stride``-th key frame of one scene, until ``limit`` frames were emitted over all scenes."""
        samples = self.samples(clip)
        t0 = samples[0]["timestamp"]
        poses = [self._pose(s, t0) for s in samples]
        ids = self._ids(samples)
        episode = [s["name"] for s in self.nusc.scene].index(clip)
        for k in range(0, len(samples), self.stride):
            if self.limit is not None and self._emitted >= self.limit:
                return
            self._emitted += 1
            frame = self._frame(clip, episode, k, samples, poses, ids)
            yield LogFrame(frame=frame, camera_files=self._camera_files(samples[k]))

    # ------------------------------------------------------------------ ego and agents
    def _pose(self, sample: dict, t0_us: int) -> EgoPose:
        data = sample["data"]
        sd = self.nusc.get("sample_data", data.get("LIDAR_TOP") or data[sorted(data)[0]])
        pose = self.nusc.get("ego_pose", sd["ego_pose_token"])
        return EgoPose(pose["translation"][0], pose["translation"][1], _yaw(pose["rotation"]),
                       (sample["timestamp"] - t0_us) * 1e-6)

    def _ids(self, samples: list[dict]) -> dict[str, int]:
        """instance token -> id, by first appearance in the scene then token (stable)."""
        first: dict[str, int] = {}
        for k, s in enumerate(samples):
            for ann_tok in s["anns"]:
                ann = self.nusc.get("sample_annotation", ann_tok)
                if short_category(ann["category_name"]) is not None:
                    first.setdefault(ann["instance_token"], k)
        return {tok: i + 1 for i, tok in enumerate(sorted(first, key=lambda tok: (first[tok], tok)))}

    def _speed(self, ann_token: str) -> float:
        v = self.nusc.box_velocity(ann_token)
        return 0.0 if np.isnan(v[:2]).any() else float(math.hypot(v[0], v[1]))

    def camera(self, sample: dict, name: str) -> Camera:
        """The calibrated camera of one key frame (its own ego pose: cameras fire at slightly different times)."""
        sd = self.nusc.get("sample_data", sample["data"][name])
        cs = self.nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
        pose = self.nusc.get("ego_pose", sd["ego_pose_token"])
        cam2world = _pose_matrix(pose["translation"], pose["rotation"]) @ _pose_matrix(cs["translation"], cs["rotation"])
        return Camera(name, np.asarray(cs["camera_intrinsic"], dtype=float), np.linalg.inv(cam2world),
                      int(sd["width"]), int(sd["height"]))

    def _boxes(self, sample: dict, ids: dict[str, int]) -> dict[int, dict[str, list[float]]]:
        """agent id -> camera -> clipped pixel box, for the selected cameras (static objects occlude only)."""
        corners: dict[int, np.ndarray] = {}
        for i, ann_tok in enumerate(sample["anns"]):
            ann = self.nusc.get("sample_annotation", ann_tok)
            oid = ids.get(ann["instance_token"], STATIC_ID_BASE + i)
            w, l, h = ann["size"]
            corners[oid] = box_corners(tuple(ann["translation"]), (l / 2, w / 2, h / 2), _yaw(ann["rotation"]))
        out: dict[int, dict[str, list[float]]] = {}
        for cam in self.cameras:
            if cam not in sample["data"]:
                continue
            for oid, box in visible_boxes(self.camera(sample, cam), corners).items():
                if oid < STATIC_ID_BASE:
                    out.setdefault(oid, {})[cam] = box
        return out

    def _ego_speed(self, poses: list[EgoPose], k: int) -> float:
        a, b = poses[max(k - 1, 0)], poses[min(k + 1, len(poses) - 1)]
        dt = b.t_s - a.t_s
        return 0.0 if dt <= 0 else math.hypot(b.x_m - a.x_m, b.y_m - a.y_m) / dt

    def _frame(self, scene: str, episode: int, k: int, samples: list[dict], poses: list[EgoPose],
               ids: dict[str, int]) -> Frame:
        sample, pose = samples[k], poses[k]
        ego = Agent(id=0, category="car", x_m=pose.x_m, y_m=pose.y_m, heading_rad=pose.yaw_rad,
                    speed_mps=round(self._ego_speed(poses, k), 3), length_m=EGO_LENGTH_M, width_m=EGO_WIDTH_M)
        pixel = self._boxes(sample, ids)
        agents, info, anns, tags = [], {}, {}, {}
        for ann_tok in sample["anns"]:
            ann = self.nusc.get("sample_annotation", ann_tok)
            cat = short_category(ann["category_name"])
            if cat is None:
                continue
            aid = ids[ann["instance_token"]]
            anns[aid] = ann
            x, y = ann["translation"][0], ann["translation"][1]
            rx, ry = ego_relative((pose.x_m, pose.y_m), pose.yaw_rad, x, y)
            level = int(ann["visibility_token"]) if str(ann["visibility_token"]).isdigit() else 0
            boxes = pixel.get(aid, {}) if level >= VISIBLE_MIN_LEVEL else {}
            attrs = [self.nusc.get("attribute", t)["name"] for t in ann["attribute_tokens"]]
            agents.append(Agent(id=aid, category=cat, x_m=x, y_m=y, heading_rad=_yaw(ann["rotation"]),
                                speed_mps=round(self._speed(ann_tok), 3), length_m=ann["size"][1],
                                width_m=ann["size"][0], rel_x_m=round(rx, 3), rel_y_m=round(ry, 3),
                                visible=bool(boxes), boxes=boxes))
            entry: dict[str, Any] = {"nuscenes_category": ann["category_name"], "status": status_of(attrs),
                                     "attributes": attrs, "visibility_level": level,
                                     "instance_token": ann["instance_token"]}
            if boxes:
                cam = max(boxes, key=lambda c: ((boxes[c][2] - boxes[c][0]) * (boxes[c][3] - boxes[c][1]),
                                                -CAMERAS.index(c)))
                tags[str(aid)] = drivelm_tag(aid, cam, boxes[cam])
            info[str(aid)] = entry
        agents.sort(key=lambda a: a.id)
        ready = poses[-1].t_s - pose.t_s >= self.horizon_s - TIME_TOL_S
        ego_future = self._ego_future(poses, k)
        frame = Frame(
            frame_id=f"nuscenes/{scene}/{episode}/{k}", source="nuscenes", scenario=scene, episode=episode,
            step=k, seed=0, t_s=round(pose.t_s, 3), ego=ego, agents=agents, actions=list(MANOEUVRES),
            available_actions=list(MANOEUVRES), horizon_s=self.horizon_s,
            meta={"kind": "log", "left_handed": False, "scene": scene, "sample_token": sample["token"],
                  "map": False, "prediction": ready, "ego_future": ego_future,
                  "ego_path": self._ego_path(sample, pose),
                  "tracks": {str(aid): self._track(ann, samples, poses, k) for aid, ann in sorted(anns.items())},
                  "static_ids": sorted(int(i) for i, e in info.items() if e["status"] == "parked"),
                  "agents": dict(sorted(info.items(), key=lambda kv: int(kv[0]))),
                  "drivelm_tags": dict(sorted(tags.items(), key=lambda kv: int(kv[0])))},
        )
        if ready:
            frame.future = self._future(frame, anns, samples, poses, k)
        lane_map = self.lane_map(scene)
        if lane_map is not None:
            self._add_lanes(frame, lane_map)
        return frame

    def _add_lanes(self, frame: Frame, lane_map: LaneMap) -> None:
        """Frame.lanes, every lane_id, and meta['ego_lane'] (who is in the ego's lane) from the map expansion."""
        ego = frame.ego
        frame.lanes = lane_map.lanes_near(ego.x_m, ego.y_m)
        ego.lane_id = lane_map.lane_at(ego.x_m, ego.y_m)
        for a in frame.agents:
            a.lane_id = lane_map.lane_at(a.x_m, a.y_m)
        frame.meta["map"] = True
        if ego.lane_id is None:
            return  # off the mapped lanes (a car park, an unmapped road): no lane questions
        c, s = math.cos(ego.heading_rad), math.sin(ego.heading_rad)
        path = [(ego.x_m + c * x - s * y, ego.y_m + s * x + c * y) for x, y in frame.meta["ego_path"]]
        chain = lane_map.ego_lane(ego.lane_id, path)
        members = {}
        for a in frame.agents:
            inside, edge = lane_map.membership(chain, a.x_m, a.y_m)
            members[str(a.id)] = {"inside": inside, "edge_m": round(edge, 3)}
        frame.meta["ego_lane"] = {"lanes": chain, "agents": members}

    def _within(self, poses: list[EgoPose], k: int, horizon_s: float) -> list[int]:
        return [j for j in range(k + 1, len(poses)) if poses[j].t_s - poses[k].t_s <= horizon_s + TIME_TOL_S]

    def _ego_future(self, poses: list[EgoPose], k: int) -> list[dict[str, Any]]:
        """The ego's recorded key-frame states over H, in the ego frame now (b2d's log convention)."""
        now, out = poses[k], []
        for j in self._within(poses, k, self.horizon_s):
            p = poses[j]
            rx, ry = ego_relative((now.x_m, now.y_m), now.yaw_rad, p.x_m, p.y_m)
            out.append({"t_s": round(p.t_s - now.t_s, 3), "rel_x_m": round(rx, 3), "rel_y_m": round(ry, 3),
                        "heading_rad": round(math.remainder(p.yaw_rad - now.yaw_rad, math.tau), 4),
                        "speed_mps": round(self._ego_speed(poses, j), 3), "lane_id": None})
        return out

    def _ego_path(self, sample: dict, now: EgoPose) -> list[list[float]]:
        """The ego's recorded positions over PATH_AHEAD_S in the ego frame now, from every LIDAR_TOP
        pose (20 Hz sweeps when the table set has them, else the key frames)."""
        out = []
        tok = sample["data"].get("LIDAR_TOP") or sample["data"][sorted(sample["data"])[0]]
        t0 = self.nusc.get("sample_data", tok)["timestamp"]
        tok = self.nusc.get("sample_data", tok)["next"]
        while tok:
            sd = self.nusc.get("sample_data", tok)
            if (sd["timestamp"] - t0) * 1e-6 > PATH_AHEAD_S:
                break
            pose = self.nusc.get("ego_pose", sd["ego_pose_token"])
            rx, ry = ego_relative((now.x_m, now.y_m), now.yaw_rad, pose["translation"][0], pose["translation"][1])
            out.append([round(rx, 3), round(ry, 3)])
            tok = sd["next"]
        return out

    def _chain(self, ann: dict, samples: list[dict], poses: list[EgoPose], k: int) -> list[tuple[float, dict]]:
        """(t after the frame [s], annotation) of the same instance from now up to H (the frame's own first)."""
        index = {s["token"]: j for j, s in enumerate(samples)}
        out, rec = [], ann
        while True:
            j = index.get(rec["sample_token"])
            if j is None or poses[j].t_s - poses[k].t_s > self.horizon_s + TIME_TOL_S:
                break
            out.append((poses[j].t_s - poses[k].t_s, rec))
            if not rec["next"]:
                break
            rec = self.nusc.get("sample_annotation", rec["next"])
        return out

    def _track(self, ann: dict, samples: list[dict], poses: list[EgoPose], k: int) -> list[list[float]]:
        """[t, x, y, heading] of the instance's annotations up to H, in the ego frame at the frame's instant."""
        now = poses[k]
        out = []
        for t, rec in self._chain(ann, samples, poses, k):
            rx, ry = ego_relative((now.x_m, now.y_m), now.yaw_rad, rec["translation"][0], rec["translation"][1])
            out.append([round(t, 3), round(rx, 3), round(ry, 3),
                        round(math.remainder(_yaw(rec["rotation"]) - now.yaw_rad, math.tau), 4)])
        return out

    def _future(self, frame: Frame, anns: dict[int, dict], samples: list[dict], poses: list[EgoPose],
                k: int) -> dict[int, list[FutureState]]:
        """Agents annotated through the whole horizon, at t = 1 .. H s, relative to an ego that keeps its
        recorded path at its current speed (id 0), as the simulator's IDLE future is."""
        from drivechain.sources.logreplay import Path as RefPath, speed_profile

        steps = [float(t) for t in range(1, int(math.floor(self.horizon_s + 1e-9)) + 1)]
        path = RefPath([tuple(p) for p in frame.meta["ego_path"]])
        now = poses[k]
        keep = []
        for t in steps:
            s_m, v = speed_profile("KEEP", frame.ego.speed_mps, t)
            kx, ky, _ = path.pose(s_m)
            c, s = math.cos(now.yaw_rad), math.sin(now.yaw_rad)
            keep.append((kx, ky, now.x_m + c * kx - s * ky, now.y_m + s * kx + c * ky, v))
        out = {0: [FutureState(t_s=t, x_m=round(wx, 3), y_m=round(wy, 3), speed_mps=round(v, 3))
                   for t, (_, _, wx, wy, v) in zip(steps, keep)]}
        for aid, ann in anns.items():
            chain = self._chain(ann, samples, poses, k)
            if not chain or chain[-1][0] < self.horizon_s - TIME_TOL_S:
                continue  # an agent that leaves the annotations before H is not asked about
            states = []
            for t, (kx, ky, _, _, _) in zip(steps, keep):
                x, y, v = self._at(chain, t)
                rx, ry = ego_relative((now.x_m, now.y_m), now.yaw_rad, x, y)
                states.append(FutureState(t_s=t, x_m=round(x, 3), y_m=round(y, 3), speed_mps=round(v, 3),
                                          rel_x_m=round(rx - kx, 3), rel_y_m=round(ry - ky, 3)))
            out[aid] = states
        return out

    def _at(self, chain: list[tuple[float, dict]], t_s: float) -> tuple[float, float, float]:
        """World x, y [m] and speed [m/s] of an annotated instance at time t, linear between annotations."""
        for (ta, a), (tb, b) in zip(chain, chain[1:]):
            if ta - TIME_TOL_S <= t_s <= tb + TIME_TOL_S:
                u = min(max((t_s - ta) / max(tb - ta, 1e-9), 0.0), 1.0)
                va, vb = self._speed(a["token"]), self._speed(b["token"])
                return (a["translation"][0] + u * (b["translation"][0] - a["translation"][0]),
                        a["translation"][1] + u * (b["translation"][1] - a["translation"][1]), va + u * (vb - va))
        t, a = chain[-1]
        return a["translation"][0], a["translation"][1], self._speed(a["token"])

    # ------------------------------------------------------------------ images
    def _camera_files(self, sample: dict) -> dict[str, Path]:
        out = {}
        for cam in self.cameras:
            if cam not in sample["data"]:
                continue
            path = Path(self.nusc.get_sample_data_path(sample["data"][cam]))
            if not path.is_file():
                raise ConfigError(f"camera image {path} named by the tables is missing; nuScenes images belong "
                                  f"under {self.dataroot / 'samples'}")
            out[cam] = path
        return out
