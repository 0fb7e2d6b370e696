"""nuScenes end to end on the written table set: generate (CLI) -> dataset -> eval (built-in models) -> report;
the log-replay planning labels of the scripted scenes; determinism; bad input as one line and exit 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import nuscenes_fixture as fx


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "drivechain.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory) -> Path:
    return fx.write_fixture(tmp_path_factory.mktemp("nuscenes"))


@pytest.fixture(scope="module")
def dataset(dataroot, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nsdata") / "data"
    proc = _cli("generate", "--source", "nuscenes", "--dataroot", str(dataroot), "--version", fx.VERSION,
                "--cameras", "all", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def _records(dataset: Path) -> list[dict]:
    return [json.loads(line) for line in (dataset / "frames.jsonl").read_text().splitlines()]


def test_generate_writes_a_valid_dataset_with_six_cameras_and_the_map_free_families(dataset):
    from drivechain.dataset import load_dataset
    from drivechain.sources.nuscenes import CAMERAS, FAMILIES

    ds = load_dataset(dataset, verify=True)
    counts = ds.manifest.counts
    assert counts["frames"] == 24 and counts["clips"] == {"scene-0001": 12, "scene-0002": 12}
    assert counts["source_notes"]["map"].startswith("none") and "nuscenes-devkit" in counts["source_notes"]
    assert set(counts["families"]) <= FAMILIES
    assert {"per.category", "per.status", "pred.future_state", "plan.safe", "plan.action", "beh.longitudinal",
            "beh.direction", "per.pedestrian_in_path"} <= set(counts["families"])
    assert "per.traffic_light" in counts["unsupported"]  # asked by nobody: nuScenes has no light states
    for rec in ds.records():
        assert list(rec.frame.images) == list(CAMERAS)  # DriveLM's camera order, front first
        for rel in list(rec.frame.images.values()) + list(rec.frame.meta["images_raw"].values()):
            assert ds.image_path(rel).is_file()
    # the multi-camera prompt: every camera's image follows its name, in that order; tags are explained
    from drivechain.models.base import ImagePart, TextPart
    from drivechain.prompts import build_request

    rec = next(r for r in ds.records() if r.graph.stage("perception"))
    targets = [n for n in rec.graph.nodes if n.family == "per.status"]
    parts = build_request(rec, targets, image=True, upstream=[], cameras="all").messages[-1].content
    images = [i for i, p in enumerate(parts) if isinstance(p, ImagePart)]
    assert [parts[i].path for i in images] == [rec.frame.images[c] for c in CAMERAS]
    assert [parts[i - 1].text for i in images] == [f"Camera {c}:" for c in CAMERAS]
    assert any(isinstance(p, TextPart) and "<c" in p.text for p in parts)


def test_log_replay_planning_on_the_scripted_scenes(dataset):
    recs = {r["frame"]["frame_id"]: r for r in _records(dataset)}

    def node(fid: str, qid: str) -> dict | None:
        return next((n for n in recs[fid]["graph"]["nodes"] if n["qid"] == qid), None)

    def picked(n: dict) -> list[str]:
        return [n["answer"]["options"][i] for i in n["answer"]["acceptable"]]

    # scene 1: the car 25 m ahead brakes hard from t = 1 s; the human brakes at 3 m/s^2 from t = 2 s
    first = "nuscenes/scene-0001/0/0"
    assert node(first, "plan.safe.KEEP")["answer"]["value"] is False  # keeping 10 m/s runs into it
    assert node(first, "plan.safe.STOP")["answer"]["value"] is True
    assert picked(node(first, "plan.action")) == ["SLOW_DOWN"]  # the human's manoeuvre, safe by replay
    # at t = 1.5 s gentle braking (2 m/s^2) no longer clears the lead: the human's slow-down is unsafe by
    # replay, so the vote has no safe label and plan.action is dropped and counted
    assert node("nuscenes/scene-0001/0/3", "plan.action") is None
    assert recs["nuscenes/scene-0001/0/3"]["frame"]["meta"]["dropped"] == {"plan.action": 1}
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["counts"]["dropped"]["plan.action"] == sum(
        r["frame"]["meta"].get("dropped", {}).get("plan.action", 0) for r in recs.values()) >= 1
    # scene 2: nothing blocks the ego's path: keeping speed is safe and what the human did
    assert picked(node("nuscenes/scene-0002/1/0", "plan.action")) == ["KEEP"]
    # the last 3 s of a scene have no recorded horizon: no planning or behavior label there
    assert node("nuscenes/scene-0001/0/9", "plan.safe.KEEP") is None
    assert node("nuscenes/scene-0001/0/9", "beh.longitudinal") is None
    # the pedestrian crossing 40 m ahead is in the stopped ego's path once it reaches it
    ped = [n for n in recs["nuscenes/scene-0001/0/8"]["graph"]["nodes"] if n["qid"] == "per.pedestrian_in_path"][0]
    assert len(ped["answer"]["ids"]) == 1


def test_generation_is_deterministic(dataroot, dataset, tmp_path):
    from drivechain.generate_logs import LogGenerateConfig, generate_logs

    cfg = LogGenerateConfig(name="drivechain-nuscenes", source="nuscenes", dataroot=str(dataroot), cameras="all",
                            stride=1, version=fx.VERSION)
    again = generate_logs(cfg, tmp_path / "again")
    first = json.loads((dataset / "manifest.json").read_text())
    assert again.frames_sha256 == first["frames_sha256"] and again.images_sha256 == first["images_sha256"]


def test_eval_with_built_in_models_and_report(dataset, tmp_path):
    runs = []
    for model in ("oracle", "heuristic"):
        out = tmp_path / model
        proc = _cli("eval", "--data", str(dataset), "--model", model, "--protocol", "all", "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        runs.append(out)
    oracle = json.loads((runs[0] / "summary.json").read_text())
    assert oracle["overall"] == 1.0 and oracle["failures"] == 0
    assert {"plan.action", "per.category", "pred.future_state", "beh.direction"} <= set(oracle["families"])
    assert json.loads((runs[1] / "summary.json").read_text())["overall"] < 1.0
    proc = _cli("report", *map(str, runs), "--out", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "report" / "index.html").read_text()
    assert "oracle" in html and "heuristic" in html


@pytest.mark.parametrize("case", ["missing_image", "broken_table"])  # no tables / unknown scene: test_source_nuscenes
def test_bad_input_is_one_line_and_exit_2(case, dataroot, tmp_path):
    root = tmp_path / "root"
    args = ["--source", "nuscenes", "--out", str(tmp_path / "out")]
    shutil.copytree(dataroot, root)
    if case == "missing_image":
        next((root / "samples" / "CAM_FRONT").iterdir()).unlink()
    if case == "broken_table":
        (root / fx.VERSION / "sample_annotation.json").write_text("[{")
    proc = _cli("generate", "--dataroot", str(root), *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()
    assert {"missing_image": "is missing", "broken_table": "cannot load nuScenes"}[case] in lines[0]
