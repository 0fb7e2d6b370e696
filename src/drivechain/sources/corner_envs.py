"""highway-env environments with a scripted hazard (docs/scenarios.md, "Corner cases").

Each environment places the ego, the hazard's vehicles and a little background traffic from the
seed, then lets the hazard's vehicles follow their script. The script lives in the vehicles
themselves (their own clock, trigger and manoeuvre), so a deepcopy of the env (the teacher's
look-ahead, ``Source.fork``) carries it on exactly, and ``reset(seed)`` + the recorded actions
rebuild any state. ``config["corner_level"]`` fixes the difficulty; when it is None the level is
drawn from the seeded generator, like the side of a cut-in or whether the target lane is occupied.
The parameters of each level live in sources/corner_cases.py.

Registered with gymnasium under ``drivechain-corner-<name>-v0``; the scenario table refers to them
as ``drivechain.sources.corner_envs:drivechain-corner-<name>-v0`` so gymnasium imports this module.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
from gymnasium.envs.registration import register
from highway_env.envs.highway_env import HighwayEnv
from highway_env.envs.intersection_env import IntersectionEnv
from highway_env.envs.merge_env import MergeEnv
from highway_env.vehicle.behavior import IDMVehicle
from highway_env.vehicle.kinematics import Vehicle

from drivechain.sources.corner_cases import CORNER_CASES, CornerCase

LANE_WIDTH_M = 4.0
CAR_LENGTH_M = 5.0  # highway-env's Vehicle.LENGTH
DECISION_S = 1.0  # every corner case decides at 1 Hz (policy_frequency 1)


# ---------------------------------------------------------------------- scripted vehicles


class ScriptedVehicle(IDMVehicle):
    """An IDM vehicle that never changes lane on its own and runs a manoeuvre once triggered.

    The trigger fires at ``trigger_time_s`` of its own clock (the latest), or earlier when the
    hazard's time to collision (``ttc_now_s``, of ``params['reveals']`` when set) drops to
    ``trigger_ttc_s`` or its own x reaches ``trigger_x_m`` (when set). A TTC trigger makes the
    difficulty exact whatever the ego did before. ``ttc_at_trigger_s`` records the
    time to collision the hazard leaves the ego at that instant if the ego does not react.
    """

    def setup(self, ego: Any, cruise_mps: float, trigger_time_s: float, trigger_ttc_s: float | None = None,
              trigger_x_m: float | None = None, **params: Any) -> "ScriptedVehicle":
        """Arm the script: the ego to watch, the cruise speed [m/s], the trigger."""
        self.dc_ego = ego
        self.dc_clock_s = 0.0
        self.dc_trigger_time_s = float(trigger_time_s)
        self.dc_trigger_ttc_s = trigger_ttc_s
        self.dc_trigger_x_m = trigger_x_m
        self.dc_fired_at_s: float | None = None
        self.dc_ttc_at_trigger_s: float | None = None
        self.dc_params = dict(params)
        self.enable_lane_change = False
        self.target_speed = self.dc_cruise_mps = float(cruise_mps)
        self.check_trigger()  # a hazard present from the start fires at t = 0
        return self

    @property
    def fired(self) -> bool:
        """Has the hazard started?"""
        return self.dc_fired_at_s is not None

    def gap_to_ego_m(self) -> float:
        """Bumper-to-bumper distance ahead of the ego along x [m] (negative when behind it)."""
        return float(self.position[0] - self.dc_ego.position[0]) - CAR_LENGTH_M

    def ttc_now_s(self) -> float | None:
        """Time to collision if the ego keeps its speed and the hazard runs its script [s]."""
        closing = self.dc_ego.speed - self.speed
        gap = self.gap_to_ego_m()
        return gap / closing if closing > 0 and gap >= 0 else None

    def __deepcopy__(self, memo: dict[int, Any]) -> "ScriptedVehicle":
        # A copy is a look-ahead (the teacher's rollouts, forks): it must not foresee a hazard
        # that has not started, so an unfired script is disarmed in the copy.
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            setattr(new, key, copy.deepcopy(value, memo))
        if not self.fired:
            new.dc_armed = False
        return new

    def check_trigger(self) -> None:
        """Fire the script if a trigger condition holds (called at decision instants only)."""
        if self.fired or not getattr(self, "dc_armed", True):
            return
        ttc = (self.dc_params.get("reveals") or self).ttc_now_s() if self.dc_trigger_ttc_s is not None else None
        ttc_hit = ttc is not None and ttc <= self.dc_trigger_ttc_s
        x_hit = self.dc_trigger_x_m is not None and self.position[0] >= self.dc_trigger_x_m
        if self.dc_clock_s >= self.dc_trigger_time_s - 1e-6 or ttc_hit or x_hit:
            ttc = self.ttc_now_s()  # before firing: a pacing merger's TTC is the one it is about to leave
            self.dc_fired_at_s = round(self.dc_clock_s, 4)
            self.dc_ttc_at_trigger_s = None if ttc is None else round(ttc, 3)
            self.on_trigger()

    def act(self, action: Any = None) -> None:
        if self.crashed:
            return
        self.drive()

    def on_trigger(self) -> None:
        """Start the manoeuvre (once)."""

    def drive(self) -> None:
        """One physics step's control: IDM in its target lane."""
        IDMVehicle.act(self)

    def step(self, dt: float) -> None:
        self.dc_clock_s += dt
        super().step(dt)
        # The script fires only at the ego's decision instants (whole seconds), so the frame of that
        # instant is the first one whose look-ahead knows the hazard, before anything has moved.
        if abs(self.dc_clock_s - round(self.dc_clock_s / DECISION_S) * DECISION_S) < 1e-6:
            self.check_trigger()


