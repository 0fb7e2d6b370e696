"""Corner cases: the teacher's (= the oracle's) own closed-loop outcome per case and difficulty level.

For every case and level, the teacher drives N seeds (the level fixed, everything else from the
seed) for up to --max-steps decisions; the table gives at-fault collisions, any collision, whether
the hazard fired, and the TTC it fired at. A level with an at-fault collision is what
sources/corner_cases.py lists as "unavoidable" (labelled, never scored).

    .venv/bin/python bench/corner_cases.py --seeds 5 --max-steps 6 --workers 2 --jsonl drives.jsonl  # 20 per case
    .venv/bin/python bench/corner_cases.py --from drives.jsonl --max-steps 6     # the table of a (partial) run
    .venv/bin/python bench/corner_cases.py --cases hardbrake --levels 0,2 --first-seed 1005 --seeds 15 \
        --jsonl drives.jsonl                                                     # 15 more seeds of two levels
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
    ap.add_argument("--first-seed", type=int, default=1000, help="seeds run from here (continue an earlier run)")
    ap.add_argument("--levels", default=None, help="comma-separated level numbers (default: every level)")
    ap.add_argument("--max-steps", type=int, default=12)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write every drive to this file")
    ap.add_argument("--jsonl", default=None, help="append every drive to this file as it finishes")
    ap.add_argument("--from", dest="source", default=None, help="only print the table of drives in this JSONL file")
    a = ap.parse_args(argv)
    if a.source:
        runs = [json.loads(x) for x in open(a.source, encoding="utf-8") if x.strip()]
        _table(runs, [c for c in a.cases.split(",") if c and any(r["scenario"] == c for r in runs)], a.max_steps)
        return 0
    cases = [c for c in a.cases.split(",") if c]
    # seed-major order: a run stopped early still covers every case and level about equally
    wanted = None if a.levels is None else {int(x) for x in a.levels.split(",") if x}
    tasks = [(c, lv, a.first_seed + s, a.max_steps) for s in range(a.seeds) for c in cases
             for lv in range(len(CORNER_CASES[c].levels)) if wanted is None or lv in wanted]
    t0 = time.perf_counter()
    runs: list[dict] = []
    stream = open(a.jsonl, "a", encoding="utf-8") if a.jsonl else None
    with ProcessPoolExecutor(a.workers) as pool:
        for r in pool.map(_one, tasks):
            runs.append(r)
            if stream:  # every drive as it finishes (a long run can be read, or summarised with --from)
                stream.write(json.dumps(r) + "\n")
                stream.flush()
    if stream:
        stream.close()
    print(f"{len(runs)} teacher drives in {time.perf_counter() - t0:.0f} s")
    _table(runs, cases, a.max_steps)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as fh:
            json.dump(runs, fh, indent=1)
    return 0


def _table(runs: list[dict], cases: list[str], max_steps: int) -> None:
    """One row per (case, level): seeds, at-fault and any collisions, fired, mean TTC at the trigger."""
    print(f"max {max_steps} steps per drive")
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


if __name__ == "__main__":
    sys.exit(main())
