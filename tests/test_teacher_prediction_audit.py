"""Perception and prediction labels audited end to end: a dataset from the real generator, every
frame rebuilt in a FRESH env (gym.make + reset(seed) + the recorded actions) and simulated forward
with the ego on IDLE by bench/label_audit.py's independent code (it never calls the teacher's
geometry nor the source's fork/rollout)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEED = 2  # episode 0 of every scenario; chosen so crossings both ways and a finite TTC occur


def load_audit():
    """bench/label_audit.py as a module (bench/ is scripts, not a package)."""
    if "label_audit" not in sys.modules:
        spec = importlib.util.spec_from_file_location("label_audit", ROOT / "bench" / "label_audit.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules["label_audit"] = mod  # dataclasses look their module up while the file runs
        spec.loader.exec_module(mod)
    return sys.modules["label_audit"]


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    from drivechain.generate import GenerateConfig, generate

    audit = load_audit()
    out = tmp_path_factory.mktemp("audit") / "data"
    cfg = GenerateConfig(scenarios=["highway", "merge", "exit", "intersection", "roundabout"], episodes=1,
                         steps_per_episode=4, seed=SEED, epsilon=0.2)
    generate(cfg, out, workers=1)
    found, frames = audit.audit_dataset(out)
    assert sum(frames.values()) >= 15
    return [v for _, v in found]


def test_no_label_disagrees_with_the_fresh_world(verdicts):
    bad = [f"{v.qid}: {v.detail}" for v in verdicts if v.status == "bad"]
    assert not bad, bad


def test_every_family_was_really_checked(verdicts):
    families = {v.family for v in verdicts if v.status == "ok"}
    for family in ("per.lanes", "per.ego_lane", "per.vehicles", "per.vehicle_side", "per.vehicle_lane",
                   "per.lead_vehicle", "per.lead_distance", "per.lane_free", "per.count", "per.exists",
                   "per.refer", "pred.cut_in", "pred.motion", "pred.near_ego", "pred.ttc_lead", "pred.cross_first"):
        assert family in families, family


def test_crossing_labels_were_checked_both_ways(verdicts):
    checked = [v for v in verdicts if v.family == "pred.cross_first" and v.status == "ok"]
    assert any("truth True label True" in v.detail for v in checked)
    assert any("truth False label False" in v.detail for v in checked)


def test_ttc_matches_a_constant_speed_computation(verdicts):
    ttc = [v for v in verdicts if v.family == "pred.ttc_lead"]
    assert any("label None" not in v.detail for v in ttc)  # at least one finite TTC was compared
