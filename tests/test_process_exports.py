"""`drivechain process` outputs: exports validate against their schemas and load with `datasets`."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict

from drivechain.process.pipeline import ProcessConfig, run_process


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrmCompletion(_Strict):
    text: str
    rating: Literal[-1, 0, 1]
    flagged: bool


class PrmStep(_Strict):
    completions: list[PrmCompletion]
    chosen_completion: int | None


class PrmLabel(_Strict):
    steps: list[PrmStep]
    total_time: int
    finish_reason: Literal["found_error", "solution"]


class PrmQuestion(_Strict):
    problem: str
    ground_truth_answer: str


class PrmRow(_Strict):
    frame_id: str
    kind: Literal["step_candidates", "sampled_chain"]
    chain_id: int
    generator: str
    question: PrmQuestion
    label: PrmLabel


class PbItem(_Strict):
    id: str
    generator: str
    frame_id: str
    problem: str
    steps: list[str]
    stages: list[str]
    step_ratings: list[Literal[-1, 0, 1]]
    label: int
    final_answer_correct: bool


class TrlRow(_Strict):
    prompt: str
    completions: list[str]
    labels: list[bool]


@pytest.fixture(scope="module")
def process_dir(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("proc") / "prm"
    run_process(tiny_dataset, out, ProcessConfig(n=6, chains=8, top_k=2, seed=5, limit=6))
    return out


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_prm800k_rows_validate_and_are_cut_at_first_error(process_dir):
    rows = [PrmRow.model_validate(r) for r in _jsonl(process_dir / "prm800k.jsonl")]
    kinds = {r.kind for r in rows}
    assert kinds == {"step_candidates", "sampled_chain"}
    for r in rows:
        steps = r.label.steps
        if r.kind == "step_candidates":
            assert len(steps) == 4 and r.label.finish_reason == "solution"
            assert all(s.chosen_completion == 0 and s.completions[0].rating == 1 for s in steps)
            assert sum(c.rating == -1 for s in steps for c in s.completions) <= 4 * 2  # top-k per step
        else:
            ratings = [s.completions[0].rating for s in steps]
            if r.label.finish_reason == "found_error":
                assert ratings[-1] == -1 and -1 not in ratings[:-1] and steps[-1].chosen_completion is None
            else:
                assert len(steps) == 4 and -1 not in ratings


def test_processbench_and_trl_validate_and_agree(process_dir):
    items = [PbItem.model_validate(x) for x in json.loads((process_dir / "processbench.json").read_text())]
    trl = [TrlRow.model_validate(r) for r in _jsonl(process_dir / "trl_prm.jsonl")]
    assert len(items) == len(trl) and {i.label for i in items} >= {-1, 0}
    for item, row in zip(items, trl):
        first = item.step_ratings.index(-1) if -1 in item.step_ratings else -1
        assert item.label == first and len(item.steps) == 4
        assert row.completions == (item.steps if first < 0 else item.steps[: first + 1])
        assert row.labels == [r >= 0 for r in item.step_ratings[: len(row.completions)]]  # 0 counts correct


def test_exports_load_with_datasets(process_dir):
    import datasets

    datasets.disable_progress_bars()
    counts = json.loads((process_dir / "summary.json").read_text())["files"]
    cache = str(process_dir.parent / "hf_cache")
    for name, n in counts.items():
        ds = datasets.load_dataset("json", data_files=str(process_dir / name), split="train", cache_dir=cache)
        assert ds.num_rows == n > 0
    prm = datasets.load_dataset("json", data_files=str(process_dir / "prm800k.jsonl"), split="train", cache_dir=cache)
    assert prm[0]["label"]["steps"][0]["completions"][0]["rating"] == 1


def test_candidates_summary_and_hard_negatives(process_dir):
    cands = _jsonl(process_dir / "candidates.jsonl")
    summary = json.loads((process_dir / "summary.json").read_text())
    assert summary["candidates"] == len(cands)
    assert summary["ratings"] == {k: sum(c["rating"] == int(k) for c in cands) for k in ("-1", "0", "1")}
    assert summary["intent_agreement"] == 1.0 and summary["teacher_step_ratings"]["1"] == 4 * summary["frames"]
    groups = defaultdict(list)
    for c in cands:
        groups[(c["frame_id"], c["step_index"])].append(c)
    for group in groups.values():
        negs = [c for c in group if c["rating"] == -1]
        kept = [c for c in negs if c["kept"]]
        assert len(kept) == min(2, len(negs))
        assert all(c["kept"] for c in group if c["rating"] >= 0)
        if kept and len(kept) < len(negs):  # kept negatives are the rater's most convincing
            assert min(c["rater_score"] for c in kept) >= max(c["rater_score"] for c in negs if not c["kept"])
    hn = summary["hard_negatives"]
    assert hn["kept"] == sum(1 for c in cands if c["rating"] == -1 and c["kept"])
    assert hn["kept_mean"] >= hn["dropped_mean"]
    assert sum(summary["kinds"][k].get("-1", 0) for k in summary["kinds"]) == summary["ratings"]["-1"]
    # prm800k.jsonl's completions, counted from the file: the teacher's +1 steps are there, not among candidates
    rows = _jsonl(process_dir / "prm800k.jsonl")
    got = [c["rating"] for r in rows for st in r["label"]["steps"] for c in st["completions"]]
    assert summary["prm800k_completions"] == {k: got.count(int(k)) for k in ("-1", "0", "1")}
    assert summary["prm800k_completions"]["1"] >= summary["teacher_step_ratings"]["1"] > 0


def test_terminal_and_report_name_the_same_counts(process_dir):
    from drivechain.commands.process import process_line
    from drivechain.report.process import _counts

    s = json.loads((process_dir / "summary.json").read_text())
    line = process_line(s, process_dir)
    cand, comp = s["ratings"], s["prm800k_completions"]
    assert f"{s['candidates']} candidate steps (rated -1/0/+1: {cand['-1']}/{cand['0']}/{cand['1']})" in line
    assert f"prm800k.jsonl completions rated -1/0/+1: {comp['-1']}/{comp['0']}/{comp['1']}" in line
    assert f"{s['chains']['count']} chains" in line and f"hard negatives kept {s['hard_negatives']['kept']} " in line
    shown = dict(_counts(s))
    assert shown["Candidate steps"] == s["candidates"] and shown["Chains"] == s["chains"]["count"]
    assert shown["Candidate steps rated +1 (correct)"] == cand["1"]
    assert shown["Completions in prm800k.jsonl rated +1 (correct)"] == comp["1"]
    assert shown["Hard negatives kept"] == s["hard_negatives"]["kept"]
    assert not any(k.startswith("Steps rated") for k in shown)


def test_rerun_is_byte_identical(tiny_dataset, process_dir, tmp_path):
    out = tmp_path / "again"
    run_process(tiny_dataset, out, ProcessConfig(n=6, chains=8, top_k=2, seed=5, limit=6))
    for name in ("prm800k.jsonl", "processbench.json", "trl_prm.jsonl", "candidates.jsonl", "chains.jsonl", "summary.json"):
        assert (out / name).read_bytes() == (process_dir / name).read_bytes(), name
