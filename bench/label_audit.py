"""Audit every perception and prediction label against independent computations.

A dataset is made through the real generator; for every frame a FRESH highway-env environment is
rebuilt from the frame's seed (gym.make + reset(seed) + the episode's recorded actions, never the
source's fork or rollout), the raw vehicle objects are read there, and the environment is then
stepped forward with the ego on IDLE (keeps lane and target speed) to see what really happens.
Nothing here calls the teacher's geometry or families: lane-local coordinates come from
highway-env's own lane objects.

    .venv/bin/python bench/label_audit.py --episodes 6 --steps 12            # all five scenarios
    .venv/bin/python bench/label_audit.py --scenarios intersection --show 20  # print disagreements
    .venv/bin/python bench/label_audit.py --scenarios exit --episodes 40 --steps 15 --seed 7781 --jsonl a.jsonl
    .venv/bin/python bench/label_audit.py --from a.jsonl b.jsonl              # tables of (partial) runs

Prints, per family: labels audited, disagreements, labels the check skipped (ambiguous label, or
the truth itself inside a band), and the first disagreements with their numbers. Extra checks
(check.*): vehicles drawn in the image but not listed, vehicles named in any text (question, explanation,
reference) that the image does not show, the vehicle an IDLE collision is credited to
(wrecks included) against plan.danger, crossings of a stopped ego at a ring entry, plan.safe's RSS
distance against the formula; then coherence violations per edge (teacher/coherence.py's rules).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

H_S = 3.0  # label horizon
LONG_S = 8.0  # the ego's path is followed this long to see who reaches a crossing first
DT_SAMPLE = 1  # record every physics step

# the audit's own copies of the rules' thresholds (docs/questions.md), so a changed constant in the
# teacher shows up as a disagreement instead of silently moving both sides
RSS_RHO_S, RSS_ACC_MPS2, RSS_BRAKE_MPS2 = 0.5, 3.0, 6.0  # RSS response time, a_acc, b_min = b_max (docs/planning.md)
AHEAD_BAND_M = 2.5  # a cut-in must happen with the vehicle's centre at least this far ahead of the ego's
NEAR_M = 10.0
RANGE_M = 30.0
SAME_MPS = 1.0
ACCEL_MPS2 = 0.5
CROSS_RADIUS_M = 2.0
CROSS_ANGLE_RAD = 0.5
GRAZE_M = 0.75  # a first contact this close to CROSS_RADIUS_M is a graze: the teacher's 0.5 s samples cut a
# ring's arc by up to ~0.7 m, and beyond H its ego path is the route's centre line, not the driven track
ROUTE_AHEAD_M = 50.0  # the ego's path reaches this far beyond where it is after H

EDGE_M = 0.1  # a rectangle within this of the image border may be listed as visible or not

_PRISTINE: dict[str, Any] = {}


def _idm_params() -> None:
    """Restore highway-env's IDM class values before a reset (intersection-v0 rewrites them process-wide)."""
    from highway_env.vehicle.behavior import IDMVehicle

    keys = ("DISTANCE_WANTED", "COMFORT_ACC_MAX", "COMFORT_ACC_MIN")
    if not _PRISTINE:
        _PRISTINE.update({k: getattr(IDMVehicle, k) for k in keys})
    for k, v in _PRISTINE.items():
        setattr(IDMVehicle, k, v)


_idm_params()  # snapshot before any gym.make


# ------------------------------------------------------------------------------ fresh environment


def fresh_env(frame: Any, actions: list[str]) -> Any:
    """highway-env rebuilt from nothing at ``frame``: make, reset(seed), replay ``actions``; ids on ``_aid``."""
    import gymnasium as gym
    import highway_env  # noqa: F401

    from drivechain.sources.scenarios import get_scenario

    spec = get_scenario(frame.scenario)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make(spec.env_id, config=dict(spec.config)).unwrapped
        _idm_params()
        env.reset(seed=int(frame.seed))
        names = {name: i for i, name in env.action_type.actions.items()}
        _ids(env)
        for action in actions:
            env.step(names[action])
            _ids(env)
    return env


def _ids(env: Any) -> None:
    """Ego 0, others numbered in order of appearance in road.vehicles (the dataset's id rule)."""
    if not hasattr(env, "_aid_next"):
        env.vehicle._aid = 0
        env._aid_next = 1
    for v in env.road.vehicles:
        if not hasattr(v, "_aid"):
            v._aid = env._aid_next
            env._aid_next += 1


