"""Scale-out benchmark: generate with the local pool vs Ray (1 and 2 workers) on this machine, Ray's
overhead per task (an empty episode), and a projection of wall time and cost for a large dataset on
N nodes from the measured per-frame cost. Prints figures side by side from one run; asserts nothing.

    .venv/bin/python bench/scale.py [--scenarios merge,intersection,roundabout,highway] [--episodes 2]
        [--steps 4] [--empty-tasks 200] [--frames 100000] [--cores-per-node 8] [--node-usd-per-hour 0.40]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from drivechain.generate import GenerateConfig, generate


def load() -> str:
    """The 1-minute load average (2 cores: above ~2 the figures are contended)."""
    return f"{os.getloadavg()[0]:.2f}"


def empty_episode(task: int) -> int:
    """A task that does no work: what is left of its wall time is the executor's overhead."""
    return task


def timed_generate(cfg: GenerateConfig, root: Path, name: str, **kw: object) -> tuple[float, list]:
    """Wall seconds of one generate run into root/name, and its episode results."""
    t0 = time.perf_counter()
    _, results = generate(cfg, root / name, **kw)
    return time.perf_counter() - t0, results


def ray_session(cpus: int) -> float:
    """Start a local Ray with ``cpus`` CPUs (its own temp dir); seconds it took."""
    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
             _temp_dir=tempfile.mkdtemp(prefix="dcscale", dir="/tmp"))
    return time.perf_counter() - t0


def per_task_overhead_s(n: int, executor: str, workers: int) -> float:
    """Mean wall seconds per empty task through the named executor (already connected for Ray)."""
    from drivechain.executors import make_executor

    ex = make_executor(executor, workers)
    try:
        t0 = time.perf_counter()
        done = sum(1 for _ in ex.run(empty_episode, list(range(n))))
        spent = time.perf_counter() - t0
    finally:
        ex.close()
    assert done == n
    return spent / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default="merge,intersection,roundabout,highway")
    ap.add_argument("--episodes", type=int, default=2, help="episodes per scenario")
    ap.add_argument("--steps", type=int, default=4, help="decision steps per episode")
    ap.add_argument("--image-size", default="160x80")
    ap.add_argument("--empty-tasks", type=int, default=200)
    ap.add_argument("--frames", type=int, default=100_000, help="dataset size of the projection")
    ap.add_argument("--cores-per-node", type=int, default=8)
    ap.add_argument("--node-usd-per-hour", type=float, default=0.40, help="price of one node-hour (yours)")
    args = ap.parse_args()
    import ray

    w, h = (int(x) for x in args.image_size.split("x"))
    cfg = GenerateConfig(scenarios=args.scenarios.split(","), episodes=args.episodes,
                         steps_per_episode=args.steps, image_size=(w, h), seed=11)
    root = Path(tempfile.mkdtemp(prefix="dcscale-out"))
    rows: list[tuple[str, float, str, str]] = []
    try:
        print(f"generate {len(cfg.scenarios)} scenarios x {cfg.episodes} episodes x {cfg.steps_per_episode} steps,"
              f" {args.image_size}; load average before: {load()}")
        t1, results = timed_generate(cfg, root, "local1", workers=1)
        rows.append(("local, 1 process", t1, load(), ""))
        t2, _ = timed_generate(cfg, root, "local2", workers=2)
        rows.append(("local pool, 2 workers", t2, load(), ""))
        start1 = ray_session(1)
        r1, _ = timed_generate(cfg, root, "ray1", executor="ray")
        rows.append(("ray, 1 worker", r1, load(), f"(+ {start1:.1f} s ray start-up)"))
        ray_over = per_task_overhead_s(args.empty_tasks, "ray", 1)
        ray.shutdown()
        start2 = ray_session(2)
        r2, _ = timed_generate(cfg, root, "ray2", executor="ray")
        rows.append(("ray, 2 workers", r2, load(), f"(+ {start2:.1f} s ray start-up)"))
        ray_over2 = per_task_overhead_s(args.empty_tasks, "ray", 2)
        ray.shutdown()
        local_over = per_task_overhead_s(args.empty_tasks, "local", 2)
        same = len({(root / n / "frames.jsonl").read_bytes() for n in ("local1", "local2", "ray1", "ray2")}) == 1
    finally:
        shutil.rmtree(root, ignore_errors=True)

    frames = sum(r.frames for r in results)
    print(f"\n{frames} frames per run; all four datasets byte-identical: {same}\n")
    print(f"{'executor':<24} {'wall s':>8} {'frames/s':>9}  load after")
    for name, t, ld, note in rows:
        print(f"{name:<24} {t:8.1f} {frames / t:9.2f}  {ld} {note}")
    print(f"\nray 2 workers vs 1: {r1 / r2:.2f}x   ray 2 workers vs local pool 2: {t2 / r2:.2f}x"
          f"   local pool 2 vs 1: {t1 / t2:.2f}x")
    print(f"overhead per empty task: ray {1000 * ray_over:.2f} ms (1 worker), {1000 * ray_over2:.2f} ms (2 workers);"
          f" local pool {1000 * local_over:.2f} ms ({args.empty_tasks} tasks)")

    # projection: per-frame CPU seconds measured in the 1-process run (inside the episode), spread
    # over N nodes x cores; tasks are episodes, each paying the Ray overhead once
    per_frame = sum(sum(r.seconds.values()) for r in results) / frames
    per_episode = statistics.mean(r.frames for r in results)
    episodes = args.frames / per_episode
    print(f"\nprojection for {args.frames:,} frames ({episodes:,.0f} episodes of {per_episode:.1f} frames;"
          f" {per_frame:.3f} CPU s per frame measured here; {args.cores_per_node} cores per node;"
          f" ${args.node_usd_per_hour:.2f} per node-hour):")
    print(f"{'nodes':>5} {'wall h':>8} {'node-h':>8} {'cost $':>8}")
    core_s = args.frames * per_frame + episodes * ray_over
    for nodes in (1, 4, 16, 64):
        wall_s = core_s / (nodes * args.cores_per_node) + start2
        print(f"{nodes:>5} {wall_s / 3600:8.2f} {nodes * wall_s / 3600:8.2f} {nodes * wall_s / 3600 * args.node_usd_per_hour:8.2f}")


if __name__ == "__main__":
    main()
