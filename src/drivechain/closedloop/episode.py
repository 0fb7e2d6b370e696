"""One closed-loop episode on the simulator side (runs in a worker process).

``EpisodeSim`` owns a source positioned in the episode: it renders and writes the image, builds
the Frame and the teacher's graph for each decision step, applies the action it is given, detects
collisions (with the fault rule of ``metrics``) and the scenario goal, and at the end writes the
replay GIF. Everything it returns is plain data (JSON-able), so it crosses process boundaries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drivechain.closedloop.metrics import classify_collision, collision_partner
from drivechain.dataset import atomic_write_bytes
from drivechain.schema import ChainGraph, ChoiceAnswer, Frame, FrameRecord
from drivechain.sources.corner_cases import base_scenario, corner_meta
from drivechain.sources.render import CAMERA

IMAGES = "images"


@dataclass(frozen=True)
class EpisodeSpec:
    """Which episode: scenario, index, simulator seed, who drives (``model`` or ``teacher``)."""

    scenario: str
    episode: int
    seed: int
    driver: str = "model"

    @property
    def key(self) -> str:
        """Unique name of the episode in a run."""
        return f"{self.driver}/{self.scenario}/{self.episode:04d}"


@dataclass(frozen=True)
class SimConfig:
    """Simulator-side settings shared by every episode of a run."""

    run_dir: str
    source: str = "highway"
    max_steps: int = 20
    horizon_s: float = 3.0
    image_size: tuple[int, int] | None = None
    replay: bool = True
    replay_width_px: int = 320
    replay_colors: int = 32
    warm_scenarios: tuple[str, ...] = ()


# ---------------------------------------------------------------------- goals (privileged)


def scenario_goal(scenario: str, env: Any) -> dict[str, Any]:
    """The scenario's goal and the distance to it from the start (docs/closedloop.md)."""
    scenario = base_scenario(scenario)  # a corner case has its base scenario's goal
    ego = env.vehicle
    net = env.road.network
    x0 = float(ego.position[0])
    if scenario == "merge":
        end_x = float(net.get_lane(("b", "c", 0)).end[0])  # the on-ramp's merge lane ends at node c
        return {"kind": "merge_passed", "x_m": end_x, "distance_m": round(end_x - x0, 4)}
    if scenario == "exit" and "exit" in net.graph.get("2", {}):
        start_x = float(net.get_lane(("2", "exit", 0)).position(0.0, 0.0)[0])
        return {"kind": "exit_taken", "lane": ["2", "exit"], "distance_m": round(start_x - x0, 4)}
    route = list(getattr(ego, "route", None) or [])
    if scenario in ("intersection", "roundabout") and len(route) >= 2:
        lanes = [net.get_lane((a, b, i or 0)) for a, b, i in route]
        along = float(lanes[0].local_coordinates(ego.position)[0])
        dist = sum(float(lane.length) for lane in lanes[:-1]) - along
        last = route[-1]
        return {"kind": "exited", "lane": [last[0], last[1]], "distance_m": round(dist, 4)}
    return {"kind": "pace", "distance_m": None}


def goal_reached(goal: dict[str, Any], env: Any) -> bool:
    """Has the ego reached the goal now?"""
    ego = env.vehicle
    kind = goal["kind"]
    if kind == "merge_passed":
        return float(ego.position[0]) >= goal["x_m"]
    if kind in ("exit_taken", "exited"):
        a, b = goal["lane"]
        lane = ego.lane_index
        # on the goal lane, or already past it (its end node is where the ego's lane starts)
        return (lane[0], lane[1]) == (a, b) or lane[0] == b
    return False


# ---------------------------------------------------------------------- the episode


def _teacher_view(graph: ChainGraph) -> dict[str, Any] | None:
    node = graph.get("plan.action")
    if node is None or not isinstance(node.answer, ChoiceAnswer):
        return None
    a = node.answer
    return {
        "preferred": a.options[a.preferred],
        "acceptable": [a.options[i] for i in a.acceptable],
        "safe": None if a.safe is None else [a.options[i] for i in a.safe],
        "options": list(a.options),
        "ambiguous": node.ambiguous,
        "votes": node.meta,
    }


def _ego_state(frame: Frame, env: Any) -> dict[str, Any]:
    e = frame.ego
    return {
        "x_m": e.x_m, "y_m": e.y_m, "heading_rad": e.heading_rad, "speed_mps": e.speed_mps,
        "lane_id": e.lane_id, "on_road": bool(env.vehicle.on_road),
    }


def _speed_limit(frame: Frame) -> float:
    lanes = {lane.id: lane for lane in frame.lanes}
    lane = lanes.get(frame.ego.lane_id or "")
    if lane is not None and lane.speed_limit_mps:
        return float(lane.speed_limit_mps)
    limits = [lane.speed_limit_mps for lane in frame.lanes if lane.speed_limit_mps]
    return float(max(limits)) if limits else 20.0


