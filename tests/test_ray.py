"""The Ray executor on a real two-node Ray cluster on loopback: same bytes as the local executor,
even when a worker process is killed mid-run; Ray stays off the core import path."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ray_cluster import LoopbackCluster

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "drivechain.cli"]
GEN = ["generate", "--scenarios", "merge,highway", "--episodes", "3", "--steps-per-episode", "2",
       "--image-size", "96x48", "--seed", "5"]


@pytest.fixture(scope="session")
def ray_cluster():
    """Head + a second node on 127.0.0.1 (1 CPU each), stopped (only its own processes) at the end."""
    cluster = LoopbackCluster(cpus=1)
    try:
        yield cluster
    finally:
        cluster.stop()


def _tree_hashes(root: Path, under: str = "") -> dict[str, str]:
    """sha256 of every file of root whose relative path starts with `under`."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).as_posix().startswith(under)}


def _run_killing(cluster: LoopbackCluster, args: list[str], victim: str, ready=lambda: True) -> tuple[int, str, str]:
    """Run the CLI on the cluster, kill one process named `victim` once `ready()` holds; (killed, stdout, stderr)."""
    import time

    proc = subprocess.Popen([*CLI, *args, "--ray-address", cluster.address], env={**cluster.env, "RAY_ADDRESS": ""},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        killed = cluster.kill_one(victim)
        stdout, stderr = proc.communicate(timeout=400)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    return killed, stdout, stderr


def test_core_path_does_not_import_ray():
    code = ("import sys, drivechain.cli, drivechain.generate, drivechain.executors, drivechain.closedloop.loop;"
            " print('ray' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


def test_generate_on_a_two_node_cluster_is_byte_identical_with_a_worker_killed(ray_cluster, tmp_path):
    from drivechain.generate import GenerateConfig, generate

    cfg = GenerateConfig(scenarios=["merge", "highway"], episodes=3, steps_per_episode=2, image_size=(96, 48), seed=5)
    generate(cfg, tmp_path / "local", workers=1)
    # a worker dies while running an episode
    killed, stdout, _ = _run_killing(ray_cluster, [*GEN, "--executor", "ray", "--shards", "2",
                                                   "--out", str(tmp_path / "ray")], "ray::_run_task")
    assert killed > 0
    assert "wrote 12 frames (6 episodes)" in stdout
    local, remote = tmp_path / "local", tmp_path / "ray"
    # the same images byte for byte, no stray files of the killed attempt, the same records in 2 shards
    assert _tree_hashes(remote, "images/") == _tree_hashes(local, "images/")
    shards = sorted(remote.glob("frames-*-of-00002.jsonl"))
    assert [p.name for p in shards] == ["frames-00000-of-00002.jsonl", "frames-00001-of-00002.jsonl"]
    assert b"".join(p.read_bytes() for p in shards) == (local / "frames.jsonl").read_bytes()
    ml, mr = (json.loads((d / "manifest.json").read_text()) for d in (local, remote))
    assert [s["frames"] for s in mr.pop("shards")] == [6, 6]
    assert mr == ml
    assert not list(tmp_path.glob(".*partial*"))


def _steps(run: Path) -> dict[str, list[dict]]:
    """Every step record of a closed-loop run, without the measured request latencies."""
    out = {}
    for path in sorted((run / "steps").rglob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        for row in rows:
            for req in row["requests"]:
                req.pop("latency_s")
        out[path.relative_to(run).as_posix()] = rows
    return out


def test_closedloop_on_a_two_node_cluster_matches_local_with_a_worker_killed(ray_cluster, tmp_path):
    from drivechain.closedloop.loop import LoopConfig, RunOptions, run_closedloop

    args = ["closedloop", "--model", "heuristic", "--scenarios", "merge", "--episodes", "3", "--max-steps", "3",
            "--seed", "2", "--image-size", "96x48", "--no-teacher-baseline", "--no-replay", "--record"]
    cfg = LoopConfig(model="heuristic", scenarios=["merge"], episodes=3, max_steps=3, seed=2, image_size=(96, 48),
                     teacher_baseline=False, replay=False, record=True)
    run_closedloop(cfg, tmp_path / "local", RunOptions(workers=1, progress=False))
    out = tmp_path / "ray"
    # a simulator host dies holding an episode (once the first model image shows the run is under way)
    killed, stdout, _ = _run_killing(ray_cluster, [*args, "--executor", "ray", "--workers", "2", "--out", str(out)],
                                     "ray::SimHost", ready=lambda: bool(list(out.glob("images/model/merge/*.png"))))
    assert killed > 0
    assert "3 episodes" in stdout
    assert _steps(out) == _steps(tmp_path / "local")
    for sub in ("images/", "dataset/"):
        assert _tree_hashes(out, sub) == _tree_hashes(tmp_path / "local", sub)


def empty_episode(task: int) -> int:
    """A task with no work (module level: Ray workers import it by name)."""
    return task * 10


def test_local_ray_head_runs_tasks_and_reports_a_task_error_in_one_line(tmp_path):
    import ray

    from drivechain.errors import ConfigError
    from drivechain.executors import make_executor
    from drivechain.generate import GenerateConfig, generate

    import shutil
    import tempfile

    temp = tempfile.mkdtemp(prefix="dcray", dir="/tmp")  # short: Ray's unix socket paths live under it
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING", _temp_dir=temp, runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(
                 [str(ROOT / "src"), str(ROOT)])}})
    try:
        ex = make_executor("ray", 2)
        assert sorted(ex.run(empty_episode, list(range(20)))) == [(i, 10 * i) for i in range(20)]
        ex.close()
        assert ray.is_initialized()  # a Ray the caller started is left running
        # an error inside a remote episode arrives as the task's own one-line error, not retried
        bad = GenerateConfig(source="nuscenes", scenarios=["merge"], episodes=2, steps_per_episode=1)
        with pytest.raises(ConfigError, match="replays recorded logs") as err:
            generate(bad, tmp_path / "out", executor="ray")
        assert "\n" not in str(err.value)
        assert not (tmp_path / "out").exists()
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
