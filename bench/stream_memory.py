"""Streaming eval: peak RSS and start-up at 2,000 vs 20,000 frames, summary share of wall time, side by side.

    .venv/bin/python bench/stream_memory.py [--base DIR] [--sizes 1000,2000,20000] [--protocol transitions]

Synthetic datasets of each size are made cheaply from a small generated one (``--base``, else 20
frames are generated): its records are repeated with unique frame ids, its images hard-linked, and
the manifest's frame count and sha256 rewritten, so the copies verify like generated data. For each
size, in the same run:

- peak RSS [MB] and wall [s] of a whole ``drivechain eval --model oracle`` (a child process; its peak
  from ``os.wait4``), and the summary's share of that wall time (``this_run.summary_s / wall``);
- process start -> first request of ``drivechain eval --model openai:bench`` against
  tests/fakeserver.py (default verification on: the hash is checked beside the stream).

Expected: RSS(20,000) <= 1.2 x RSS(2,000); first request <= 0.5 s at every size; summary <= 10 % of
wall at 1,000 frames.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from bench.eval_throughput import first_request_s  # noqa: E402

ENV = dict(os.environ, PYTHONPATH=str(ROOT / "src"), DRIVECHAIN_API_KEY="sk-bench")
DRIVECHAIN = [sys.executable, "-m", "drivechain.cli"]


def replicate(base: Path, out: Path, frames: int) -> Path:
    """A dataset of ``frames`` records repeated from ``base`` (unique frame ids, hard-linked images)."""
    if (out / "manifest.json").exists():
        return out
    lines = [ln for ln in (base / "frames.jsonl").read_text(encoding="utf-8").splitlines() if ln.strip()]
    templates = []
    for line in lines:
        rec = json.loads(line)
        fid = rec["frame"]["frame_id"]
        rec["frame"]["frame_id"] = "@@FID@@"
        templates.append((fid, json.dumps(rec, separators=(",", ":"))))
    tmp = out.with_name(out.name + ".tmp")
    subprocess.run(["rm", "-rf", str(tmp)], check=True)
    tmp.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(base / "images"), str(tmp / "images")], check=True)
    digest = hashlib.sha256()
    with open(tmp / "frames.jsonl", "wb") as fh:
        for k in range(frames):
            fid, text = templates[k % len(templates)]
            data = (text.replace("@@FID@@", f"{fid}-r{k // len(templates)}") + "\n").encode()
            digest.update(data)
            fh.write(data)
    manifest = json.loads((base / "manifest.json").read_text(encoding="utf-8"))
    manifest["counts"]["frames"] = frames
    manifest["frames_sha256"] = digest.hexdigest()
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.rename(out)
    return out


def eval_rss(data: Path, run: Path, protocol: str) -> tuple[float, float, dict]:
    """(peak RSS [MB], wall [s], summary) of one whole oracle eval in a child process."""
    subprocess.run(["rm", "-rf", str(run)], check=True)
    cmd = [*DRIVECHAIN, "eval", "--data", str(data), "--model", "oracle", "--protocol", protocol,
           "--no-progress", "--out", str(run)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"eval failed ({proc.returncode}): {err.strip()[-400:]}")
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    return usage.ru_maxrss / 1024, wall, summary


def main() -> None:
    """Make the datasets, measure every size, print a table and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, default=None, help="a small generated dataset to replicate")
    parser.add_argument("--sizes", default="1000,2000,20000")
    parser.add_argument("--protocol", default="transitions")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "drivechain-stream-bench")
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    base = args.base
    if base is None:
        base = work / "base"
        if not (base / "manifest.json").exists():
            subprocess.run([*DRIVECHAIN, "generate", "--episodes", "1", "--steps-per-episode", "5",
                            "--workers", "1", "--out", str(base)], cwd=ROOT, env=ENV, check=True,
                           stdout=subprocess.DEVNULL)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"base {base} ({sum(1 for _ in open(base / 'frames.jsonl'))} frames), protocol {args.protocol}")
    print(f"{'frames':>7} | {'first request':>13} | {'peak RSS':>9} | {'wall':>7} | {'summary':>7} | share")
    rss = {}
    for n in sizes:
        data = replicate(base, work / f"x{n}", n)
        run = work / f"run{n}"
        subprocess.run(["rm", "-rf", str(run)], check=True)
        first = first_request_s([*DRIVECHAIN, "eval", "--data", str(data), "--model", "openai:bench",
                                 "--base-url", "{BASE_URL}", "--protocol", args.protocol, "--no-progress",
                                 "--out", str(run)], ENV)
        peak, wall, summary = eval_rss(data, run, args.protocol)
        summary_s = summary["this_run"].get("summary_s", float("nan"))
        rss[n] = peak
        print(f"{n:>7} | {first:>11.2f} s | {peak:>6.0f} MB | {wall:>5.1f} s | {summary_s:>5.2f} s | "
              f"{summary_s / wall:.3f}", flush=True)
    if 2000 in rss and 20000 in rss:
        print(f"peak RSS 20,000 / 2,000 frames: {rss[20000] / rss[2000]:.2f} (expected <= 1.2)")


if __name__ == "__main__":
    main()