def simulate_idle(env: Any, seconds: float) -> dict[int, list[tuple[float, float, float, float]]]:
    """Step the env with IDLE for ``seconds`` (whole env.step calls); id -> [(t, x, y, speed)] per physics step."""
    names = {name: i for i, name in env.action_type.actions.items()}
    dt = 1.0 / env.config["simulation_frequency"]
    track: dict[int, list[tuple[float, float, float, float]]] = defaultdict(list)
    heads: dict[int, list[float]] = defaultdict(list)
    env._audit_heads = heads
    for v in env.road.vehicles:
        track[v._aid].append((0.0, float(v.position[0]), float(v.position[1]), float(v.speed)))
        heads[v._aid].append(float(v.heading))
    step = env.road.step
    clock = [0.0]

    def record(dt_s: float) -> None:
        step(dt_s)
        clock[0] += dt_s
        if env.vehicle.crashed and not hasattr(env, "_audit_crash"):
            env._audit_crash = (round(clock[0], 4), crash_partner(env))  # the ego's first collision, and with whom
        for v in env.road.vehicles:
            if hasattr(v, "_aid"):
                track[v._aid].append((round(clock[0], 6), float(v.position[0]), float(v.position[1]), float(v.speed)))
                heads[v._aid].append(float(v.heading))

    env.road.step = record
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(math.ceil(seconds * env.config["policy_frequency"] - 1e-9)):
            env.step(names["IDLE"])
            _ids(env)
    env.road.step = step
    del dt
    return dict(track)


def crash_partner(env: Any) -> int | None:
    """Id of the vehicle whose footprint touches the (just crashed) ego's, nearest first; highway-env's polygons."""
    from highway_env import utils

    ego = env.vehicle
    touching = [v for v in env.road.vehicles if v is not ego and hasattr(v, "_aid")
                and utils.are_polygons_intersecting(ego.polygon(), v.polygon(), ego.velocity, v.velocity)[0]]
    near = min(touching, key=lambda v: math.hypot(*(v.position - ego.position)), default=None)
    return near._aid if near is not None else None


def _frange(a: float, b: float, step: float) -> list[float]:
    return [a + k * step for k in range(int((b - a) / step) + 1)]


def route_tail(env: Any, ego_track: list, ahead_m: float) -> list[tuple[float, float, float, float]]:
    """The ego's route beyond its simulated track, from highway-env's lanes, until the path reaches
    ``ahead_m`` beyond its H-second position; timed at its last speed (a stopped ego: ~never)."""
    at_h = _at(ego_track, H_S)
    done = sum(math.hypot(b[1] - a[1], b[2] - a[2]) for a, b in zip(ego_track, ego_track[1:]) if a[0] >= at_h[0])
    left = ahead_m - done
    ego = env.vehicle
    t_end, speed = ego_track[-1][0], max(ego_track[-1][3], 0.1)
    net = env.road.network
    index = ego.target_lane_index  # the lane its controller follows (lane_index is merely the closest one)
    route = [tuple(r) for r in (ego.route or [])]
    pts: list[tuple[float, float]] = []
    position = ego.position
    for _ in range(20):  # lane by lane, with highway-env's own next_lane rule
        lane = net.get_lane(index)
        s = lane.local_coordinates(position)[0] if not pts else 0.0
        pts += [tuple(map(float, lane.position(si, 0.0))) for si in _frange(max(s, 0.0), lane.length, 0.5)]
        if not route or len(pts) * 0.5 > ahead_m + 20:
            break
        nxt = net.next_lane(index, route=route, position=lane.position(lane.length, 0.0))
        if nxt == index:
            break
        index, position = nxt, None
    out, s_done = [], 0.0
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        n = max(1, math.ceil(math.hypot(x1 - x0, y1 - y0) / 0.5))  # bridge the jumps between lanes
        for k in range(n):
            if s_done >= left:
                return out
            s_done += math.hypot(x1 - x0, y1 - y0) / n
            out.append((t_end + s_done / speed, x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n, speed))
    return out


# ------------------------------------------------------------------------------ raw world


@dataclass
class Raw:
    """One vehicle in the ego lane's own coordinates (highway-env lane objects)."""

    id: int
    v: Any
    ds_m: float  # centre offset along the ego lane, + ahead
    off_lanes: float  # lateral offset in lane widths, + left
    gap_m: float  # bumper to bumper along the lane
    rel: tuple[float, float]  # ego frame, x forward, y left
    speed_mps: float  # at the frame (the vehicle object moves on during the forward simulation)


@dataclass
class World:
    """The raw state of a rebuilt frame."""

    env: Any
    ego: Any
    ego_speed_mps: float
    ego_xy: Any
    ego_lane_index: tuple
    lane: Any
    width_m: float
    n_lanes: int
    ego_index: int
    vehicles: dict[int, Raw]
    visible: set[int]
    edge: set[int]  # vehicles whose rectangle ends within EDGE_M of the image border
    future: dict[int, list[tuple[float, float, float, float]]] = field(default_factory=dict)
    ego_tail: list[tuple[float, float, float, float]] = field(default_factory=list)
    heads: dict[int, list[float]] = field(default_factory=dict)  # body heading per future sample [rad]


