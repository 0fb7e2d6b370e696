"""The whole pipeline on a Bench2Drive fixture: generate -> eval (built-ins, openai with images) -> process -> report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from drivechain.cli import main
from drivechain.dataset import load_dataset
from tests import b2d_fixture as fx
from tests.fakeserver import FakeServer, image_urls


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = fx.shared_root(tmp_path_factory)
    out = tmp_path_factory.mktemp("b2d-data") / "data"
    main(["generate", "--source", "bench2drive", "--dataroot", str(root), "--cameras", "all", "--stride", "10",
          "--out", str(out)])
    return out


def test_generate_writes_raw_and_marked_images_and_counts_per_family(data, tmp_path_factory):
    ds = load_dataset(data, verify=True)
    manifest = ds.manifest
    assert manifest.source == "bench2drive" and manifest.counts["frames"] == 20
    for key in ("families", "ambiguous", "unsupported", "dropped"):
        assert key in manifest.counts
    record = next(r for r in ds.records() if r.frame.frame_id.endswith("HighwayCutIn/Town06_Weather0_Route303/0"))
    frame = record.frame
    assert list(frame.images)[0] == "CAM_FRONT" and len(frame.images) == 6
    raw, marked = frame.meta["images_raw"]["CAM_FRONT"], frame.images["CAM_FRONT"]
    assert raw != marked and (data / raw).read_bytes() != (data / marked).read_bytes()
    assert (data / raw).read_bytes() == (fx.shared_root(tmp_path_factory) / "HighwayCutIn/Town06_Weather0_Route303"
                                         / "camera/rgb_front/00000.jpg").read_bytes()  # the original, byte for byte
    assert frame.agent(1).boxes["CAM_FRONT"]


def test_same_config_gives_a_byte_identical_dataset(data, tmp_path):
    again = tmp_path / "again"
    cfg = json.loads((data / "manifest.json").read_text())["config"]
    main(["generate", "--source", "bench2drive", "--dataroot", cfg["dataroot"], "--cameras", "all", "--stride", "10",
          "--out", str(again)])
    assert (again / "frames.jsonl").read_bytes() == (data / "frames.jsonl").read_bytes()
    assert json.loads((again / "manifest.json").read_text())["images_sha256"] == json.loads(
        (data / "manifest.json").read_text())["images_sha256"]


def test_eval_builtins_openai_with_images_process_and_report(data, tmp_path):
    runs = tmp_path / "runs"
    for model in ("oracle", "heuristic"):
        main(["eval", "--data", str(data), "--model", model, "--protocol", "all", "--limit", "8",
              "--out", str(runs / model), "--no-progress"])
    oracle = json.loads((runs / "oracle" / "summary.json").read_text())
    assert oracle["overall"] == pytest.approx(1.0) and oracle["failures"] == 0
    with FakeServer(reply=lambda msgs: "{}") as srv:
        main(["eval", "--data", str(data), "--model", "openai:vlm", "--base-url", srv.base_url, "--protocol",
              "transitions", "--limit", "2", "--out", str(runs / "vlm"), "--no-progress"])
        with_images = [r for r in srv.requests if r.body and image_urls(r.body)]
        assert with_images and all(u.startswith("data:image/") for r in with_images for u in image_urls(r.body))
        assert {len(image_urls(r.body)) for r in with_images} == {6}  # --cameras all (the default): six, named
        text = json.dumps(with_images[0].body)
        assert all(cam in text for cam in ("CAM_FRONT", "CAM_BACK_LEFT", "CAM_BACK_RIGHT"))
    with FakeServer(reply=lambda msgs: "{}") as srv:
        main(["eval", "--data", str(data), "--model", "openai:vlm", "--base-url", srv.base_url, "--protocol",
              "transitions", "--limit", "1", "--cameras", "front", "--out", str(runs / "vlm-front"), "--no-progress"])
        assert {len(image_urls(r.body)) for r in srv.requests if r.body and image_urls(r.body)} == {1}
    assert json.loads((runs / "vlm" / "summary.json").read_text())["frames"] == 2
    main(["process", "--data", str(data), "--generator", "perturb", "--n", "3", "--limit", "4",
          "--out", str(tmp_path / "prm")])
    assert (tmp_path / "prm" / "prm800k.jsonl").stat().st_size > 0
    main(["report", str(runs / "oracle"), str(runs / "heuristic"), str(runs / "vlm"), "--out", str(tmp_path / "report")])
    html = (tmp_path / "report" / "index.html").read_text()
    assert "oracle" in html and "heuristic" in html
    # the browser's frame data names every camera (shown captioned) with its image copied beside the page
    blobs = "".join(p.read_text() for p in (tmp_path / "report" / "data").glob("frames-*.js"))
    srcs = re.findall(r'\["CAM_BACK_RIGHT","(img/[^"]+\.jpg)"\]', blobs)
    assert srcs and all((tmp_path / "report" / s).is_file() for s in srcs)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "drivechain.cli", *args], capture_output=True, text=True)


def test_bad_log_input_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    cases = {
        "give --dataroot": ["generate", "--source", "bench2drive", "--out", str(tmp_path / "o1")],
        "no anno/ folder": ["generate", "--source", "bench2drive", "--dataroot", str(tmp_path / "empty"),
                            "--out", str(tmp_path / "o2")],
        "'front' or 'all'": ["generate", "--source", "bench2drive", "--dataroot", str(tmp_path / "empty"),
                             "--cameras", "four", "--out", str(tmp_path / "o3")],
        "simulator": ["generate", "--source", "highway", "--dataroot", str(tmp_path), "--out", str(tmp_path / "o4")],
    }
    for expected, args in cases.items():
        res = _cli(*args)
        assert res.returncode == 2, (expected, res.stderr)
        assert expected in res.stderr and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))