class BrakingLead(ScriptedVehicle):
    """Brakes at ``decel_mps2`` to a standstill once triggered and stays there."""

    def ttc_now_s(self) -> float | None:
        return braking_ttc_s(self.gap_to_ego_m(), self.dc_ego.speed, self.speed, self.dc_params["decel_mps2"])

    def drive(self) -> None:
        if not self.fired:
            return IDMVehicle.act(self)
        self.follow_road()
        steering = float(np.clip(self.steering_control(self.target_lane_index), -self.MAX_STEERING_ANGLE,
                                 self.MAX_STEERING_ANGLE))
        dt = 1.0 / 15.0
        decel = min(float(self.dc_params["decel_mps2"]), max(0.0, self.speed) / dt)
        Vehicle.act(self, {"steering": steering, "acceleration": -decel})


class LaneChanger(ScriptedVehicle):
    """Changes into ``params['to_lane']`` once triggered, whoever is there (cut-in, reveal, merge).

    With ``params['pace_gap_m']`` it keeps that bumper gap ahead of the ego until the trigger,
    whatever is ahead of it (an on-ramp vehicle that does not slow for the end of its lane), then
    drops to the ego's speed minus ``params['closing_mps']``.
    """

    def drive(self) -> None:
        pace = self.dc_params.get("pace_gap_m")
        if self.fired or pace is None:
            return IDMVehicle.act(self)
        self.follow_road()
        steering = float(np.clip(self.steering_control(self.target_lane_index), -self.MAX_STEERING_ANGLE,
                                 self.MAX_STEERING_ANGLE))
        want = self.dc_ego.speed + 1.0 * (pace - self.gap_to_ego_m())
        Vehicle.act(self, {"steering": steering, "acceleration": float(np.clip(self.speed_control(want), -6, 6))})

    def ttc_now_s(self) -> float | None:
        pace = self.dc_params.get("pace_gap_m")
        if pace is not None and not self.fired:  # it will slow to ego speed - closing when it turns in
            gap = self.gap_to_ego_m()
            return gap / self.dc_params["closing_mps"] if gap >= 0 else None
        return super().ttc_now_s()

    def on_trigger(self) -> None:
        to_lane = self.dc_params.get("to_lane")
        if to_lane == "ego":
            to_lane = self.dc_ego.lane_index
        elif to_lane == "away":  # the neighbour lane on the side away from the ego (left on a tie)
            a, b, i = self.lane_index
            ego_i = self.dc_ego.lane_index[2]
            n = len(self.road.network.graph[a][b])
            choices = [j for j in (i - 1, i + 1) if 0 <= j < n]
            to_lane = (a, b, max(choices, key=lambda j: (abs(j - ego_i), -j)))
        if to_lane is not None:
            self.target_lane_index = tuple(to_lane)
        if self.dc_params.get("pace_gap_m") is not None:
            self.target_speed = max(0.0, self.dc_ego.speed - self.dc_params["closing_mps"])
            self.speed = self.target_speed
        revealed = self.dc_params.get("reveals")
        if revealed is not None:  # the vehicle it uncovers: the ego's time to reach it now
            ttc = revealed.ttc_now_s()
            self.dc_reveal_ttc_s = None if ttc is None else round(ttc, 3)


