"""Look-ahead cost per frame vs the raw decision step, shared vs one-by-one rollouts, interleaved.

Drives each scenario like the generator (voted action, seeded epsilon exploration) and, at every
frame, times in this thread's CPU time (robust to other jobs on a shared machine):
- the frame's look-ahead rollouts stepped together (sources/shared_rollout.py), then the same
  rollouts one by one (the samples are checked identical);
- the rest of the generator's per-frame work with the rollouts cached: ``frame()``, the render,
  ``build_graph`` (teacher), the JSON record (the PNG write is left out);
- the raw decision step: the render plus the env step of the chosen action.
Prints per scenario: generator cost per frame / raw decision step, with shared and one-by-one
rollouts, and the rollouts' share.

    .venv/bin/python bench/lookahead_cost.py [--episodes 1] [--steps 8] [--seed 1] [--scenarios ...]
"""

from __future__ import annotations

import argparse
import os
import random
import time

from drivechain.schema import FrameRecord
from drivechain.sources.base import make_source
from drivechain.teacher.graph import build_graph, preferred_action

SCENARIOS = ("highway", "merge", "intersection", "roundabout")
clock = time.thread_time


def rollouts(src, shared: bool) -> tuple[float, list[str]]:  # type: ignore[no-untyped-def]
    """CPU seconds to compute every look-ahead rollout of the frame, and their samples as JSON."""
    src._rollouts = {}
    src.share_traffic = shared
    keys = [("IDLE", False)] + [(a, True) for a in src.available_actions()]
    t0 = clock()
    out = [src.rollout(a, src.horizon_s, reduced=True, ego_idm=idm) for a, idm in keys]
    spent = clock() - t0
    src.share_traffic = True
    return spent, [r.model_dump_json() for r in out]


def main() -> None:
    """Run the measurement and print one table row per scenario."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=1)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epsilon", type=float, default=0.2)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = ap.parse_args()
    print(f"load before: {os.getloadavg()[0]:.2f}")
    print("| scenario | frames | raw decision [ms CPU] | rollouts shared [ms] | rollouts one by one [ms] | rest of the frame [ms] "
          "| generator / raw, shared | generator / raw, one by one | identical |")
    print("|---|---|---|---|---|---|---|---|---|")
    for scenario in args.scenarios.split(","):
        src = make_source("highway", scenario)
        t = {"raw": 0.0, "shared": 0.0, "single": 0.0, "rest": 0.0}
        frames = 0
        identical = True
        for ep in range(args.episodes):
            seed = args.seed * 1000 + ep
            src.reset(seed, episode=ep)
            rng = random.Random(seed)
            for _ in range(args.steps):
                one, single = rollouts(src, shared=False)
                shared, samples = rollouts(src, shared=True)  # leaves the cache filled for the frame
                identical = identical and samples == single
                t0 = clock()
                frame = src.frame()
                t1 = clock()
                image = src.render()
                t2 = clock()
                graph = build_graph(frame, src, horizon_s=src.horizon_s)
                action = preferred_action(graph)
                if rng.random() < args.epsilon:
                    action = rng.choice(frame.available_actions or ["IDLE"])
                FrameRecord(frame=frame, graph=graph).model_dump_json()
                t3 = clock()
                done = src.step(action).done
                t4 = clock()
                del image
                t["shared"] += shared
                t["single"] += one
                t["rest"] += (t1 - t0) + (t3 - t1)
                t["raw"] += (t2 - t1) + (t4 - t3)
                frames += 1
                if done:
                    break
        src.close()
        ms = {k: v / frames * 1e3 for k, v in t.items()}
        print(f"| {scenario} | {frames} | {ms['raw']:.1f} | {ms['shared']:.1f} | {ms['single']:.1f} | {ms['rest']:.1f} "
              f"| **{(ms['rest'] + ms['shared']) / ms['raw']:.2f}** | {(ms['rest'] + ms['single']) / ms['raw']:.2f} "
              f"| {'yes' if identical else 'NO'} |")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
