"""highway-env as a drivechain Source: privileged Frames, images, stepping, look-ahead rollouts.

Conventions (checked in tests/test_source_highway.py):
- highway-env's world y grows to the RIGHT of a vehicle heading +x (lane index grows with y and
  LANE_LEFT lowers the index), so ego-relative "left" is the world direction (sin h, -cos h).
- ids: the ego is 0, other vehicles are numbered in order of appearance; the id is stored on the
  vehicle object (``dc_id``) and the next free id on the env, so deepcopy/fork keeps both.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import numpy as np

from drivechain.errors import ConfigError
from drivechain.schema import Agent, Frame, FutureState, Lane
from drivechain.sources.base import Rollout, Snapshot, StepResult
from drivechain.sources.fast_road import patch_road
from drivechain.sources.render import CAMERA, BevCamera, draw_marks
from drivechain.sources.scenarios import get_scenario
from drivechain.sources.shared_rollout import World, make_worlds, run_lockstep, shareable

LANE_SAMPLE_M = 5.0  # spacing of lane polyline points
VEHICLE_REACH_M = 5.0  # a vehicle's centre may lie this far outside the window while part of it is drawn
FUTURE_STEP_S = 0.5  # Frame.future sampling period


def lane_key(lane_index: tuple | None) -> str | None:
    """'from>to>index' for a highway-env lane index."""
    if lane_index is None:
        return None
    a, b, i = lane_index
    return f"{a}>{b}>{i if i is not None else 0}"


def _ordinal(n: int) -> str:
    return {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}.get(n, f"{n}th")


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


class HighwaySource:
    """One highway-env scenario, one episode at a time (see docs/scenarios.md)."""

    name = "highway"

    def __init__(
        self,
        scenario: str,
        image_size: tuple[int, int] | None = None,
        marks: bool = True,
        horizon_s: float = 3.0,
        agent_radius_m: float | None = None,
        sample_radius_m: float | None = None,
        reduced_radius_m: float = 300.0,
        lane_radius_m: float | None = None,
        reduced_physics_hz: int | None = None,
        env_config: dict[str, Any] | None = None,
    ) -> None:
        self.spec = get_scenario(scenario)
        self.scenario = scenario
        self.marks = marks
        self.horizon_s = float(horizon_s)
        self.reduced_radius_m = reduced_radius_m
        self.reduced_physics_hz = reduced_physics_hz
        self.fast_road = True  # reduced rollouts use sources/fast_road.py (same results, less work)
        self.share_traffic = True  # reduced rollouts of a frame run together (sources/shared_rollout.py)
        self._env_config = {**self.spec.config, **(env_config or {})}
        _snapshot_pristine()  # before gym.make: making intersection-v0 already rewrites the class
        self._env = self._make_env(image_size)
        # every vehicle the image can show is listed: the radius follows the camera's footprint
        # (scaling, size, centering differ per scenario; the exit camera reaches ~84 m ahead)
        reach = self.camera.reach_m() + VEHICLE_REACH_M
        self.agent_radius_m = float(agent_radius_m) if agent_radius_m is not None else reach
        self.sample_radius_m = float(sample_radius_m) if sample_radius_m is not None else max(100.0, reach + 20.0)
        self.lane_radius_m = float(lane_radius_m) if lane_radius_m is not None else max(100.0, reach + 20.0)
        self._class_params: dict[str, Any] = {}
        self.seed = 0
        self.episode = 0
        self.step_index = 0
        self._lanes: list[tuple[str, np.ndarray, Any, str | None, str | None]] = []
        # rollouts of the current decision step (frame()'s future and the teacher share the IDLE one)
        self._rollouts: dict[tuple[str, float, bool], Rollout] = {}

    # ------------------------------------------------------------------ construction

    def _make_env(self, image_size: tuple[int, int] | None) -> Any:
        import gymnasium as gym
        import highway_env  # noqa: F401  (registers the env ids)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = gym.make(self.spec.env_id, render_mode="rgb_array", config=dict(self._env_config)).unwrapped
            if image_size is not None:
                width, height = int(image_size[0]), int(image_size[1])
                if width < 16 or height < 16:
                    raise ConfigError(f"image size {width}x{height} is too small; use at least 16x16")
                # keep the default field of view: scale the zoom with the width
                scaling = env.config.get("scaling", 5.5) * width / env.config["screen_width"]
                env.configure({"screen_width": width, "screen_height": height, "scaling": scaling})
        cfg = env.config
        self.camera = BevCamera(
            int(cfg["screen_width"]),
            int(cfg["screen_height"]),
            float(cfg.get("scaling", 5.5)),
            tuple(cfg.get("centering_position", (0.5, 0.5))),  # type: ignore[arg-type]
        )
        self.physics_hz = int(cfg["simulation_frequency"])
        self.policy_hz = int(cfg["policy_frequency"])
        return env

    @property
    def env(self) -> Any:
        """The unwrapped highway-env environment (privileged access for tests and the teacher)."""
        return self._env

    @property
    def actions(self) -> list[str]:
        """The scenario's meta-action names in the env's order."""
        return list(self._env.action_type.actions.values())

    def _action_index(self, action: str) -> int:
        for index, name in self._env.action_type.actions.items():
            if name == action:
                return index
        raise ConfigError(f"action '{action}' does not exist in scenario '{self.scenario}'; use one of {self.actions}")

    # ------------------------------------------------------------------ episode

    def reset(self, seed: int, episode: int = 0) -> None:
        """Start a new episode from this seed."""
        _pin_class_params(self._env, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._env.reset(seed=int(seed))
        self._class_params = {
            k: getattr(_idm_class(self._env), k) for k in _CLASS_PARAMS
        }
        self.seed, self.episode, self.step_index = int(seed), int(episode), 0
        self._rollouts = {}
        self._env.vehicle.dc_id = 0
        self._env._dc_next_id = 1
        _assign_ids(self._env)
        self._lanes = _lane_table(self._env.road.network)

    def step(self, action: str) -> StepResult:
        """Apply a meta-action (by name) for one decision step."""
        index = self._action_index(action)
        _pin_class_params(self._env, self._class_params)
        self._env.enable_auto_render = False  # no rendering of intermediate physics frames
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, reward, terminated, truncated, _ = self._env.step(index)
        _assign_ids(self._env)
        self.step_index += 1
        self._rollouts = {}
        ego = self._env.vehicle
        return StepResult(
            crashed=bool(ego.crashed),
            done=bool(terminated or truncated),
            reward=float(reward),
            info={"terminated": bool(terminated), "truncated": bool(truncated), "speed_mps": float(ego.speed)},
        )

    def fork(self) -> "HighwaySource":
        """An independent copy of the current state (the viewer is not copied)."""
        clone = copy.copy(self)
        clone._env = copy.deepcopy(self._env)
        clone._rollouts = dict(self._rollouts)
        return clone

    def close(self) -> None:
        """Release the env and its viewer."""
        self._env.close()

    # ------------------------------------------------------------------ state

    def available_actions(self) -> list[str]:
        """Meta-actions allowed now, in the env's order."""
        names = self._env.action_type.actions
        return [names[i] for i in sorted(self._env.get_available_actions())]

    def command(self) -> str:
        """The navigation command from the ego's route."""
        ego = self._env.vehicle
        route = getattr(ego, "route", None) or []
        if self.scenario == "roundabout" and route:
            # ring nodes where an exit branches off end in 'x' (ex, nx, wx, sx)
            nodes = [b for _, b, _ in route]
            exits = [n for n in nodes if len(n) == 2 and n.endswith("x")]
            if exits:
                return f"take the {_ordinal(len(exits))} exit"
        if self.scenario == "intersection" and route:
            net = self._env.road.network
            first = net.get_lane((route[0][0], route[0][1], route[0][2] or 0))
            last = net.get_lane((route[-1][0], route[-1][1], route[-1][2] or 0))
            turn = _wrap(last.heading_at(last.length) - first.heading_at(0.0))
            # highway-env's y axis points right of +x, so a positive heading change is a right turn
            way = "go straight" if abs(turn) < math.pi / 4 else ("turn right" if turn > 0 else "turn left")
            return f"cross the intersection, {way}"
        return self.spec.command

    def frame(self) -> Frame:
        """The privileged state now, with ``future`` (ego keeps lane and speed); no images."""
        u = self._env
        ego_v = u.vehicle
        ctx = _EgoCtx(ego_v, self.camera)
        ego = ctx.agent(ego_v)
        agents = [
            ctx.agent(v)
            for v in sorted(_others(u, ego_v, self.agent_radius_m), key=lambda v: v.dc_id)
        ]
        future = self._future([0] + [a.id for a in agents])
        return Frame(
            frame_id=f"{self.name}/{self.scenario}/{self.episode}/{self.step_index}",
            source=self.name,
            scenario=self.scenario,
            episode=self.episode,
            step=self.step_index,
            seed=self.seed,
            t_s=round(float(u.time), 4),
            ego=ego,
            agents=agents,
            lanes=self._near_lanes(ego_v.position),
            command=self.command(),
            actions=self.actions,
            available_actions=self.available_actions(),
            future=future,
            horizon_s=self.horizon_s,
            meta={
                "env_id": self.spec.env_id,
                "physics_hz": self.physics_hz,
                "policy_hz": self.policy_hz,
                "image_size": [self.camera.width_px, self.camera.height_px],
                "camera": {"scaling_px_per_m": self.camera.scaling_px_per_m,
                           "centering": [float(c) for c in self.camera.centering]},
                "target_speeds_mps": [float(s) for s in getattr(u.action_type, "target_speeds", [])],
                "ego_target_speed_mps": float(getattr(ego_v, "target_speed", ego_v.speed)),
                "ego_target_lane_id": lane_key(getattr(ego_v, "target_lane_index", None)),
                "ego_route": [lane_key(r) for r in (getattr(ego_v, "route", None) or [])],
            },
        )

    def _near_lanes(self, ego_xy: np.ndarray) -> list[Lane]:
        lanes = []
        for key, points, lane, left, right in self._lanes:
            near = np.flatnonzero(np.hypot(points[:, 0] - ego_xy[0], points[:, 1] - ego_xy[1]) < self.lane_radius_m)
            if near.size == 0:
                continue
            crop = points[near[0] : near[-1] + 1]
            limit = getattr(lane, "speed_limit", None)
            lanes.append(
                Lane(
                    id=key,
                    polyline_m=[(round(float(x), 3), round(float(y), 3)) for x, y in crop],
                    width_m=round(float(lane.width_at(0.0)), 3),
                    left_id=left,
                    right_id=right,
                    speed_limit_mps=float(limit) if limit is not None else None,
                )
            )
        return lanes

    def _future(self, ids: list[int]) -> dict[int, list[FutureState]]:
        roll = self.rollout("IDLE", self.horizon_s, reduced=True)
        wanted = set(ids)
        per_t: list[tuple[float, dict[int, Agent]]] = [(0.0, {})]
        # t = 0 from the current state, so the first interval can be interpolated too
        ctx = _EgoCtx(self._env.vehicle, None)
        per_t[0][1][0] = ctx.agent(self._env.vehicle)
        for v in self._env.road.vehicles:
            if v.dc_id in wanted and v is not self._env.vehicle:
                per_t[0][1][v.dc_id] = ctx.agent(v)
        for s in roll.samples:
            row = {a.id: a for a in s.agents if a.id in wanted}
            row[0] = s.ego
            per_t.append((s.t_s, row))
        out: dict[int, list[FutureState]] = {i: [] for i in ids}
        n = int(round(self.horizon_s / FUTURE_STEP_S))
        for k in range(1, n + 1):
            t = k * FUTURE_STEP_S
            j = min(range(1, len(per_t)), key=lambda m: abs(per_t[m][0] - t)) if len(per_t) > 1 else 0
            if per_t[j][0] < t - 1e-9 and j + 1 < len(per_t):
                j += 1
            lo, hi = per_t[j - 1], per_t[j]
            w = 0.0 if hi[0] == lo[0] else (t - lo[0]) / (hi[0] - lo[0])
            for i in ids:
                a, b = lo[1].get(i), hi[1].get(i)
                if a is None or b is None:
                    continue
                near = b if w >= 0.5 else a
                out[i].append(
                    FutureState(
                        t_s=round(t, 3),
                        x_m=round(a.x_m + w * (b.x_m - a.x_m), 3),
                        y_m=round(a.y_m + w * (b.y_m - a.y_m), 3),
                        speed_mps=round(a.speed_mps + w * (b.speed_mps - a.speed_mps), 3),
                        lane_id=near.lane_id,
                        rel_x_m=round(a.rel_x_m + w * (b.rel_x_m - a.rel_x_m), 3),
                        rel_y_m=round(a.rel_y_m + w * (b.rel_y_m - a.rel_y_m), 3),
                    )
                )
        return {i: states for i, states in out.items() if states}

    # ------------------------------------------------------------------ images

    def render(self) -> np.ndarray:
        """The bird's-eye image H x W x 3 uint8, with id marks on visible vehicles when enabled."""
        image = self._env.render()
        if image is None or image.shape[:2] != (self.camera.height_px, self.camera.width_px):
            raise ConfigError("highway-env returned no image; unset the SDL_VIDEODRIVER environment variable and retry")
        if self.marks:
            ego_v = self._env.vehicle
            ctx = _EgoCtx(ego_v, self.camera)
            marks = []
            for v in sorted(_others(self._env, ego_v, self.agent_radius_m), key=lambda v: v.dc_id):
                box = ctx.box(v)
                if self.camera.visible(box):
                    marks.append((v.dc_id, box))
            image = draw_marks(image, marks)
        return np.ascontiguousarray(image, dtype=np.uint8)

    # ------------------------------------------------------------------ look-ahead

    def rollout(self, action: str, horizon_s: float, reduced: bool = True, ego_idm: bool = False) -> Rollout:
        """``action`` at the first decision step, then IDLE; every physics step sampled; state unchanged.

        ego_idm=True: after the first decision step the ego drives like highway-env's own IDM
        vehicles longitudinally (IDM behind the vehicle ahead in its lane, toward the target speed the
        action set) while keeping its steering and route; "then IDLE" otherwise holds the target
        speed open-loop, even into a slower vehicle ahead (docs/planning.md).

        reduced=True simulates only the vehicles within ``reduced_radius_m`` of the ego (at
        ``reduced_physics_hz`` when set) and skips observations, rewards and spawning;
        reduced=False steps a deepcopy of the whole env exactly as ``step`` would. Results are
        cached until the next step/reset; treat them as read-only.
        """
        key = (action, float(horizon_s), bool(reduced)) + (("idm",) if ego_idm else ())
        if key not in self._rollouts:
            if reduced and self.share_traffic and self.fast_road and shareable(self._env):
                self._rollout_batch(action, float(horizon_s), ego_idm)
            else:
                self._rollouts[key] = self._rollout(action, horizon_s, reduced, ego_idm)
        return self._rollouts[key]

    def _rollout_batch(self, action: str, horizon_s: float, ego_idm: bool) -> None:
        """The requested reduced rollout together with the frame's other look-ahead rollouts (the IDLE
        one of ``frame()`` and every available action with ego_idm), in lockstep sharing the traffic
        they agree on (sources/shared_rollout.py); all results are cached."""
        wanted = [(action, ego_idm), ("IDLE", False)] + [(a, True) for a in self.available_actions()]
        todo: list[tuple[str, bool]] = []
        for a, idm in wanted:
            key = (a, horizon_s, True) + (("idm",) if idm else ())
            if key not in self._rollouts and (a, idm) not in todo:
                todo.append((a, idm))
        idle = self._action_index("IDLE")
        _pin_class_params(self._env, self._class_params)
        hz = self.reduced_physics_hz or self.physics_hz
        dt = 1.0 / hz
        per_decision = max(1, hz // self.policy_hz)
        n_steps = max(1, int(round(horizon_s * hz)))
        sims, ghosts = make_worlds(self._env, self.reduced_radius_m, len(todo))
        worlds, recorders = [], []
        lane_memo: dict[tuple[int, Any], Any] = {}
        for sim, flags, (a, idm) in zip(sims, ghosts, todo):
            patch_road(sim.road, lane_memo)
            rec = _Recorder(sim, dt, self.sample_radius_m)
            mode = [False]

            def decide(k: int, sim: Any = sim, index: int = self._action_index(a), idm: bool = idm,
                       mode: list[bool] = mode) -> None:
                if idm and k == per_decision:
                    _drive_ego_by_idm(sim)
                    mode[0] = True
                if k % per_decision == 0:
                    sim.action_type.act(index if k == 0 else idle)

            worlds.append(World(sim=sim, decide=decide, record=rec.record, ego_mode=lambda mode=mode: mode[0],
                                ghosts=flags))
            recorders.append(rec)
        run_lockstep(worlds, n_steps, dt, lane_memo)
        for (a, idm), rec in zip(todo, recorders):
            key = (a, horizon_s, True) + (("idm",) if idm else ())
            self._rollouts[key] = Rollout(action=a, horizon_s=horizon_s, dt_s=dt, reduced=True, samples=rec.samples,
                                          crashed=rec.crashed, crashed_with=rec.crashed_with)

    def _rollout(self, action: str, horizon_s: float, reduced: bool, ego_idm: bool = False) -> Rollout:
        index = self._action_index(action)
        idle = self._action_index("IDLE")
        _pin_class_params(self._env, self._class_params)
        sim = copy.deepcopy(self._env)
        # a reduced rollout may also use a coarser physics step (reduced_physics_hz)
        hz = (self.reduced_physics_hz or self.physics_hz) if reduced else self.physics_hz
        dt = 1.0 / hz
        per_decision = max(1, hz // self.policy_hz)
        n_steps = max(1, int(round(horizon_s * hz)))
        rec = _Recorder(sim, dt, self.sample_radius_m)
        if reduced:
            ego = sim.vehicle
            sim.road.vehicles = [
                v for v in sim.road.vehicles
                if v is ego or np.hypot(*(v.position - ego.position)) < self.reduced_radius_m
            ]
            if self.fast_road:
                patch_road(sim.road)
            for k in range(n_steps):
                if ego_idm and k == per_decision:
                    _drive_ego_by_idm(sim)
                if k % per_decision == 0:
                    sim.action_type.act(index if k == 0 else idle)
                sim.road.act()
                sim.road.step(dt)
                rec.record()
        else:
            road_step = sim.road.step

            def step_and_record(dt_s: float) -> None:
                road_step(dt_s)
                rec.record()

            sim.road.step = step_and_record  # the copy only: sample every physics step of env.step
            sim.enable_auto_render = False
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for d in range(math.ceil(n_steps / per_decision)):
                    if ego_idm and d == 1:
                        _drive_ego_by_idm(sim)
                    sim.step(index if d == 0 else idle)
                    _assign_ids(sim)
            del rec.samples[n_steps:]
        return Rollout(
            action=action,
            horizon_s=float(horizon_s),
            dt_s=dt,
            reduced=reduced,
            samples=rec.samples,
            crashed=rec.crashed,
            crashed_with=rec.crashed_with,
        )


# ---------------------------------------------------------------------- helpers


# intersection-v0 writes these on the IDM class itself (process-wide); each source pins its own values
_CLASS_PARAMS = ("DISTANCE_WANTED", "COMFORT_ACC_MAX", "COMFORT_ACC_MIN")
_PRISTINE: dict[str, Any] = {}


def _snapshot_pristine() -> None:
    """Remember highway-env's own IDM class values the first time any source is made."""
    if not _PRISTINE:
        from highway_env.vehicle.behavior import IDMVehicle

        _PRISTINE.update({k: getattr(IDMVehicle, k) for k in _CLASS_PARAMS})


def _idm_class(env: Any) -> Any:
    from highway_env import utils

    return utils.class_from_path(env.config["other_vehicles_type"])


def _pin_class_params(env: Any, values: dict[str, Any] | None) -> dict[str, Any]:
    """Restore this source's IDM class parameters (or the pristine ones before a reset)."""
    cls = _idm_class(env)
    _snapshot_pristine()
    for k, v in (values or _PRISTINE).items():
        setattr(cls, k, v)
    return {k: getattr(cls, k) for k in _CLASS_PARAMS}


def _drive_ego_by_idm(sim: Any) -> None:
    """From now on the (copied) ego's longitudinal control is highway-env's IDM; steering unchanged.

    The acceleration is IDMVehicle.acceleration with this scenario's (pinned) IDM class parameters,
    behind the vehicle ahead in the ego's lane (and, while changing lanes, in its target lane too),
    clipped to the IDM's ACC_MAX, exactly as IDMVehicle.act computes it for the traffic.
    """
    from highway_env.vehicle.kinematics import Vehicle

    ego = sim.vehicle
    driver = _idm_class(sim).create_from(ego)  # never on the road: only its parameters are used

    def act(action: Any = None) -> None:
        if ego.crashed:
            Vehicle.act(ego, {"steering": 0.0, "acceleration": 0.0})
            return
        ego.follow_road()
        steering = float(np.clip(ego.steering_control(ego.target_lane_index), -ego.MAX_STEERING_ANGLE,
                                 ego.MAX_STEERING_ANGLE))
        front, rear = ego.road.neighbour_vehicles(ego, ego.lane_index)
        acc = driver.acceleration(ego_vehicle=ego, front_vehicle=front, rear_vehicle=rear)
        if ego.lane_index != ego.target_lane_index:
            front, rear = ego.road.neighbour_vehicles(ego, ego.target_lane_index)
            acc = min(acc, driver.acceleration(ego_vehicle=ego, front_vehicle=front, rear_vehicle=rear))
        Vehicle.act(ego, {"steering": steering, "acceleration": float(np.clip(acc, -driver.ACC_MAX, driver.ACC_MAX))})

    ego.act = act


def _assign_ids(env: Any) -> None:
    """Give every vehicle without an id the next one, in road order (order of appearance)."""
    next_id = getattr(env, "_dc_next_id", 1)
    for v in env.road.vehicles:
        if not hasattr(v, "dc_id"):
            v.dc_id = next_id
            next_id += 1
    env._dc_next_id = next_id


def _others(env: Any, ego: Any, radius_m: float) -> list[Any]:
    ex, ey = ego.position
    return [
        v for v in env.road.vehicles
        if v is not ego and math.hypot(v.position[0] - ex, v.position[1] - ey) <= radius_m
    ]


def _lane_table(network: Any) -> list[tuple[str, np.ndarray, Any, str | None, str | None]]:
    """Every lane's polyline (static per episode), with its left/right neighbour ids."""
    table = []
    for a, nexts in network.graph.items():
        for b, lanes in nexts.items():
            for i, lane in enumerate(lanes):
                length = float(lane.length)
                s = np.append(np.arange(0.0, length, LANE_SAMPLE_M), length)
                points = np.array([lane.position(float(si), 0.0) for si in s])
                # LANE_LEFT lowers the lane index in highway-env
                left = lane_key((a, b, i - 1)) if i > 0 else None
                right = lane_key((a, b, i + 1)) if i + 1 < len(lanes) else None
                table.append((lane_key((a, b, i)), points, lane, left, right))
    return table


def _agent(**fields: Any) -> Agent:
    """What ``Agent.model_construct(**fields)`` returns when every field is given (Agent has no private
    attributes and forbids extras), in a quarter of the time; tests/test_shared_rollout.py compares."""
    agent = Agent.__new__(Agent)
    object.__setattr__(agent, "__dict__", fields)
    object.__setattr__(agent, "__pydantic_fields_set__", set(fields))
    object.__setattr__(agent, "__pydantic_extra__", None)
    object.__setattr__(agent, "__pydantic_private__", None)
    return agent


class _EgoCtx:
    """Ego-relative geometry at one instant."""

    def __init__(self, ego: Any, camera: BevCamera | None) -> None:
        self.ex, self.ey = float(ego.position[0]), float(ego.position[1])
        self.c, self.s = math.cos(ego.heading), math.sin(ego.heading)
        self.camera = camera
        self.ego = ego

    def box(self, v: Any) -> list[float]:
        assert self.camera is not None
        return self.camera.box(
            (self.ex, self.ey), float(v.position[0]), float(v.position[1]), float(v.heading),
            float(v.LENGTH), float(v.WIDTH),
        )

    def agent(self, v: Any) -> Agent:
        x, y = float(v.position[0]), float(v.position[1])
        dx, dy = x - self.ex, y - self.ey
        boxes: dict[str, list[float]] = {}
        visible = True
        if self.camera is not None:
            box = self.box(v)
            boxes = {CAMERA: box}
            visible = self.camera.visible(box)
        # rollouts build thousands of these; the fields are typed here already (_agent: model_construct)
        return _agent(
            id=int(v.dc_id),
            category="car",
            x_m=round(x, 4),
            y_m=round(y, 4),
            heading_rad=round(float(v.heading), 5),
            speed_mps=round(float(v.speed), 4),
            length_m=float(v.LENGTH),
            width_m=float(v.WIDTH),
            lane_id=lane_key(v.lane_index),
            rel_x_m=round(dx * self.c + dy * self.s, 4),
            rel_y_m=round(dx * self.s - dy * self.c, 4),
            visible=visible,
            boxes=boxes,
            crashed=bool(v.crashed),
        )


def _hit_by(ego: Any, vehicles: list[Any], crashed_before: set[int]) -> Any | None:
    """The vehicle the ego has just collided with: one whose footprint touches the ego's.

    A wreck that crashed earlier counts too (the ego driving into it is a collision with it); when
    no footprint touches (impact already resolved), the nearest newly crashed, then any crashed one.
    """
    others = [v for v in vehicles if v is not ego and v.crashed]
    if not others:
        return None
    touching = [v for v in others if ego._is_colliding(v, 0.0)[0]]
    newly = [v for v in others if v.dc_id not in crashed_before]
    pool = touching or newly or others
    return min(pool, key=lambda v: (float(np.hypot(*(v.position - ego.position))), v.dc_id))


class _Recorder:
    """Snapshots of a simulated copy after every physics step; finds whom the ego hit."""

    def __init__(self, sim: Any, dt_s: float, radius_m: float) -> None:
        self.sim, self.dt_s, self.radius_m = sim, dt_s, radius_m
        self.samples: list[Snapshot] = []
        self.crashed = False
        self.crashed_with: int | None = None
        self._crashed_ids = {v.dc_id for v in sim.road.vehicles if v.crashed and hasattr(v, "dc_id")}

    def record(self) -> None:
        sim = self.sim
        ego = sim.vehicle
        _assign_ids(sim)
        ctx = _EgoCtx(ego, None)
        if ego.crashed and not self.crashed:
            self.crashed = True
            hit = _hit_by(ego, sim.road.vehicles, self._crashed_ids)
            if hit is not None:
                self.crashed_with = int(hit.dc_id)
        self._crashed_ids = {v.dc_id for v in sim.road.vehicles if v.crashed}
        self.samples.append(
            Snapshot.model_construct(
                t_s=round((len(self.samples) + 1) * self.dt_s, 6),
                ego=ctx.agent(ego),
                agents=[ctx.agent(v) for v in _others(sim, ego, self.radius_m)],
                crashed=bool(ego.crashed),
                ego_on_road=bool(ego.on_road),
            )
        )
