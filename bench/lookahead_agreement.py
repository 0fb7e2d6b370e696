"""Reduced vs full-world look-ahead: agreement of the safety labels, and the planners' agreement rate.

Drives each scenario with the voted preferred action (seeded epsilon exploration so unsafe states
appear too) and, at every frame, checks every real action with the reduced rollouts the teacher uses
(stepped together with shared traffic, sources/shared_rollout.py) and with full ``env.step``
rollouts of a deep copy of the whole world (same ego_idm rule). Prints one line per scenario and
the totals: (frame, action) pairs, safe-label agreement, largest margin difference, and the time
of the teacher's planning labels vs the full rollouts.

    .venv/bin/python bench/lookahead_agreement.py [--episodes 3] [--steps 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter

from drivechain.sources.base import make_source
from drivechain.teacher.context import TeacherContext
from drivechain.teacher.families.planning import planning_labels
from drivechain.teacher.planners import lookahead
from drivechain.teacher.planners.vote import agreement_rates, real_actions

SCENARIOS = ("highway", "merge", "intersection", "roundabout")


def main() -> None:
    """Run the measurement and print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epsilon", type=float, default=0.3)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--reduced-radius-m", type=float, default=None, help="override the source's reduced_radius_m")
    ap.add_argument("--reduced-physics-hz", type=int, default=None, help="override the source's reduced_physics_hz")
    args = ap.parse_args()
    total = Counter()
    all_results = []
    for scenario in args.scenarios.split(","):
        rng = random.Random(args.seed)
        c = Counter()
        dmax = [0.0]  # largest |margin reduced - margin full| over pairs where both have one [m]
        t_red = t_full = 0.0
        extra = {} if args.reduced_radius_m is None else {"reduced_radius_m": args.reduced_radius_m}
        if args.reduced_physics_hz is not None:
            extra["reduced_physics_hz"] = args.reduced_physics_hz
        src = make_source("highway", scenario, **extra)
        for ep in range(args.episodes):
            src.reset(args.seed * 1000 + ep, episode=ep)
            for _ in range(args.steps):
                frame = src.frame()
                ctx = TeacherContext(frame=frame, world=src)
                t0 = time.perf_counter()
                labels = planning_labels(ctx)
                t1 = time.perf_counter()
                # the same rule on env.step rollouts of the whole world (ego_idm, as the teacher's)
                full = {a: lookahead.check_rollout(ctx.rollout(a, reduced=False, ego_idm=True), frame.ego, frame.agents)
                        for a in real_actions(frame)}
                t2 = time.perf_counter()
                t_red, t_full = t_red + t1 - t0, t_full + t2 - t1
                all_results.append(labels.results)
                for a, f in full.items():
                    r = labels.checks[a]
                    c["pairs"] += 1
                    if r.margin_m is not None and f.margin_m is not None and not (r.crashed or f.crashed):
                        dmax[0] = max(dmax[0], abs(r.margin_m - f.margin_m))
                    c["agree"] += int(r.safe == f.safe)
                    c["unsafe_full"] += int(not f.safe)
                    c["reduced_safe_full_unsafe"] += int(r.safe and not f.safe)
                    if r.safe != f.safe:
                        print(f"  disagree {frame.frame_id} {a}: reduced {r.margin_m} crash={r.crashed} "
                              f"full {f.margin_m} crash={f.crashed}")
                acts = real_actions(frame)
                choice = labels.vote.preferred or "IDLE"
                if rng.random() < args.epsilon:
                    choice = rng.choice(acts)
                if src.step(choice).done:
                    break
        src.close()
        total.update(c)
        print(f"{scenario:13s} pairs {c['pairs']:4d}  agree {c['agree'] / max(c['pairs'], 1):.2%}  "
              f"unsafe(full) {c['unsafe_full']:3d}  reduced-safe/full-unsafe {c['reduced_safe_full_unsafe']}  "
              f"max |dmargin| {dmax[0]:.3f} m  time reduced/full {t_red / max(t_full, 1e-9):.2f}")
    print(f"{'ALL':13s} pairs {total['pairs']:4d}  agree {total['agree'] / max(total['pairs'], 1):.2%}  "
          f"unsafe(full) {total['unsafe_full']}  reduced-safe/full-unsafe {total['reduced_safe_full_unsafe']}")
    rates = agreement_rates(all_results)
    print("planner agreement: " + "  ".join(f"{k} {v:.2%}" if k != "frames" else f"frames {int(v)}"
                                            for k, v in rates.items()))


if __name__ == "__main__":
    main()
