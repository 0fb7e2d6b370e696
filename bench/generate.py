"""Generator benchmark: frames/s per scenario, per-frame overhead vs the raw decision step,
2 workers vs 1, peak RSS for a small vs a large dataset. Prints ratios and the machine's load
(1-minute load average before/after each figure); asserts nothing.

    .venv/bin/python bench/generate.py [--episodes 2] [--steps 10] [--rss-small 200] [--rss-large 2000]
        [--only scenarios|workers|rss] [--clock wall|cpu] [--one-by-one] [--rss-scenarios merge] [--rss-image-size 64x32]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from drivechain.generate import GenerateConfig, generate

SCENARIOS = ["highway", "merge", "intersection", "roundabout"]


def load() -> str:
    """The 1-minute load average (2 cores: above ~2 the figures are contended)."""
    return f"{os.getloadavg()[0]:.2f}"


CLOCK = time.perf_counter  # --clock cpu: time.thread_time (the process's own CPU time, robust to other jobs)


def use_clock(name: str) -> None:
    """Time the generator's parts and the raw decisions with the wall clock or this thread's CPU time."""
    import types

    import drivechain.generate as generate_module

    global CLOCK
    CLOCK = time.thread_time if name == "cpu" else time.perf_counter
    generate_module.time = types.SimpleNamespace(perf_counter=CLOCK)  # type: ignore[assignment]


def raw_decision_s(scenario: str, steps: int) -> float:
    """Seconds per raw decision: env.step(IDLE) with one render per decision, auto-render off."""
    import gymnasium as gym
    import highway_env  # noqa: F401

    from drivechain.sources.scenarios import get_scenario

    spec = get_scenario(scenario)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make(spec.env_id, render_mode="rgb_array", config=dict(spec.config)).unwrapped
        env.reset(seed=0)
        idle = next(i for i, n in env.action_type.actions.items() if n == "IDLE")
        n, spent = 0, 0.0
        while n < steps:
            t0 = CLOCK()
            env.render()
            env.enable_auto_render = False
            _, _, term, trunc, _ = env.step(idle)
            spent += CLOCK() - t0
            n += 1
            if term or trunc:
                env.reset(seed=n)
    env.close()
    return spent / steps


def count_rollouts() -> list[float]:
    """Count the reduced/full rollouts (and their simulated seconds) of this process's sources."""
    from drivechain.sources.highway import HighwaySource

    seen = [0.0, 0.0]
    original = HighwaySource._rollout

    def counted(self, action, horizon_s, reduced, ego_idm=False):  # type: ignore[no-untyped-def]
        seen[0] += 1
        seen[1] += horizon_s
        return original(self, action, horizon_s, reduced, ego_idm)

    original_batch = HighwaySource._rollout_batch

    def counted_batch(self, action, horizon_s, ego_idm):  # type: ignore[no-untyped-def]
        before = len(self._rollouts)
        original_batch(self, action, horizon_s, ego_idm)
        made = len(self._rollouts) - before  # rollouts stepped together (sources/shared_rollout.py)
        seen[0] += made
        seen[1] += made * horizon_s

    HighwaySource._rollout = counted  # type: ignore[method-assign]
    HighwaySource._rollout_batch = counted_batch  # type: ignore[method-assign]
    return seen


