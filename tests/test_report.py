"""The HTML report: opened by real headless Chromium, model text escaped, nothing from data runs."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from drivechain.cli import main
from drivechain.report.charts import pareto_front

PAYLOAD = "<img src=x onerror=window.__pwned=1><script>window.__pwned=2</script>"
SECTIONS = ("leaderboard", "models", "cost", "frames", "closedloop", "process")


@pytest.fixture(scope="module")
def report_dir(tiny_dataset: Path, tmp_path_factory) -> Path:
    """Eval runs of the oracle and of a model whose every answer is an HTML/JS payload, then the report."""
    base = tmp_path_factory.mktemp("report")
    for name, spec in (("oracle", "oracle"), ("evil", f"constant:{PAYLOAD}")):
        main(["eval", "--data", str(tiny_dataset), "--model", spec, "--protocol", "all",
              "--no-progress", "--out", str(base / name)])
    main(["report", str(base / "oracle"), str(base / "evil"), "--out", str(base / "site")])
    return base / "site"


def test_model_text_is_escaped_in_the_html(report_dir: Path):
    html = (report_dir / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;window.__pwned=2&lt;/script&gt;" in html  # the answer is shown, as text
    assert "<script" not in html.lower()  # the page carries no script at all
    assert "<img src=x" not in html
    for section in SECTIONS:
        assert f'<section id="{section}">' in html


def _chromium() -> str:
    path = shutil.which("chromium")
    assert path, "Debian's chromium is installed by 'make test' (Makefile target 'chromium')"
    return path


def test_chromium_opens_the_report_without_errors_and_runs_nothing(report_dir: Path):
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=_chromium(),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto((report_dir / "index.html").as_uri())
            page.wait_for_load_state("load")
            for section in SECTIONS:
                assert page.locator(f"section#{section}").count() == 1, section
            assert page.locator("section#leaderboard tr").count() >= 3  # header + 2 models
            assert page.locator("img[src='x']").count() == 0
            assert page.evaluate("window.__pwned === undefined")
            # every image the report references loads
            broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length")
            assert broken == 0
            png = page.screenshot(full_page=False)
        finally:
            browser.close()
    assert errors == [] and dialogs == []
    shot = Image.open(io.BytesIO(png)).convert("L")
    assert max(ImageStat.Stat(shot).stddev) > 10  # text, tables and charts, not a blank page


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