class EpisodeSim:
    """The simulator side of one episode; ``start`` then ``step`` until ``done``, then ``finish``."""

    def __init__(self, spec: EpisodeSpec, cfg: SimConfig, source: Any) -> None:
        self.spec, self.cfg, self.source = spec, cfg, source
        self.run_dir = Path(cfg.run_dir)
        self.frame: Frame | None = None
        self.goal: dict[str, Any] = {}
        self.thumbs: list[np.ndarray] = []
        self.seconds = {"env": 0.0, "frame": 0.0, "render": 0.0, "teacher": 0.0, "write": 0.0}

    def start(self) -> dict[str, Any]:
        """Reset the source to the episode's seed; the first observation."""
        self.source.reset(self.spec.seed, self.spec.episode)
        self.goal = scenario_goal(self.spec.scenario, self.source.env)
        obs = self._observe(done=False, truncated=False)
        frame = self.frame
        assert frame is not None
        obs["info"] = {
            "goal": self.goal,
            "limit_mps": _speed_limit(frame),
            "dt_s": 1.0 / float(frame.meta.get("policy_hz", 1)),
            "actions": list(frame.actions),
            "env_duration_steps": int(self.source.env.config.get("duration", 0) or 0)
            * int(frame.meta.get("policy_hz", 1)),
            "corner": frame.meta.get("corner"),  # the scripted hazard of a corner case (None otherwise)
        }
        return obs

    def step(self, action: str) -> dict[str, Any]:
        """Apply ``action`` for one decision step; the next observation (``done`` when it ended)."""
        prev = self.frame
        assert prev is not None, "start() first"
        t0 = time.perf_counter()
        result = self.source.step(action)
        self.seconds["env"] += time.perf_counter() - t0
        done = result.done or self.source.step_index >= self.cfg.max_steps
        obs = self._observe(done=done, truncated=bool(result.info.get("truncated")))
        if result.crashed:
            after = self.frame
            assert after is not None
            partner = collision_partner(prev, after)
            obs["collision"] = classify_collision(prev, after, action, partner)
            obs["collision"]["step"] = prev.step
        obs["done"] = done or result.crashed
        return obs

    def _observe(self, done: bool, truncated: bool) -> dict[str, Any]:
        t0 = time.perf_counter()
        frame = self.source.frame()
        frame.meta.update(corner_meta(self.source.env))  # the scripted hazard's state (corner cases only)
        t1 = time.perf_counter()
        image = self.source.render()
        t2 = time.perf_counter()
        rel = f"{IMAGES}/{self.spec.driver}/{self.spec.scenario}/{self.spec.episode:04d}_{frame.step:03d}.png"
        _write_png(self.run_dir / rel, image)
        frame.images = {CAMERA: rel}
        if self.cfg.replay and self.spec.driver == "model":
            self.thumbs.append(_thumb(image, self.cfg.replay_width_px))
        t3 = time.perf_counter()
        reached = goal_reached(self.goal, self.source.env) if self.goal else False
        graph = ChainGraph()
        teacher = None
        if not done and not frame.ego.crashed:
            from drivechain.teacher.graph import build_graph

            graph = build_graph(frame, self.source, horizon_s=self.cfg.horizon_s)
            teacher = _teacher_view(graph)
        t4 = time.perf_counter()
        self.seconds["frame"] += t1 - t0
        self.seconds["render"] += t2 - t1
        self.seconds["write"] += t3 - t2
        self.seconds["teacher"] += t4 - t3
        self.frame = frame
        return {
            "step": frame.step,
            "record": FrameRecord(frame=frame, graph=graph).model_dump_json(),
            "teacher": teacher,
            "ego": _ego_state(frame, self.source.env),
            "goal_reached": reached,
            "done": done,
            "truncated": truncated,
            "collision": None,
        }

    def finish(self, captions: list[str]) -> dict[str, Any]:
        """Write the replay GIF with one caption per frame; the time spent per part."""
        out: dict[str, Any] = {"seconds": {k: round(v, 6) for k, v in self.seconds.items()}, "replay": None}
        if self.cfg.replay and self.thumbs and self.spec.driver == "model":
            from drivechain.closedloop.replay import write_gif

            # one folder, unique file names: readers may flatten the folder
            rel = f"replays/{self.spec.scenario}_{self.spec.episode:04d}.gif"
            write_gif(self.run_dir / rel, self.thumbs, captions, colors=self.cfg.replay_colors)
            out["replay"] = rel
        self.thumbs = []
        return out


def _thumb(image: np.ndarray, width_px: int) -> np.ndarray:
    from PIL import Image

    factor = round(image.shape[1] / width_px)
    if factor <= 1:
        return image
    # an integer box reduction: a fraction of a resize's cost, about ``width_px`` wide
    return np.asarray(Image.fromarray(image).reduce(factor))


def _write_png(path: Path, image: np.ndarray) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    # compress_level 1: the loop writes one image per decision; speed over a few KB
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG", compress_level=1)
    atomic_write_bytes(path, buf.getvalue())
