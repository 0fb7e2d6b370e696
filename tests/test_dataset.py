"""Dataset folders: reading, validation, one-line errors, path escapes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drivechain.dataset import FRAMES, MANIFEST, iter_records, load_dataset, png_bytes
from drivechain.errors import DatasetError


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def test_reader_reads_and_verifies_the_generated_dataset(tiny_dataset, tiny_config):
    ds = load_dataset(tiny_dataset, verify=True)
    records = list(ds.records())
    assert len(records) == len(ds) == ds.manifest.counts["frames"]
    assert {r.frame.scenario for r in records} == set(tiny_config.scenarios)
    ids = [r.frame.frame_id for r in records]
    assert len(set(ids)) == len(ids)
    for r in records:
        image = np.asarray(Image.open(ds.image_path(r.frame.images["bev"])))
        assert image.shape == (120, 160, 3)
    # history: each step after the first lists the previous step's image
    later = [r for r in records if r.frame.step > 0]
    assert later and all(r.frame.history_images for r in later)
    assert sum(ds.manifest.counts["scenarios"].values()) == len(records)


def test_broken_line_is_named_by_file_and_line(tiny_dataset, tmp_path):
    root = _copy(tiny_dataset, tmp_path)
    lines = (root / FRAMES).read_text().splitlines()
    lines[1] = lines[1].replace('"frame_id"', '"frame_idx"', 1)
    (root / FRAMES).write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError) as err:
        list(load_dataset(root).records())
    assert f"{FRAMES}:2:" in str(err.value) and "\n" not in str(err.value)
    # the stream is lazy: the good first record arrives before the bad second line is parsed
    stream = iter_records(root)
    assert next(stream).frame.frame_id == json.loads(lines[0])["frame"]["frame_id"]
    with pytest.raises(DatasetError, match=f"{FRAMES}:2:"):
        next(stream)
    with pytest.raises(DatasetError, match="sha256"):
        load_dataset(root, verify=True)


def test_image_path_leaving_the_folder_is_rejected(tiny_dataset, tmp_path):
    root = _copy(tiny_dataset, tmp_path)
    lines = (root / FRAMES).read_text().splitlines()
    record = json.loads(lines[0])
    record["frame"]["images"]["bev"] = "../../etc/passwd"
    lines[0] = json.dumps(record)
    (root / FRAMES).write_text("\n".join(lines) + "\n")
    ds = load_dataset(root)
    with pytest.raises(DatasetError, match=f"{FRAMES}:1:.*leaves the dataset folder"):
        list(ds.records())
    with pytest.raises(DatasetError):
        ds.image_path("/etc/passwd")
    with pytest.raises(DatasetError):
        ds.image_path("images/../../x.png")


def test_missing_or_garbled_manifest_is_one_line(tiny_dataset, tmp_path):
    root = _copy(tiny_dataset, tmp_path)
    (root / MANIFEST).write_text("{not json")
    with pytest.raises(DatasetError, match="manifest.json is invalid") as err:
        load_dataset(root)
    assert "\n" not in str(err.value)
    (root / MANIFEST).unlink()
    with pytest.raises(DatasetError, match="is missing"):
        load_dataset(root)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")


def test_png_encoding_is_deterministic():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(20, 30, 3), dtype=np.uint8)
    assert png_bytes(image) == png_bytes(image.copy())
    assert np.array_equal(np.asarray(Image.open(__import__("io").BytesIO(png_bytes(image)))), image)
