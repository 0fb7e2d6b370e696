"""The generator: byte-identical output across runs and worker counts; CLI errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from drivechain.dataset import load_dataset
from drivechain.errors import DrivechainError
from drivechain.generate import GenerateConfig, episode_seed, generate


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_byte_identical_across_runs_and_worker_counts(tmp_path):
    cfg = GenerateConfig(scenarios=["merge", "roundabout"], episodes=2, steps_per_episode=2, seed=3, image_size=(96, 64))
    # intersection-v0 rewrites IDM class parameters process-wide: it must not leak into other scenarios
    from drivechain.sources.base import make_source

    make_source("highway", "intersection").reset(0)
    generate(cfg, tmp_path / "a", workers=1)
    generate(cfg, tmp_path / "b", workers=1)
    generate(cfg, tmp_path / "c", workers=2)
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert a == b == c
    assert sum(1 for k in a if k.endswith(".png")) == load_dataset(tmp_path / "a").manifest.counts["frames"] == 8
    # the images really differ from one step to the next
    pngs = [v for k, v in sorted(a.items()) if k.startswith("images/merge/")]
    assert len(set(pngs)) == len(pngs)
    # another seed gives another dataset
    generate(cfg.model_copy(update={"seed": 4}), tmp_path / "d", workers=1)
    assert _tree(tmp_path / "d")["frames.jsonl"] != a["frames.jsonl"]


def test_episode_seeds_differ_by_scenario_and_episode():
    seeds = {episode_seed(0, s, e) for s in ("highway", "merge") for e in range(3)}
    assert len(seeds) == 6 and episode_seed(0, "merge", 1) == episode_seed(0, "merge", 1)


def test_refuses_a_non_empty_folder_unless_forced(tmp_path, tiny_config):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    cfg = tiny_config.model_copy(update={"scenarios": ["merge"], "steps_per_episode": 1})
    with pytest.raises(DrivechainError, match="not empty"):
        generate(cfg, out)
    generate(cfg, out, force=True)
    assert not (out / "keep.txt").exists() and load_dataset(out, verify=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scenarios", "highway,parking"], "unknown scenario 'parking'"),
        (["--source", "carla"], "unknown source 'carla'"),
        (["--image-size", "big"], "is not WxH"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "drivechain.cli", "generate", "--out", str(tmp_path / "o"), *args],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_cli_generates_a_dataset(tmp_path):
    out = tmp_path / "o"
    proc = subprocess.run(
        [sys.executable, "-m", "drivechain.cli", "generate", "--scenarios", "merge", "--episodes", "1",
         "--steps-per-episode", "2", "--image-size", "64x48", "--no-marks", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    ds = load_dataset(out, verify=True)
    assert ds.manifest.config["marks"] is False and len(ds) == 2
