"""Counterfactual probes at scale: how many probes verify, what flips, and the built-in floors.

Generates a dataset (corner cases + merge by default), builds probes on every frame, evaluates
the oracle and the text-only heuristic with ``--protocol probes`` and prints the counts, the
verification checks and both models' flip recall / stability.

    .venv/bin/python bench/probes.py --episodes 3 --steps 10 --per-frame 1 --workers 2   # 210 frames
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from drivechain.dataset import load_dataset
from drivechain.evaluation.protocols import AskOptions
from drivechain.evaluation.runner import RunPolicy, evaluate
from drivechain.generate import GenerateConfig, generate
from drivechain.models.registry import load_model
from drivechain.probing import ProbeConfig, build_probes


def main(argv: list[str] | None = None) -> int:
    """Generate, probe, evaluate; print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default="hardbrake,cutin,stalled,onramp,overtake,crossing,merge")
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--per-frame", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1, help="generation worker processes")
    ap.add_argument("--epsilon", type=float, default=0.0, help="exploration of the generated episodes")
    ap.add_argument("--data", default=None, help="probe this existing dataset instead of generating one")
    ap.add_argument("--keep", default=None, help="keep the dataset and probe set under this folder")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dc-bench-probes-") as tmp:
        root = Path(a.keep) if a.keep else Path(tmp)
        t0 = time.perf_counter()
        if a.data:  # probe an existing dataset (made by this teacher code)
            root = Path(tmp)
            (root / "data").symlink_to(Path(a.data).resolve())
        else:
            generate(GenerateConfig(scenarios=a.scenarios.split(","), episodes=a.episodes, steps_per_episode=a.steps,
                                    epsilon=a.epsilon), root / "data", workers=a.workers, force=True)
        t1 = time.perf_counter()
        print(f"generated in {t1 - t0:.0f} s", file=sys.stderr, flush=True)

        def tick(st: dict) -> None:
            if st["frames"] % 20 == 0:
                print(f"  {st['frames']} frames probed, {st['probes']} probes", file=sys.stderr, flush=True)

        # the dataset was just made by this teacher: its recorded labels are the originals' labels
        stats = build_probes(root / "data", root / "probes", ProbeConfig(per_frame=a.per_frame, relabel=False),
                             force=True, on_frame=tick)
        t2 = time.perf_counter()
        probes = [json.loads(x) for x in (root / "probes" / "probes.jsonl").read_text().splitlines()]
        checks: Counter[str] = Counter()
        passed: Counter[str] = Counter()
        for p in probes:
            for k, v in p["checks"].items():
                checks[k] += 1
                passed[k] += int(v)
        print(f"dataset: {load_dataset(root / 'data').manifest.counts['frames']} frames in {t1 - t0:.0f} s; "
              f"probes built in {t2 - t1:.0f} s")
        print("probe stats:", json.dumps(stats, sort_keys=True))
        print("checks passed/checked:", {k: f"{passed[k]}/{checks[k]}" for k in sorted(checks)})
        print("flips per probe by edit:", {e: round(sum(len(p['flips']) for p in probes if p['edit'] == e)
                                                   / max(1, sum(1 for p in probes if p['edit'] == e)), 2)
                                           for e in sorted({p['edit'] for p in probes})})
        records = list(load_dataset(root / "probes").records())
        for name in ("oracle", "heuristic"):
            s = asyncio.run(evaluate(records, load_model(name), root / f"run-{name}", protocols=("probes",),
                                     opts=AskOptions(image_root=str(root / "probes")), policy=RunPolicy(),
                                     progress=False))["probes"]
            print(f"{name:9} flip recall {s['flip_recall']} {s['flip_recall_ci95']} ({s['flips']} pairs)  "
                  f"stability {s['stability']} {s['stability_ci95']} ({s['stable']} pairs)  "
                  f"probes {s['probes']} on {s['frames']} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