class StalledVehicle(ScriptedVehicle):
    """Stands still from the start (broken down in its lane)."""

    def drive(self) -> None:
        Vehicle.act(self, {"steering": 0.0, "acceleration": -self.speed * 15.0 if self.speed > 0 else 0.0})


class PriorityViolator(ScriptedVehicle):
    """Crosses the intersection at its cruise speed and never yields (ignores the priority rules)."""

    def ttc_now_s(self) -> float | None:
        return self.dc_params.get("ttc_s")

    def drive(self) -> None:
        self.target_speed = self.dc_cruise_mps  # undo the road's 'yield' order every step
        self.is_yielding = False
        IDMVehicle.act(self)


# ---------------------------------------------------------------------- helpers


def braking_ttc_s(gap_m: float, ego_mps: float, lead_mps: float, decel_mps2: float) -> float | None:
    """Time until a constant-speed ego reaches a lead braking at ``decel_mps2`` to a stop [s]."""
    if gap_m < 0:
        return None
    stop_t = lead_mps / decel_mps2
    # gap + v t - a t^2 / 2 = v_ego t while the lead still moves
    a, b, c = decel_mps2 / 2, ego_mps - lead_mps, -gap_m
    disc = b * b - 4 * a * c
    t = (-b + math.sqrt(disc)) / (2 * a) if disc >= 0 else None
    if t is not None and t <= stop_t:
        return t
    return (gap_m + lead_mps * lead_mps / (2 * decel_mps2)) / ego_mps if ego_mps > 0 else None


def gap_for_ttc_m(ttc_s: float, ttc: Any) -> float:
    """The bumper gap [m] at which ``ttc(gap)`` (increasing in the gap) equals ``ttc_s``."""
    lo, hi = 0.0, 500.0
    for _ in range(60):
        mid = (lo + hi) / 2
        value = ttc(mid)
        if value is not None and value < ttc_s:
            lo = mid
        else:
            hi = mid
    return hi


def _speeds_config(speeds: list[float]) -> dict[str, Any]:
    return {"type": "DiscreteMetaAction", "target_speeds": speeds}


def pick(env: Any, case: CornerCase) -> dict[str, Any]:
    """The level (config or seeded draw) and its parameters, plus the seeded variant."""
    level = env.config.get("corner_level")
    draws = env.np_random.integers(0, 10_000, size=2)  # always drawn: traffic is the same for every level
    if level is None:
        level = int(draws[0]) % len(case.levels)
    if not 0 <= int(level) < len(case.levels):
        raise ValueError(f"corner_level {level} out of range for {case.name} (0..{len(case.levels) - 1})")
    variants = case.variants or ("",)
    variant = variants[int(draws[1]) % len(variants)]
    # a seeded offset (hazard speed [m/s] / 2, start positions) so that seeds differ; the TTC
    # triggers keep the difficulty exact
    speed_offset = round(float(env.np_random.uniform(-2.0, 2.0)), 3)
    return {"level": int(level), "variant": variant, "speed_offset_mps": speed_offset, **case.levels[int(level)]}


def _ego(env: Any, lane: Any, s_m: float, speed_mps: float) -> Any:
    ego = env.action_type.vehicle_class(env.road, lane.position(s_m, 0.0), lane.heading_at(s_m), speed_mps)
    ego.target_speed = speed_mps
    if hasattr(ego, "speed_to_index"):
        ego.speed_index = ego.speed_to_index(speed_mps)
        ego.target_speed = ego.index_to_speed(ego.speed_index)
    env.road.vehicles.append(ego)
    env.controlled_vehicles = [ego]
    return ego


