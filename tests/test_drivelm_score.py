"""DriveLM scoring: evaluation.py's metrics, graph filter and weights; the judge; robustness."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys

import pytest

from drivechain.interop.drivelm import metrics
from drivechain.interop.drivelm.exporter import to_flat
from drivechain.interop.drivelm.judge import INSTRUCTION, SYSTEM, ConstantJudge, ModelJudge
from drivechain.interop.drivelm.score import route, score_files
from tests.drivelm_fixture import CAR, WALKER, drivelm_data, with_tags
from tests.fakeserver import FakeServer


def test_match_f1_by_hand():
    # pred (1,2) is 1.0 px (L1) from truth (1.5,2.5): a hit; pred (50.5,60.5) is 89 px from (100,100): a miss.
    matched, f1 = metrics.match_result("go to (1.0, 2.0) then (50.5, 60.5)", "(1.5, 2.5), (100.0, 100.0)")
    assert matched == [(1.5, 2.5)]
    p = r = 1 / (2 + 1e-8)
    assert f1 == pytest.approx(2 * p * r / (p + r + 1e-8), abs=1e-12) and f1 == pytest.approx(0.5, abs=1e-7)
    # 15.9 px away still matches, 16.0 does not; integers are not coordinates; an odd prediction loses its last number.
    assert metrics.match_result("(10.0, 5.9)", "(0.0, 0.0)")[1] == pytest.approx(1.0, abs=1e-7)
    assert metrics.match_result("(10.0, 6.0)", "(0.0, 0.0)")[1] == 0.0
    assert metrics.match_result("(10, 6)", "(10.0, 6.0)")[1] == 0.0
    assert metrics.match_result("(1.0, 2.0, 3.5)", "(1.0, 2.0)")[1] == pytest.approx(1.0, abs=1e-7)
    problems: list[str] = []
    assert metrics.match_result("(1.0, 2.0)", "(1.0, 2.0) and 7.5", problems)[1] == pytest.approx(1.0, abs=1e-7)
    assert problems and "ground truth" in problems[0]  # DriveLM's reshape would raise here


def test_language_aggregate_and_final_weights():
    lang = {"Bleu_1": 0.4, "Bleu_2": 0.3, "Bleu_3": 0.2, "Bleu_4": 0.1, "ROUGE_L": 0.6, "CIDEr": 1.5}
    assert metrics.language_aggregate(lang) == pytest.approx(1.0 / 12 + 0.2 + 0.05)
    assert metrics.final_score(50.0, 0.3, 40.0, 0.5) == pytest.approx(0.4 * 0.5 + 0.2 * 0.3 + 0.2 * 0.4 + 0.2 * 0.5)


def _files(tmp_path, preds):
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(with_tags(drivelm_data())))
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(preds))
    return pred, gt


def test_graph_filter_keeps_only_questions_about_matched_objects():
    gt = with_tags(drivelm_data())
    preds = {r["id"]: dict(r) for r in to_flat(gt)}
    preds["sceneA_fA1_0"]["answer"] = f"I see {CAR} only."  # the first answer finds c1, not c2
    routed = route(gt, preds)
    scored = {i for ids in routed.ids.values() for i in ids}
    every = {r["id"] for r in to_flat(gt)}
    # fA1: only pred.0 (index 3) asks about c2, which the first answer did not find. fA2: the first answer
    # names no coordinates, so both questions about the light's tag go (indices 1, 2). fB1 has no tags.
    assert every - scored == {"sceneA_fA1_3", "sceneA_fA2_1", "sceneA_fA2_2"}
    assert routed.total - routed.kept == 3 and f"{WALKER}" in gt["sceneA"]["key_frames"]["fA1"]["QA"]["prediction"][0]["Q"]


def test_oracle_predictions_score_perfectly_with_a_constant_judge(tmp_path):
    gt = with_tags(drivelm_data())
    pred, gt_path = _files(tmp_path, to_flat(gt))
    r = score_files(pred, gt_path, ConstantJudge(80), "regex")
    assert r["accuracy"] == 1.0 and r["match_f1"] == pytest.approx(100.0, abs=1e-5) and r["chatgpt"] == 80.0
    assert r["match"] == pytest.approx(90.0, abs=1e-5)
    assert r["language"]["Bleu_1"] == pytest.approx(1.0) and r["language"]["ROUGE_L"] == pytest.approx(1.0)
    # Even perfect answers lose fA2's two questions about the light: its first answer names no coordinates.
    assert (r["items"]["scored"], r["items"]["total"]) == (15, 17) and not r["problems"]
    expected = 0.4 * 0.8 + 0.2 * r["language_score"] + 0.2 * r["match"] / 100 + 0.2 * 1.0
    assert r["final_score"] == pytest.approx(expected, abs=1e-12)
    assert r["by_stage_accuracy"]["perception"] == {"accuracy": 1.0, "n": 2}
    assert r["tokenizer"] == "regex" and r["language_official"] is False


def test_language_uses_the_ptb_tokenizer_when_java_is_there(tmp_path):
    gt = with_tags(drivelm_data())
    preds = to_flat(gt)
    for p in preds:
        p["answer"] = p["answer"].replace(".", " !").upper()  # case and punctuation: PTB drops both differences
    pred, gt_path = _files(tmp_path, preds)
    r = score_files(pred, gt_path, ConstantJudge(50), "auto")
    assert r["tokenizer"] == ("ptb" if shutil.which("java") else "regex")
    assert r["language"]["Bleu_1"] == pytest.approx(1.0, abs=1e-6) and r["accuracy"] < 1.0


def test_missing_predictions_and_non_text_answers_are_recorded(tmp_path):
    gt = with_tags(drivelm_data())
    preds = to_flat(gt)[1:]  # the very first id is missing
    preds[0]["answer"] = 7
    pred, gt_path = _files(tmp_path, preds)
    r = score_files(pred, gt_path, ConstantJudge(50), "regex")
    probs = {p["id"]: p["problem"] for p in r["problems"]}
    assert "no prediction" in probs["sceneA_fA1_0"] and "int" in probs["sceneA_fA1_1"]
    assert r["final_score"] is not None


def test_judge_gets_drivelm_prompt_and_replies_parse_robustly(tmp_path):
    from drivechain.models.openai_api import OpenAIModel

    def reply(msgs):
        text = msgs[-1]["content"] if isinstance(msgs[-1]["content"], str) else msgs[-1]["content"][0]["text"]
        answer = text.split("This is my answer: ", 1)[1]
        return {"good": "Score: 30", "fine": "62", "odd": "I would rather not say."}.get(answer, "**Score:** 85/100")

    pairs = [("good", "truth one"), ("fine", "truth two"), ("odd", "truth three"), ("other", "truth four")]
    with FakeServer(reply=reply) as srv:
        async def go():
            model = OpenAIModel("judge", srv.base_url, api_key="k")
            try:
                return await ModelJudge(model, concurrency=2).score(pairs, ["a", "b", "c", "d"])
            finally:
                await model.aclose()

        res = asyncio.run(go())
        body = srv.requests[0].body
    assert res.scores == [30.0, 62.0, None, 85.0]
    assert res.failures == [{"id": "c", "error": "no 'Score: N' in the judge reply", "reply": "I would rather not say."}]
    assert body["messages"][0]["content"] == SYSTEM and body["temperature"] == 0.6
    user = body["messages"][1]["content"]
    user = user if isinstance(user, str) else user[0]["text"]
    assert user.startswith(INSTRUCTION + "This is the correct answer: ") and "This is my answer: " in user


def test_cli_score_prints_drivelm_figures_and_refuses_bad_options(tmp_path):
    gt = with_tags(drivelm_data())
    pred, gt_path = _files(tmp_path, to_flat(gt))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "drivechain.cli", "score", "drivelm", *args],
                              capture_output=True, text=True)

    r = cli("--pred", str(pred), "--gt", str(gt_path), "--judge-constant", "50", "--tokenizer", "regex",
            "--out", str(tmp_path / "res.json"))
    assert r.returncode == 0, r.stderr
    assert "accuracy score:  1.0" in r.stdout and "final score:" in r.stdout
    assert "WARNING" in r.stderr and "DIFFER" in r.stderr  # never silently unofficial
    saved = json.loads((tmp_path / "res.json").read_text())
    assert saved["accuracy"] == 1.0 and saved["judge"] == "constant:50"
    for args in ([], ["--judge-constant", "50", "--judge", "openai:x"], ["--judge-constant", "150"]):
        bad = cli("--pred", str(pred), "--gt", str(gt_path), *args)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("[")
    bad = cli("--pred", str(broken), "--gt", str(gt_path), "--judge-constant", "50")
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr


def test_eval_on_an_imported_dataset_adds_a_drivelm_block_and_score_reads_the_run(tmp_path):
    from drivechain.interop.drivelm.importer import import_drivelm
    from tests.drivelm_fixture import write_drivelm

    gt = with_tags(drivelm_data())
    path, images = write_drivelm(tmp_path, gt)
    import_drivelm(path, images, tmp_path / "ds")
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "drivechain.cli", "eval", "--data", str(tmp_path / "ds"), "--model", "oracle",
                        "--protocol", "transitions", "--image", "with", "--no-progress", "--out", str(run)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    block = json.loads((run / "summary.json").read_text())["drivelm"]
    # The oracle's typed answers rendered in DriveLM's style equal the ground truth: every accuracy item right,
    # the tag answers rendered back as the frame's tags (match F1 100); no judge in eval, so no GPT or final.
    assert block["accuracy"] == 1.0 and block["items"]["accuracy"] == 4  # 5 yes/no/letter items, 1 filtered
    assert block["match_f1"] == pytest.approx(100.0, abs=1e-5) and block["chatgpt"] is None and block["final_score"] is None
    assert block["items"]["total"] == 17 and block["items"]["scored"] == 15
    s = subprocess.run([sys.executable, "-m", "drivechain.cli", "score", "drivelm", "--run", str(run), "--gt", str(path),
                        "--judge-constant", "50", "--tokenizer", "regex", "--save-pred", str(tmp_path / "p.json"),
                        "--out", str(tmp_path / "res.json")], capture_output=True, text=True)
    assert s.returncode == 0, s.stderr
    res = json.loads((tmp_path / "res.json").read_text())
    assert res["accuracy"] == 1.0 and res["final_score"] is not None and not res["problems"]
    preds = {p["id"]: p["answer"] for p in json.loads((tmp_path / "p.json").read_text())}
    assert preds["sceneA_fA1_3"] == f"{CAR}." and preds["sceneA_fA1_1"] == "B" and preds["sceneA_fA2_2"] == "yes"
