"""``drivechain demo`` runs the whole pipeline end to end (at the tiny size)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drivechain.cli import main


def test_demo_runs_every_stage_and_writes_the_report(tmp_path: Path, capsys):
    out = tmp_path / "demo"
    main(["demo", "--out", str(out), "--size", "tiny", "--workers", "1"])
    runs = out / "runs"
    for model in ("oracle", "heuristic", "constant", "random"):
        ev = json.loads((runs / f"eval-{model}" / "summary.json").read_text())
        cl = json.loads((runs / f"closedloop-{model}" / "summary.json").read_text())
        assert ev["frames"] > 0 and ev["failures"] == 0
        assert 0.0 <= cl["driving_score"] <= 1.0
    oracle = json.loads((runs / "eval-oracle" / "summary.json").read_text())
    assert oracle["overall"] == pytest.approx(1.0)
    assert (runs / "process" / "prm800k.jsonl").stat().st_size > 0
    assert json.loads((runs / "prm-oracle" / "summary.json").read_text())
    html = (out / "report" / "index.html").read_text()
    for model in ("oracle", "heuristic", "constant", "random"):
        assert model in html
    printed = capsys.readouterr().out
    assert "leaderboard" in printed and str(out / "report" / "index.html") in printed


def test_demo_refuses_a_folder_it_did_not_write(tmp_path: Path, capsys):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--out", str(tmp_path), "--size", "tiny"])
    assert exit_.value.code == 2
    assert "not written by 'drivechain demo'" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").read_text() == "keep me"