def read_world(env: Any, image_size: tuple[int, int] | None) -> World:
    """Lane-local coordinates of every vehicle, and which ones the default image shows."""
    u = env
    ego = u.vehicle
    lane = u.road.network.get_lane(ego.lane_index)
    s0, _ = lane.local_coordinates(ego.position)
    w = float(lane.width_at(s0))
    a, b, i = ego.lane_index
    c, s = math.cos(ego.heading), math.sin(ego.heading)
    vis = _visible_ids(u, image_size, EDGE_M)
    edge = _visible_ids(u, image_size, -EDGE_M) - vis  # touching the image's border: either way
    rows = {}
    for v in u.road.vehicles:
        if v is ego:
            continue
        sv, lat = lane.local_coordinates(v.position)
        dx, dy = v.position[0] - ego.position[0], v.position[1] - ego.position[1]
        ds = float(sv - s0)
        rows[v._aid] = Raw(v._aid, v, ds, -float(lat) / w, abs(ds) - (v.LENGTH + ego.LENGTH) / 2,
                           (float(dx * c + dy * s), float(dx * s - dy * c)), float(v.speed))
    return World(u, ego, float(ego.speed), ego.position.copy(), tuple(ego.lane_index), lane, w, len(u.road.network.graph[a][b]), int(i or 0), rows, vis, edge)


def _visible_ids(u: Any, image_size: tuple[int, int] | None, edge_m: float = 0.0) -> set[int]:
    """Vehicles whose rectangle overlaps the rendered window (window centred as highway-env's viewer does)."""
    cfg = u.config
    wpx, hpx = cfg["screen_width"], cfg["screen_height"]
    scale = cfg.get("scaling", 5.5)
    if image_size is not None:
        scale = scale * image_size[0] / wpx
        wpx, hpx = image_size
    cx, cy = cfg.get("centering_position", (0.5, 0.5))
    ex, ey = u.vehicle.position
    half_w, half_h = wpx / scale, hpx / scale  # window extent [m]
    x0, y0 = ex - cx * half_w, ey - cy * half_h
    out = set()
    for v in u.road.vehicles:
        if v is u.vehicle:
            continue
        # farthest reach of the rectangle along each axis
        rx = abs(math.cos(v.heading)) * v.LENGTH / 2 + abs(math.sin(v.heading)) * v.WIDTH / 2
        ry = abs(math.sin(v.heading)) * v.LENGTH / 2 + abs(math.cos(v.heading)) * v.WIDTH / 2
        px, py = v.position
        # edge_m > 0: must reach that far inside the window; < 0: may stop that far outside it
        e = edge_m
        # every vehicle drawn in the window counts, however far (a drawn but unlisted one is a disagreement)
        if px + rx > x0 + e and px - rx < x0 + half_w - e and py + ry > y0 + e and py - ry < y0 + half_h - e:
            out.add(v._aid)
    return out


# ------------------------------------------------------------------------------ verdicts


@dataclass
class Verdict:
    """One label checked: 'ok', 'bad' (disagreement) or 'skip' (ambiguous label / truth in a band)."""

    family: str
    qid: str
    status: str
    detail: str = ""


def _choice_ok(node: Any, option: str) -> bool:
    return node.answer.options.index(option) in node.answer.acceptable


def _num_ok(ans: Any, truth: float | None) -> bool:
    if ans.value is None or truth is None:
        return ans.value is None and truth is None
    tol = max(ans.abs_tol or 0.0, (ans.rel_tol or 0.0) * abs(truth))
    return abs(ans.value - truth) <= tol + 1e-6


def _bool(node: Any, truth: bool) -> str:
    return "ok" if node.answer.accept_both or node.answer.value == truth else "bad"


def _in_lane(r: Raw, offset: int) -> bool:
    return abs(r.off_lanes - offset) < 0.5


def rss_long_m(v_rear: float, v_front: float) -> float:
    """RSS safe longitudinal distance [m], written out from the paper's formula with the documented parameters."""
    rho, acc, brake = RSS_RHO_S, RSS_ACC_MPS2, RSS_BRAKE_MPS2
    v_rear, v_front = max(v_rear, 0.0), max(v_front, 0.0)  # speeds along the ego's heading; oncoming counts as 0
    return max(0.0, v_rear * rho + acc * rho**2 / 2 + (v_rear + rho * acc) ** 2 / (2 * brake) - v_front**2 / (2 * brake))


def _lane_check(world: World) -> bool:
    return world.n_lanes >= 1 and abs(math.remainder(world.lane.heading_at(0) - world.lane.heading_at(world.lane.length), math.tau)) < 0.05


