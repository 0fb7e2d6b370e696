"""Families x models and links x models, with each model's difference to a reference model.

Runs are compared only on the same dataset (same hash) and only on the frames every compared run
answered; each score and each difference gets a paired bootstrap interval over those frames
(``stats``). A difference whose interval excludes 0 is called a win or a loss "with 95 % confidence".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drivechain.report import stats
from drivechain.report.scores import RunScores

LINK_ORDER = ("V->Per", "V->Pred", "V->Plan", "Per->Pred", "Per->Plan", "Pred->Plan")
STAGE_ORDER = ("perception", "prediction", "planning", "behavior")


def _cell_order(cells: set[str]) -> list[tuple[str, list[str]]]:
    families = sorted(c for c in cells if c.startswith("family:"))
    links = [f"link:{k}" for k in LINK_ORDER if f"link:{k}" in cells]
    links += [f"link:{k} (no image)" for k in LINK_ORDER if f"link:{k} (no image)" in cells]
    stages = [f"stage:{s}" for s in STAGE_ORDER if f"stage:{s}" in cells]
    return [(title, group) for title, group in (
        ("Stages (answers of the teacher-forced links into the stage, with the image)", stages),
        ("Question families (teacher-forced links, with the image)", families),
        ("Links (teacher-forced: evidence -> stage asked)", links),
    ) if group]


def compare_group(scored: list[RunScores], labels: list[str]) -> dict[str, Any]:
    """Scores, intervals and paired differences for runs of one dataset; ``labels`` name the runs."""
    common = set(scored[0].frames)
    for s in scored[1:]:
        common &= set(s.frames)
    frames = sorted(common)
    cells = set().union(*(s.cells.keys() for s in scored))
    groups = _cell_order(cells)
    names = [c for _, group in groups for c in group]
    n_f, n_c = len(frames), len(names)
    pick = stats.resample_indices(max(n_f, 1))
    point = np.full((len(scored), n_c), np.nan)
    draws = np.full((len(scored), stats.SAMPLES, n_c), np.nan)
    for m, s in enumerate(scored):
        sums, counts = np.zeros((n_f, n_c)), np.zeros((n_f, n_c))
        for c, name in enumerate(names):
            per_frame = s.cells.get(name, {})
            for f, frame in enumerate(frames):
                got = per_frame.get(frame)
                if got:
                    sums[f, c], counts[f, c] = got
        with np.errstate(invalid="ignore", divide="ignore"):
            point[m] = sums.sum(axis=0) / counts.sum(axis=0)
        if n_f >= 2:
            draws[m] = stats.ratio_draws(sums, counts, pick)
    rows_by_ref = []
    for ref in range(len(scored)):
        tables = []
        for title, group in groups:
            rows = []
            for name in group:
                c = names.index(name)
                cells_out = []
                for m in range(len(scored)):
                    cell: dict[str, Any] = {"score": _num(point[m, c]), "ci": stats.interval(draws[m, :, c])}
                    if m != ref:
                        diff = point[m, c] - point[ref, c]
                        ci = stats.interval(draws[m, :, c] - draws[ref, :, c])
                        cell.update(diff=_num(diff), diff_ci=ci, verdict=_verdict(ci))
                    cells_out.append(cell)
                rows.append({"name": name.split(":", 1)[1], "cells": cells_out})
            tables.append({"title": title, "rows": rows})
        rows_by_ref.append({"ref": ref, "tables": tables})
    return {"models": labels, "frames": n_f, "by_ref": rows_by_ref}


def _num(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 6)


def _verdict(ci: list[float] | None) -> str:
    """'better' / 'worse' when the paired interval excludes 0, else '' (no confident difference)."""
    if not ci:
        return ""
    return "better" if ci[0] > 0 else "worse" if ci[1] < 0 else ""


def comparisons(scored: dict[str, RunScores], runs: list[Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    """One comparison per dataset that two or more eval runs share."""
    by_key: dict[str, list[Any]] = {}
    for run in runs:
        by_key.setdefault(run.dataset_key, []).append(run)
    out = []
    for key, group in by_key.items():
        if len(group) < 2:
            continue
        result = compare_group([scored[str(r.path)] for r in group], [labels[str(r.path)] for r in group])
        result["dataset"] = group[0].dataset
        out.append(result)
    return out
