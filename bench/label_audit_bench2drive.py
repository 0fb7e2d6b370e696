"""Audit a Bench2Drive dataset against the raw anno files, recomputed independently.

A dataset is made through the real generator (``--source bench2drive``); then, for every frame,
the raw ``anno/NNNNN.json.gz`` files are read again here and each check is recomputed with its own
math, never calling drivechain's source, camera or teacher code:
- ego frame: each agent's centre through the recorder's own ``world2ego`` matrix (not the yaw);
- projection: each visible agent's 8 corners (``world_cord``, or centre/extent through
  ``world2vehicle`` for static vehicles) through K and world2cam, Bench2Drive's formula, vs the
  stored pixel box (agents with a corner behind the camera are skipped: clipping differs);
- future: each agent's recorded centre 1, 2, 3 s later, looked up by CARLA id in the later files;
- pedestrian speed: the centred difference of the raw positions;
- traffic light: the raw light with ``affects_ego`` and its state vs ``per.traffic_light``.

    .venv/bin/python bench/label_audit_bench2drive.py                       # the test fixture's routes
    .venv/bin/python bench/label_audit_bench2drive.py --dataroot /data/Bench2Drive-mini --stride 10
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STATES = {0: "red", 1: "yellow", 2: "green"}
PIXEL_TOL = 1.0
METRE_TOL = 0.05


def read(route: Path, step: int) -> dict | None:
    path = route / "anno" / f"{step:05d}.json.gz"
    if not path.is_file():
        return None
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def by_id(anno: dict) -> dict[str, dict]:
    return {str(b["id"]): b for b in anno["bounding_boxes"]}


def centre(b: dict) -> np.ndarray:
    return np.array(b["center"], dtype=float)


def corners(b: dict) -> np.ndarray:
    if b.get("state") == "static" or not b.get("world_cord"):
        ex, ey, ez = b["extent"]
        local = np.array([[sx * ex, sy * ey, sz * ez, 1.0] for sx in (1, -1) for sy in (1, -1) for sz in (1, -1)])
        v2w = np.linalg.inv(np.array(b["world2vehicle"]))
        offset = np.array(b["center"]) - v2w[:3, 3]  # the box centre relative to the actor's origin
        return (v2w @ local.T).T[:, :3] + offset
    return np.array(b["world_cord"], dtype=float)


def project(sensor: dict, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w2c, K = np.array(sensor["world2cam"]), np.array(sensor["intrinsic"])
    cam = (w2c @ np.hstack([pts, np.ones((len(pts), 1))]).T).T
    std = np.stack([cam[:, 1], -cam[:, 2], cam[:, 0]], axis=1)
    uvw = (K @ std.T).T
    return uvw[:, :2] / uvw[:, 2:3], cam[:, 0]


def audit(data: Path, routes: dict[str, Path], show: int) -> Counter:
    from drivechain.dataset import load_dataset

    stats: Counter = Counter()
    bad: dict[str, list[str]] = defaultdict(list)

    def check(name: str, ok: bool, what: str) -> None:
        stats[f"{name} audited"] += 1
        if not ok:
            stats[f"{name} wrong"] += 1
            bad[name].append(what)

    for rec in load_dataset(data).records():
        f = rec.frame
        clip = f.frame_id.split("/", 1)[1].rsplit("/", 1)[0]
        route, step = routes[clip], f.step
        raw = read(route, step)
        boxes = by_id(raw)
        ego = next(b for b in raw["bounding_boxes"] if b["class"] == "ego_vehicle")
        w2e = np.array(ego["world2ego"])
        bbx = np.array(ego.get("bbx_loc") or [0.0, 0.0, 0.0])
        for a in f.agents:
            b = boxes[f.meta["carla_ids"][str(a.id)]]
            p = (w2e @ np.append(centre(b), 1.0))[:3] - bbx
            check("ego frame", abs(p[0] - a.rel_x_m) < METRE_TOL and abs(-p[1] - a.rel_y_m) < METRE_TOL,
                  f"{f.frame_id} agent {a.id}: ({a.rel_x_m}, {a.rel_y_m}) vs ({p[0]:.2f}, {-p[1]:.2f})")
            for cam, box in a.boxes.items():
                s = raw["sensors"][cam]
                uv, depth = project(s, corners(b))
                if (depth < 0.5).any():
                    continue
                mine = [max(0, uv[:, 0].min()), max(0, uv[:, 1].min()),
                        min(s["image_size_x"], uv[:, 0].max()), min(s["image_size_y"], uv[:, 1].max())]
                check("projection", np.allclose(mine, box, atol=PIXEL_TOL), f"{f.frame_id} agent {a.id} {cam}: {box} vs "
                      f"{[round(v, 1) for v in mine]}")
            if a.category == "pedestrian":
                prev, nxt = read(route, step - 1), read(route, step + 1)
                if prev and nxt and b["id"] in by_id(prev) and b["id"] in by_id(nxt):
                    d = centre(by_id(nxt)[b["id"]])[:2] - centre(by_id(prev)[b["id"]])[:2]
                    v = float(np.hypot(*d)) * 5.0
                    check("pedestrian speed", abs(v - a.speed_mps) < 0.05, f"{f.frame_id} ped {a.id}: {a.speed_mps} vs {v:.2f}")
        for aid, states in f.future.items():
            if aid == 0:
                continue
            key = f.meta["carla_ids"][str(aid)]
            for st in states:
                later = read(route, step + int(round(st.t_s * 10)))
                c = centre(by_id(later)[key]) if later and key in by_id(later) else None
                check("future", c is not None and abs(c[0] - st.x_m) < 1e-3 and abs(c[1] - st.y_m) < 1e-3,
                      f"{f.frame_id} agent {aid} t={st.t_s}: ({st.x_m}, {st.y_m}) vs {None if c is None else c[:2]}")
        node = rec.graph.get("per.traffic_light")
        if node is not None:
            lights = [b for b in raw["bounding_boxes"] if b["class"] == "traffic_light" and str(b.get("affects_ego")) == "True"]
            truth = STATES.get(lights[0]["state"], str(lights[0]["state"]).lower()) if lights else None
            label = node.answer.options[node.answer.preferred]
            check("per.traffic_light", label == truth if truth else label.startswith("no traffic light"),
                  f"{f.frame_id}: {label} vs {truth}")
    for name in sorted({k.rsplit(" ", 1)[0] for k in stats}):
        n, wrong = stats[f"{name} audited"], stats[f"{name} wrong"]
        print(f"{name:20s} audited {n:6d}  wrong {wrong:4d}  agreement {1 - wrong / max(n, 1):.4f}")
        for line in bad[name][:show]:
            print(f"    {line}")
    return stats


def main(argv: list[str] | None = None) -> int:
    from drivechain.generate_logs import LogGenerateConfig, generate_logs
    from drivechain.sources.bench2drive import find_routes

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataroot", type=Path, default=None)
    p.add_argument("--routes", default="*")
    p.add_argument("--stride", type=int, default=5)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--show", type=int, default=5)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dataroot
        if root is None:
            from tests import b2d_fixture as fx

            root = fx.build(Path(tmp) / "routes")
        cfg = LogGenerateConfig(source="bench2drive", dataroot=str(root), routes=args.routes, cameras="all",
                                stride=args.stride, limit=args.limit)
        generate_logs(cfg, Path(tmp) / "data")
        stats = audit(Path(tmp) / "data", dict(find_routes(root, args.routes, ["CAM_FRONT"])), args.show)
    return 0 if not any(k.endswith("wrong") and v for k, v in stats.items()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
EOF