def audit_perception(frame: Any, graph: Any, world: World) -> list[Verdict]:
    """Every perception node of one frame against the raw world."""
    out: list[Verdict] = []
    lane_road = frame.scenario in ("highway", "merge", "exit") and _lane_check(world)
    vis = {vid: r for vid, r in world.vehicles.items() if vid in world.visible}

    def add(node: Any, status: str, detail: str = "") -> None:
        out.append(Verdict(node.family, node.qid, "skip" if node.ambiguous and status != "ok" else status, detail))

    for node in graph.nodes:
        if node.stage != "perception":
            continue
        f, q = node.family, node.qid
        if f == "per.lanes":
            add(node, "ok" if node.answer.value == world.n_lanes else "bad", f"raw {world.n_lanes}")
        elif f == "per.ego_lane":
            add(node, "ok" if node.answer.value == world.ego_index + 1 else "bad", f"raw {world.ego_index + 1}")
        elif f == "per.vehicles":
            ids = set(node.answer.ids)
            pos_bad = [vid for vid, (x, y) in zip(node.answer.ids, node.answer.positions_m)
                       if vid in world.vehicles and math.hypot(x - world.vehicles[vid].rel[0], y - world.vehicles[vid].rel[1]) > 0.15]
            ok = set(vis) <= ids <= set(vis) | world.edge and not pos_bad
            add(node, "ok" if ok else "bad", f"label-only {sorted(ids - set(vis))} raw-only {sorted(set(vis) - ids)} pos {pos_bad}")
        elif f == "per.vehicle_side":
            r = world.vehicles[node.objects[0]]
            ds = r.ds_m if lane_road else r.rel[0]
            add(node, "ok" if _choice_ok(node, "ahead" if ds > 0 else "behind") else "bad", f"ds {ds:.2f}")
        elif f == "per.vehicle_lane":
            r = world.vehicles[node.objects[0]]
            k = max(-2, min(2, round(r.off_lanes)))
            add(node, "ok" if (2 - k) in node.answer.acceptable else "bad", f"offset {r.off_lanes:.2f} lanes")
        elif f == "per.lead_vehicle":
            # the question is scoped to the image: the truth is the nearest VISIBLE vehicle ahead in the lane
            ahead = [r for r in vis.values() if _in_lane(r, 0) and r.ds_m > 0]
            lead = min(ahead, key=lambda r: r.ds_m, default=None)
            want = [lead.id] if lead is not None else []
            scoped = "visible" in node.question
            add(node, "ok" if node.answer.ids == want and scoped else "bad", f"raw visible lead {want}, scoped {scoped}")
        elif f == "per.lead_distance":
            r = world.vehicles[node.objects[0]]
            add(node, "ok" if _num_ok(node.answer, r.gap_m) else "bad", f"raw gap {r.gap_m:.2f} label {node.answer.value}")
        elif f == "per.lead_speed":
            r = world.vehicles[node.objects[0]]
            dv = r.speed_mps - world.ego_speed_mps
            want = "about the same speed" if abs(dv) < SAME_MPS else ("faster" if dv > 0 else "slower")
            add(node, "ok" if _choice_ok(node, want) else "bad", f"dv {dv:+.2f}")
        elif f == "per.lane_free":
            offset = 1 if q.endswith("left") else -1
            target = world.ego_index - offset
            # highway-env's own rule for a lane the ego may change into: a side lane, reachable (not forbidden)
            a, b, _ = world.ego_lane_index
            exists = 0 <= target < world.n_lanes and world.env.road.network.get_lane((a, b, target)).is_reachable_from(
                world.ego_xy)
            shorts = {r.id: r.gap_m - rss_long_m(*((world.ego_speed_mps, r.speed_mps) if r.ds_m >= 0
                                                    else (r.speed_mps, world.ego_speed_mps)))
                      for r in vis.values() if _in_lane(r, offset)}
            short = min(shorts.values(), default=math.inf)
            truth = exists and short >= 0.0
            add(node, _bool(node, truth), f"exists {exists} tightest gap minus its RSS distance {short:.1f} m")
        elif q == "per.count.near":
            n = sum(1 for r in world.vehicles.values() if math.hypot(*r.rel) <= RANGE_M)
            nv = sum(1 for r in vis.values() if math.hypot(*r.rel) <= RANGE_M)
            ne = sum(1 for vid in world.edge if math.hypot(*world.vehicles[vid].rel) <= RANGE_M)
            scoped = "visible" in node.question  # the question must say which it counts
            ok = nv <= node.answer.value <= nv + ne if scoped else node.answer.value == n
            add(node, "ok" if ok else "bad", f"raw {n} (visible {nv}, on the border {ne})")
        elif f == "per.count":
            offset = {"left": 1, "ego": 0, "right": -1}[q.split(".")[-1].split("_")[0]]
            n = sum(1 for r in vis.values() if _in_lane(r, offset) and r.ds_m > 0)
            add(node, "ok" if node.answer.value == n else "bad", f"raw visible {n}")
        elif f == "per.exists":
            offset = 1 if "left" in q else -1
            truth = any(_in_lane(r, offset) and -RANGE_M <= r.ds_m < 0 for r in world.vehicles.values())
            add(node, _bool(node, truth), "raw (all vehicles)")
        elif f in ("per.gap", "per.closing"):
            # the vehicle must be the closest visible one on that side in that lane (ego_ahead: the raw lead)
            lane_side = q.split(".", 2)[2]
            offset = {"left": 1, "ego": 0, "right": -1}[lane_side.split("_")[0]]
            ahead = lane_side.endswith("_ahead")
            border = {i: world.vehicles[i] for i in world.edge}
            pick = [min((r for r in pool.values() if _in_lane(r, offset) and (r.ds_m > 0) == ahead),
                        key=lambda r: abs(r.ds_m), default=None) for pool in (vis, {**vis, **border})]
            r = world.vehicles[node.objects[0]]
            best = next((b for b in pick if b is not None and b.id == r.id), pick[0])  # border: either holds
            if f == "per.gap":
                truth = r.gap_m
            else:
                truth = world.ego_speed_mps - r.speed_mps if r.ds_m >= 0 else r.speed_mps - world.ego_speed_mps
            ok = best is not None and best.id == r.id and abs(node.answer.value - truth) <= 0.06
            add(node, "ok" if ok else "bad", f"raw closest {best.id if best else None} value {truth:.2f} label {node.answer.value}")
        elif f == "per.refer":
            offset = 1 if q.endswith("left") else -1
            ahead = "_ahead_" in q
            pool = vis if "visible" in node.question else world.vehicles

            def closest(pool: dict) -> list[int]:
                cands = [r for r in pool.values() if _in_lane(r, offset) and (r.ds_m > 0) == ahead]
                best = min(cands, key=lambda r: abs(r.ds_m), default=None)
                return [best.id] if best else []

            want = closest(pool)
            # a vehicle touching the image border may be listed as visible or not: either answer holds
            wider = closest({**pool, **{i: world.vehicles[i] for i in world.edge}})
            add(node, "ok" if node.answer.ids in (want, wider) else "bad", f"raw {want} (with the border {wider})")
    return out