def _car(env: Any, cls: type, lane_index: tuple, s_m: float, speed_mps: float) -> Any:
    lane = env.road.network.get_lane(lane_index)
    v = cls(env.road, lane.position(s_m, 0.0), lane.heading_at(s_m), speed_mps,
            target_lane_index=lane_index, target_speed=speed_mps)
    env.road.vehicles.append(v)
    return v


def _background(env: Any, lanes: list[tuple], around_m: float, keep_out: list[tuple[tuple, float, float]],
                count: int, speed_mps: float) -> None:
    """A little seeded IDM traffic, never inside the (lane, from, to) keep-out zones."""
    rng = env.np_random
    placed: list[tuple[tuple, float]] = []
    for _ in range(count * 4):
        if len(placed) >= count:
            break
        lane = lanes[int(rng.integers(len(lanes)))]
        s = around_m + float(rng.uniform(-60.0, 120.0))
        if any(lane == kl and lo <= s <= hi for kl, lo, hi in keep_out):
            continue
        if any(lane == pl and abs(s - ps) < 15.0 for pl, ps in placed) or s < 5.0:
            continue
        v = _car(env, IDMVehicle, lane, s, speed_mps + float(rng.uniform(-2.0, 2.0)))
        v.randomize_behavior()
        placed.append((lane, s))


def _record(env: Any, case: CornerCase, params: dict[str, Any], hazard: Any, extra: list[Any] = (),
            trigger: Any = None) -> None:
    """Keep the case on the env: the hazard vehicle, the other scripted ones, the one that triggers."""
    env.dc_corner = {"case": case.name, "params": params, "hazard": hazard, "extra": list(extra),
                     "trigger": trigger if trigger is not None else hazard}
    env.vehicle = env.controlled_vehicles[0]


# ---------------------------------------------------------------------- straight-road cases


