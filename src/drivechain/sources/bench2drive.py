"""Bench2Drive route folders (CARLA logs) -> Frames with camera boxes, signals and the recorded future.

Layout read (Bench2Drive's docs/anno.md): ``<Scenario>/<Town>_<weather>_<route>/anno/NNNNN.json.gz``
and ``camera/rgb_<cam>/NNNNN.jpg`` at 10 Hz; flat release folders (``<Scenario>_<Town>_<Route>_<Weather>/``)
work too. Route folders are discovered under ``--dataroot`` (the
folder itself, its children or grandchildren holding ``anno/``) and filtered by ``--routes`` (a glob
on ``Scenario/Route``). The anno quirks are handled in ``bench2drive_anno``; docs/sources/bench2drive.md
says what every field is used for.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from drivechain.errors import ConfigError, DatasetError
from drivechain.schema import Agent, Frame, FutureState
from drivechain.sources import bench2drive_anno as anno
from drivechain.sources.camera import Camera, box_corners, drivelm_tag, pixel_box, visible_boxes
from drivechain.sources.logreplay import MANOEUVRES, Path as RefPath, speed_profile, to_ego
from drivechain.sources.logs import LogFrame

NAME = "bench2drive"
FPS = 10.0
CAMERAS = {
    "CAM_FRONT": "rgb_front", "CAM_FRONT_LEFT": "rgb_front_left", "CAM_FRONT_RIGHT": "rgb_front_right",
    "CAM_BACK": "rgb_back", "CAM_BACK_LEFT": "rgb_back_left", "CAM_BACK_RIGHT": "rgb_back_right",
}
AGENT_RADIUS_M = 75.0
"""Agents farther than this from the ego (centre distance) are left out (Bench2Drive's viewer uses 75 m)."""
PATH_AHEAD_S = 10.0
"""The ego's reference path is its recorded positions over this many seconds ahead."""
LANE_CHANGE_LEAD_S = 1.5
"""A lane change starts about this long before the ego's centre crosses into the next lane."""
TRACK_STEP_S = 0.5
"""Recorded futures kept for the log replay are sampled every this many seconds."""
_ANNO = re.compile(r"^(\d+)\.json\.gz$")

FAMILIES = frozenset({
    # existing families whose inputs a log has
    "per.vehicles", "per.vehicle_side", "per.count", "pred.motion", "pred.near_ego",
    # log families (teacher/families/log_*.py)
    "per.vehicle_lane", "per.refer", "per.lead_vehicle", "per.lead_distance", "per.traffic_light", "per.stop_sign", "per.junction_ahead",
    "per.pedestrian_in_path", "per.static_obstacle", "pred.cut_in", "pred.pedestrian_enters_path",
    "plan.safe", "plan.action", "plan.danger", "plan.danger_reason", "plan.importance", "beh.longitudinal", "beh.lateral", "beh.turn",
})
"""The question families a Bench2Drive log can label (lanes come from road/lane ids, not a map)."""


_FLAT = re.compile(r"^(.+?)_Town\d+")


def scenario_of(clip: str) -> str:
    """The scenario of a clip id: its folder ('Scenario/Route'), or the name before '_Town' of a flat
    route folder ('ParkingCutIn_Town12_Route1300_Weather2', as Bench2Drive's releases name them)."""
    if "/" in clip:
        return clip.split("/", 1)[0]
    m = _FLAT.match(clip)
    return m.group(1) if m else clip


def _anno_files(route: Path) -> list[tuple[int, Path]]:
    files = sorted((int(m.group(1)), p) for p in (route / "anno").iterdir() if (m := _ANNO.match(p.name)))
    return files


def find_routes(dataroot: Path, pattern: str = "*", cameras: list[str] | None = None) -> list[tuple[str, Path]]:
    """(clip id 'Scenario/Route', folder) of every route folder under ``dataroot`` matching the glob."""
    root = Path(dataroot)
    if not root.is_dir():
        raise ConfigError(f"--dataroot {root} is not a folder; point it at Bench2Drive route folders")
    if (root / "anno").is_dir():
        found = [root]
    else:
        found = sorted({p.parent for p in root.glob("*/anno") if p.is_dir()} | {p.parent for p in root.glob("*/*/anno") if p.is_dir()})
    if not found:
        raise DatasetError(
            f"{root} is not a Bench2Drive route folder: no anno/ folder in it or up to two levels down "
            "(expected <Scenario>/<Town>_<weather>_<route>/anno/NNNNN.json.gz)")
    clips = [(p.relative_to(root).as_posix() if p != root else f"{p.parent.name}/{p.name}", p) for p in found]
    chosen = [(c, p) for c, p in clips if fnmatch.fnmatch(c, pattern) or fnmatch.fnmatch(p.name, pattern)]
    if not chosen:
        raise ConfigError(f"no route under {root} matches --routes '{pattern}' ({len(clips)} routes found, "
                          f"e.g. {clips[0][0]})")
    for clip, path in chosen:
        if not _anno_files(path):
            raise DatasetError(f"route {clip}: anno/ holds no NNNNN.json.gz file; it is not a Bench2Drive route")
        for cam in cameras or ["CAM_FRONT"]:
            if not (path / "camera" / CAMERAS[cam]).is_dir():
                raise DatasetError(f"route {clip}: camera/{CAMERAS[cam]}/ is missing (needed for {cam})")
    return chosen


class Bench2DriveSource:
    """A LogSource over Bench2Drive route folders."""

    name = NAME
    families = FAMILIES

    def __init__(self, dataroot: Path, routes: str = "*", cameras: str = "front", stride: int = 5,
                 limit: int | None = None, horizon_s: float = 3.0):
        if cameras not in ("front", "all"):
            raise ConfigError(f"--cameras must be 'front' or 'all' (got '{cameras}')")
        self.cameras = ["CAM_FRONT"] if cameras == "front" else list(CAMERAS)
        self.stride, self.limit, self.horizon_s = stride, limit, horizon_s
        self._routes = dict(find_routes(dataroot, routes, self.cameras))
        self._emitted = 0

    def clips(self) -> list[str]:
        """Clip ids 'Scenario/Route', sorted."""
        return sorted(self._routes)

    def load(self, clip: str) -> list[anno.AnnoFrame]:
        """Every anno frame of a clip, parsed, speeds filled."""
        path = self._routes[clip]
        files = _anno_files(path)
        frames = [anno.parse(i, anno.load_json_gz(p), p) for i, p in files]
        anno.fill_speeds(frames, FPS)
        return frames

    def frames(self, clip: str) -> Iterator[LogFrame]:
        """Every stride-th frame of the clip, until ``limit`` frames were emitted over all clips."""
        frames = self.load(clip)
        ids = _assign_ids(frames)
        by_index = {f.index: f for f in frames}
        for k, f in enumerate(frames):
            if k % self.stride:
                continue
            if self.limit is not None and self._emitted >= self.limit:
                return
            self._emitted += 1
            yield self._frame(clip, f, by_index, ids)

    # ------------------------------------------------------------------ one frame

    def _cameras(self, clip: str, f: anno.AnnoFrame) -> dict[str, Camera]:
        out = {}
        for cam in self.cameras:
            s = f.sensors.get(cam)
            if not s or "intrinsic" not in s or "world2cam" not in s:
                raise DatasetError(f"route {clip} frame {f.index:05d}: sensors.{cam} lacks intrinsic/world2cam")
            out[cam] = Camera.from_unreal(cam, s["intrinsic"], s["world2cam"], s.get("image_size_x", 1600),
                                          s.get("image_size_y", 900))
        return out

    def _frame(self, clip: str, f: anno.AnnoFrame, by_index: dict[int, anno.AnnoFrame], ids: dict[str, int]) -> LogFrame:
        ego = f.ego
        pose = (ego.x_m, ego.y_m, ego.yaw_rad)

        def rel(x: float, y: float, h: float = 0.0) -> tuple[float, float, float]:
            return to_ego(x, y, h, *pose, left_handed=True)

        near = [b for b in f.boxes if math.hypot(b.x_m - ego.x_m, b.y_m - ego.y_m) <= AGENT_RADIUS_M]
        corners = {ids[b.key]: np.asarray(b.corners, dtype=float) if b.corners else
                   box_corners((b.x_m, b.y_m, b.z_m), (b.length_m / 2, b.width_m / 2, b.height_m / 2), b.yaw_rad)
                   for b in near}
        seen: dict[int, dict[str, list[float]]] = {}
        cameras = self._cameras(clip, f)
        for cam, camera in cameras.items():
            for oid, box in visible_boxes(camera, corners).items():
                seen.setdefault(oid, {})[cam] = box
        agents = []
        for b in sorted(near, key=lambda b: ids[b.key]):
            rx, ry, _ = rel(b.x_m, b.y_m)
            agents.append(Agent(
                id=ids[b.key], category=b.category, x_m=b.x_m, y_m=b.y_m, heading_rad=b.yaw_rad,
                speed_mps=round(b.speed_mps or 0.0, 3), length_m=round(b.length_m, 3), width_m=round(b.width_m, 3),
                lane_id=_lane_key(b), rel_x_m=round(rx, 3), rel_y_m=round(ry, 3), visible=ids[b.key] in seen,
                boxes=seen.get(ids[b.key], {})))
        ego_agent = Agent(id=0, category="car", x_m=ego.x_m, y_m=ego.y_m, heading_rad=ego.yaw_rad,
                          speed_mps=round(ego.speed_mps or 0.0, 3), length_m=round(ego.length_m, 3),
                          width_m=round(ego.width_m, 3), lane_id=_lane_key(ego))
        scenario = scenario_of(clip)
        frame = Frame(
            frame_id=f"{NAME}/{clip}/{f.index}", source=NAME, scenario=scenario, episode=self.clips().index(clip),
            step=f.index, seed=0,
            t_s=round(f.index / FPS, 3), ego=ego_agent, agents=agents,
            signals=[_signal_dict(s, rel, cameras) for s in f.signals],
            command=anno.ROAD_OPTIONS.get(f.command_near if f.command_near is not None else -1, "follow the route"),
            actions=list(MANOEUVRES), available_actions=_available(ego, near),
            horizon_s=self.horizon_s,
        )
        frame.meta.update(self._meta(f, by_index, ids, rel, near))
        # DriveLM's object tags, at the box centre in the first camera (in camera order) that sees it
        frame.meta["drivelm_tags"] = {
            str(a.id): drivelm_tag(a.id, cam, a.boxes[cam])
            for a in agents if a.visible for cam in [next(c for c in self.cameras if c in a.boxes)]}
        frame.future = self._future(f, by_index, ids, frame)
        cams = {cam: self._routes[clip] / "camera" / CAMERAS[cam] / f"{f.index:05d}.jpg" for cam in self.cameras}
        for cam, p in cams.items():
            if not p.is_file():
                raise DatasetError(f"route {clip}: camera/{CAMERAS[cam]}/{f.index:05d}.jpg is missing")
        return LogFrame(frame=frame, camera_files=cams)

    def _meta(self, f, by_index, ids, rel, near) -> dict:
        ego = f.ego
        h = self.horizon_s
        path, ego_future = [], []
        flip: int | None = None
        for j in range(1, int(PATH_AHEAD_S * FPS) + 1):
            g = by_index.get(f.index + j)
            if g is None:
                break
            rx, ry, rh = rel(g.ego.x_m, g.ego.y_m, g.ego.yaw_rad)
            path.append([round(rx, 3), round(ry, 3)])
            if flip is None and g.ego.road_id == ego.road_id and g.ego.lane_id != ego.lane_id:
                flip = len(path) - 1
            t = j / FPS
            if t <= h + 1e-9 and j % int(TRACK_STEP_S * FPS) == 0:
                ego_future.append({"t_s": round(t, 2), "rel_x_m": round(rx, 3), "rel_y_m": round(ry, 3),
                                   "heading_rad": round(rh, 4), "speed_mps": round(g.ego.speed_mps or 0.0, 3),
                                   "lane_id": _lane_key(g.ego)})
        tracks: dict[str, list[list[float]]] = {}
        for b in near:
            states = []
            for j in range(0, int(h * FPS) + 1, int(TRACK_STEP_S * FPS)):
                g = by_index.get(f.index + j)
                nb = None if g is None else g.box(b.key)
                if nb is None:
                    break
                rx, ry, rh = rel(nb.x_m, nb.y_m, nb.yaw_rad)
                states.append([round(j / FPS, 2), round(rx, 3), round(ry, 3), round(rh, 4)])
            tracks[str(ids[b.key])] = states
        prev, nxt = by_index.get(f.index - 1), by_index.get(f.index + 1)
        acc = None
        if prev is not None and nxt is not None:
            acc = round(((nxt.ego.speed_mps or 0.0) - (prev.ego.speed_mps or 0.0)) * FPS / 2, 3)
        near_cmd = None
        if f.near_xy is not None:
            nx, ny, _ = rel(*f.near_xy)
            near_cmd = [round(nx, 2), round(ny, 2)]
        return {
            "kind": "log", "left_handed": True, "fps": FPS, "clip_end": max(by_index),
            "ego_acc_mps2": acc, "driven_path": path, "path_keeps_lane": flip is None,
            # the lane the ego is in: its path, cut LANE_CHANGE_LEAD_S before it crosses into another lane
            # (the manoeuvre starts about then) and continued straight from there (logreplay.Path)
            "ego_path": path if flip is None else path[:max(0, flip - int(LANE_CHANGE_LEAD_S * FPS))], "ego_future": ego_future, "tracks": tracks,
            "static_ids": sorted(ids[b.key] for b in near if b.static),
            "controls": f.controls, "command_near": f.command_near, "command_far": f.command_far,
            "command_far_text": anno.ROAD_OPTIONS.get(f.command_far if f.command_far is not None else -1),
            "near_command_rel_m": near_cmd, "carla_ids": {str(ids[b.key]): b.key for b in near},
            "prediction": f.index + int(round(h * FPS)) <= max(by_index),
        }

    def _future(self, f, by_index, ids, frame: Frame) -> dict[int, list[FutureState]]:
        """Agents' recorded positions 1..H s later, relative to an ego that keeps its path and speed."""
        h = self.horizon_s
        if not frame.meta["prediction"]:
            return {}
        path = RefPath([tuple(p) for p in frame.meta["ego_path"]])
        v0 = frame.ego.speed_mps
        ego_x, ego_y, ego_h = f.ego.x_m, f.ego.y_m, f.ego.yaw_rad
        out: dict[int, list[FutureState]] = {}
        steps = [s for s in range(1, int(math.floor(h + 1e-9)) + 1)]
        keep = []
        for t in steps:
            s_m, v = speed_profile("KEEP", v0, float(t))
            keep.append(path.pose(s_m) + (v,))
        out[0] = []
        for t, (kx, ky, _, v) in zip(steps, keep):
            wx, wy = _from_ego(kx, ky, ego_x, ego_y, ego_h)
            out[0].append(FutureState(t_s=float(t), x_m=round(wx, 3), y_m=round(wy, 3), speed_mps=round(v, 3)))
        for a in frame.agents:
            key = frame.meta["carla_ids"][str(a.id)]
            states = []
            for t, (kx, ky, _, _) in zip(steps, keep):
                g = by_index.get(f.index + int(round(t * FPS)))
                b = None if g is None else g.box(key)
                if b is None:
                    break
                rx, ry, _ = to_ego(b.x_m, b.y_m, 0.0, ego_x, ego_y, ego_h, left_handed=True)
                states.append(FutureState(t_s=float(t), x_m=b.x_m, y_m=b.y_m, speed_mps=round(b.speed_mps or 0.0, 3),
                                          lane_id=_lane_key(b), rel_x_m=round(rx - kx, 3), rel_y_m=round(ry - ky, 3)))
            if len(states) == len(steps):  # an agent that leaves the log before H is not asked about
                out[a.id] = states
        return out


def _from_ego(fx: float, fy_left: float, ego_x: float, ego_y: float, ego_h: float) -> tuple[float, float]:
    """An ego-frame point (x forward, y left) -> CARLA world (y right)."""
    c, s = math.cos(ego_h), math.sin(ego_h)
    right = -fy_left
    return ego_x + fx * c - right * s, ego_y + fx * s + right * c


def _lane_key(b: anno.Box) -> str | None:
    if b.road_id is None or b.lane_id is None:
        return None
    return f"{b.road_id}>{b.section_id if b.section_id is not None else 0}>{b.lane_id}"


def _available(ego: anno.Box, near: list[anno.Box]) -> list[str]:
    """KEEP / SLOW_DOWN / STOP always; a lane change where a same-direction lane exists on that side.

    OpenDRIVE numbers lanes outward from the road's reference line, one sign per direction; |id|
    grows to the right of the driving direction. A left lane exists when |id| > 1; a right lane is
    known only when a vehicle is seen in it (a road's outermost lanes may be shoulders or sidewalks).
    """
    out = ["KEEP", "SLOW_DOWN", "STOP"]
    if ego.lane_id is None or ego.road_id is None:
        return out
    if abs(ego.lane_id) > 1:
        out.insert(0, "LANE_LEFT")
    right = ego.lane_id + (1 if ego.lane_id > 0 else -1)
    if any(b.road_id == ego.road_id and b.lane_id == right and b.cls == "vehicle" for b in near):
        out.append("LANE_RIGHT")
    return [a for a in MANOEUVRES if a in out]


def _signal_dict(s: anno.Signal, rel, cameras: dict[str, Camera]) -> dict:
    """A light or sign for Frame.signals: ego-frame position, trigger volume, pixel box per camera
    (rules 1-2 of the visibility rule; a light is not occluded by the boxes of road users here)."""
    rx, ry, _ = rel(s.x_m, s.y_m)
    boxes = {}
    if any(s.extent):
        corners = box_corners((s.x_m, s.y_m, s.z_m), s.extent, s.yaw_rad)
        for cam, camera in cameras.items():
            got = pixel_box(camera, corners)
            if got is not None:
                boxes[cam] = got[0]
    out = {"kind": s.kind, "id": s.key, "state": s.state, "affects_ego": s.affects_ego,
           "distance_m": round(s.distance_m, 2), "rel_x_m": round(rx, 2), "rel_y_m": round(ry, 2), "boxes": boxes}
    if s.trigger is not None:
        tx, ty, tyaw, hl, hw = s.trigger
        trx, try_, trh = rel(tx, ty, tyaw)
        out.update({"trigger_rel_x_m": round(trx, 2), "trigger_rel_y_m": round(try_, 2),
                    "trigger_heading_rad": round(trh, 4), "trigger_half_length_m": round(hl, 2),
                    "trigger_half_width_m": round(hw, 2)})
    return out


def _assign_ids(frames: list[anno.AnnoFrame]) -> dict[str, int]:
    """CARLA actor key -> small id 1, 2, ... in order of first appearance (ties by key): stable per clip."""
    ids: dict[str, int] = {}
    for f in frames:
        for key in sorted({b.key for b in f.boxes}, key=lambda k: (len(k), k)):
            if key not in ids:
                ids[key] = len(ids) + 1
    return ids