# ------------------------------------------------------------------------------ prediction


def _at(track: list[tuple[float, float, float, float]], t: float) -> tuple[float, float, float, float]:
    return min(track, key=lambda row: abs(row[0] - t))


def crossing_truth(ego: list, other: list, horizon_s: float = H_S,
                   other_heads: list[float] | None = None) -> tuple[bool | None, str]:
    """Does ``other`` reach a crossing point of the ego's (long) IDLE path within H, before the ego?

    The first point of the ego's path within 2 m of the other's decides the times; the angle is
    measured where that contact comes closest (``other_heads``: the other's body heading per sample,
    used where it stands still).

    None when the physics cannot tell: arrival times within 0.5 s, a first contact within
    1.25..3 m (a graze), a crossing angle within +-0.1 rad of the threshold, or an arrival within 0.2 s of H.
    """
    oth = [p for p in other if p[0] <= horizon_s + 1e-9]
    heads = (other_heads or [])[: len(oth)]
    best = None
    closest = None  # (ego index, other index, distance): where the first contact comes closest
    for i, (te, ex, ey, _) in enumerate(ego):
        d, k = min((math.hypot(p[1] - ex, p[2] - ey), k) for k, p in enumerate(oth))
        if best is not None and best[2] < CROSS_RADIUS_M:  # inside the first contact: follow it to its end
            if d >= CROSS_RADIUS_M:
                break
            if d < closest[2]:
                closest = (i, k, d)
            continue
        if d < CROSS_RADIUS_M + 1.0:
            best = (te, oth[k][0], d, ex, ey)
            closest = (i, k, d)
    if best is None:
        return False, "no path comes within 3 m"
    te, to, d, ex, ey = best
    he = _heading(ego, ego[closest[0]][0])
    ho = _heading(oth, oth[closest[1]][0])
    k = closest[1]
    a, b = oth[max(0, k - 2)], oth[min(len(oth) - 1, k + 2)]
    if heads and math.hypot(b[1] - a[1], b[2] - a[2]) < 0.05:  # standing still there: its body's heading
        ho = heads[k]
    ang = abs(math.remainder(he - ho, math.tau))
    ang = min(ang, math.pi - ang)
    info = f"point ({ex:.1f},{ey:.1f}) t_ego {te:.2f} t_other {to:.2f} gap {d:.2f} closest {closest[2]:.2f} angle {ang:.2f}"
    if closest[2] >= CROSS_RADIUS_M - GRAZE_M:
        return None, "near miss " + info
    if ang < CROSS_ANGLE_RAD - 0.1:
        return False, "parallel " + info  # following / merging: the family does not ask
    if abs(ang - CROSS_ANGLE_RAD) <= 0.1 or abs(te - to) < 0.5 or abs(to - horizon_s) < 0.2:
        return None, "band " + info
    return to < te, info


