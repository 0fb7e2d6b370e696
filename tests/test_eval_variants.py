"""``eval --variants all`` on a dataset polished through the loopback server: each question asked in each
kept wording; score per variant, template->rewording drop and consistency, per family and link."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.fakeserver import FakeServer
from tests.test_eval_helpers import write_dataset
from tests.test_language_polish import paraphraser


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "drivechain.cli", *args], capture_output=True, text=True, timeout=300)


def wording_sensitive(messages) -> str:
    """Says yes to every template question and no as soon as a rewording is in the prompt."""
    text = json.dumps(messages)
    return "no" if "Put simply:" in text or "In this scene," in text else "yes"


def test_variants_all_scores_each_wording_and_leaves_the_template_scores_alone(tmp_path):
    data = write_dataset(tmp_path / "data", 4)
    polished = tmp_path / "polished"
    with FakeServer(reply=paraphraser) as srv:
        proc = _cli("polish", "--data", str(data), "--model", "openai:p", "--base-url", srv.base_url,
                    "--variants", "2", "--out", str(polished), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]

    summaries = {}
    with FakeServer(reply=wording_sensitive) as srv:
        for name, extra in (("plain", []), ("variants", ["--variants", "all"])):
            proc = _cli("eval", "--data", str(polished), "--model", "openai:m", "--base-url", srv.base_url,
                        "--protocol", "transitions", "--links", "Per->Pred", "--image", "without", "--ask", "one",
                        "--retries", "0", "--no-progress", "--out", str(tmp_path / name), *extra)
            assert proc.returncode == 0, proc.stderr[-2000:]
            summaries[name] = json.loads((tmp_path / name / "summary.json").read_text())
    plain, var = summaries["plain"], summaries["variants"]
    assert "variants" not in plain or plain["variants"] is None
    for key in ("overall", "stages", "transitions_no_image", "families", "answers"):
        assert var[key] == plain[key], key  # the usual scores see the template wording only
    v = var["variants"]
    # pred.cut_in is true in 1 frame of 4: "yes" scores 0.25 on templates, "no" 0.75 on rewordings
    cut_in = v["families"]["pred.cut_in"]
    assert cut_in["per_variant"] == {"0": 0.25, "1": 0.75, "2": 0.75}
    assert cut_in["drop"] == -0.5 and cut_in["consistency"] == 0.0 and cut_in["questions"] == 4
    lo, hi = cut_in["drop_ci95"]
    assert lo <= -0.5 <= hi
    # unparsed in every wording is the same (non-)answer: consistent, no drop
    ttc = v["families"]["pred.ttc"]
    assert ttc["consistency"] == 1.0 and ttc["drop"] == 0.0
    assert set(v["links"]) == {"Per->Pred (no image)"}
    rows = [json.loads(x) for x in (tmp_path / "variants" / "scores.jsonl").read_text().splitlines()]
    assert {r.get("variant", 0) for r in rows} == {0, 1, 2}


def test_variants_all_needs_a_polished_dataset(tmp_path):
    data = write_dataset(tmp_path / "data", 1)
    proc = _cli("eval", "--data", str(data), "--model", "oracle", "--variants", "all", "--out", str(tmp_path / "r"),
                "--no-progress")
    assert proc.returncode == 2 and "polish it first" in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli("eval", "--data", str(data), "--model", "oracle", "--variants", "some", "--out", str(tmp_path / "r"),
                "--no-progress")
    assert proc.returncode == 2 and "--variants" in proc.stderr


def test_report_shows_the_wording_table(tmp_path):
    """A summary with a variants block renders its table (family rows, drop with its interval), escaped."""
    from drivechain.report.build import build_report

    run = tmp_path / "run"
    run.mkdir()
    block = {"questions": 4, "per_variant": {"0": 0.25, "1": 0.75}, "drop": -0.5, "drop_ci95": [-0.9, -0.1],
             "consistency": 0.0, "consistency_ci95": [0.0, 0.0]}
    summary = {"model": "m", "overall": 0.5, "stages": {}, "transitions": {}, "transitions_no_image": {},
               "requests": 1, "failures": 0, "unparsed": 0, "wall_s": 1.0, "frames": 1, "complete": True,
               "variants": {**block, "families": {"pred.<b>cut_in": block}, "links": {"Per->Pred": block}}}
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "config.json").write_text(json.dumps({"model": "m", "data": str(tmp_path / "nodata")}))
    (run / "scores.jsonl").write_text("")
    html = build_report([run], tmp_path / "report", single_file=True).read_text()
    assert "Wording robustness" in html and "pred.&lt;b&gt;cut_in" in html and "[-0.90, -0.10]" in html
