"""Audit the labels of a nuScenes dataset against an independent recomputation from the raw tables.

The dataset is made through the real generator (``generate_logs``); then every frame is recomputed
from the nuScenes JSON tables read with ``json`` alone (no devkit, no drivechain source or teacher
code): ego-frame positions from the raw quaternions, categories and attributes, annotated futures by
following ``next`` tokens, the ego's speed and heading from its poses, and each manoeuvre's safety by
a second log replay written here with shapely polygons. DriveLM tags are checked against the
devkit's own ``view_points`` projection.

    .venv/bin/python bench/label_audit_nuscenes.py                          # the tests' scripted table set (with its map)
    .venv/bin/python bench/label_audit_nuscenes.py --dataroot ~/nuscenes --version v1.0-mini --show 10

Prints, per family: labels audited, disagreements, skipped (ambiguous, or the truth itself inside a band).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

# the audit's own copies of the rules (docs/sources/nuscenes.md), so a changed constant shows up
H_S = 3.0
AHEAD_BAND_M = 2.5
STATIONARY_M, STATIONARY_BAND_M = 1.0, 0.5
TURN_RAD, TURN_BAND_RAD = 0.35, 0.1
DV_MPS, DV_BAND_MPS, STOP_MPS, STOP_BAND_MPS = 1.0, 0.5, 0.5, 0.5
ACCEL_MPS2, ACCEL_BAND_MPS2 = 0.5, 0.25
DECEL = {"KEEP": 0.0, "SLOW_DOWN": 2.0, "STOP": 4.0}
TAIL_DECEL, MARGIN_LON, MARGIN_LAT, BAND = 6.0, 1.0, 0.3, 0.5
EGO_L, EGO_W = 4.1, 1.8
CATS = (("vehicle.bus", "bus"), ("vehicle.car", "car"), ("vehicle.truck", "truck"), ("vehicle.trailer", "trailer"),
        ("vehicle.construction", "construction vehicle"), ("vehicle.emergency", "emergency vehicle"),
        ("vehicle.motorcycle", "motorcycle"), ("vehicle.bicycle", "bicycle"), ("human.pedestrian", "pedestrian"),
        ("animal", "animal"))
STATUS = {"vehicle.moving": "moving", "vehicle.stopped": "stopped", "vehicle.parked": "parked",
          "cycle.with_rider": "with rider", "cycle.without_rider": "without rider", "pedestrian.moving": "moving",
          "pedestrian.standing": "standing", "pedestrian.sitting_lying_down": "sitting or lying"}


def yaw(q: list[float]) -> float:
    """Yaw of a (w, x, y, z) quaternion [rad]."""
    w, x, y, z = q
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


class Tables:
    """The raw tables with the few indexes the audit needs."""

    def __init__(self, dataroot: Path, version: str) -> None:
        t = {n: json.loads((dataroot / version / f"{n}.json").read_text()) for n in
             ("sample", "sample_data", "sample_annotation", "instance", "category", "attribute", "ego_pose",
              "calibrated_sensor", "sensor", "scene", "log")}
        self.by = {n: {r["token"]: r for r in rows} for n, rows in t.items()}
        sensor = {cs["token"]: self.by["sensor"][cs["sensor_token"]]["channel"] for cs in t["calibrated_sensor"]}
        self.lidar = {sd["sample_token"]: sd for sd in t["sample_data"]
                      if sd["is_key_frame"] and sensor[sd["calibrated_sensor_token"]] == "LIDAR_TOP"}
        self.anns = defaultdict(list)
        for a in t["sample_annotation"]:
            self.anns[a["sample_token"]].append(a)

    def pose(self, sample_tok: str) -> tuple[float, float, float, float]:
        sd = self.lidar[sample_tok]
        p = self.by["ego_pose"][sd["ego_pose_token"]]
        return p["translation"][0], p["translation"][1], yaw(p["rotation"]), sd["timestamp"] * 1e-6

    def location(self, sample_tok: str) -> str:
        scene = self.by["scene"][self.by["sample"][sample_tok]["scene_token"]]
        return self.by["log"][scene["log_token"]]["location"]

    def category(self, ann: dict) -> str | None:
        name = self.by["category"][self.by["instance"][ann["instance_token"]]["category_token"]]["name"]
        return next((short for pre, short in CATS if name.startswith(pre)), None)

    def t(self, ann: dict) -> float:
        return self.by["sample"][ann["sample_token"]]["timestamp"] * 1e-6

    def velocity(self, ann: dict) -> tuple[float, float]:
        """Centred difference of the neighbouring annotations (the devkit's rule, rewritten)."""
        a = self.by["sample_annotation"].get(ann["prev"], ann)
        b = self.by["sample_annotation"].get(ann["next"], ann)
        dt = self.t(b) - self.t(a)
        if dt <= 0 or dt > (3.0 if a is not ann and b is not ann else 1.5):
            return 0.0, 0.0
        return (b["translation"][0] - a["translation"][0]) / dt, (b["translation"][1] - a["translation"][1]) / dt

    def chain(self, ann: dict, horizon_s: float) -> list[dict]:
        out, t0, rec = [ann], self.t(ann), ann
        while rec["next"]:
            rec = self.by["sample_annotation"][rec["next"]]
            if self.t(rec) - t0 > horizon_s + 0.05:
                break
            out.append(rec)
        return out


def rel(pose: tuple, x: float, y: float) -> tuple[float, float]:
    ex, ey, eh, _ = pose
    dx, dy = x - ex, y - ey
    return dx * math.cos(eh) + dy * math.sin(eh), -dx * math.sin(eh) + dy * math.cos(eh)


def ego_speed(tables: Tables, sample_tok: str) -> float:
    s = tables.by["sample"][sample_tok]
    a, b = s["prev"] or sample_tok, s["next"] or sample_tok
    pa, pb = tables.pose(a), tables.pose(b)
    return 0.0 if pb[3] <= pa[3] else math.hypot(pb[0] - pa[0], pb[1] - pa[1]) / (pb[3] - pa[3])


def ego_ahead(tables: Tables, sample_tok: str, seconds: float) -> list[str]:
    out, tok, t0 = [], tables.by["sample"][sample_tok]["next"], tables.pose(sample_tok)[3]
    while tok and tables.pose(tok)[3] - t0 <= seconds + 0.05:
        out.append(tok)
        tok = tables.by["sample"][tok]["next"]
    return out


def longitudinal(v0: float, v1: float) -> set[str]:
    dv = v1 - v0
    label = "stop" if v1 < STOP_MPS else ("accelerate" if dv > DV_MPS else ("decelerate" if dv < -DV_MPS else "keep speed"))
    ok = {label}
    if abs(dv - DV_MPS) < DV_BAND_MPS:
        ok |= {"accelerate", "keep speed"}
    if abs(dv + DV_MPS) < DV_BAND_MPS:
        ok |= {"decelerate", "keep speed"}
    if abs(v1 - STOP_MPS) < STOP_BAND_MPS and dv < 0:
        ok |= {"stop", "decelerate"}
    return ok


def turn_set(d: float, words: tuple[str, str, str]) -> set[str]:
    label = words[0] if abs(d) < TURN_RAD else (words[1] if d > 0 else words[2])
    return {label} | ({words[0], words[1] if d > 0 else words[2]} if abs(abs(d) - TURN_RAD) <= TURN_BAND_RAD else set())


# ----------------------------------------------------------------------------- the second log replay


def _rect(x: float, y: float, h: float, length: float, width: float):
    from shapely.geometry import Polygon

    c, s = math.cos(h), math.sin(h)
    return Polygon([(x + dl * c - dw * s, y + dl * s + dw * c) for dl, dw in
                    ((length / 2, width / 2), (length / 2, -width / 2), (-length / 2, -width / 2), (-length / 2, width / 2))])


def replay_safe(tables: Tables, sample_tok: str, action: str) -> tuple[bool, bool]:
    """(safe, near the margin) of a manoeuvre along the recorded path against the annotated tracks."""
    from shapely.geometry import LineString

    pose = tables.pose(sample_tok)
    sd, pts = tables.lidar[sample_tok], [(0.0, 0.0)]
    tok = sd["next"]
    while tok:
        nxt = tables.by["sample_data"][tok]
        if (nxt["timestamp"] - sd["timestamp"]) * 1e-6 > 10.0:
            break
        p = tables.by["ego_pose"][nxt["ego_pose_token"]]
        q = rel(pose, p["translation"][0], p["translation"][1])
        if math.dist(q, pts[-1]) > 0.05:
            pts.append(q)
        tok = nxt["next"]
    if len(pts) < 2:
        pts.append((1.0, 0.0))
    line = LineString(pts)
    (ax, ay), (bx, by) = pts[-2], pts[-1]
    end_h = math.atan2(by - ay, bx - ax)

    def at(s_m: float) -> tuple[float, float, float]:
        if s_m <= line.length:
            p, q = line.interpolate(s_m), line.interpolate(min(s_m + 0.05, line.length))
            r = line.interpolate(max(s_m - 0.05, 0.0))
            return p.x, p.y, math.atan2(q.y - r.y, q.x - r.x)
        extra = s_m - line.length
        return bx + extra * math.cos(end_h), by + extra * math.sin(end_h), end_h

    v0, dec = ego_speed(tables, sample_tok), DECEL[action]
    def dist(t: float) -> tuple[float, float]:
        if dec == 0:
            return v0 * t, v0
        tt = min(t, v0 / dec)
        return v0 * tt - dec * tt * tt / 2, v0 - dec * tt

    s_h, v_h = dist(H_S)
    tail = v_h / TAIL_DECEL
    tracks = []
    t0 = tables.t(tables.anns[sample_tok][0]) if tables.anns[sample_tok] else pose[3]
    for ann in tables.anns[sample_tok]:
        if tables.category(ann) is None:
            continue
        pts_a = []
        for rec in tables.chain(ann, H_S + tail + 0.5):
            x, y = rel(pose, rec["translation"][0], rec["translation"][1])
            pts_a.append((tables.t(rec) - t0, x, y, yaw(rec["rotation"]) - pose[2]))
        if len(pts_a) == 1:
            vx, vy = tables.velocity(ann)
            c, s = math.cos(-pose[2]), math.sin(-pose[2])
            x, y = pts_a[0][1], pts_a[0][2]
            pts_a.append((1.0, x + c * vx - s * vy, y + s * vx + c * vy, pts_a[0][3]))
        if pts_a[0][1] < -EGO_L / 2:
            continue  # a follower is not counted for keep / slow down / stop
        tracks.append((pts_a, ann["size"][1], ann["size"][0]))
    near = False
    n = int(round((H_S + tail) / 0.1)) + 1
    for k in range(1, n + 1):
        t = k * 0.1
        if t <= H_S + 1e-9:
            s_m, _ = dist(t)
        else:
            u = min(t - H_S, tail)
            s_m = s_h + v_h * u - TAIL_DECEL * u * u / 2
        ex, ey, eh = at(s_m)
        tight = _rect(ex, ey, eh, EGO_L + 2 * MARGIN_LON, EGO_W + 2 * MARGIN_LAT)
        wide = _rect(ex, ey, eh, EGO_L + 2 * (MARGIN_LON + BAND), EGO_W + 2 * (MARGIN_LAT + BAND))
        for pts_a, length, width in tracks:
            i = max(0, min(len(pts_a) - 2, next((j for j in range(len(pts_a) - 1) if pts_a[j + 1][0] >= t), len(pts_a) - 2)))
            (ta, xa, ya, ha), (tb, xb, yb, hb) = pts_a[i], pts_a[i + 1]
            u = (t - ta) / max(tb - ta, 1e-9)
            dh = math.remainder(hb - ha, math.tau)
            other = _rect(xa + u * (xb - xa), ya + u * (yb - ya), ha + u * dh, length, width)
            if tight.intersects(other):
                return False, False
            near = near or wide.intersects(other)
    return True, near


# ----------------------------------------------------------------------------- the lane map


class RawMap:
    """A map expansion file read with json: lane / connector polygons from their nodes, and connectivity."""

    def __init__(self, path: Path) -> None:
        from shapely.geometry import Polygon

        raw = json.loads(path.read_text())
        nodes = {n["token"]: (n["x"], n["y"]) for n in raw["node"]}
        polys = {p["token"]: Polygon([nodes[t] for t in p["exterior_node_tokens"]]) for p in raw["polygon"]}
        self.lanes = {r["token"]: polys[r["polygon_token"]] for r in raw["lane"] + raw["lane_connector"]}
        self.conn = raw["connectivity"]

    def ego_chain(self, x: float, y: float, path: list[tuple[float, float]]) -> list[str] | None:
        from shapely.geometry import Point

        here = [t for t, p in sorted(self.lanes.items()) if p.contains(Point(x, y))]
        if not here:
            return None
        chain = [here[0]]
        for _ in range(4):
            nxt = [t for t in self.conn.get(chain[-1], {}).get("outgoing", [])
                   if any(self.lanes[t].contains(Point(q)) for q in path)]
            if len(nxt) != 1:
                break
            chain.append(nxt[0])
        inc = self.conn.get(here[0], {}).get("incoming", [])
        return inc[:1] + chain if len(inc) == 1 else chain


def same_lane_truth(tables: "Tables", raw_map: RawMap, sample_tok: str, ann: dict) -> bool | None:
    """Inside the ego's lane chain (None within 0.5 m of its edge or off the map)."""
    from shapely.geometry import Point
    from shapely.ops import unary_union

    pose = tables.pose(sample_tok)
    sd, path = tables.lidar[sample_tok], []
    tok = sd["next"]
    while tok:
        nxt = tables.by["sample_data"][tok]
        if (nxt["timestamp"] - sd["timestamp"]) * 1e-6 > 10.0:
            break
        path.append(tuple(tables.by["ego_pose"][nxt["ego_pose_token"]]["translation"][:2]))
        tok = nxt["next"]
    chain = raw_map.ego_chain(pose[0], pose[1], path)
    if chain is None:
        return None
    area = unary_union([raw_map.lanes[t] for t in chain])
    p = Point(ann["translation"][:2])
    return None if area.boundary.distance(p) < 0.5 else bool(area.contains(p))


# ----------------------------------------------------------------------------- the audit


def _choice(node: dict) -> tuple[str, set[str]]:
    a = node["answer"]
    return a["options"][a["preferred"]], {a["options"][i] for i in a["acceptable"]}


def audit(dataset: Path, tables: Tables, devkit=None, show: int = 5,
          raw_maps: dict[str, RawMap] | None = None) -> dict[str, Counter]:
    """Per family: audited / wrong / skipped counts; prints the first disagreements."""
    stats: dict[str, Counter] = defaultdict(Counter)
    shown: Counter = Counter()

    def verdict(family: str, ok: bool | None, what: str) -> None:
        key = "skipped" if ok is None else ("ok" if ok else "wrong")
        stats[family][key] += 1
        if ok is False and shown[family] < show:
            shown[family] += 1
            print(f"  WRONG {family}: {what}")

    for line in (dataset / "frames.jsonl").read_text().splitlines():
        rec = json.loads(line)
        frame, nodes = rec["frame"], rec["graph"]["nodes"]
        tok = frame["meta"]["sample_token"]
        pose = tables.pose(tok)
        inst = {a["instance_token"]: a for a in tables.anns[tok]}
        by_id = {int(k): inst[v["instance_token"]] for k, v in frame["meta"]["agents"].items()}
        agents = {a["id"]: a for a in frame["agents"]}
        for aid, ann in by_id.items():
            rx, ry = rel(pose, ann["translation"][0], ann["translation"][1])
            ok = abs(rx - agents[aid]["rel_x_m"]) < 0.01 and abs(ry - agents[aid]["rel_y_m"]) < 0.01
            verdict("agent position", ok, f"{frame['frame_id']} agent {aid}: ({rx:.2f}, {ry:.2f})")
            vx, vy = tables.velocity(ann)
            verdict("agent speed", abs(math.hypot(vx, vy) - agents[aid]["speed_mps"]) < 0.01, f"agent {aid}")
        for n in nodes:
            fam, objs = n["family"], n["objects"]
            ann = by_id.get(objs[0]) if objs else None
            where = f"{frame['frame_id']} {n['qid']}"
            if n["ambiguous"]:
                verdict(fam, None, where)
            elif fam == "per.category":
                verdict(fam, _choice(n)[0] == tables.category(ann), where)
            elif fam == "per.status":
                attrs = [tables.by["attribute"][t]["name"] for t in ann["attribute_tokens"]]
                verdict(fam, _choice(n)[0] == next((STATUS[a] for a in attrs if a in STATUS), None), where)
            elif fam == "per.vehicle_side":
                rx, _ = rel(pose, ann["translation"][0], ann["translation"][1])
                truth = {"ahead", "behind"} if abs(rx) < AHEAD_BAND_M else {"ahead" if rx > 0 else "behind"}
                verdict(fam, _choice(n)[1] == truth, where)
            elif fam == "pred.future_state":
                ch = tables.chain(ann, H_S)
                x0, y0 = ann["translation"][:2]
                moved = max(math.hypot(r["translation"][0] - x0, r["translation"][1] - y0) for r in ch)
                d = math.remainder(yaw(ch[-1]["rotation"]) - yaw(ann["rotation"]), math.tau)
                truth = (({"stationary"} if moved < STATIONARY_M + STATIONARY_BAND_M else set())
                         | (turn_set(d, ("go straight", "turn left", "turn right"))
                            if moved > STATIONARY_M - STATIONARY_BAND_M else set()))
                pref, acc = _choice(n)
                verdict(fam, pref in truth and acc == truth, f"{where}: {truth} vs {acc}")
            elif fam == "pred.motion":
                ch = tables.chain(ann, H_S)
                v0 = math.hypot(*tables.velocity(ann))
                v1 = math.hypot(*tables.velocity(ch[-1]))
                acc_mps2 = (v1 - v0) / H_S
                if abs(abs(acc_mps2) - ACCEL_MPS2) <= ACCEL_BAND_MPS2:
                    verdict(fam, None, where)
                else:
                    truth = "steady" if abs(acc_mps2) < ACCEL_MPS2 else ("accelerating" if acc_mps2 > 0 else "braking")
                    verdict(fam, _choice(n)[0] == truth, f"{where}: {truth} ({acc_mps2:+.2f} m/s^2)")
            elif fam in ("beh.longitudinal", "beh.direction"):
                end = ego_ahead(tables, tok, H_S)[-1]
                if fam == "beh.longitudinal":
                    truth = longitudinal(ego_speed(tables, tok), ego_speed(tables, end))
                else:
                    truth = turn_set(math.remainder(tables.pose(end)[2] - pose[2], math.tau),
                                     ("go straight", "turn left", "turn right"))
                verdict(fam, _choice(n)[1] == truth, f"{where}: {truth}")
            elif fam == "per.same_lane":
                raw_map = (raw_maps or {}).get(tables.location(tok))
                truth = same_lane_truth(tables, raw_map, tok, ann) if raw_map else None
                if n["answer"]["accept_both"] or truth is None:
                    verdict(fam, None, where)
                else:
                    verdict(fam, truth == n["answer"]["value"], f"{where}: map says {truth}")
            elif fam == "plan.safe":
                if n["answer"].get("accept_both"):
                    verdict(fam, None, where)
                    continue
                safe, near = replay_safe(tables, tok, n["qid"].split(".")[-1])
                verdict(fam, None if near and safe != n["answer"]["value"] else safe == n["answer"]["value"],
                        f"{where}: replay here says {'safe' if safe else 'unsafe'}")
        if devkit is not None:
            _audit_tags(devkit, frame, tok, by_id, verdict)
    return stats


def _audit_tags(nusc, frame: dict, tok: str, by_id: dict, verdict) -> None:
    """A tag's pixel = the centre of the devkit's view_points projection, for boxes fully inside the image."""
    import numpy as np
    from nuscenes.utils.geometry_utils import BoxVisibility, view_points

    sample = nusc.get("sample", tok)
    for aid, tag in frame["meta"]["drivelm_tags"].items():
        _, cam, x, y = tag.strip("<>").split(",")
        _, boxes, K = nusc.get_sample_data(sample["data"][cam], box_vis_level=BoxVisibility.ALL,
                                           selected_anntokens=[by_id[int(aid)]["token"]])
        if not boxes:
            verdict("DriveLM tag", None, aid)  # partly outside this camera: clipped, not comparable
            continue
        pts = view_points(boxes[0].corners(), np.asarray(K), normalize=True)
        cx, cy = (pts[0].min() + pts[0].max()) / 2, (pts[1].min() + pts[1].max()) / 2
        verdict("DriveLM tag", abs(cx - float(x)) < 0.15 and abs(cy - float(y)) < 0.15,
                f"{frame['frame_id']} agent {aid}: devkit ({cx:.1f}, {cy:.1f}) vs tag ({x}, {y})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataroot", type=Path, default=None, help="a nuScenes folder (default: the tests' scripted set)")
    p.add_argument("--version", default="v1.0-mini")
    p.add_argument("--scenes", default="*")
    p.add_argument("--show", type=int, default=5, help="disagreements printed per family")
    args = p.parse_args(argv)
    from drivechain.generate_logs import LogGenerateConfig, generate_logs

    with tempfile.TemporaryDirectory() as tmp:
        root = args.dataroot
        if root is None:
            from tests.nuscenes_fixture import write_fixture

            root = write_fixture(Path(tmp) / "nuscenes", with_map=True)
        cfg = LogGenerateConfig(name="audit", source="nuscenes", dataroot=str(root), routes=args.scenes,
                                cameras="all", stride=1, version=args.version)
        manifest = generate_logs(cfg, Path(tmp) / "data")
        from drivechain.sources.nuscenes import open_nuscenes

        raw_maps = {p.stem: RawMap(p) for p in sorted((Path(root) / "maps" / "expansion").glob("*.json"))}
        stats = audit(Path(tmp) / "data", Tables(Path(root), args.version), open_nuscenes(Path(root), args.version),
                      args.show, raw_maps)
    print(f"\n{manifest.counts['frames']} frames; dropped {manifest.counts.get('dropped', {})}")
    print(f"{'family':24s} {'audited':>8s} {'wrong':>6s} {'skipped':>8s}")
    total = Counter()
    for fam in sorted(stats):
        c = stats[fam]
        total.update(c)
        print(f"{fam:24s} {c['ok'] + c['wrong']:8d} {c['wrong']:6d} {c['skipped']:8d}")
    audited = total["ok"] + total["wrong"]
    print(f"{'all':24s} {audited:8d} {total['wrong']:6d} {total['skipped']:8d}   "
          f"agreement {total['ok'] / max(audited, 1):.4f}")
    return 0 if total["wrong"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
