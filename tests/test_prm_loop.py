"""Active mining (prm-loop) and human corrections of teacher labels."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from drivechain.process.loop import choose


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "drivechain.cli", *args], capture_output=True, text=True)


def test_choose_convincing_takes_the_top_scoring_wrong_chains():
    chains = list(range(6))
    scores = np.array([0.9, 0.8, 0.7, 0.95, 0.1, 0.5])
    wrong = [False, True, True, False, True, True]
    rng = np.random.default_rng(0)
    assert choose(chains, scores, wrong, 2, "convincing", rng) == [1, 2]  # 0.8, 0.7; correct chains skipped
    picked = choose(chains, scores, wrong, 5, "convincing", rng)  # 4 wrong + 1 topped up at random
    assert len(picked) == 5 and {1, 2, 4, 5} <= set(picked)
    r = choose(chains, scores, wrong, 3, "random", np.random.default_rng(1))
    assert len(set(r)) == 3 and r == choose(chains, scores, wrong, 3, "random", np.random.default_rng(1))


def test_prm_loop_both_strategies_same_seed_round_and_budget(tiny_dataset, tmp_path):
    outs = {}
    for sel in ("convincing", "random"):
        out = tmp_path / sel
        res = _cli("prm-loop", "--data", str(tiny_dataset), "--rounds", "2", "--budget", "6", "--select", sel,
                   "--chains", "3", "--eval-chains", "4", "--backbone", "hash", "--heldout", "0.25", "--out", str(out))
        assert res.returncode == 0, res.stderr
        outs[sel] = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
        s = json.loads((out / "summary.json").read_text())
        assert s["curve"]["labels"] == [6, 12, 18] and len(s["curve"]["auroc"]) == 3
        assert (out / "models" / "round-2" / "weights.npz").is_file()
        held = json.loads((out / "models" / "round-2" / "config.json").read_text())["frames"]
        assert held["heldout"] and not set(held["heldout"]) & set(held["train"])
    conv, rand = outs["convincing"], outs["random"]
    # round 0 is the same random seed set for both; after it the strategies choose differently
    assert conv[0]["heldout_step_auroc"] == rand[0]["heldout_step_auroc"]
    assert conv[0]["labelled_steps"] == rand[0]["labelled_steps"]
    for c, r in zip(conv[1:], rand[1:]):
        assert c["pool_wrong_final"] == r["pool_wrong_final"] > 0  # the same pool for both strategies
        assert c["chosen_wrong_final"] == min(6, c["pool_wrong_final"])  # every wrong chain it can take
        assert r["chosen_wrong_final"] <= c["chosen_wrong_final"]
        assert c["chosen_with_error"] >= c["chosen_wrong_final"]  # a wrong final answer implies an error


@pytest.fixture(scope="module")
def corrected(tiny_dataset, tmp_path_factory):
    """Process data before and after a correction marking one negative candidate's label wrong."""
    from drivechain.process.pipeline import ProcessConfig, run_process

    root = tmp_path_factory.mktemp("corr")
    cfg = dict(n=6, chains=4, top_k=6, seed=5, limit=3)
    before = root / "before"
    run_process(tiny_dataset, before, ProcessConfig(**cfg))
    cands = [json.loads(line) for line in (before / "candidates.jsonl").read_text().splitlines()]
    # a candidate rated -1 because of exactly one question
    target = next(c for c in cands if c["rating"] == -1 and sum(g["rating"] == -1 for g in c["grades"]) == 1
                  and all(g["rating"] is not None and g["rating"] >= 0 for g in c["grades"] if g["rating"] != -1))
    qid = next(g["qid"] for g in target["grades"] if g["rating"] == -1)
    corr = root / "corrections.jsonl"
    corr.write_text(json.dumps({"frame_id": target["frame_id"], "qid": qid, "verdict": "wrong", "note": "test"}) + "\n")
    after = root / "after"
    s = run_process(tiny_dataset, after, ProcessConfig(**cfg, corrections=str(corr)))
    return {"before": before, "after": after, "target": target, "qid": qid, "summary": s, "corr": corr}


def test_correction_flips_the_affected_rating(corrected, tiny_dataset):
    from drivechain.dataset import load_dataset
    from drivechain.process.candidates import Candidate
    from drivechain.process.corrections import apply_corrections, load_corrections
    from drivechain.process.ratings import rate

    t = corrected["target"]
    record = next(r for r in load_dataset(tiny_dataset).records() if r.frame.frame_id == t["frame_id"])
    cand = Candidate.model_validate({k: v for k, v in t.items() if k != "text"})
    assert rate(record, cand).rating == -1
    stats = apply_corrections([record], load_corrections(corrected["corr"]))
    assert stats["wrong"] == 1 and stats["unmatched_count"] == 0
    assert rate(record, cand).rating >= 0  # flipped: its only error was the label judged wrong
    assert corrected["summary"]["corrections"]["wrong"] == 1


def test_correction_reaches_exports_and_training(corrected, tmp_path):
    from drivechain.errors import DatasetError
    from drivechain.process.train import TrainConfig, train_model

    fid, qid = corrected["target"]["frame_id"], corrected["qid"]
    line = f"{qid}: "

    def texts(root):
        pb = json.loads((root / "processbench.json").read_text())
        prm = [json.loads(x) for x in (root / "prm800k.jsonl").read_text().splitlines()]
        return ([s for it in pb if it["frame_id"] == fid for s in it["steps"]]
                + [c["text"] for r in prm if r["frame_id"] == fid for st in r["label"]["steps"] for c in st["completions"]])

    assert any(line in s for s in texts(corrected["before"]))
    assert texts(corrected["after"]) and not any(line in s for s in texts(corrected["after"]))
    grades = [g["qid"] for x in (corrected["after"] / "candidates.jsonl").read_text().splitlines()
              for g in json.loads(x)["grades"] if json.loads(x)["frame_id"] == fid]
    assert grades and qid not in grades
    # training refuses labels rated before the corrections file changed
    corrected["corr"].write_text(corrected["corr"].read_text() + json.dumps(
        {"frame_id": fid, "qid": "per.lanes", "verdict": "ok"}) + "\n")
    with pytest.raises(DatasetError, match="changed since"):
        train_model(corrected["after"], tmp_path / "m", TrainConfig(backbone="hash", split_by="frame"))


def test_broken_corrections_file_is_one_line_exit_2(tiny_dataset, tmp_path):
    bad = tmp_path / "corrections.jsonl"
    for text in ('{"frame_id": "x", "qid": "y", "verdict": "maybe"}\n', "not json\n"):
        bad.write_text(text)
        res = _cli("process", "--data", str(tiny_dataset), "--limit", "1", "--corrections", str(bad),
                   "--out", str(tmp_path / "o"))
        assert res.returncode == 2 and "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
        assert "corrections.jsonl:1" in res.stderr and not (tmp_path / "o").exists()
