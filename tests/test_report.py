"""The HTML report, driven in real headless Chromium: sorting, the frame filter checked against
scores.jsonl, one frame's explanation and raw reply, escaping of model text, the single-file page."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import zlib
from html import unescape
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from drivechain.cli import main
from drivechain.report.charts import pareto_front

PAYLOAD = "<img src=x onerror=window.__pwned=1><script>window.__pwned=2</script>"
SECTIONS = ("leaderboard", "compare", "frames", "models", "cost", "closedloop", "process", "runs")
WRONG = {"wrong", "unsafe", "unparsed", "failed"}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def _flips_planning(frame_id: str) -> bool:
    return zlib.crc32(frame_id.encode()) % 2 == 1


def _sloppy_model():
    """The oracle, except that on half of the frames it flips every plan.safe.* answer."""
    from drivechain.models.builtin import _Builtin, _oracle_reply

    def reply(req):
        answers = json.loads(_oracle_reply(req))
        if _flips_planning(str(req.meta.get("frame_id"))):
            for qid in answers:
                if qid.startswith("plan.safe."):
                    answers[qid] = "no" if answers[qid] == "yes" else "yes"
        return json.dumps(answers)

    return _Builtin("sloppy", reply)


@pytest.fixture(scope="module")
def runs(tiny_dataset: Path, tmp_path_factory) -> Path:
    """Eval runs of a sloppy oracle and of a model whose every answer is an HTML/JS payload, one closed loop."""
    import drivechain.models.registry as registry

    base = tmp_path_factory.mktemp("report")
    real = registry.load_model
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(registry, "load_model", lambda spec, **kw: _sloppy_model() if spec == "sloppy" else real(spec, **kw))
        for name, spec in (("sloppy", "sloppy"), ("evil", f"constant:{PAYLOAD}")):
            main(["eval", "--data", str(tiny_dataset), "--model", spec, "--protocol", "all",
                  "--no-progress", "--out", str(base / name)])
    main(["closedloop", "--model", "oracle", "--scenarios", "highway", "--episodes", "1", "--max-steps", "3",
          "--seed", "1", "--workers", "1", "--out", str(base / "loop")])
    main(["process", "--data", str(tiny_dataset), "--generator", "perturb", "--n", "4", "--limit", "6",
          "--out", str(base / "process")])
    main(["prm-eval", "--rater", "plausibility", "--data", str(base / "process"), "--out", str(base / "prm")])
    return base


@pytest.fixture(scope="module")
def report_dir(runs: Path) -> Path:
    main(["report", str(runs / "sloppy"), str(runs / "evil"), str(runs / "loop"), str(runs / "process"),
          str(runs / "prm"), "--out", str(runs / "site")])
    return runs / "site"


def _chromium() -> str:
    path = shutil.which("chromium")
    assert path, "Debian's chromium is installed by 'make test' (Makefile target 'chromium')"
    return path


class Page:
    """A Chromium page on the report that records console errors and dialogs."""

    def __init__(self, pw, url: str, width: int = 1280) -> None:
        self.browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        self.page = self.browser.new_page(viewport={"width": width, "height": 900})
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(url)
        self.page.wait_for_load_state("load")

    def tab(self, name: str) -> None:
        self.page.click(f"nav a[href='#{name}']")
        self.page.wait_for_selector(f"section#{name}:not([hidden])")


def _expected_frames(run: Path) -> set[str]:
    """Frames where the run is wrong at planning and right at perception, from scores.jsonl alone
    (teacher-forced links V->Per and Pred->Plan with the image; ambiguous and text answers ignored)."""
    per_wrong: dict[str, bool] = {}
    plan_wrong: dict[str, bool] = {}
    for line in (run / "scores.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["protocol"] != "transitions" or row["image"] is not True or row["status"] in ("ambiguous", "language"):
            continue
        if row["link"] == "V->Per" and row["stage"] == "perception":
            per_wrong[row["frame_id"]] = per_wrong.get(row["frame_id"], False) or row["status"] in WRONG
        if row["link"] == "Pred->Plan" and row["stage"] == "planning":
            plan_wrong[row["frame_id"]] = plan_wrong.get(row["frame_id"], False) or row["status"] in WRONG
    return {f for f, bad in plan_wrong.items() if bad and f in per_wrong and not per_wrong[f]}


def test_model_text_is_escaped_in_the_page_and_its_data(report_dir: Path):
    html = (report_dir / "index.html").read_text(encoding="utf-8")
    assert "<img src=x" not in html
    # the only scripts are the vendored app script (no inline script, nothing from data)
    assert re.findall(r"<script[^>]*>", html) == ['<script src="assets/report.js">']
    csp = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html).group(1))
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    for section in SECTIONS:
        assert f'<section id="{section}">' in html
    blobs = "".join(p.read_text(encoding="utf-8") for p in (report_dir / "data").glob("*.js"))
    assert "window.__pwned" in blobs  # the payload is in the data, as text ...
    assert "<" not in blobs and ">" not in blobs  # ... with no character that could open or close a tag
    assert all(line.startswith('DC.put("') for p in (report_dir / "data").glob("*.js")
               for line in p.read_text(encoding="utf-8").splitlines())


def test_leaderboard_sorts_and_the_filter_matches_scores_jsonl(report_dir: Path, runs: Path, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    expected = _expected_frames(runs / "sloppy")
    assert expected and all(_flips_planning(f) for f in expected)  # the filter has something to find
    with sync_playwright() as pw:
        p = Page(pw, (report_dir / "index.html").as_uri())
        try:
            page = p.page
            page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)
            board = page.locator("#board-0")
            header = board.locator("thead th", has_text="Overall score")
            col = board.locator("thead th").all_inner_texts().index(header.inner_text())
            values = lambda: [float(v) for v in board.locator(f"tbody tr td:nth-child({col + 1})").evaluate_all(
                "cells => cells.map(c => c.getAttribute('data-v'))")]
            header.click()
            assert values() == sorted(values(), reverse=True) and header.get_attribute("aria-sort") == "descending"
            header.click()
            assert values() == sorted(values()) and header.get_attribute("aria-sort") == "ascending"
            assert len(values()) == 2

            p.tab("compare")
            page.select_option("select.ref-select", "1")
            assert page.locator('.ref-tables[data-ref="1"]').is_visible()
            assert not page.locator('.ref-tables[data-ref="0"]').is_visible()
            page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)

            p.tab("frames")
            page.locator("button.preset", has_text="sloppy: wrong at planning, right at perception").click()
            listed: list[str] = []
            while True:
                listed += page.locator("#frame-list li").evaluate_all(
                    "items => items.map(li => li.getAttribute('data-frame'))")
                if page.locator("#p-next").is_disabled():
                    break
                page.click("#p-next")
            assert set(listed) == expected and len(listed) == len(expected)
            assert page.inner_text("#f-count").startswith(f"{len(expected)} of 12 frames")

            # search by frame id narrows to that frame
            target = sorted(expected)[0]
            page.fill("#f-search", target)
            assert page.locator("#frame-list li").evaluate_all(
                "items => items.map(li => li.getAttribute('data-frame'))") == [target]
            page.locator("#frame-list li").first.click()
            page.wait_for_selector("#node-detail h3")
            page.screenshot(path=str(tmp_path / "frame.png"), full_page=True)
            # the view opens on the model's first wrong step: a plan.safe question, with its explanation
            qid = page.inner_text("#node-detail h3").split(" ")[0]
            assert qid.startswith("plan.safe.")
            record = next(json.loads(line) for line in
                          (Path(json.loads((runs / "sloppy" / "config.json").read_text())["data"]) / "frames.jsonl")
                          .read_text().splitlines() if json.loads(line)["frame"]["frame_id"] == target)
            node = next(n for n in record["graph"]["nodes"] if n["qid"] == qid)
            assert node["explanation"] and node["explanation"] in page.inner_text("#node-detail")
            assert page.locator(".node.first").count() >= 1
            assert "first wrong step of sloppy" in page.inner_text("#graph")
            # selecting a node highlights its parents
            assert page.locator(".node.parent").count() == len(node["parents"])

            # the raw reply of the request that produced the sloppy answer, as stored in results.sqlite
            row = next(json.loads(line) for line in (runs / "sloppy" / "scores.jsonl").read_text().splitlines()
                       if f'"frame_id": "{target}"' in line and f'"qid": "{qid}"' in line
                       and '"link": "Pred->Plan"' in line and '"image": true' in line)
            import sqlite3

            with sqlite3.connect(runs / "sloppy" / "results.sqlite") as db:
                reply = db.execute("SELECT text FROM results WHERE key = ?", (row["key"],)).fetchone()[0]
            page.locator("#node-detail details.request[data-model='0'] summary").click()
            page.wait_for_selector("#node-detail details.request[data-model='0'] pre.reply")
            assert page.inner_text("#node-detail details.request[data-model='0'] pre.reply") == reply
            page.locator("#node-detail details.request[data-model='0'] details.prompt > summary").click()
            assert "[" + qid + "]" in page.inner_text("#node-detail details.request[data-model='0'] details.prompt")
            # the evil model's reply is shown as text and runs nothing
            page.locator("#node-detail details.request[data-model='1'] summary").click()
            page.wait_for_selector("#node-detail details.request[data-model='1'] pre.reply")
            assert "<script>window.__pwned=2</script>" in page.inner_text(
                "#node-detail details.request[data-model='1'] pre.reply")
            assert PAYLOAD in page.inner_text("#node-detail")
            page.screenshot(path=str(tmp_path / "frame_reply.png"), full_page=True)

            for section in ("models", "cost", "closedloop", "process", "runs"):
                p.tab(section)
                if section == "closedloop":
                    page.locator("button.replay-open").first.click()
                    page.wait_for_selector("#replay-view input[type=range]")
                    assert page.inner_text("#replay-view .caption").startswith("Step 0")
                    page.locator("#replay-view input[type=range]").evaluate(
                        "s => { s.value = '1'; s.dispatchEvent(new Event('input')); }")
                    assert page.inner_text("#replay-view .caption").startswith("Step 1")
                if section == "process":  # best-of-N accuracies with intervals rebuilt over frames
                    cells = page.locator("section#process table.bon td.num").all_inner_texts()
                    full = [c for c in cells if re.fullmatch(r"\d\.\d{3}\s*\[\d\.\d\d, \d\.\d\d\]", c.strip())]
                    assert cells and len(full) >= len(cells) // 2
                    assert all(c in full or re.fullmatch(r"\d\.\d{3}|—", c.strip()) for c in cells)
                page.screenshot(path=str(tmp_path / f"{section}.png"), full_page=True)
            assert page.evaluate("window.__pwned === undefined")
            assert page.locator("img[src='x']").count() == 0
            broken = page.evaluate("Array.from(document.images).filter(i => i.src && (!i.complete || i.naturalWidth === 0)).length")
            assert broken == 0
        finally:
            p.browser.close()
    assert p.errors == [] and p.dialogs == []
    shot = Image.open(tmp_path / "frame.png").convert("L")
    assert max(ImageStat.Stat(shot).stddev) > 10  # text, tables and images, not a blank page


def test_single_file_report_works_alone(runs: Path, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    out = tmp_path / "single"
    main(["report", str(runs / "sloppy"), str(runs / "evil"), "--single-file", "--out", str(out)])
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]
    moved = tmp_path / "elsewhere.html"  # works without the run folders' images beside it
    shutil.move(str(out / "index.html"), moved)
    html = moved.read_text(encoding="utf-8")
    assert "<img src=x" not in html and "script-src &#39;sha256-" in html
    with sync_playwright() as pw:
        p = Page(pw, moved.as_uri(), width=1000)
        try:
            p.tab("frames")
            p.page.locator("button.preset").first.click()
            p.page.locator("#f-clear").click()
            assert p.page.inner_text("#f-count").startswith("12 of 12")
            p.page.locator("#frame-list li").first.click()
            p.page.wait_for_selector("#node-detail h3")
            assert p.page.evaluate("Array.from(document.images).every(i => i.src.startsWith('data:') && i.naturalWidth > 0)")
            assert p.page.evaluate("document.documentElement.scrollWidth") <= 1000  # fits 1,000 px
            png = p.page.screenshot(full_page=False)
            assert p.page.evaluate("window.__pwned === undefined")
        finally:
            p.browser.close()
    assert p.errors == [] and p.dialogs == []
    assert max(ImageStat.Stat(Image.open(io.BytesIO(png)).convert("L")).stddev) > 10


def test_incomplete_run_is_greyed_unranked_and_different_datasets_warn(runs: Path, tmp_path: Path):
    run = tmp_path / "cut"
    shutil.copytree(runs / "evil", run)
    summary = json.loads((run / "summary.json").read_text())
    summary.update(complete=False, incomplete_reason="stopped after 3 of 12 frames <b>", dataset_hash="feedface" * 8,
                   drivelm={"final_score": 0.4})  # a block added by another command
    (run / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "mystery").mkdir()  # a run kind the report does not know: listed, escaped
    (tmp_path / "mystery" / "summary.json").write_text(json.dumps({"probe": {"<i>accuracy": 0.5}}))
    main(["report", str(runs / "sloppy"), str(run), str(tmp_path / "mystery"), "--out", str(tmp_path / "site")])
    html = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    rows = re.findall(r'<tr class="(incomplete)?"[^>]*>\s*<td class="num" data-v="([^"]*)">', html)
    assert ("incomplete", "") in rows and ("", "1") in rows  # greyed and unranked; the other is first
    assert "incomplete: stopped after 3 of 12 frames &lt;b&gt;" in html
    assert "evaluate different datasets" in html
    assert "Comparisons need two or more evaluation runs on the same dataset" in html
    assert "drivelm.final_score" in html and "probe.&lt;i&gt;accuracy" in html and "<i>" not in html


def test_paired_difference_is_confident_only_when_the_frames_say_so():
    from drivechain.report.compare import compare_group
    from drivechain.report.scores import RunScores

    frames = [f"f{i}" for i in range(40)]
    a, b, c = RunScores("a", frames), RunScores("b", frames), RunScores("c", frames)
    for i, f in enumerate(frames):
        a.cells["family:x"][f] = [float(i % 2), 1.0]  # 0.5
        b.cells["family:x"][f] = [1.0, 1.0]  # 1.0: better than a on every frame a missed
        c.cells["family:x"][f] = [float((i + 1) % 2), 1.0]  # 0.5, on the other frames
    out = compare_group([a, b, c], ["a", "b", "c"])
    cells = out["by_ref"][0]["tables"][0]["rows"][0]["cells"]
    assert cells[1]["diff"] == pytest.approx(0.5) and cells[1]["verdict"] == "better"
    assert cells[1]["diff_ci"][0] > 0.25
    assert cells[2]["diff"] == pytest.approx(0.0) and cells[2]["verdict"] == ""
    assert cells[2]["diff_ci"][0] < 0 < cells[2]["diff_ci"][1]
    worse = out["by_ref"][1]["tables"][0]["rows"][0]["cells"][0]
    assert worse["verdict"] == "worse" and worse["diff"] == pytest.approx(-0.5)


def test_stage_outcomes_and_first_wrong_step():
    from drivechain.report.scores import first_wrong_stage, stage_outcomes, stage_percent

    stage_of = {"p1": "perception", "p2": "perception", "q1": "prediction", "a1": "planning", "a2": "planning"}
    answers = {"p1": ["1", "correct", 1.0, "", None], "p2": ["x", "ambiguous", 0.0, "", None],
               "q1": ["2", "partial", 0.5, "", None], "a1": ["A", "unsafe", 0.0, "", None],
               "a2": ["yes", "correct", 1.0, "", None]}
    assert stage_outcomes(answers, stage_of) == "rpu-"
    assert stage_percent(answers, stage_of) == [100, 50, 50, -1]
    assert first_wrong_stage("rpu-") == "planning" and first_wrong_stage("rr--") is None


def test_pareto_front_keeps_only_undominated_models():
    points = [("cheap-bad", 0.0, 0.3), ("mid", 1.0, 0.6), ("dominated", 2.0, 0.5), ("best", 5.0, 0.9)]
    assert pareto_front(points) == {"cheap-bad", "mid", "best"}


def test_report_on_a_missing_folder_is_one_line_and_exit_2(tmp_path: Path):
    res = subprocess.run([sys.executable, "-m", "drivechain.cli", "report", str(tmp_path / "nope"),
                          "--out", str(tmp_path / "site")], capture_output=True, text=True)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_bootstrap_interval_of_a_mean():
    from drivechain.report.build import bootstrap_mean_ci

    assert bootstrap_mean_ci([0.5]) is None  # one episode: no interval
    assert bootstrap_mean_ci([0.7, 0.7, 0.7]) == pytest.approx([0.7, 0.7])
    lo, hi = bootstrap_mean_ci([0.0, 1.0] * 20)
    assert lo < 0.5 < hi and hi - lo < 0.5
    assert bootstrap_mean_ci([0.0, 1.0] * 20) == [lo, hi]  # seeded
