"""Bench2Drive source benchmark: frames/s reading and labelling logs with 1 vs 6 cameras, and the share
of labels ambiguous or dropped per family. Prints figures and ratios; asserts nothing.

Without --dataroot it builds the test fixture's four scripted routes at Bench2Drive's real image size
(1600x900 JPEG) in a temp folder; with --dataroot it reads your Bench2Drive routes.

    .venv/bin/python bench/bench2drive.py [--dataroot DIR] [--routes GLOB] [--stride 1] [--limit 120]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.b2d_fixture builds the default routes

from drivechain.generate_logs import LogGenerateConfig, generate_logs  # noqa: E402


def load() -> str:
    """The 1-minute load average (2 cores: above ~2 the figures are contended)."""
    return f"{os.getloadavg()[0]:.2f}"


def run(dataroot: Path, routes: str, cameras: str, stride: int, limit: int | None, out: Path) -> tuple[float, dict]:
    """(frames/s, manifest counts) of one generate run."""
    cfg = LogGenerateConfig(source="bench2drive", dataroot=str(dataroot), routes=routes, cameras=cameras,
                            stride=stride, limit=limit)
    t0 = time.perf_counter()
    manifest = generate_logs(cfg, out)
    return manifest.counts["frames"] / (time.perf_counter() - t0), manifest.counts


def banded(data: Path) -> Counter:
    """Per family: labels that accept more than one answer (inside a band) without being ambiguous."""
    from drivechain.dataset import load_dataset

    out: Counter = Counter()
    for rec in load_dataset(data).records():
        for n in rec.graph.nodes:
            a = n.answer
            wide = (getattr(a, "accept_both", False) or len(getattr(a, "acceptable", [])) > 1
                    or bool(getattr(a, "optional_ids", [])))
            out[n.family] += int(wide and not n.ambiguous)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataroot", type=Path, default=None)
    p.add_argument("--routes", default="*")
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--limit", type=int, default=120)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dataroot
        if root is None:
            from tests import b2d_fixture as fx

            fx.SIZE = (1600, 900)
            t0 = time.perf_counter()
            root = fx.build(Path(tmp) / "routes")
            print(f"built the 4 fixture routes (45 frames, 6 cameras, 1600x900) in {time.perf_counter() - t0:.1f} s")
        rates, counts = {}, {}
        for cameras in ("front", "all"):
            print(f"load before {cameras}: {load()}")
            rates[cameras], counts[cameras] = run(root, args.routes, cameras, args.stride, args.limit,
                                                  Path(tmp) / f"out-{cameras}")
            print(f"cameras={cameras}: {counts[cameras]['frames']} frames, {rates[cameras]:.2f} frames/s "
                  f"(load {load()})")
        print(f"ratio 6 cameras / 1 camera: {rates['all'] / rates['front']:.2f}x the frame rate")
        c = counts["front"]
        both = banded(Path(tmp) / "out-front")
        print("\nper family (cameras=front): labels, ambiguous (not scored), both answers accepted (band), dropped")
        for fam in sorted(set(c["families"]) | set(c["dropped"])):
            kept, amb, drop = c["families"].get(fam, 0), c["ambiguous"].get(fam, 0), c["dropped"].get(fam, 0)
            total = kept + drop
            print(f"  {fam:28s} {kept:5d}  ambiguous {amb / max(kept, 1):6.1%}  band {both[fam] / max(kept, 1):6.1%}"
                  f"  dropped {drop / max(total, 1):6.1%}")
        print(json.dumps({"frames_per_s": rates, "unsupported": c["unsupported"]}, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
