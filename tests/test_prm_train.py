"""Trained reward models: split, labels, learning vs a shuffled control, model:DIR as a rater, review, minilm."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from drivechain.process.prm_metrics import auroc, f1_interval, first_error_confusion, mean_interval
from drivechain.process.train import TrainConfig, episode_of, examples, split_frames, train_model


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "drivechain.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def process_dir(tiny_dataset, tmp_path_factory):
    from drivechain.process.pipeline import ProcessConfig, run_process

    out = tmp_path_factory.mktemp("prm_train") / "prm"
    run_process(tiny_dataset, out, ProcessConfig(n=6, chains=16, top_k=2, seed=11))
    return out


@pytest.fixture(scope="module")
def hash_prm(process_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "prm"
    train_model(process_dir, out, TrainConfig(kind="prm", backbone="hash", heldout=0.34, split_by="frame", seed=0))
    return out


def test_split_never_shares_frames_or_episodes():
    frames = [f"highway/{sc}/{ep}/{st}" for sc in ("highway", "merge") for ep in range(5) for st in range(4)]
    for by in ("episode", "frame"):
        for seed in range(4):
            s = split_frames(frames, 0.3, seed, by)
            sides = [set(s[k]) for k in ("train", "dev", "heldout")]
            assert sum(len(x) for x in sides) == len(frames) and set().union(*sides) == set(frames)
            assert all(not (a & b) for i, a in enumerate(sides) for b in sides[i + 1:])
            assert all(sides), s
            if by == "episode":  # consecutive frames of one episode stay together
                eps = [{episode_of(f) for f in x} for x in sides]
                assert all(not (a & b) for i, a in enumerate(eps) for b in eps[i + 1:])
            assert split_frames(list(reversed(frames)), 0.3, seed, by) == s  # deterministic
    assert split_frames(frames, 0.3, 0) != split_frames(frames, 0.3, 1)


def test_prm_and_orm_labels_hand_case():
    class P:
        text = "scene\n[perception]\nq1: ?\n[prediction]\nq2: ?"

    items = [
        {"frame_id": "f", "steps": ["a", "b", "c", "d"], "stages": ["perception", "prediction", "planning", "behavior"],
         "step_ratings": [1, 0, -1, 1], "label": 2, "final_answer_correct": False},
        {"frame_id": "f", "steps": ["a", "b2", "c2", "d2"], "stages": ["perception", "prediction", "planning", "behavior"],
         "step_ratings": [1, 1, 1, 1], "label": -1, "final_answer_correct": True},
    ]
    prm = examples({"f": P()}, items, "prm", "pos")
    # first item: steps up to and including the first -1; every item's steps (as in PRM800K)
    assert [(e.row[3], e.label) for e in prm] == [("a", 1), ("b", 1), ("c", 0), ("a", 1), ("b2", 1), ("c2", 1), ("d2", 1)]
    assert [e.row[3] for e in examples({"f": P()}, items, "prm", "pos", dedupe=True)] == ["a", "b", "c", "b2", "c2", "d2"]
    assert [e.label for e in examples({"f": P()}, items, "prm", "neg")][:3] == [1, 0, 0]  # 0 counted negative
    orm = examples({"f": P()}, items, "orm")
    assert [(e.row[3], e.label) for e in orm[:4]] == [("a", 0), ("b", 0), ("c", 0), ("d", 0)]  # every step, final wrong
    assert ("a", 1) in [(e.row[3], e.label) for e in orm]  # same step under a correct final answer
    assert prm[1].row[2] == ("a",) and prm[1].row[1] == "scene\nq2: ?"  # earlier steps, the stage's questions


def test_metrics_hand_cases():
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert auroc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # ties count half
    assert auroc([1, 1], [0.2, 0.3]) is None
    lo, hi = mean_interval([0.0, 1.0, 1.0, 0.5])
    assert 0.0 <= lo <= 0.625 <= hi <= 1.0 and lo < hi
    assert f1_interval(["a", "a", "b", "b"], [0, -1, 1, -1], [0, -1, 1, -1]) == [1.0, 1.0]
    conf = first_error_confusion([-1, 0, 2, 2], [-1, 1, 2, -1])
    m = dict(zip(conf["labels"], conf["matrix"]))
    assert m["none"][0] == 1 and m["perception"][2] == 1 and m["planning"][3] == 1 and m["planning"][0] == 1


def test_prm_on_clean_labels_beats_a_shuffled_label_control(process_dir, tmp_path):
    clean, shuffled = [], []
    for seed in (0, 1, 2):
        for shuf, acc in ((False, clean), (True, shuffled)):
            c = train_model(process_dir, tmp_path / f"m{seed}{shuf}",
                            TrainConfig(kind="prm", backbone="hash", heldout=0.34, split_by="frame", seed=seed,
                                        shuffle_labels=shuf))
            acc.append(c["heldout_auroc"])
            assert c["examples"]["heldout"] > 50 and not set(c["frames"]["heldout"]) & set(c["frames"]["train"])
    assert np.mean(clean) > np.mean(shuffled) + 0.05, (clean, shuffled)
    assert np.mean(clean) > 0.5  # better than chance; the margin over the control above is the claim


def test_model_folder_and_rater_everywhere(process_dir, hash_prm, tmp_path):
    cfg = json.loads((hash_prm / "config.json").read_text())
    assert cfg["kind"] == "prm" and len(cfg["data_hash"]) == 64 and (hash_prm / "weights.npz").is_file()
    curves = json.loads((hash_prm / "curves.json").read_text())
    assert curves and {"epoch", "train_loss", "dev_loss", "dev_auroc"} <= set(curves[0])
    run = tmp_path / "eval"
    res = _cli("prm-eval", "--rater", f"model:{hash_prm}", "--data", str(process_dir), "--out", str(run))
    assert res.returncode == 0, res.stderr
    s = json.loads((run / "summary.json").read_text())
    held = set(cfg["frames"]["heldout"])
    rows = [json.loads(line) for line in (run / "step_scores.jsonl").read_text().splitlines()]
    assert rows and {r["frame_id"] for r in rows} <= held  # only frames the model never trained on
    assert s["frames_scope"].endswith("never trained on") and 0.0 <= s["step_auroc"]["auroc"] <= 1.0
    lines = s["best_of_n_curves"]["lines"]["product"]
    assert len(lines["n"]) == len(lines["low"]) and all(lo <= a <= hi for lo, a, hi in
                                                       zip(lines["low"], lines["accuracy"], lines["high"]))
    assert sum(map(sum, s["first_error_confusion"]["matrix"])) == s["items"]
    # the same frames for a built-in rater via --holdout
    run2 = tmp_path / "eval2"
    res = _cli("prm-eval", "--rater", "oracle", "--holdout", str(hash_prm), "--data", str(process_dir), "--out", str(run2))
    assert res.returncode == 0, res.stderr
    s2 = json.loads((run2 / "summary.json").read_text())
    assert s2["items"] == s["items"] and s2["first_error"]["f1"] == 1.0 and s2["step_auroc"]["auroc"] == 1.0
    # process accepts the trained model as its hard-negative rater
    from drivechain.process.pipeline import ProcessConfig, run_process

    p = run_process(_dataset_of(process_dir), tmp_path / "p",
                    ProcessConfig(n=3, chains=0, top_k=1, limit=2, rater=f"model:{hash_prm}"))
    assert p["hard_negatives"]["rater"] == f"model:{hash_prm}" and p["hard_negatives"]["kept_mean"] is not None


def _dataset_of(process_dir):
    from pathlib import Path

    return Path(json.loads((process_dir / "config.json").read_text())["data"])


def test_review_lists_confident_disagreements_and_skips_confirmed_labels(process_dir, hash_prm, tmp_path):
    import shutil

    from drivechain.process.review import review

    rows = review(process_dir, hash_prm, top=10)
    assert rows and all(r["disagreement"] >= 0.5 for r in rows)
    assert [r["disagreement"] for r in rows] == sorted((r["disagreement"] for r in rows), reverse=True)
    for r in rows:
        assert r["labels"] and all(lab["correction"]["frame_id"] == r["frame_id"] for lab in r["labels"])
        # a step the teacher marked down is listed with the answers that differ from the teacher's
        if r["teacher_rating"] is not None and r["teacher_rating"] < 1:
            assert all(lab["answer"] != lab["teacher_answer"] for lab in r["labels"])
    first = rows[0]["labels"][0]["correction"]
    cfg = json.loads((process_dir / "config.json").read_text())
    assert cfg["corrections"]["path"] == str((_dataset_of(process_dir) / "corrections.jsonl").resolve())
    copy = tmp_path / "prm"
    shutil.copytree(process_dir, copy)
    corr = tmp_path / "corrections.jsonl"
    corr.write_text(json.dumps({**first, "verdict": "ok"}) + "\n")
    (copy / "config.json").write_text(json.dumps({**cfg, "corrections": {"path": str(corr), "sha256": None}}))
    again = review(copy, hash_prm, top=10)
    listed = {(r["frame_id"], lab["qid"]) for r in again for lab in r["labels"]}
    assert (first["frame_id"], first["qid"]) not in listed


def test_bad_model_folder_is_one_line_exit_2(process_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    for rater in (f"model:{tmp_path / 'missing'}", f"model:{tmp_path / 'empty'}"):
        res = _cli("prm-eval", "--rater", rater, "--data", str(process_dir), "--out", str(tmp_path / "r"))
        assert res.returncode == 2 and "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = _cli("prm-train", "--data", str(process_dir), "--kind", "xrm", "--out", str(tmp_path / "m"))
    assert res.returncode == 2 and "prm or orm" in res.stderr
    res = _cli("prm-train", "--data", str(process_dir), "--backbone", "hf:/x", "--out", str(tmp_path / "m"))
    assert res.returncode == 2 and "not implemented" in res.stderr and not (tmp_path / "m" / "weights.npz").exists()


def test_minilm_backbone_trains_and_rates(tiny_dataset, tmp_path):
    """The real sentence encoder, once, on two frames."""
    from drivechain.process.features import get_encoder
    from drivechain.process.pipeline import ProcessConfig, run_process

    enc = get_encoder("minilm")
    v = enc.encode(["per.lead_vehicle: 3", "per.lead_vehicle: 3", "plan.action: B"])
    assert v.shape == (3, 384) and np.allclose(v[0], v[1]) and not np.allclose(v[0], v[2])
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    prm = tmp_path / "prm"
    run_process(tiny_dataset, prm, ProcessConfig(n=1, chains=2, top_k=1, seed=3, limit=4))
    c = train_model(prm, tmp_path / "m", TrainConfig(kind="orm", backbone="minilm", heldout=0.25, split_by="frame",
                                                       epochs=3))
    assert c["features"] == 4 * 384 + 4 and (prm / "cache" / "embeddings-minilm.npz").is_file()
    from drivechain.process.prm_eval import run_prm_eval

    s = run_prm_eval(prm, tmp_path / "ev", f"model:{tmp_path / 'm'}")
    assert s["rater_failures"] == 0 and s["frames_scope"].endswith("never trained on")


def test_model_adapter_chains_from_a_loopback_server(tiny_dataset, tmp_path):
    """Chains from a real adapter (openai: against the fake server), then a trained PRM rates them."""
    import itertools
    import random
    import re

    from drivechain.process.pipeline import ProcessConfig, run_process
    from tests.fakeserver import FakeServer

    counter = itertools.count()
    qline = re.compile(r"^\[([A-Za-z0-9_.]+)\] \((\w+)\)", re.M)

    def reply(messages):
        text = messages[-1]["content"] if isinstance(messages[-1]["content"], str) else " ".join(
            p.get("text", "") for p in messages[-1]["content"])
        rng = random.Random(next(counter))
        pick = {"choice": lambda: rng.choice("AB"), "boolean": lambda: rng.choice(["yes", "no"]),
                "number": lambda: str(rng.choice([1, 2, 3, 20])), "objects": lambda: rng.choice(["1", "1, 2", "none"]),
                "ranking": lambda: rng.choice(["1", "1 > 2"]), "text": lambda: "vehicle 1"}
        return json.dumps({q: pick.get(t, lambda: "A")() for q, t in qline.findall(text)})

    with FakeServer(reply=reply) as srv:
        out = tmp_path / "prm"
        s = run_process(tiny_dataset, out, ProcessConfig(generator="openai:m", base_url=srv.base_url, n=3, chains=4,
                                                         top_k=2, limit=6, seed=0))
    assert s["generator_failures"] == 0 and s["chains"]["count"] == 24
    chains = [json.loads(line) for line in (out / "chains.jsonl").read_text().splitlines()]
    ratings = {st["rating"] for ch in chains for st in ch["steps"]}
    assert all(ch["source"] == "model:openai:m" for ch in chains) and {-1, 1} <= ratings
    c = train_model(out, tmp_path / "m", TrainConfig(kind="prm", backbone="hash", heldout=0.34, split_by="frame"))
    from drivechain.process.prm_eval import run_prm_eval

    ev = run_prm_eval(out, tmp_path / "ev", f"model:{tmp_path / 'm'}")
    assert 0 < ev["frames"] <= len(c["frames"]["heldout"]) and ev["chains"] == 4 * ev["frames"]