class _CornerHighway(HighwayEnv):
    """Three straight lanes; the case's ``build`` places every vehicle."""

    CASE = ""

    @classmethod
    def default_config(cls) -> dict:
        config = super().default_config()
        config.update({
            "lanes_count": 3, "vehicles_count": 0, "duration": 15, "corner_level": None,
            "action": _speeds_config([0, 5, 10, 15, 20, 25, 30]),
        })
        return config

    def _create_vehicles(self) -> None:
        case = CORNER_CASES[self.CASE]
        params = pick(self, case)
        getattr(self, f"_build_{self.CASE}")(case, params)

    def _lane(self, i: int) -> tuple:
        return ("0", "1", i)

    def _build_hardbrake(self, case: CornerCase, p: dict[str, Any]) -> None:
        v, s0 = p["speed_mps"], 80.0
        ego = _ego(self, self.road.network.get_lane(self._lane(1)), s0, v)
        lead_v = v - p["closing_mps"] + p["speed_offset_mps"] / 2
        # starts just above the level (the braking TTC falls ~0.15 s per s): brakes when it drops to it
        gap = gap_for_ttc_m(p["ttc_s"] + 0.15, lambda g: braking_ttc_s(g, v, lead_v, p["decel_mps2"]))
        lead = _car(self, BrakingLead, self._lane(1), s0 + CAR_LENGTH_M + gap, lead_v)
        lead.setup(ego, lead_v, p["latest_s"], trigger_ttc_s=p["ttc_s"], decel_mps2=p["decel_mps2"])
        # both neighbours occupied alongside: braking, not swerving, is the way out
        blockers = [_car(self, ScriptedVehicle, self._lane(i), s0 + off, v).setup(ego, v, 1e9)
                    for i, off in ((0, -2.0), (2, 3.0))]
        _background(self, [self._lane(i) for i in range(3)], s0,
                    [(self._lane(i), s0 - 30, s0 + 150) for i in range(3)], 3, v)
        _record(self, case, p, lead, blockers)

    def _build_cutin(self, case: CornerCase, p: dict[str, Any]) -> None:
        v, s0 = 25.0, 80.0
        ego = _ego(self, self.road.network.get_lane(self._lane(1)), s0, v)
        side = 0 if p["variant"] == "left" else 2
        slow = v - p["closing_mps"] + p["speed_offset_mps"] / 2
        # a constant-speed TTC falls 1 s per s, so a decision-time trigger is exact only at t = 0:
        # it starts at the level and turns in at once (frame 0 is the trigger frame)
        start = s0 + CAR_LENGTH_M + p["ttc_s"] * (v - slow) - 0.01
        cutter = _car(self, LaneChanger, self._lane(side), start, slow)
        cutter.setup(ego, slow, p["latest_s"], trigger_ttc_s=p["ttc_s"], to_lane="ego")
        other = 2 if side == 0 else 0
        _background(self, [self._lane(i) for i in range(3)], s0,
                    [(self._lane(1), s0 - 20, s0 + 150), (self._lane(side), s0 - 20, start + 40),
                     (self._lane(other), s0 - 40, s0 + 150)], 3, v)
        _record(self, case, p, cutter)

    def _build_stalled(self, case: CornerCase, p: dict[str, Any]) -> None:
        v, s0 = 25.0, 60.0 + 10 * p["speed_offset_mps"]
        ego = _ego(self, self.road.network.get_lane(self._lane(1)), s0, v)
        stall_s = s0 + CAR_LENGTH_M + p["ttc_s"] * v - 0.01  # revealed at t = 0 (see _build_cutin)
        stalled = _car(self, StalledVehicle, self._lane(1), stall_s, 0.0).setup(ego, 0.0, 1e9)
        # the vehicle in front is the ego's lead until it moves out (the stalled car is ttc_s away then)
        screen = _car(self, LaneChanger, self._lane(1), s0 + CAR_LENGTH_M + p["screen_gap_m"], v)
        screen.setup(ego, v, p["latest_s"], trigger_ttc_s=p["ttc_s"], to_lane="away", reveals=stalled)
        stalled.check_collisions = screen.check_collisions = False  # the screen may brush past it
        _background(self, [self._lane(0), self._lane(2)], s0,
                    [(self._lane(0), s0 - 40, stall_s + 40), (self._lane(2), s0 - 40, s0 + 40)], 2, v)
        _record(self, case, p, stalled, [screen], trigger=screen)

    def _build_overtake(self, case: CornerCase, p: dict[str, Any]) -> None:
        v, s0 = 25.0, 80.0
        ego = _ego(self, self.road.network.get_lane(self._lane(1)), s0, v)
        slow = p["slow_mps"] + p["speed_offset_mps"] / 2
        gap = p["ttc_s"] * (v - slow)
        lead = _car(self, ScriptedVehicle, self._lane(1), s0 + CAR_LENGTH_M + gap, slow).setup(ego, slow, 0.0)
        extra = []
        if p["variant"] == "occupied":
            extra.append(_car(self, ScriptedVehicle, self._lane(0), s0 - 4.0, v).setup(ego, v, 1e9))
        _background(self, [self._lane(2)], s0, [(self._lane(2), s0 - 30, s0 + 60)], 2, v - 3)
        _record(self, case, p, lead, extra)


class HardBrakeEnv(_CornerHighway):
    """Lead vehicle brakes hard to a standstill."""

    CASE = "hardbrake"


class CutInEnv(_CornerHighway):
    """A slower vehicle cuts into the ego lane, into a short gap."""

    CASE = "cutin"


class StalledEnv(_CornerHighway):
    """A stalled vehicle in the ego lane, revealed when the vehicle in front moves out."""

    CASE = "stalled"


class OvertakeEnv(_CornerHighway):
    """A slow vehicle ahead; the left lane is free or occupied."""

    CASE = "overtake"


# ---------------------------------------------------------------------- on-ramp


