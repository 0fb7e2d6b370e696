"""A run under injected server faults completes, and a rerun on a healthy server ends identical to a clean run.

    .venv/bin/python bench/faults.py [--data DIR] [--frames 8] [--concurrency 8] [--seed 0]

Three `drivechain eval --protocol all` runs of one dataset against tests/fakeserver.py (each in its own
process, replying the same fixed answer):
1. clean: a healthy server;
2. faulty: a server answering 20 % of requests 5xx, 10 % 429 with Retry-After 1 s, 5 % never (the
   client times out after --timeout), 2.5 % `content: null` and 2.5 % a body that is not JSON;
3. resumed: the faulty run's folder rerun against a healthy server.

Prints, for each run, its exit code, requests, failed requests, model calls and wall time, and whether
the resumed run's scores.jsonl and summary.json equal the clean run's (summary compared without the
timing fields: wall_s, latency_s, requests_per_s, this_run). Without --data a 2-scenario dataset is
generated first (about 30 s).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}", PYTHONWARNINGS="ignore")
FAULTS = "500=0.1,503=0.1,429=0.1,hang=0.05,null=0.025,malformed=0.025"
TIMING = {"wall_s", "latency_s", "requests_per_s", "this_run"}
REPLY = '{"answer": "A"}'


class Server:
    """tests/fakeserver.py in its own process (optionally faulty)."""

    def __init__(self, faults: str = "", seed: int = 0, hang_s: float = 30.0) -> None:
        cmd = [sys.executable, "-m", "tests.fakeserver", "--reply", REPLY, "--latency", "0.02", "--seed", str(seed),
               "--hang", str(hang_s)]
        if faults:
            cmd += ["--faults", faults]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if line[:1] != ["PORT"]:
            self.proc.kill()
            raise RuntimeError("fake server did not start")
        self.base_url = f"http://127.0.0.1:{line[1]}/v1"

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def drivechain(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI of this checkout."""
    return subprocess.run([sys.executable, "-m", "drivechain.cli", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True)


def run_eval(data: Path, out: Path, base_url: str, args: argparse.Namespace) -> dict:
    """One eval invocation; its exit code, wall time and summary figures."""
    t0 = time.perf_counter()
    res = drivechain("eval", "--data", str(data), "--model", "openai:bench", "--base-url", base_url, "--protocol",
                     "all", "--limit", str(args.frames), "--concurrency", str(args.concurrency), "--timeout",
                     str(args.timeout), "--retries", "4", "--no-progress", "--out", str(out))
    wall = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    return {"code": res.returncode, "wall_s": wall, "requests": summary.get("requests"),
            "failures": summary.get("failures"), "calls": (summary.get("this_run") or {}).get("calls"),
            "complete": summary.get("complete"), "stderr": res.stderr.strip().splitlines()[:3]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="dataset folder (default: generate a small one)")
    ap.add_argument("--frames", type=int, default=8, help="frames evaluated (--limit)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=2.0, help="per-request timeout [s] (a hang costs this)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the fault stream")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dc-faults-") as tmp:
        root = Path(tmp)
        data = args.data
        if data is None:
            data = root / "data"
            res = drivechain("generate", "--scenarios", "merge,intersection", "--episodes", "1",
                             "--steps-per-episode", str(max(1, args.frames // 2)), "--out", str(data))
            if res.returncode != 0:
                print(res.stderr, file=sys.stderr)
                return 2
        with Server() as healthy:
            clean = run_eval(data, root / "clean", healthy.base_url, args)
        with Server(FAULTS, seed=args.seed) as faulty:
            hurt = run_eval(data, root / "faulty", faulty.base_url, args)
        with Server() as healthy:
            resumed = run_eval(data, root / "faulty", healthy.base_url, args)
        same_scores = (root / "clean" / "scores.jsonl").read_bytes() == (root / "faulty" / "scores.jsonl").read_bytes()
        a = json.loads((root / "clean" / "summary.json").read_text())
        b = json.loads((root / "faulty" / "summary.json").read_text())
        same_summary = {k: v for k, v in a.items() if k not in TIMING} == {k: v for k, v in b.items() if k not in TIMING}
        attempts = _attempts(root / "faulty" / "results.sqlite")
    print(f"faults injected: {FAULTS} (seed {args.seed}); timeout {args.timeout:g} s, retries 4, "
          f"concurrency {args.concurrency}, {args.frames} frames, --protocol all")
    print("| run | exit | requests | failed | model calls | wall [s] | complete |")
    print("|---|---|---|---|---|---|---|")
    for name, r in (("clean (healthy server)", clean), ("faulty server", hurt), ("rerun of faulty on healthy", resumed)):
        print(f"| {name} | {r['code']} | {r['requests']} | {r['failures']} | {r['calls']} | {r['wall_s']:.1f} |"
              f" {r['complete']} |")
    print(f"attempts stored for the faulty run's requests: {attempts} (1 per request when no fault)")
    print(f"faulty / clean wall time: {hurt['wall_s'] / clean['wall_s']:.2f}")
    print(f"rerun == clean: scores.jsonl byte-identical {same_scores}; summary.json identical except timings "
          f"{same_summary}")
    return 0 if same_scores and same_summary and hurt["code"] in (0, 1) else 1


def _attempts(path: Path) -> int:
    import sqlite3

    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COALESCE(SUM(attempts), 0) FROM results").fetchone()[0])


if __name__ == "__main__":
    sys.exit(main())
