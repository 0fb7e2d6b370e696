"""DriveLM import and export: typed answers, agents, edges, images, and the lossless round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drivechain.dataset import load_dataset
from drivechain.interop.drivelm.exporter import export_drivelm
from drivechain.interop.drivelm.importer import import_drivelm
from tests.drivelm_fixture import CAMERAS, CAR, WALKER, drivelm_data, write_drivelm


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "drivechain.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("dlm")
    path, images = write_drivelm(root)
    return root, path, images


def test_import_types_agents_edges_and_images(sample, tmp_path):
    _, path, images = sample
    manifest = import_drivelm(path, images, tmp_path / "ds")
    c = manifest.counts
    assert c["qa"] == 17 and c["frames"] == 3 and c["scenes"] == 2 and c["images"] == 18
    assert (c["typed_choice"], c["typed_boolean"], c["typed_objects"], c["typed_ranking"]) == (1, 4, 2, 1)
    assert c["untyped"] == c["typed_text"] == 9 and c["unresolved_dependencies"] == 1
    ds = load_dataset(tmp_path / "ds", verify=True)
    recs = list(ds.records())
    a1 = recs[0]
    assert a1.frame.frame_id == "drivelm/sceneA/fA1" and list(a1.frame.images) == list(CAMERAS)
    for cam, rel in a1.frame.images.items():  # the bytes are the user's JPGs, untouched
        assert (ds.root / rel).read_bytes() == (images / "samples" / cam / f"sceneA__{cam}__fA1.jpg").read_bytes()
    n = {q.qid: q for q in a1.graph.nodes}
    choice = n["per.1"].answer
    assert choice.type == "choice" and choice.options == ["Stopped.", "Going ahead.", "Turn left.", "Back up."]
    assert choice.preferred == 1 and choice.acceptable == [1]
    assert n["per.1"].question == f"What is the moving status of object {CAR}?"  # options live in the answer
    assert n["per.2"].answer.type == "boolean" and n["per.2"].answer.value is False
    assert n["pred.0"].answer.type == "objects" and n["pred.0"].answer.ids == [1] and n["pred.0"].meta["names"] == "tags"
    assert n["plan.0"].answer.type == "ranking" and n["plan.0"].answer.ids == [1, 2]
    assert n["plan.1"].answer.type == "objects" and n["plan.1"].answer.positions_m == [(3.2, 0.1), (6.5, 0.3)]
    assert n["per.0"].answer.type == "text" and n["per.0"].objects == [1, 2]
    # No dependency fields: parents are the previous stage's nodes sharing an object, else that whole stage.
    assert n["pred.0"].parents == ["per.0", "per.1"]  # both name c1/c2; per.2 names nothing
    assert n["plan.2"].parents == ["pred.0", "pred.1"]
    agents = {a.id: a for a in a1.frame.agents}
    assert sorted(agents) == [1, 2] and agents[2].category == "pedestrian"
    assert agents[2].boxes == {"CAM_BACK": [380.0, 450.0, 421.0, 551.0]}
    info = a1.frame.meta["drivelm"]["agents"]["2"]
    assert info["tag"] == WALKER and info["status"] == "Standing" and info["description"] == "Person with an umbrella."
    assert a1.frame.meta["drivelm"]["positions_known"] is False
    b1 = {q.qid: q for q in recs[2].graph.nodes}  # dependency fields resolve to edges
    assert b1["pred.0"].parents == ["per.0"]
    assert b1["plan.0"].parents == ["per.0", "pred.0"]
    assert b1["plan.1"].parents == []  # "perception:7" names nothing: counted, no edge
    assert b1["beh.0"].parents == ["plan.0"]
    assert recs[1].graph.get("plan.0").answer.type == "boolean"  # "yes" without a period


def test_round_trip_is_lossless_and_deterministic(sample, tmp_path):
    _, path, images = sample
    import_drivelm(path, images, tmp_path / "a")
    export_drivelm(load_dataset(tmp_path / "a"), tmp_path / "out.json", tmp_path / "flat.json")
    assert json.loads((tmp_path / "out.json").read_text()) == drivelm_data()
    assert json.dumps(json.loads((tmp_path / "out.json").read_text())) == json.dumps(drivelm_data())  # key order too
    flat = json.loads((tmp_path / "flat.json").read_text())
    assert len(flat) == 17 and set(flat[0]) == {"id", "question", "answer"}
    assert flat[1] == {"id": "sceneA_fA1_1", "question": drivelm_data()["sceneA"]["key_frames"]["fA1"]["QA"]["perception"][1]["Q"],
                       "answer": "B"}
    import_drivelm(tmp_path / "out.json", images, tmp_path / "b")
    assert (tmp_path / "a" / "frames.jsonl").read_bytes() == (tmp_path / "b" / "frames.jsonl").read_bytes()
    ma, mb = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in "ab")
    assert ma["frames_sha256"] == mb["frames_sha256"] and ma["images_sha256"] == mb["images_sha256"]


def test_highway_dataset_exports_in_drivelm_layout(tiny_dataset, tmp_path):
    ds = load_dataset(tiny_dataset)
    export_drivelm(ds, tmp_path / "hw.json", tmp_path / "hw_flat.json")
    data = json.loads((tmp_path / "hw.json").read_text())
    n_nodes = sum(len(r.graph.nodes) for r in ds.records())
    items = 0
    for scene, sv in data.items():  # what DriveLM's evaluation.py and convert2llama.py read
        for frame, fv in sv["key_frames"].items():
            assert set(fv["QA"]) == {"perception", "prediction", "planning", "behavior"}
            assert all(isinstance(p, str) for p in fv["image_paths"].values())
            for qa in [*fv["QA"]["perception"], *fv["QA"]["prediction"], *fv["QA"]["planning"], *fv["QA"]["behavior"]]:
                assert isinstance(qa["Q"], str) and isinstance(qa["A"], str) and qa["tag"] and set(qa["tag"]) <= {0, 1, 2, 3}
                items += 1
            for tag, info in fv["key_object_infos"].items():
                assert tag.startswith("<c") and len(info["2d_bbox"]) == 4
    assert items == n_nodes
    first = next(iter(next(iter(data.values()))["key_frames"].values()))
    assert (tmp_path / next(iter(first["image_paths"].values()))).is_file()  # paths relative to the JSON
    # The rendered file imports again: same questions, answers and edges.
    import_drivelm(tmp_path / "hw.json", None, tmp_path / "back")
    rec0 = next(ds.records())
    back0 = next(load_dataset(tmp_path / "back").records())
    assert len(back0.graph.nodes) == len(rec0.graph.nodes)
    for a, b in zip([q for s in ("perception", "prediction", "planning", "behavior") for q in rec0.graph.stage(s)], back0.graph.nodes):
        assert a.answer.type in (b.answer.type, "number") or (a.answer.type, b.answer.type) in (("objects", "text"), ("ranking", "text"), ("ranking", "objects"))
        # DriveLM keeps one correct letter and one yes/no: the preferred option and the value survive.
        if a.answer.type == "choice":
            assert (b.answer.options, b.answer.preferred) == (a.answer.options, a.answer.preferred)
        if a.answer.type == "boolean":
            assert b.answer.value == a.answer.value
        assert len(a.parents) == len(b.parents)


def test_cli_import_export_and_bad_input(sample, tmp_path):
    root, path, images = sample
    ok = cli("import", "drivelm", str(path), "--images", str(images), "--out", str(tmp_path / "ds"))
    assert ok.returncode == 0, ok.stderr
    assert "17 QA in 3 key frames of 2 scenes, 18 images" in ok.stdout and "untyped (kept as text): 9" in ok.stdout
    ex = cli("export", "drivelm", str(tmp_path / "ds"), "--out", str(tmp_path / "x.json"), "--flat", str(tmp_path / "f.json"))
    assert ex.returncode == 0, ex.stderr and (tmp_path / "f.json").is_file()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for args in (["import", "drivelm", str(bad), "--out", str(tmp_path / "d2")],
                 ["import", "drivelm", str(path), "--images", str(tmp_path / "nowhere"), "--out", str(tmp_path / "d3")],
                 ["import", "drivelm", str(path), "--images", str(root), "--out", str(tmp_path / "d4")]):
        r = cli(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "d4").exists() and not any(p.name.startswith(".d4") for p in tmp_path.iterdir())
    wrong = tmp_path / "list.json"
    wrong.write_text("[1, 2]")
    r = cli("import", "drivelm", str(wrong), "--out", str(tmp_path / "d5"))
    assert r.returncode == 2 and "v1.1 layout" in r.stderr


def test_export_uses_the_sources_own_tags(tmp_path):
    from drivechain.dataset import building_folder, images_sha256, write_frames, write_manifest
    from drivechain.schema import QA, Agent, ChainGraph, Frame, FrameRecord, Manifest, ObjectsAnswer

    tag = "<c4,CAM_BACK,300.0,200.0>"
    agents = [Agent(id=4, category="car", x_m=-10.0, y_m=0.0, heading_rad=0.0, speed_mps=3.0,
                    boxes={"CAM_FRONT_LEFT": [0.0, 0.0, 10.0, 10.0], "CAM_BACK": [280.0, 180.0, 320.0, 220.0]}),
              Agent(id=5, category="pedestrian", x_m=5.0, y_m=2.0, heading_rad=0.0, speed_mps=0.0,
                    boxes={"CAM_FRONT": [10.0, 20.0, 30.0, 60.0]})]
    frame = Frame(frame_id="log/x/0/0", source="log", scenario="x", episode=0, step=0, seed=0, t_s=0.0,
                  ego=Agent(id=0, x_m=0.0, y_m=0.0, heading_rad=0.0, speed_mps=5.0), agents=agents, actions=[],
                  meta={"drivelm_tags": {"4": tag}})
    node = QA(qid="per.near", family="per.near", stage="perception", question=f"Which objects are near {tag}?",
              answer=ObjectsAnswer(ids=[4, 5]))
    line = FrameRecord(frame=frame, graph=ChainGraph(nodes=[node])).model_dump_json()
    with building_folder(tmp_path / "ds") as tmp:
        digest = write_frames(tmp, [line])
        write_manifest(tmp, Manifest(name="x", source="log", config={}, seed=0, versions={}, counts={"frames": 1},
                                     frames_sha256=digest, images_sha256=images_sha256(tmp)))
    export_drivelm(load_dataset(tmp_path / "ds"), tmp_path / "x.json")
    fv = json.loads((tmp_path / "x.json").read_text())["log-x-0"]["key_frames"]["0"]
    assert list(fv["key_object_infos"]) == [tag, "<c5,CAM_FRONT,20.0,40.0>"]
    assert fv["key_object_infos"][tag]["2d_bbox"] == [280.0, 180.0, 320.0, 220.0]  # the tag's own camera
    item = fv["QA"]["perception"][0]
    assert item["A"] == f"{tag}, <c5,CAM_FRONT,20.0,40.0>." and item["tag"] == [3]