class OnRampEnv(MergeEnv):
    """merge-v0's road; the on-ramp vehicle merges in front of the ego without yielding."""

    @classmethod
    def default_config(cls) -> dict:
        config = super().default_config()
        config.update({"duration": 15, "corner_level": None, "action": _speeds_config([0, 5, 10, 15, 20, 25, 30])})
        return config

    def _make_vehicles(self) -> None:
        case = CORNER_CASES["onramp"]
        p = pick(self, case)
        v, merge_start_x = 25.0, 230.0 + 5 * p["speed_offset_mps"]
        pace_gap = p["ttc_s"] * p["closing_mps"]
        # the merger paces the ego pace_gap ahead along the ramp and turns in once in the merge lane
        ramp = self.road.network.get_lane(("k", "b", 0))
        ego_x = float(ramp.position(0.0, 0.0)[0]) - pace_gap - CAR_LENGTH_M - 40.0
        ego = _ego(self, self.road.network.get_lane(("a", "b", 1)), ego_x, v)
        merger = _car(self, LaneChanger, ("k", "b", 0), 0.0, v)
        merger.setup(ego, v, 1e9, trigger_x_m=merge_start_x + p["merge_at_m"], to_lane=("b", "c", 1),
                     pace_gap_m=pace_gap, closing_mps=p["closing_mps"])
        _background(self, [("a", "b", 0)], ego_x, [(("a", "b", 0), ego_x - 20, ego_x + 40)], 2, v)
        _record(self, case, p, merger)


# ---------------------------------------------------------------------- intersection


class CrossingEnv(IntersectionEnv):
    """intersection-v0's road, no random traffic; a vehicle from the minor road ignores the ego's priority."""

    EGO_CORNER = 1  # corners 1 and 3 are the major road (priority 3), 0 and 2 the minor one (priority 1)

    @classmethod
    def default_config(cls) -> dict:
        config = super().default_config()
        config.update({"corner_level": None, "initial_vehicle_count": 0, "spawn_probability": 0.0,
                       "destination": f"o{(cls.EGO_CORNER + 2) % 4}", "duration": 13})
        return config

    def _place(self, corner: int, before_m: float, conflict_s: float) -> tuple[tuple, float]:
        """(lane index, s) of the point ``before_m`` before the conflict along corner's straight route."""
        inner = (f"ir{corner}", f"il{(corner + 2) % 4}", 0)
        if before_m <= conflict_s:
            return inner, conflict_s - before_m
        incoming = (f"o{corner}", f"ir{corner}", 0)
        lane = self.road.network.get_lane(incoming)
        return incoming, max(0.0, lane.length - (before_m - conflict_s))

    def _make_vehicles(self, n_vehicles: int = 0) -> None:
        case = CORNER_CASES["crossing"]
        p = pick(self, case)
        ego_c = self.EGO_CORNER
        viol_c = (ego_c + 1) % 4 if p["variant"] == "left" else (ego_c + 3) % 4
        net = self.road.network
        ego_inner = net.get_lane((f"ir{ego_c}", f"il{(ego_c + 2) % 4}", 0))
        viol_inner = net.get_lane((f"ir{viol_c}", f"il{(viol_c + 2) % 4}", 0))
        # the conflict point: where the two straight crossing paths meet
        ss = np.linspace(0.0, ego_inner.length, 400)
        s_e = float(min(ss, key=lambda s: abs(viol_inner.local_coordinates(ego_inner.position(s, 0.0))[1])))
        s_v = float(viol_inner.local_coordinates(ego_inner.position(s_e, 0.0))[0])
        v = 9.0
        viol_v = v + p["speed_offset_mps"] / 2
        lane_e, at_e = self._place(ego_c, v * p["ttc_s"], s_e)
        lane = net.get_lane(lane_e)
        ego = _ego(self, lane, at_e, v)
        ego.plan_route_to(self.config["destination"])
        lane_v, at_v = self._place(viol_c, viol_v * p["ttc_s"], s_v)
        violator = _car(self, PriorityViolator, lane_v, at_v, viol_v)
        violator.plan_route_to(f"o{(viol_c + 2) % 4}")
        violator.setup(ego, viol_v, 0.0, ttc_s=p["ttc_s"])
        _record(self, case, p, violator)


# ---------------------------------------------------------------------- registration


def _register() -> None:
    for name, cls in (("hardbrake", HardBrakeEnv), ("cutin", CutInEnv), ("stalled", StalledEnv),
                      ("overtake", OvertakeEnv), ("onramp", OnRampEnv), ("crossing", CrossingEnv)):
        env_id = f"drivechain-corner-{name}-v0"
        from gymnasium.envs.registration import registry

        if env_id not in registry:
            register(id=env_id, entry_point=f"{__name__}:{cls.__name__}")


_register()
