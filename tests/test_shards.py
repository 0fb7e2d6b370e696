"""Sharded dataset layout (frames-XXXXX-of-YYYYY.jsonl listed in the manifest) and resumable generate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from drivechain.dataset import FRAMES, MANIFEST, load_dataset, write_manifest, write_shards
from drivechain.errors import DatasetError
from drivechain.schema import Manifest


def _shard(src: Path, dst: Path, count: int) -> Manifest:
    """A copy of dataset ``src`` whose records are cut into ``count`` shards (the same bytes in order)."""
    shutil.copytree(src, dst)
    lines = (dst / FRAMES).read_text(encoding="utf-8").splitlines(keepends=True)
    (dst / FRAMES).unlink()
    n = len(lines)
    digest, shards = write_shards(dst, (lines[i * n // count:(i + 1) * n // count] for i in range(count)), count)
    manifest = Manifest.model_validate({**load_dataset(src).manifest.model_dump(), "frames_sha256": digest,
                                        "shards": shards})
    write_manifest(dst, manifest)
    return manifest


def test_sharded_dataset_reads_like_the_single_file(tiny_dataset, tmp_path):
    single = load_dataset(tiny_dataset, verify=True)
    manifest = _shard(tiny_dataset, tmp_path / "sharded", 3)
    sharded = load_dataset(tmp_path / "sharded", verify=True)
    names = [p.name for p in sharded.frame_files()]
    assert names == [f"frames-0000{i}-of-00003.jsonl" for i in range(3)]
    # the hash of the concatenated shards is the single file's hash: the layout does not change identity
    assert manifest.frames_sha256 == single.manifest.frames_sha256 == sharded.frames_sha256()
    assert [r.frame.frame_id for r in sharded.records()] == [r.frame.frame_id for r in single.records()]
    assert sum(s.frames for s in sharded.manifest.shards) == len(single) == len(list(sharded.records()))



def test_a_changed_or_escaping_shard_is_refused(tiny_dataset, tmp_path):
    _shard(tiny_dataset, tmp_path / "s", 2)
    shard = tmp_path / "s" / "frames-00001-of-00002.jsonl"
    shard.write_bytes(shard.read_bytes().replace(b'"step":', b'"step": ', 1))
    with pytest.raises(DatasetError, match="frames-00001-of-00002.jsonl does not match"):
        load_dataset(tmp_path / "s", verify=True)
    data = json.loads((tmp_path / "s" / MANIFEST).read_text())
    data["shards"][0]["file"] = "../elsewhere.jsonl"
    (tmp_path / "s" / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="lists shard '../elsewhere.jsonl'"):
        load_dataset(tmp_path / "s")
    (tmp_path / "s" / "frames-00000-of-00002.jsonl").unlink()
    data["shards"][0]["file"] = "frames-00000-of-00002.jsonl"
    (tmp_path / "s" / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="frames-00000-of-00002.jsonl is missing"):
        load_dataset(tmp_path / "s")


def test_an_interrupted_generate_resumes_without_rerunning_finished_episodes(tmp_path, monkeypatch):
    import drivechain.generate as gen
    from drivechain.dataset import partial_folder

    cfg = gen.GenerateConfig(scenarios=["merge"], episodes=3, steps_per_episode=2, image_size=(64, 32), seed=9)
    ran: list[int] = []
    real = gen.run_episode

    def counting(cfg, scenario, episode, root):
        ran.append(episode)
        return real(cfg, scenario, episode, root)

    def stop_after_two(res):
        if len(ran) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(gen, "run_episode", counting)
    with pytest.raises(KeyboardInterrupt):
        gen.generate(cfg, tmp_path / "a", on_episode=stop_after_two)
    assert not (tmp_path / "a").exists() and partial_folder(tmp_path / "a").is_dir()
    ran.clear()
    gen.generate(cfg, tmp_path / "a", shards=2)
    assert ran == [2]  # episodes 0 and 1 verified and kept; only the missing one ran
    assert not partial_folder(tmp_path / "a").exists()
    gen.generate(cfg, tmp_path / "b")
    a, b = load_dataset(tmp_path / "a", verify=True), load_dataset(tmp_path / "b", verify=True)
    assert a.manifest.frames_sha256 == b.manifest.frames_sha256
    assert a.manifest.images_sha256 == b.manifest.images_sha256
    assert [s.frames for s in a.manifest.shards] == [2, 4]