def _heading(track: list, t: float) -> float:
    i = min(range(len(track)), key=lambda k: abs(track[k][0] - t))
    j0, j1 = max(0, i - 2), min(len(track) - 1, i + 2)
    return math.atan2(track[j1][2] - track[j0][2], track[j1][1] - track[j0][1])


def audit_prediction(frame: Any, graph: Any, world: World) -> list[Verdict]:
    """Every prediction node against the fresh env's IDLE forward simulation (``world.future``)."""
    out: list[Verdict] = []
    fut = world.future
    ego_tr = fut[0]
    within = lambda tr: [p for p in tr if p[0] <= H_S + 1e-9]  # noqa: E731
    for node in graph.nodes:
        if node.stage != "prediction":
            continue
        f = node.family
        status, detail = "ok", ""
        if f == "pred.cut_in":
            vid = node.objects[0]
            # only while its centre is ahead of the ego's (same physics step of the ego's track)
            ego_s = {round(t, 4): world.lane.local_coordinates((x, y))[0] for t, x, y, _ in within(ego_tr)}
            lats = [abs(world.lane.local_coordinates((x, y))[1]) for t, x, y, _ in within(fut[vid])
                    if world.lane.local_coordinates((x, y))[0] - ego_s.get(round(t, 4), math.inf) > AHEAD_BAND_M]
            closest = min(lats, default=math.inf)
            status = _bool(node, closest < world.width_m / 2)
            if status == "bad" and abs(closest - world.width_m / 2) < 0.5:
                status = "skip"
            detail = f"closest lateral {closest:.2f}"
        elif f == "pred.motion":
            vid = node.objects[0]
            v0 = fut[vid][0][3]
            end = _at(fut[vid], H_S)
            acc = (end[3] - v0) / end[0]
            want = "steady" if abs(acc) < ACCEL_MPS2 else ("accelerating" if acc > 0 else "braking")
            status = "ok" if _choice_ok(node, want) else ("skip" if abs(abs(acc) - ACCEL_MPS2) < 0.25 else "bad")
            detail = f"acc {acc:+.2f}"
        elif f == "pred.ttc_lead":
            r = world.vehicles[node.objects[0]]
            closing = world.ego_speed_mps - r.speed_mps
            ttc = max(r.gap_m, 0.0) / closing if closing > 0.5 else None
            if ttc is not None and ttc > 30.0:
                ttc = None
            text_ok = "keep their current speeds" in node.question
            status = "ok" if _num_ok(node.answer, ttc) and text_ok else "bad"
            detail = f"constant-speed ttc {ttc if ttc is None else round(ttc, 2)} label {node.answer.value} text {text_ok}"
        elif f == "pred.near_ego":
            dmin = {}
            for vid in world.visible:
                tr = within(fut.get(vid, []))
                n = min(len(tr), len(within(ego_tr)))
                if not n:
                    continue
                dmin[vid] = min(math.hypot(tr[k][1] - ego_tr[k][1], tr[k][2] - ego_tr[k][2]) for k in range(n))
            optional = set(node.answer.optional_ids)
            want = {v for v, d in dmin.items() if d < NEAR_M and v not in optional}
            got = set(node.answer.ids) - optional
            edge = {v for v in want ^ got if abs(dmin.get(v, 99) - NEAR_M) < 0.3}
            status = "ok" if want == got else ("skip" if (want ^ got) <= edge else "bad")
            detail = f"missing {sorted(want - got)} extra {sorted(got - want)} " + \
                ", ".join(f"{v}:{dmin.get(v, float('nan')):.1f}" for v in sorted(want ^ got))
        elif f == "pred.cross_first":
            vid = node.objects[0]
            truth, detail = crossing_truth(ego_tr + world.ego_tail, fut[vid], other_heads=world.heads.get(vid))
            if truth is None:
                status = "ok" if node.answer.accept_both else "skip"
            else:
                status = _bool(node, truth)
            detail = f"truth {truth} label {node.answer.value}{'/both' if node.answer.accept_both else ''}: {detail}"
        else:
            continue
        if node.ambiguous and status == "bad":
            status = "skip"
        out.append(Verdict(f, node.qid, status, detail))
    return out


# ------------------------------------------------------------------------------ extra checks (issue #9)


