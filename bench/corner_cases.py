"""Corner cases: the teacher's (= the oracle's) own closed-loop outcome per case and difficulty level.

For every case and level, the teacher drives N seeds (the level fixed, everything else from the
seed) for up to --max-steps decisions; the table gives at-fault collisions, any collision, whether
the hazard fired, and the TTC it fired at. A level with an at-fault collision is what
sources/corner_cases.py lists as "unavoidable" (labelled, never scored).

    .venv/bin/python bench/corner_cases.py --seeds 6 --max-steps 12            # 6 seeds x 4 levels = 24 per case
    .venv/bin/python bench/corner_cases.py --cases cutin --seeds 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from drivechain.closedloop.corner import teacher_drive
from drivechain.sources.corner_cases import CORNER_CASES


def _one(args: tuple[str, int, int, int]) -> dict:
    case, level, seed, max_steps = args
    return teacher_drive(case, seed, level, max_steps=max_steps)


def main(argv: list[str] | None = None) -> int:
    """Run the drives and print one row per (case, level)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CORNER_CASES))
    ap.add_argument("--seeds", type=int, default=6, help="seeds per level")
    ap.add_argument("--max-steps", type=int, default=12)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write every drive to this file")
    a = ap.parse_args(argv)
    cases = [c for c in a.cases.split(",") if c]
    tasks = [(c, lv, 1000 + s, a.max_steps) for c in cases for lv in range(len(CORNER_CASES[c].levels))
             for s in range(a.seeds)]
    t0 = time.perf_counter()
    if a.workers > 1:
        with ProcessPoolExecutor(a.workers) as pool:
            runs = list(pool.map(_one, tasks))
    else:
        runs = []
        for t in tasks:
            runs.append(_one(t))
            r = runs[-1]
            print(f"  {r['scenario']} L{r['level']} seed {r['seed']}: at_fault={r['at_fault']} "
                  f"collision={bool(r['collision'])} fired={r['triggered']}", file=sys.stderr, flush=True)
    print(f"{len(runs)} teacher drives in {time.perf_counter() - t0:.0f} s (max {a.max_steps} steps each)")
    print(f"{'case':10} {'level':>5} {'ttc_s':>6} {'seeds':>5} {'at_fault':>8} {'any_coll':>8} {'fired':>5} "
          f"{'ttc_fired_mean':>14}  at-fault seeds")
    for c in cases:
        for lv, params in enumerate(CORNER_CASES[c].levels):
            rs = [r for r in runs if r["scenario"] == c and r["level"] == lv]
            fired = [r["ttc_at_trigger_s"] for r in rs if r["triggered"] and r["ttc_at_trigger_s"] is not None]
            bad = [r["seed"] for r in rs if r["at_fault"]]
            print(f"{c:10} {lv:>5} {params['ttc_s']:>6} {len(rs):>5} {len(bad):>8} "
                  f"{sum(1 for r in rs if r['collision']):>8} {sum(1 for r in rs if r['triggered']):>5} "
                  f"{(sum(fired) / len(fired)) if fired else float('nan'):>14.2f}  {bad}")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as fh:
            json.dump(runs, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
