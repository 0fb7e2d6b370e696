"""Reward-model evaluation: first-error F1, best-of-N selectors, raters (oracle, plausibility, model), CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from drivechain.models.base import Response
from drivechain.process.negatives import ModelRater, OracleRater, PlausibilityRater, parse_score, score_steps
from drivechain.process.prm_eval import (
    ScoredChain,
    best_of_n,
    first_error_f1,
    load_process_dir,
    predicted_first_error,
    score_chains,
    select,
)


def sc(scores, final, correct, outcome=None, fully=None):
    return ScoredChain(step_scores=scores, outcome=outcome, final_answer=final, final_correct=correct,
                       fully_correct=correct if fully is None else fully)


def test_first_error_prediction_and_f1_hand_cases():
    assert predicted_first_error([0.9, 0.4, 0.1]) == 1
    assert predicted_first_error([0.9, None, 0.9]) == 1  # a failed rating counts 0
    assert predicted_first_error([0.5, 0.6]) == -1       # "below" the threshold, 0.5 is not
    # erroneous: labels 0 and 2, found 1 of 2; correct: 2 items, 1 predicted -1 -> F1 = 0.5
    r = first_error_f1([0, 2, -1, -1], [0, 1, -1, 3])
    assert (r["acc_error"], r["acc_correct"], r["f1"]) == (0.5, 0.5, 0.5)
    r = first_error_f1([1, -1, -1], [1, -1, 0])
    assert r["f1"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert first_error_f1([1], [0])["f1"] is None  # no correct items: F1 undefined


def test_selectors_hand_case():
    group = [
        sc([0.9, 0.9, 0.2, 0.9], "B", False, outcome=0.9),  # product 0.146, min 0.2, last 0.9
        sc([0.7, 0.7, 0.7, 0.7], "A", True, outcome=0.1),   # product 0.240, min 0.7, last 0.7
        sc([1.0, 0.3, 1.0, 1.0], "B", False, outcome=0.2),  # product 0.3,   min 0.3, last 1.0
    ]
    assert select(group, "product") == 2
    assert select(group, "min") == 1
    assert select(group, "last") == 2
    assert select(group, "orm") == 0
    assert select(group, "majority") == 0  # "B" twice; earliest
    tie = [sc([0.5], "A", False), sc([0.5], "B", True)]
    assert select(tie, "product") == 0 and select(tie, "majority") == 0


def test_best_of_n_groups_hand_case():
    # frame 1: 4 chains, the correct one is third; frame 2: 2 chains (no N=4 groups)
    f1 = [sc([0.2], "x", False), sc([0.1], "x", False), sc([0.9], "y", True), sc([0.3], "x", False)]
    f2 = [sc([0.8], "y", True), sc([0.4], "x", False)]
    out = best_of_n([f1, f2], ns=(1, 2, 4))
    # N=1: frame1 1/4 correct, frame2 1/2 -> mean 0.375
    assert out["product"]["1"] == pytest.approx(0.375)
    # N=2: frame1 groups (c0,c1) -> c0 wrong, (c2,c3) -> c2 right = 0.5; frame2 -> c0 right = 1
    assert out["product"]["2"] == pytest.approx(0.75)
    # majority N=2: frame1 (x, x) wrong, (y, x) tie -> earliest y right = 0.5; frame2 (y, x) -> y right = 1
    assert out["majority"]["2"] == pytest.approx(0.75)
    assert out["pass"]["2"] == pytest.approx(0.75)
    assert out["product"]["4"] == 1.0 and out["majority"]["4"] == 0.0  # only frame 1 has 4 chains
    assert best_of_n([f2], ns=(4,))["product"]["4"] is None


@pytest.fixture(scope="module")
def process_dir(tiny_dataset, tmp_path_factory):
    from drivechain.process.pipeline import ProcessConfig, run_process

    out = tmp_path_factory.mktemp("proc_eval") / "prm"
    run_process(tiny_dataset, out, ProcessConfig(n=4, chains=16, top_k=2, seed=11))
    return out


def test_oracle_rater_selects_a_correct_chain_whenever_one_exists(process_dir):
    problems, _, chains = load_process_dir(process_dir)
    scored, _ = asyncio.run(score_chains(problems, chains, OracleRater()))
    assert scored and any(any(c.fully_correct for c in f) for f in scored.values())
    checked = 0
    for frame in scored.values():
        for n in (1, 2, 4, 8, 16):
            for g in range(len(frame) // n):
                grp = frame[g * n:(g + 1) * n]
                if any(c.fully_correct for c in grp):
                    for how in ("product", "min"):
                        assert grp[select(grp, how)].final_correct
                    checked += 1
                if any(c.final_correct for c in grp):
                    assert grp[select(grp, "orm")].final_correct
    assert checked > 0


def test_plausibility_rater_never_reads_labels(process_dir):
    problems, items, chains = load_process_dir(process_dir)
    rater = PlausibilityRater()
    for ch in chains[:40]:
        blind = [s.model_copy(update={"rating": None, "grades": [], "kind": None, "intent": None}) for s in ch.steps]
        p = problems[ch.frame_id]
        assert asyncio.run(score_steps(rater, p, ch.steps)) == asyncio.run(score_steps(rater, p, blind))


def test_strict_score_parsing():
    assert parse_score("0.7") == (0.7, None)
    assert parse_score(' {"score": 0.25} ') == (0.25, None)
    assert parse_score('```json\n{"score": 1}\n```') == (1.0, None)
    for bad in ("Score: 30", "1.5", '{"score": 0.5, "why": "x"}', "true", "", '{"score": "high"}', "0.7 because"):
        value, err = parse_score(bad)
        assert value is None and err, bad


class ScriptedModel:
    """Answers a rater prompt by the step it shows: garbage for behavior steps."""

    name = "scripted"

    async def respond(self, request):
        text = request.prompt_text()
        if "(behavior):" in text.split("Is step")[-1] or "behavior) correct" in text:
            return Response(text="I think it is fine, maybe 80%")
        return Response(text='{"score": 0.9}')

    async def aclose(self):
        pass


def test_model_rater_counts_failures_explicitly(process_dir, tmp_path):
    from drivechain.evaluation.runner import Asker, RunPolicy
    from drivechain.evaluation.store import ResultStore

    problems, items, chains = load_process_dir(process_dir)
    store = ResultStore(tmp_path / "results.sqlite")
    rater = ModelRater(Asker(ScriptedModel(), store, RunPolicy(concurrency=4)), "scripted")
    ch = chains[0]
    scores = asyncio.run(score_steps(rater, problems[ch.frame_id], ch.steps))
    store.close()
    assert scores[:3] == [0.9, 0.9, 0.9] and scores[3] is None
    assert rater.failures == 1 and "not a number" in rater.failure_examples[0]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "drivechain.cli", *args], capture_output=True, text=True)


def test_cli_process_and_prm_eval_end_to_end(tiny_dataset, tmp_path):
    out = tmp_path / "prm"
    res = _cli("process", "--data", str(tiny_dataset), "--n", "3", "--chains", "4", "--limit", "4", "--out", str(out))
    assert res.returncode == 0, res.stderr
    run = tmp_path / "run"
    res = _cli("prm-eval", "--rater", "oracle", "--data", str(out), "--out", str(run))
    assert res.returncode == 0, res.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["first_error"]["f1"] == 1.0 and summary["rater"] == "oracle"
    assert set(summary["best_of_n"]) == {"product", "min", "last", "orm", "majority", "pass", "fully_correct"}
    assert "| product |" in (run / "table.md").read_text()


@pytest.mark.parametrize("args", [
    ("process", "--data", "/nonexistent/data", "--out", "{tmp}/o"),
    ("process", "--data", "{data}", "--n", "0", "--out", "{tmp}/o"),
    ("process", "--data", "{data}", "--propagate", "1.5", "--out", "{tmp}/o"),
    ("process", "--data", "{data}", "--rater", "bogus:spec", "--out", "{tmp}/o"),
    ("prm-eval", "--data", "/nonexistent/prm", "--out", "{tmp}/r"),
    ("prm-eval", "--data", "{broken}", "--out", "{tmp}/r"),
    ("prm-eval", "--data", "{broken}", "--threshold", "2", "--out", "{tmp}/r"),
])
def test_cli_bad_input_is_one_line_exit_2(args, tiny_dataset, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "problems.jsonl").write_text("{not json\n")
    args = [a.format(tmp=tmp_path, data=tiny_dataset, broken=broken) for a in args]
    res = _cli(*args)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "r").exists() and not (tmp_path / "o").exists()


def test_model_generator_oracle_round_trip_and_random_samples(tiny_dataset, tmp_path):
    from drivechain.dataset import load_dataset
    from drivechain.evaluation.runner import Asker, RunPolicy
    from drivechain.evaluation.store import ResultStore
    from drivechain.models.registry import load_model
    from drivechain.process.candidates import ModelGenerator
    from drivechain.process.ratings import rate

    ds = load_dataset(tiny_dataset)
    records = list(ds.records())[:3]
    store = ResultStore(tmp_path / "results.sqlite")

    async def go(spec):
        gen = ModelGenerator(Asker(load_model(spec), store, RunPolicy(concurrency=8)), spec,
                             image_root=str(ds.root), temperature=0.7, seed=1)
        chains = [ch for r in records for ch in await gen.chains(r, 2)]
        cands = [c for r in records for k in range(4) for c in await gen.candidates(r, k, [], 2)]
        return gen, chains, cands

    gen, chains, cands = asyncio.run(go("oracle"))
    by_id = {r.frame.frame_id: r for r in records}
    # the oracle model's free-running chain, parsed and re-rendered, is the teacher's chain: all +1
    assert all(rate(by_id[s.frame_id], s).rating == 1 for ch in chains for s in ch.steps)
    assert all(rate(by_id[c.frame_id], c).rating == 1 for c in cands) and gen.failures == 0
    gen, chains, cands = asyncio.run(go("random:3"))
    store.close()
    ratings = [rate(by_id[c.frame_id], c).rating for c in cands]
    assert -1 in ratings and all(c.source == "model:random:3" for c in cands)
    assert [c.sample for c in cands[:2]] == [0, 1]


def test_model_generator_and_rater_through_loopback_server(tiny_dataset, tmp_path):
    from drivechain.process.pipeline import ProcessConfig, run_process
    from tests.fakeserver import FakeServer

    def reply(messages):
        text = json.dumps(messages)
        return '{"score": 0.8}' if "Reply with only" in text else "Sorry, I cannot tell from this image."

    cfg = dict(generator="openai:m", rater="openai:m", n=2, chains=2, top_k=1, seed=0, limit=2, temperature=0.5)
    with FakeServer(reply=reply, faults={0: "503"}) as srv:
        out = tmp_path / "prm"
        s = run_process(tiny_dataset, out, ProcessConfig(**cfg, base_url=srv.base_url))
        sent = srv.count
        again = tmp_path / "again"
        (again).mkdir()
        import shutil

        shutil.copy(out / "results.sqlite", again / "results.sqlite")
        run_process(tiny_dataset, again, ProcessConfig(**cfg, base_url=srv.base_url))
        assert srv.count == sent  # every answer came from the copied cache
    assert s["generator_failures"] == 0 and s["rater_failures"] == 0  # the 503 was retried
    cands = [json.loads(line) for line in (out / "candidates.jsonl").read_text().splitlines()]
    assert cands and all(c["rating"] == -1 and c["source"] == "model:openai:m" for c in cands)
    assert all(g["status"] == "unparsed" and g["rating"] == -1 for c in cands for g in c["grades"])
    assert s["hard_negatives"]["kept_mean"] == 0.8
    assert (again / "candidates.jsonl").read_bytes() == (out / "candidates.jsonl").read_bytes()