def audit_extra(frame: Any, graph: Any, world: World, crash: tuple[float, int | None, bool] | None) -> list[Verdict]:
    """Drawn-but-unlisted vehicles, collisions credited (wrecks too), ring-entry crossings, RSS distances."""
    out: list[Verdict] = []
    listed = {a.id for a in frame.agents if a.visible}
    missing = sorted(world.visible - listed)
    out.append(Verdict("check.drawn_unlisted", frame.frame_id, "bad" if missing else "ok", f"drawn, not listed {missing}"))
    named = sorted({i for node in graph.nodes for text in (node.question, node.explanation,
                                                           *getattr(node.answer, "references", []))
                    for i in named_ids(text)} - world.visible - world.edge)
    out.append(Verdict("check.names_visible", frame.frame_id, "bad" if named else "ok",
                       f"texts name vehicles the image does not show: {named}"))
    danger = graph.get("plan.danger")
    if crash is not None and crash[0] <= H_S and danger is not None:
        t, who, wreck = crash
        if who is None or who not in listed:
            status = "ok" if not danger.answer.ids or danger.answer.ids[0] not in listed else "skip"
        else:
            status = "ok" if danger.answer.ids == [who] else ("skip" if danger.ambiguous else "bad")
        out.append(Verdict("check.crash_credit", frame.frame_id, status,
                           f"IDLE crash at {t:.2f} s with {who} (already a wreck at the frame: {wreck}); "
                           f"plan.danger {danger.answer.ids}"))
    if frame.scenario == "roundabout" and world.ego_speed_mps < 1.0:
        route_edges = {tuple(r[:2]) for r in (world.ego.route or [])}
        if tuple(world.ego_lane_index[:2]) not in route_edges:  # stopped off its (already popped) route: a ring entry
            for node in graph.nodes:
                if node.family == "pred.cross_first":
                    out.append(Verdict("check.ring_entry_path", node.qid, "ok", "counted in pred.cross_first"))
    for node in graph.nodes:
        if node.family != "plan.safe":
            continue
        c = node.meta.get("check", {})
        if c.get("required_m") is None or c.get("rear_speed_mps") is None:
            continue
        want = rss_long_m(c["rear_speed_mps"], c["front_speed_mps"])
        ok = abs(want - c["required_m"]) < 0.05
        out.append(Verdict("check.rss_distance", node.qid, "ok" if ok else "bad",
                           f"label {c['required_m']} m, formula {want:.3f} m"))
    return out


_NAMED = re.compile(r"(?<!ego )\b[Vv]ehicles? (\d+)(?: and (\d+))?|\b[Vv]ehicles \[([\d, ]+)\]")


def named_ids(text: str) -> set[int]:
    """Vehicle ids a text names ('vehicle 3', 'vehicles 3 and 5', 'Vehicles [3, 5]')."""
    out: set[int] = set()
    for one, two, listed in _NAMED.findall(text):
        out |= {int(x) for x in (one, two) if x} | {int(x) for x in listed.replace(",", " ").split()}
    return out


def coherence_counts(graph: Any) -> tuple[Counter, Counter]:
    """Edges checked and violations per edge, by the teacher's own rules (teacher/coherence.py)."""
    from drivechain.teacher.coherence import check_graph

    checked, violated, _ = check_graph(graph)
    return checked, violated


# ------------------------------------------------------------------------------ driver


COHERENCE: tuple[Counter, Counter] = (Counter(), Counter())  # edges checked, violations (last audit_dataset)


def audit_dataset(root: Path, limit: int | None = None, stream: Any = None) -> tuple[list[tuple[str, Verdict]], dict[str, int]]:
    """Audit every frame of a dataset folder; returns (frame_id, verdict) pairs and frames per scenario.

    ``stream``: an open text file that gets one JSON line per frame as it is audited (a long run
    stopped early can still be summarised with --from)."""
    from drivechain.dataset import load_dataset

    ds = load_dataset(root)
    size = ds.manifest.config.get("image_size")
    records = list(ds.records())
    actions: dict[tuple[str, int], list[str]] = defaultdict(list)
    verdicts: list[tuple[str, Verdict]] = []
    frames: Counter[str] = Counter()
    COHERENCE[0].clear()
    COHERENCE[1].clear()
    for rec in records[:limit] if limit else records:
        fr = rec.frame
        key = (fr.scenario, fr.episode)
        history = actions[key][: fr.step]
        env = fresh_env(fr, history)
        world = read_world(env, tuple(size) if size else None)
        _check_replay(fr, world)
        wrecks = {vid for vid, r in world.vehicles.items() if r.v.crashed}  # before anything moves
        world.future = simulate_idle(env, LONG_S)
        world.heads = dict(env._audit_heads)
        crash = getattr(env, "_audit_crash", None)
        if crash is not None:
            crash = (crash[0], crash[1], crash[1] in wrecks)
        world.ego_tail = route_tail(env, world.future[0], ROUTE_AHEAD_M)
        for v in (audit_perception(fr, rec.graph, world) + audit_prediction(fr, rec.graph, world)
                  + audit_extra(fr, rec.graph, world, crash)):
            verdicts.append((fr.frame_id, v))
        checked, violated = coherence_counts(rec.graph)
        COHERENCE[0].update(checked)
        COHERENCE[1].update(violated)
        if stream is not None:
            mine = [v for fid, v in verdicts if fid == fr.frame_id]
            stream.write(json.dumps({"frame": fr.frame_id, "scenario": fr.scenario,
                                     "verdicts": [[v.family, v.qid, v.status, v.detail] for v in mine],
                                     "checked": dict(checked), "violated": dict(violated)}) + "\n")
            stream.flush()
        actions[key].append(fr.meta["ego_action"])
        frames[fr.scenario] += 1
        env.close()
    return verdicts, dict(frames)


