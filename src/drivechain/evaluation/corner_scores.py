"""Open-loop scores of the corner cases: per ability and per difficulty level, with intervals.

Uses the teacher-forced rows with the image (as ``overall`` does) of frames whose meta names a
corner case (sources/corner_cases.py). Frames of an "unavoidable" level are counted, never
scored. The critical question's own score is reported beside the mean of all questions.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

BOOTSTRAP_SAMPLES = 1000


def _ci(per_frame: dict[str, list[float]], seed: int = 0) -> list[float] | None:
    import numpy as np

    if not per_frame:
        return None
    sums = np.array([sum(v) for v in per_frame.values()])
    counts = np.array([len(v) for v in per_frame.values()])
    pick = np.random.default_rng(seed).integers(0, len(sums), size=(BOOTSTRAP_SAMPLES, len(sums)))
    means = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return [round(float(lo), 6), round(float(hi), 6)]


def _cell(rows: list[dict[str, Any]]) -> dict[str, Any]:
    per_frame: dict[str, list[float]] = defaultdict(list)
    crit: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        per_frame[r["frame_id"]].append(float(r["score"]))
        if r.get("critical"):
            crit[r["frame_id"]].append(float(r["score"]))
    mean = lambda d: round(sum(sum(v) for v in d.values()) / sum(len(v) for v in d.values()), 6) if d else None  # noqa: E731
    return {"score": mean(per_frame), "score_ci95": _ci(per_frame), "frames": len(per_frame),
            "critical": mean(crit), "critical_ci95": _ci(crit), "critical_answers": sum(len(v) for v in crit.values())}


def corner_summary(rows: list[dict[str, Any]], records: list[Any]) -> dict[str, Any] | None:
    """The ``corner`` block of summary.json (None when no frame is a corner case)."""
    from drivechain.evaluation.summary import typed

    corner = {r.frame.frame_id: r.frame.meta["corner"] for r in records
              if isinstance(r.frame.meta.get("corner"), dict) and "probe" not in r.frame.meta}
    if not corner:
        return None
    scored = [dict(r, critical=r["qid"] == corner[r["frame_id"]].get("critical_qid"))
              for r in rows if r.get("frame_id") in corner and r.get("protocol") == "transitions"
              and r.get("image") is True and typed(r) and not corner[r["frame_id"]].get("unavoidable")]
    if not scored and not any(m.get("unavoidable") for m in corner.values()):
        return None  # no teacher-forced rows (e.g. a probes-only run)
    by_ability: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_level: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in scored:
        meta = corner[r["frame_id"]]
        by_ability[meta["ability"]].append(r)
        by_level[f"{meta['case']} L{meta['level']} (TTC {meta['params'].get('ttc_s')} s)"].append(r)
    unavoidable = sorted({fid for fid, m in corner.items() if m.get("unavoidable")})
    return {
        "kind": "corner",
        "title": "Corner cases (open loop)",
        "description": "Teacher-forced scores with the image on the scripted-hazard scenarios, per ability "
                       "and per case and difficulty level (L0 easiest; TTC = time to collision the hazard "
                       "leaves at its trigger). 'critical' is the case's critical question. Frames of levels "
                       "the teacher cannot drive (unavoidable) are excluded. 95 % bootstrap intervals over "
                       "frames. docs/scenarios.md",
        "frames": len(corner),
        "unavoidable_frames_excluded": len(unavoidable),
        "by_ability": {k: _cell(v) for k, v in sorted(by_ability.items())},
        "by_level": {k: _cell(v) for k, v in sorted(by_level.items())},
    }