def share_traffic(on: bool) -> None:
    """Make every HighwaySource created from now on step its look-ahead rollouts together (or one by one)."""
    from drivechain.sources.highway import HighwaySource

    init = getattr(HighwaySource, "_bench_init", HighwaySource.__init__)
    HighwaySource._bench_init = init  # type: ignore[attr-defined]

    def patched(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        init(self, *args, **kwargs)
        self.share_traffic = on

    HighwaySource.__init__ = patched  # type: ignore[method-assign]


def per_scenario(episodes: int, steps: int, one_by_one: bool = False) -> None:
    seen = count_rollouts()
    print(f"load before: {load()}")
    print("| scenario | rollouts | frames/s | frame+render+teacher+write per frame [ms] | raw decision [ms] | ratio (target <= 2.0) | teacher [ms] | render [ms] | frame [ms] | rollouts/frame | simulated s/frame | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for sc in SCENARIOS:
        for shared in ((True, False) if one_by_one else (True,)):
            share_traffic(shared)
            cfg = GenerateConfig(scenarios=[sc], episodes=episodes, steps_per_episode=steps, seed=1)
            seen[:] = [0.0, 0.0]
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                manifest, results = generate(cfg, Path(tmp) / "d", workers=1)
                wall = time.perf_counter() - t0
            frames = manifest.counts["frames"]
            sec = {k: sum(r.seconds[k] for r in results) / frames for k in results[0].seconds}
            overhead = sec["frame"] + sec["render"] + sec["teacher"] + sec["write"]
            raw = raw_decision_s(sc, max(frames, 10))
            print(
                f"| {sc} | {'shared' if shared else 'one by one'} | {frames / wall:.1f} | {overhead * 1e3:.1f} "
                f"| {raw * 1e3:.1f} | {overhead / raw:.2f} "
                f"| {sec['teacher'] * 1e3:.1f} | {sec['render'] * 1e3:.1f} | {sec['frame'] * 1e3:.1f} "
                f"| {seen[0] / frames:.1f} | {seen[1] / frames:.1f} | {load()} |"
            )
    share_traffic(True)


def workers(episodes: int, steps: int) -> None:
    cfg = GenerateConfig(scenarios=SCENARIOS, episodes=episodes, steps_per_episode=steps, seed=2)
    walls = {}
    print(f"load before: {load()}")
    for w in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            generate(cfg, Path(tmp) / "d", workers=w)
            walls[w] = time.perf_counter() - t0
    print(f"workers: 1 -> {walls[1]:.1f} s, 2 -> {walls[2]:.1f} s, speed-up {walls[1] / walls[2]:.2f} (target >= 1.8); load after {load()}")


def rss_child(frames: int, scenarios: str, image_size: str) -> None:
    """Generate about ``frames`` frames in this process and print the peak RSS in MB."""
    from drivechain.generate import parse_image_size

    steps = 10
    names = scenarios.split(",")
    episodes = max(1, frames // (steps * len(names)))
    cfg = GenerateConfig(
        scenarios=names, episodes=episodes, steps_per_episode=steps, seed=3, image_size=parse_image_size(image_size)
    )
    with tempfile.TemporaryDirectory() as tmp:
        manifest, _ = generate(cfg, Path(tmp) / "d", workers=1)
    print(f"{manifest.counts['frames']} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


def rss(small: int, large: int, scenarios: str, image_size: str) -> None:
    out = []
    print(f"load before: {load()}")
    for n in (small, large):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--rss-child", str(n), "--rss-scenarios", scenarios, "--rss-image-size", image_size],
            capture_output=True, text=True, check=True,
        )
        frames, mb = proc.stdout.split()[-2:]
        out.append(f"{frames} frames -> {mb} MB ({time.perf_counter() - t0:.0f} s)")
    print(f"peak RSS ({scenarios}, {image_size}): " + ", ".join(out) + f" (target: flat); load after {load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rss-small", type=int, default=200)
    parser.add_argument("--rss-large", type=int, default=2000)
    parser.add_argument("--rss-child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--rss-scenarios", default="merge", help="scenarios of the RSS runs (comma-separated)")
    parser.add_argument("--rss-image-size", default="64x32", help="image size of the RSS runs (WxH)")
    parser.add_argument("--only", choices=["scenarios", "workers", "rss"], default=None)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="scenarios: time with the wall clock or this process's CPU time (on a shared machine)")
    parser.add_argument("--one-by-one", action="store_true",
                        help="scenarios: also measure with the look-ahead rollouts stepped one by one")
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.rss_scenarios, args.rss_image_size)
        return
    use_clock(args.clock)
    if args.only in (None, "scenarios"):
        per_scenario(args.episodes, args.steps, args.one_by_one)
    if args.only in (None, "workers"):
        workers(args.episodes, args.steps)
    if args.only in (None, "rss"):
        rss(args.rss_small, args.rss_large, args.rss_scenarios, args.rss_image_size)


if __name__ == "__main__":
    main()