def _check_replay(frame: Any, world: World) -> None:
    """The rebuilt env must hold the very state the frame recorded (else every check is meaningless)."""
    if abs(world.ego.position[0] - frame.ego.x_m) > 1e-3 or abs(world.ego.position[1] - frame.ego.y_m) > 1e-3:
        raise SystemExit(f"{frame.frame_id}: replay diverged (ego at {world.ego.position}, frame {frame.ego.x_m, frame.ego.y_m})")
    for a in frame.agents:
        r = world.vehicles.get(a.id)
        if r is None or abs(r.v.position[0] - a.x_m) > 1e-3 or abs(r.v.position[1] - a.y_m) > 1e-3:
            raise SystemExit(f"{frame.frame_id}: replay diverged at vehicle {a.id}")


def summarize(verdicts: list[tuple[str, Verdict]]) -> dict[str, Counter]:
    """family -> Counter(ok/bad/skip)."""
    table: dict[str, Counter] = defaultdict(Counter)
    for _, v in verdicts:
        table[v.family][v.status] += 1
    return table


def main(argv: list[str] | None = None) -> int:
    """Generate, audit, print the table; exit 1 when any label disagrees."""
    from drivechain.generate import GenerateConfig, generate

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenarios", default="highway,merge,intersection,roundabout,exit")
    p.add_argument("--episodes", type=int, default=6)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epsilon", type=float, default=0.2)
    p.add_argument("--data", type=Path, default=None, help="audit this dataset folder (generated there first if missing)")
    p.add_argument("--show", type=int, default=5, help="disagreements printed per family")
    p.add_argument("--jsonl", type=Path, default=None, help="append one line per audited frame to this file")
    p.add_argument("--from", dest="source", type=Path, nargs="+", default=None,
                   help="only print the tables of earlier --jsonl files (a partial run counts what it audited)")
    args = p.parse_args(argv)
    if args.source:
        verdicts, frames = [], Counter()
        COHERENCE[0].clear()
        COHERENCE[1].clear()
        for path in args.source:
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                frames[row["scenario"]] += 1
                verdicts += [(row["frame"], Verdict(*v)) for v in row["verdicts"]]
                COHERENCE[0].update(row["checked"])
                COHERENCE[1].update(row["violated"])
        return _print(verdicts, dict(frames), args.show, "")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None or not root.exists():
            root = root or Path(tmp) / "data"
            cfg = GenerateConfig(scenarios=args.scenarios.split(","), episodes=args.episodes,
                                 steps_per_episode=args.steps, seed=args.seed, epsilon=args.epsilon,
                                 image_size=None)
            generate(cfg, root, workers=1)
        t1 = time.perf_counter()
        stream = open(args.jsonl, "a", encoding="utf-8") if args.jsonl else None
        try:
            verdicts, frames = audit_dataset(root, stream=stream)
        finally:
            if stream is not None:
                stream.close()
    t2 = time.perf_counter()
    return _print(verdicts, frames, args.show, f"  (generate {t1 - t0:.0f} s, audit {t2 - t1:.0f} s)")


def _print(verdicts: list[tuple[str, Verdict]], frames: dict[str, int], show: int, timing: str) -> int:
    """The per-family table, coherence per edge and the first disagreements; 1 when any."""
    table = summarize(verdicts)
    print(f"frames audited: {sum(frames.values())} {frames}{timing}")
    print(f"{'family':24s} {'labels':>7s} {'disagree':>8s} {'skipped':>8s}")
    for fam in sorted(table):
        c = table[fam]
        print(f"{fam:24s} {sum(c.values()):7d} {c['bad']:8d} {c['skip']:8d}")
    print(f"\n{'coherence edge':44s} {'checked':>8s} {'violations':>10s}")
    for edge in sorted(COHERENCE[0]):
        print(f"{edge:44s} {COHERENCE[0][edge]:8d} {COHERENCE[1][edge]:10d}")
    bad = [(fid, v) for fid, v in verdicts if v.status == "bad"]
    shown: Counter[str] = Counter()
    for fid, v in bad:
        if shown[v.family] < show:
            print(f"  BAD {fid} {v.qid}: {v.detail}")
            shown[v.family] += 1
    return 1 if bad or sum(COHERENCE[1].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
