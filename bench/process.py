"""Process supervision: candidates/s of ``drivechain process`` and prm-eval time, best-of-N per chain mix.

    .venv/bin/python bench/process.py [--episodes 3] [--steps 5] [--data DIR] [--propagate 0 0.8]

Generates a small dataset (4 scenarios x episodes x steps frames; generation is not timed) unless
--data names one, then for each --propagate value: ``run_process`` with the perturb generator
(N candidates per step, C chains per frame, plausibility rater for hard negatives) -> candidates/s
and rated chain steps/s; ``run_prm_eval`` with the plausibility and oracle raters -> seconds each;
the best-of-N table (PRM product selector, majority, pass ceiling) of both raters; and how often the
final answer is wrong after a perception/prediction error vs without one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from drivechain.process.pipeline import ProcessConfig, run_process  # noqa: E402
from drivechain.process.prm_eval import run_prm_eval  # noqa: E402


def make_dataset(out: Path, episodes: int, steps: int) -> Path:
    """A small dataset through the real generator (160x120 images, one worker)."""
    from drivechain.generate import GenerateConfig, generate

    cfg = GenerateConfig(scenarios=["highway", "merge", "intersection", "roundabout"], episodes=episodes,
                         steps_per_episode=steps, seed=7, epsilon=0.2, image_size=(160, 120), history=1)
    generate(cfg, out, workers=1)
    return out


def upstream_effect(prm: Path) -> str:
    """Share of chains with a wrong final answer, after a perception/prediction error and without one."""
    rows = [json.loads(line) for line in (prm / "chains.jsonl").read_text().splitlines() if line.strip()]
    up = [r for r in rows if r["first_error"] in (0, 1)]
    clean = [r for r in rows if r["first_error"] not in (0, 1)]
    rate = lambda rs: sum(not r["final_correct"] for r in rs) / max(1, len(rs))  # noqa: E731
    return (f"final wrong after a perception/prediction error {100 * rate(up):.1f} % (n={len(up)}), "
            f"without one {100 * rate(clean):.1f} % (n={len(clean)})")


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--chains", type=int, default=16)
    ap.add_argument("--propagate", type=float, nargs="+", default=[0.0, 0.8])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or make_dataset(Path(tmp) / "data", args.episodes, args.steps)
        for propagate in args.propagate:
            prm = Path(tmp) / f"prm-{propagate}"
            t0 = time.perf_counter()
            s = run_process(data, prm, ProcessConfig(n=args.n, chains=args.chains, top_k=2, seed=0, propagate=propagate))
            dt = time.perf_counter() - t0
            chain_steps = s["chains"]["count"] * 4
            print(f"\n### propagate={propagate}: {s['frames']} frames, {s['candidates']} candidates, "
                  f"{s['chains']['count']} chains")
            print(f"process: {dt:.2f} s -> {s['candidates'] / dt:.0f} candidates/s, "
                  f"{(s['candidates'] + chain_steps) / dt:.0f} rated steps/s (candidates + chain steps)")
            print(upstream_effect(prm))
            for rater in ("plausibility", "oracle"):
                t0 = time.perf_counter()
                ev = run_prm_eval(prm, Path(tmp) / f"eval-{propagate}-{rater}", rater)
                dt = time.perf_counter() - t0
                bon = ev["best_of_n"]
                ns = list(bon["product"])
                print(f"prm-eval {rater}: {dt:.2f} s, first-error F1 {100 * (ev['first_error']['f1'] or 0):.1f}")
                print("| selector | " + " | ".join(f"N={n}" for n in ns) + " |")
                for sel in ("product", "min", "orm", "majority", "pass"):
                    cells = ["-" if bon[sel][n] is None else f"{100 * bon[sel][n]:.1f}" for n in ns]
                    print(f"| {sel} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
