"""Counterfactual probes: edits verified on image and labels, expected flips, oracle 1.0, heuristic ~0."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from drivechain.dataset import load_dataset
from drivechain.generate import GenerateConfig, generate
from drivechain.probing import ProbeConfig, answer_change, build_probes
from drivechain.schema import QA, BooleanAnswer, NumberAnswer


@pytest.fixture(scope="module")
def probe_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("probes")
    data = root / "data"
    generate(GenerateConfig(scenarios=["stalled", "cutin"], episodes=1, steps_per_episode=3, epsilon=0.3,
                            image_size=(300, 75)), data)
    out = root / "probes"
    stats = build_probes(data, out, ProbeConfig(edits=["remove", "shift_lane", "brake"], per_frame=3))
    return data, out, stats


def _records(path):
    return {r.frame.frame_id: r for r in load_dataset(path).records()}


def _colour(image, box):
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    patch = image[max(0, y0):max(0, y1), max(0, x0):max(0, x1)].astype(int)
    return int(((patch.max(axis=2) - patch.min(axis=2)) > 60).sum()) if patch.size else 0


def test_probes_replay_exactly_and_every_probe_is_verified(probe_set):
    data, out, stats = probe_set
    assert stats["frames"] == 6 and stats.get("replay_mismatch", 0) == 0
    assert stats["probes"] >= 10 and stats["valid"] == stats["probes"]
    probes = [json.loads(line) for line in (out / "probes.jsonl").read_text().splitlines()]
    assert {p["role"] for p in probes} == {"critical", "distractor"}
    assert sum(len(p["flips"]) for p in probes) > 0


def test_a_removed_vehicle_is_gone_from_image_and_labels_and_nothing_else_changed(probe_set):
    _, out, _ = probe_set
    recs = _records(out)
    removed = [r for r in recs.values() if (r.frame.meta.get("probe") or {}).get("edit") == "remove"]
    assert removed
    seen_image_check = 0
    for edited in removed:
        probe = edited.frame.meta["probe"]
        orig = recs[probe["of"]]
        vid = probe["agent"]
        assert orig.frame.agent(vid) is not None and edited.frame.agent(vid) is None
        for node in edited.graph.nodes:
            assert vid not in node.objects and vid not in getattr(node.answer, "ids", [])
        # untouched agents: same state, same per-vehicle perception labels
        for a in orig.frame.agents:
            if a.id != vid:
                b = edited.frame.agent(a.id)
                assert (b.x_m, b.y_m, b.speed_mps, b.lane_id) == (a.x_m, a.y_m, a.speed_mps, a.lane_id)
        per_o = {n.qid: n.answer for n in orig.graph.nodes if n.stage == "perception"}
        for n in edited.graph.nodes:
            if n.stage == "perception" and n.qid.startswith("per.vehicle_lane.v"):
                assert per_o[n.qid] == n.answer
        # the image: the vehicle's pixels are gone where it stood
        img_o = np.asarray(Image.open(out / orig.frame.images["bev"]).convert("RGB"))
        img_e = np.asarray(Image.open(out / edited.frame.images["bev"]).convert("RGB"))
        box = orig.frame.agent(vid).boxes["bev"]
        if _colour(img_o, box) > 0 and "gone_from_image" in probe["checks"]:
            assert _colour(img_e, box) == 0
            seen_image_check += 1
    assert seen_image_check >= 1


def test_expected_flips_are_real_answer_changes(probe_set):
    _, out, _ = probe_set
    recs = _records(out)
    for r in recs.values():
        probe = r.frame.meta.get("probe")
        if not probe:
            continue
        orig = {n.qid: n for n in recs[probe["of"]].graph.nodes}
        mine = {n.qid: n for n in r.graph.nodes}
        for q in probe["flips"]:
            assert orig[q].answer != mine[q].answer
        for q in probe["stable"]:
            assert answer_change(orig[q], mine[q]) == "same"
        if probe["edit"] == "shift_lane":
            assert f"per.vehicle_lane.v{probe['agent']}" in probe["flips"]


def _eval(out, model):
    from drivechain.evaluation.protocols import AskOptions
    from drivechain.evaluation.runner import RunPolicy, evaluate
    from drivechain.models.registry import load_model

    ds = load_dataset(out)
    run = out.parent / f"run-{model}"
    summary = asyncio.run(evaluate(list(ds.records()), load_model(model), run, protocols=("probes",),
                                   opts=AskOptions(image_root=str(out)), policy=RunPolicy(), progress=False))
    return summary["probes"]


def test_oracle_scores_one_and_text_only_heuristic_misses_the_flips(probe_set):
    _, out, _ = probe_set
    oracle = _eval(out, "oracle")
    assert oracle["flip_recall"] == 1.0 and oracle["stability"] == 1.0 and oracle["flips"] > 0
    heuristic = _eval(out, "heuristic")
    assert heuristic["flip_recall"] <= 0.05  # it never sees the image: the edit cannot move its answer
    assert heuristic["stability"] >= 0.95
    assert set(heuristic["by_edit"]) <= {"remove", "shift_lane", "brake"}
    lo, hi = oracle["flip_recall_ci95"]
    assert lo <= 1.0 <= hi


def test_answer_change_rules():
    def b(v, both=False):
        return QA(qid="q", family="q", stage="perception", question="?", answer=BooleanAnswer(value=v, accept_both=both))

    def n(v):
        return QA(qid="q", family="q", stage="perception", question="?",
                  answer=NumberAnswer(value=v, unit="m", abs_tol=2.0))

    assert answer_change(b(True), b(False)) == "flip"
    assert answer_change(b(True), b(True)) == "same"
    assert answer_change(b(True, both=True), b(False)) == "unclear"
    assert answer_change(n(10.0), n(11.0)) == "same"
    assert answer_change(n(10.0), n(13.0)) == "unclear"
    assert answer_change(n(10.0), n(20.0)) == "flip"
    assert answer_change(n(None), n(5.0)) == "flip"


def test_probe_bad_input_is_one_line_and_exit_2(tmp_path, probe_set):
    data, _, _ = probe_set
    cmd = [sys.executable, "-m", "drivechain.cli", "probe", "--out", str(tmp_path / "p")]
    for extra in (["--data", str(tmp_path / "missing")], ["--data", str(data), "--edits", "paint"]):
        res = subprocess.run(cmd + extra, capture_output=True, text=True, timeout=120)
        assert res.returncode == 2
        assert res.stderr.strip().count("\n") == 0 and res.stderr.startswith("error:")
        assert not (tmp_path / "p").exists()


def test_report_shows_each_probe_pair_side_by_side_in_chromium(probe_set, tmp_path):
    """The report's probe tab, in headless Chromium: both images of a pair load from the report folder (hashed
    names, never a model's), and each model's answers on both frames sit beside the teacher's."""
    import hashlib
    import shutil

    from playwright.sync_api import sync_playwright

    from drivechain.cli import main

    _, out, _ = probe_set
    payload = "<img src=x onerror=window.__pwned=1>"
    runs = []
    for name, spec in (("oracle", "oracle"), ("heuristic", "heuristic"), ("evil", f"constant:{payload}")):
        runs.append(tmp_path / name)
        main(["eval", "--data", str(out), "--model", spec, "--protocol", "probes", "--no-progress", "--out", str(runs[-1])])
    site = tmp_path / "site"
    main(["report", *map(str, runs), "--out", str(site)])
    html = (site / "index.html").read_text(encoding="utf-8")
    assert "<img src=x" not in html and 'id="probes"' in html
    recs = _records(out)
    scores = {(r["frame_id"], r["qid"]): r for r in map(json.loads, (runs[1] / "scores.jsonl").read_text().splitlines())}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto((site / "index.html").as_uri())
            page.click("nav a[href='#probes']")
            pair = page.locator("details.probe-pair").first
            pair.wait_for()
            imgs = pair.locator(".pair-images img")
            assert imgs.count() == 2
            page.wait_for_function("els => els.every(i => i.complete && i.naturalWidth > 0)",
                                   arg=imgs.element_handles())
            srcs = [imgs.nth(i).get_attribute("src") for i in range(2)]
            page.screenshot(path=str(tmp_path / "probes.png"), full_page=True)
            # the images are the original's and the edited frame's own files, copied under hashed names
            edited = recs[pair.get_attribute("data-probe")]
            orig = recs[edited.frame.meta["probe"]["of"]]
            for src, rec in zip(srcs, (orig, edited)):
                assert src.startswith("img/") and all(m not in src for m in ("oracle", "heuristic", "evil", "constant"))
                want = hashlib.sha256((out / rec.frame.images["bev"]).read_bytes()).hexdigest()
                assert hashlib.sha256((site / src).read_bytes()).hexdigest() == want
            # one row per tracked question; the heuristic's answers as scores.jsonl has them, a missed flip in red
            rows = pair.locator("table.pair tbody tr")
            probe = edited.frame.meta["probe"]
            assert rows.count() == len(probe["flips"]) + len(probe["stable"])
            first = rows.first.locator("td")
            qid = first.nth(0).locator(".qid").inner_text()
            assert qid == probe["flips"][0]
            a, b = scores[(orig.frame.frame_id, qid)], scores[(edited.frame.frame_id, qid)]
            assert first.nth(1).inner_text() == f"{a['truth']} → {b['truth']}"
            heuristic = first.nth(4)
            assert heuristic.inner_text() == f"{a['raw']} → {b['raw']}"
            assert "missed" in heuristic.get_attribute("class") and "followed" in first.nth(3).get_attribute("class")
            assert payload in first.nth(5).inner_text()  # the hostile reply is shown as text
            assert page.evaluate("window.__pwned === undefined") and errors == []
        finally:
            browser.close()
