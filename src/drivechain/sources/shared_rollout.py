"""Several look-ahead rollouts of one frame stepped in lockstep, sharing the traffic they agree on.

The candidate actions of a frame differ only in what the ego does; most of the traffic drives
exactly alike in all of them. The first world (the reference) is simulated in full, exactly as a
single reduced rollout. Every other world holds its own ego and, for each other vehicle, either
the reference's very object (a *ghost*: shared, stepped once by the reference) or its own copy (a
*real* vehicle, simulated in that world). Before each physics step a ghost becomes real (a copy of
the reference's vehicle as it is then) whenever what it reads during the step could differ from
the reference's, judged with highway-env's own code:

- its neighbour queries (``Road.neighbour_vehicles`` on its lane, its target lane, and its side lanes
  when MOBIL runs this step) return a vehicle that is real in the world, or a different vehicle;
- it is changing lanes and its abort rule (``IDMVehicle.change_lane_policy``) could see a real vehicle;
- it reaches the end of its target lane (``follow_road`` may draw from the road's random generator,
  which each world owns);
- after the step, before collisions: it is within reach of a real vehicle by ``_is_colliding``'s own
  spherical pre-check (with the larger speed of the pair), or of a ghost made real this way.

A real vehicle whose whole state equals the reference's bit for bit becomes a ghost again. Vehicles
act and step in the road's order, world after world per vehicle, so every read sees the same state
as in a world simulated on its own; collisions are resolved in each world for the pairs with a real
vehicle, in highway-env's pair order. Ghosts are only plain ``IDMVehicle`` objects on roads that keep
highway-env's own ``act``/``step`` with only static objects (obstacles: a ghost's collision with one
flags the reference's copy only, and nothing reads those flags); anything else is simulated as before
(``shareable``). Checked by tests/test_shared_rollout.py (shared == one-by-one rollouts, byte for byte).
"""

from __future__ import annotations

import copy
import math
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drivechain.sources.fast_road import _memo_trajectories

MIN_GHOSTS = 3  # fewer plain IDM vehicles than this on the road: rollouts run one by one
TOUCH_SLACK_M = 1e-6  # float rounding allowance on the collision pre-check's distance [m]
_SKIP = ("road", "act")  # the world, and the ego's IDM driver (compared as World.ego_mode)


@dataclass
class World:
    """One rollout in the lockstep: its env copy and the ego's decision for each physics step."""

    sim: Any
    decide: Callable[[int], None]  # called before physics step k (action, switch to IDM)
    record: Callable[[], None]  # called after each physics step
    ego_mode: Callable[[], Any] = lambda: None  # what drives the ego now (equal modes + equal states: same ego)
    ghosts: list[bool] = field(default_factory=list)


def shareable(env: Any) -> bool:
    """Whether this env's road can be stepped with shared ghosts (highway-env's own act/step, no objects)."""
    from highway_env.road.road import Road
    from highway_env.vehicle.objects import Landmark, Obstacle

    road = env.road
    # static objects only: a collision flags them but nothing reads those flags back
    static = all(type(o) in (Obstacle, Landmark) for o in road.objects)
    # with few plain IDM vehicles (the scripted corner cases) there is little to share: not worth it
    shared = sum(1 for v in road.vehicles if v is not env.vehicle and ghostable(v))
    step_ok = type(road).step is Road.step or _regulated(road)
    return type(road).act is Road.act and step_ok and static and shared >= MIN_GHOSTS


def _regulated(road: Any) -> bool:
    from highway_env.road.regulation import RegulatedRoad

    return type(road).step is RegulatedRoad.step


def ghostable(vehicle: Any) -> bool:
    """Only plain IDM vehicles are shared: the reads of their act are the ones listed above."""
    from highway_env.vehicle.behavior import IDMVehicle

    return type(vehicle) is IDMVehicle


def same_value(a: Any, b: Any) -> bool:
    """Bit-for-bit equality of two attribute values (arrays, floats incl. the sign of zero, containers)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, float):
        return struct.pack("d", a) == struct.pack("d", b)
    if isinstance(a, (list, tuple, deque)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return bool(a == b)


def same_state(a: Any, b: Any) -> bool:
    """Whether two vehicles (a world's copy and the reference's) are in exactly the same state."""
    va, vb = vars(a), vars(b)
    if not same_value(va.get("position"), vb.get("position")) or va.keys() != vb.keys():
        return False  # the position first: it tells most differing vehicles apart at once
    return all(k in _SKIP or same_value(va[k], vb[k]) for k in va)


def make_worlds(env: Any, radius_m: float, count: int) -> tuple[list[Any], list[list[bool]]]:
    """``count`` deep copies of ``env`` whose road keeps the vehicles within ``radius_m`` of the ego; the
    first is the reference, the others share its network and its ghostable vehicles."""
    memo0: dict[int, Any] = {}
    ref = copy.deepcopy(env, memo0)
    ego = env.vehicle
    kept = [v for v in env.road.vehicles if v is ego or np.hypot(*(v.position - ego.position)) < radius_m]
    network = env.road.network
    shared = {id(network): memo0[id(network)]}
    for lanes_by_to in network.graph.values():
        for lanes in lanes_by_to.values():
            for lane in lanes:
                if id(lane) in memo0:
                    shared[id(lane)] = memo0[id(lane)]
    for v in env.road.vehicles:
        if v is not ego and ghostable(v):
            shared[id(v)] = memo0[id(v)]
    sims = [ref]
    ref.road.vehicles = [memo0[id(v)] for v in kept]
    flags = [[False] * len(kept)]
    for _ in range(count - 1):
        memo = dict(shared)
        sim = copy.deepcopy(env, memo)
        sim.road.vehicles = [memo[id(v)] for v in kept]
        sims.append(sim)
        flags.append([v is not ego and ghostable(v) for v in kept])
    return sims, flags


def _copy_vehicle(v: Any, road: Any) -> Any:
    """A plain IDMVehicle's own copy on ``road``: what deepcopy gives, without walking the shared
    lanes (immutable values and lane objects are shared, mutable containers copied)."""
    new = object.__new__(type(v))
    attrs = {}
    for k, value in vars(v).items():
        if callable(value):
            continue  # an instance patch of the reference's (a memoised trajectory), not state
        if k == "road":
            value = road
        elif isinstance(value, np.ndarray):
            value = value.copy()
        elif isinstance(value, deque):
            value = deque(value, maxlen=value.maxlen)  # the history: copies made by create_from
        elif isinstance(value, (list, dict, set)):
            value = type(value)(value)  # action {str: float}, route [(str, str, int)], log: immutable items
        attrs[k] = value
    new.__dict__.update(attrs)
    return new


class _Lockstep:
    """The per-step bookkeeping of one run (reference road, its vehicles' indexes, query cache)."""

    def __init__(self, worlds: list[World], dt_s: float) -> None:
        self.worlds = worlds
        self.dt = dt_s
        self.ref = worlds[0].sim.road
        self.network = self.ref.network
        self.ref_queries: dict[tuple[int, Any], tuple[Any, Any, Any, Any, float]] = {}
        self.acting = False
        self.ref_geometry: list[tuple[float, float, float, float]] = []
        self.ghost_lanes: dict[int, list[Any] | None] = {}
        self.ref_index: dict[int, int] = {}
        self.lane_memo: dict[tuple[int, Any], Any] | None = None
        self.regulated = _regulated(self.ref)

    # ------------------------------------------------------------------ one world's promotions

    def _ref_query(self, i: int, lane_index: Any) -> tuple[Any, Any, Any, Any, float]:
        key = (i, lane_index)
        hit = self.ref_queries.get(key)
        if hit is None:
            hit = self.ref_queries[key] = self.ref.dc_query(self.ref.vehicles[i], lane_index)
        return hit

    def _ghost_lanes(self, i: int) -> list[Any] | None:
        """The lanes the reference's vehicle i reads this step, or None when it reaches the end of its
        target lane (computed once per step: it depends on that vehicle alone)."""
        if i not in self.ghost_lanes:
            g = self.ref.vehicles[i]
            at_end = self.network.get_lane(g.target_lane_index).after_end(g.position)
            self.ghost_lanes[i] = None if at_end else self._lanes_read(g)
        return self.ghost_lanes[i]

    def _lanes_read(self, g: Any) -> list[Any]:
        """The lanes whose neighbours ``g``'s act queries this step (IDMVehicle.act, change_lane_policy)."""
        lanes = [g.lane_index]
        if g.lane_index != g.target_lane_index:
            lanes.append(g.target_lane_index)
        elif g.enable_lane_change and g.LANE_CHANGE_DELAY < g.timer:
            lanes.extend(self.network.side_lanes(g.lane_index))
        return lanes

    @staticmethod
    def _abort_may_see(g: Any, movers: list[Any]) -> bool:
        """Whether a lane change abort check of ``g`` could involve one of ``movers`` (any version)."""
        if g.lane_index == g.target_lane_index or g.lane_index[:2] != g.target_lane_index[:2]:
            return False
        seg = g.target_lane_index[:2]
        for v in movers:
            t = getattr(v, "target_lane_index", None)
            if v.lane_index is not None and v.lane_index[:2] == seg:
                return True
            if t is not None and (t[:2] == seg or t[1] == seg[0]):
                return True
        return False

    def promote(self, w: World, diff: bool) -> None:
        """Turn into real vehicles the ghosts of ``w`` whose act could read something else than in the
        reference: a neighbour query answered differently, a lane change abort, the end of a lane."""
        if not diff:
            return
        ref_v = self.ref.vehicles
        mine = w.sim.road.vehicles
        n = len(mine)
        realset = {i for i in range(n) if mine[i] is not ref_v[i]}
        movers = [mine[i] for i in realset] + [ref_v[i] for i in realset]
        ref_index = self.ref_index
        on_lane: dict[tuple[int, Any], float | None] = {}  # (real index, lane) -> s of the world's version
        promoted: list[int] = []
        for i in range(n):
            if not w.ghosts[i] or i in realset:
                continue
            g = ref_v[i]
            if g.crashed:
                continue  # a crashed vehicle's act reads nothing
            lanes = self._ghost_lanes(i)
            if lanes is None or self._abort_may_see(g, movers):
                promoted.append(i)
                continue
            for lane_index in lanes:
                if self._query_differs(i, lane_index, mine, ref_index, realset, on_lane):
                    promoted.append(i)
                    break
        self._copy(w, promoted)

    def _query_differs(self, i: int, lane_index: Any, mine: list[Any], ref_index: dict[int, int],
                       realset: set[int], on_lane: dict[tuple[int, Any], float | None]) -> bool:
        """Whether Road.neighbour_vehicles(ghost i, lane) could answer differently in the world than in
        the reference: the reference's answer is real there, or a real vehicle of the world on that lane
        would be an equal or better candidate (ties count as different)."""
        front, s_front, rear, s_rear, s = self._ref_query(i, lane_index)
        # an object (not in ref_index) is answered by the world's own copy of it, in the same state
        if ref_index.get(id(front), -1) in realset or ref_index.get(id(rear), -1) in realset:
            return True
        for j in realset:
            key = (j, lane_index)
            if key not in on_lane:
                on_lane[key] = self.ref.dc_lane_s(mine[j], lane_index)
            s_v = on_lane[key]
            if s_v is None:
                continue
            if s <= s_v and (s_front is None or s_v <= s_front):
                return True
            if s_v < s and (s_rear is None or s_v >= s_rear):
                return True
        return False

    def _copy(self, w: World, indexes: list[int]) -> None:
        """The world's own copies of the reference's vehicles at ``indexes`` (as they are now)."""
        if not indexes:
            return
        road, ref_v = w.sim.road, self.ref.vehicles
        for i in indexes:
            road.vehicles[i] = _copy_vehicle(ref_v[i], road)
        if self.acting:
            road.dc_begin_act()  # the lane cache holds the ghosts just replaced

    def promote_touching(self, w: World) -> None:
        """After the physics step, before collisions: ghosts that Road.step could pair with a real
        vehicle of the world (or with the reference's version of one) become real, to a fixpoint;
        the test is _is_colliding's own spherical pre-check with the larger speed of the pair."""
        mine, ref_v = w.sim.road.vehicles, self.ref.vehicles
        n = len(mine)
        realset = {i for i in range(n) if mine[i] is not ref_v[i]}
        if not realset:
            return
        geo = self.ref_geometry
        todo = list(realset)
        promoted: list[int] = []
        while todo:
            i = todo.pop()
            for v in (mine[i], ref_v[i]):
                x, y = float(v.position[0]), float(v.position[1])
                half, speed = v.diagonal / 2, abs(v.speed)
                for j, (xj, yj, half_j, speed_j) in enumerate(geo):
                    if j in realset or not w.ghosts[j]:
                        continue
                    limit = half + half_j + max(speed, speed_j) * self.dt + TOUCH_SLACK_M
                    if math.hypot(xj - x, yj - y) <= limit:
                        realset.add(j)
                        promoted.append(j)
                        todo.append(j)
        self._copy(w, promoted)

    # ------------------------------------------------------------------ intersection right of way

    def regulate(self) -> None:
        """RegulatedRoad.step's preamble in every world: the reference enforces the rules on all its
        vehicles; before that, ghosts whose predicted path could conflict with a real vehicle's
        (either version) become real, to a fixpoint, and each world enforces them among its real ones."""
        for w in self.worlds:
            w.sim.road.steps += 1
        ref = self.ref
        if ref.steps % int(1 / self.dt / ref.REGULATION_FREQUENCY) != 0:
            return
        times = np.arange(0.25, 3, 0.25)  # RegulatedRoad.is_conflict_possible's defaults
        with _memo_trajectories(ref.vehicles):
            paths = np.array([np.asarray(v.predict_trajectory_constant_speed(times)[0], dtype=float)
                              for v in ref.vehicles])
            reach = max(v.LENGTH for v in ref.vehicles) + TOUCH_SLACK_M
            for w in self.worlds[1:]:
                self._promote_conflicts(w, paths, times, reach)
            ref.enforce_road_rules()
        for w in self.worlds[1:]:
            road = w.sim.road
            mine = road.vehicles
            real = [v for i, v in enumerate(mine) if v is not ref.vehicles[i]]
            road.vehicles = real  # the pairs among real vehicles, in the road's order
            try:
                with _memo_trajectories(real):
                    road.enforce_road_rules()
            finally:
                road.vehicles = mine

    def _promote_conflicts(self, w: World, paths: np.ndarray, times: np.ndarray, reach_m: float) -> None:
        mine, ref_v = w.sim.road.vehicles, self.ref.vehicles
        realset = {i for i in range(len(mine)) if mine[i] is not ref_v[i]}
        todo = list(realset)
        promoted: list[int] = []
        while todo:
            i = todo.pop()
            versions = [paths[i]] if mine[i] is ref_v[i] else [
                paths[i], np.asarray(mine[i].predict_trajectory_constant_speed(times)[0], dtype=float)]
            for path in versions:
                # is_conflict_possible needs the two predicted positions within a length at one time
                d = np.hypot(paths[:, :, 0] - path[None, :, 0], paths[:, :, 1] - path[None, :, 1]).min(axis=1)
                for j in np.flatnonzero(d <= reach_m):
                    j = int(j)
                    if j not in realset and w.ghosts[j]:
                        realset.add(j)
                        promoted.append(j)
                        todo.append(j)
        self._copy(w, promoted)

    # ------------------------------------------------------------------ demotions

    def demote(self, w: World) -> bool:
        """Real vehicles equal to the reference's become ghosts; True when the world still differs."""
        mine, ref_v = w.sim.road.vehicles, self.ref.vehicles
        diff = False
        ego = w.sim.vehicle
        for i, v in enumerate(mine):
            if v is ref_v[i]:
                continue
            if v is ego:
                diff = diff or not (same_state(v, ref_v[i]) and w.ego_mode() == self.worlds[0].ego_mode())
            elif same_state(v, ref_v[i]):
                if w.ghosts[i]:
                    mine[i] = ref_v[i]
            else:
                diff = True
        return diff

    # ------------------------------------------------------------------ collisions

    def collide(self, w: World) -> None:
        """highway-env's pair loop (Road.step) over the pairs of real vehicles of ``w``, in its order;
        promote_touching left no ghost within reach of a real vehicle."""
        mine, ref_v = w.sim.road.vehicles, self.ref.vehicles
        real = [i for i in range(len(mine)) if mine[i] is not ref_v[i]]
        objects = w.sim.road.objects
        for a, i in enumerate(real):
            for j in real[a + 1:]:
                mine[i].handle_collisions(mine[j], self.dt)
            for other in objects:
                mine[i].handle_collisions(other, self.dt)

    # ------------------------------------------------------------------ the run

    def step(self, k: int) -> None:
        worlds, ref = self.worlds, self.ref
        for w in worlds:
            w.decide(k)
        diffs = [False] + [self.demote(w) for w in worlds[1:]]
        self.ref_queries = {}
        self.ghost_lanes = {}
        if self.lane_memo is not None:
            self.lane_memo.clear()  # positions move between act phases, never during one
        self.ref_index = {id(v): i for i, v in enumerate(ref.vehicles)}
        for w in worlds:
            w.sim.road.dc_begin_act()
        self.acting = True
        try:
            for w, diff in zip(worlds[1:], diffs[1:]):
                self.promote(w, diff)
            ref_v = ref.vehicles
            others = [w.sim.road.vehicles for w in worlds[1:]]
            for i, v in enumerate(ref_v):
                v.act()
                for mine in others:
                    if mine[i] is not v:
                        mine[i].act()
        finally:
            self.acting = False
            for w in worlds:
                w.sim.road.dc_end_act()
        if self.regulated:
            self.regulate()
        for i, v in enumerate(ref.vehicles):
            v.step(self.dt)
            for mine in others:
                if mine[i] is not v:
                    mine[i].step(self.dt)
        # after the step: the reference's positions, half diagonals, speeds (the ghosts' in every world)
        self.ref_geometry = [(float(v.position[0]), float(v.position[1]), v.diagonal / 2, abs(v.speed))
                             for v in ref.vehicles]
        for w in worlds[1:]:
            self.promote_touching(w)
        ref.dc_collide(self.dt)
        for w in worlds[1:]:
            self.collide(w)
        for w in worlds:
            w.record()


def run_lockstep(worlds: list[World], n_steps: int, dt_s: float,
                 lane_memo: dict[tuple[int, Any], Any] | None = None) -> None:
    """Step every world ``n_steps`` physics steps of ``dt_s`` [s]; worlds[0] is the reference.
    ``lane_memo``: the dict the worlds' roads were patched with (fast_road.patch_road), if any."""
    run = _Lockstep(worlds, dt_s)
    run.lane_memo = lane_memo
    for k in range(n_steps):
        run.step(k)

