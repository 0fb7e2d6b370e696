"""Reward-model metrics beyond the point figures: step AUROC, first-error confusion, bootstrap intervals.

- Step AUROC: every step of the ProcessBench items up to and including the first step rated -1
  (later steps are not labelled, as in PRM800K), each distinct (frame, earlier steps, step) once;
  positive = rated 0 or +1; a failed rating counts 0.
- First-error confusion: rows = the true first-error stage (``none`` for a correct chain), columns =
  the predicted one (first step scored below the threshold).
- Intervals: 95 % percentile bootstrap over frames (frames resampled with replacement, ``B`` times,
  fixed seed), for best-of-N accuracy, first-error F1 and step AUROC.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drivechain.schema import STAGES

BOOTSTRAP = 1000
AUROC_BOOTSTRAP = 200
SEED = 0
INTERVAL = "95% percentile bootstrap over frames"


def auroc(labels: list[int] | np.ndarray, scores: list[float] | np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); None without both classes."""
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]  # average rank of each tie block (1-based)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def step_auroc_rows(items: list[dict[str, Any]], scores: list[list[float | None]]) -> list[tuple[str, int, float]]:
    """(frame_id, label, score) of each distinct labelled step (see the module docstring)."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for it, sc in zip(items, scores):
        stop = int(it["label"])
        last = len(it["steps"]) - 1 if stop < 0 else stop
        for k in range(last + 1):
            r = it["step_ratings"][k]
            if r is None:
                continue
            key = (it["frame_id"], tuple(it["steps"][:k + 1]))
            if key in seen:
                continue
            seen.add(key)
            out.append((it["frame_id"], int(r >= 0), float(sc[k] or 0.0)))
    return out


def _interval(values: np.ndarray) -> list[float] | None:
    values = values[~np.isnan(values)]
    if not len(values):
        return None
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [round(float(lo), 6), round(float(hi), 6)]


def _frame_draws(n_frames: int, b: int) -> np.ndarray:
    return np.random.default_rng(SEED).integers(0, n_frames, size=(b, n_frames))


def mean_interval(per_frame: list[float], b: int = BOOTSTRAP) -> list[float] | None:
    """Bootstrap interval of a mean over frames."""
    if not per_frame:
        return None
    v = np.asarray(per_frame, dtype=np.float64)
    return _interval(v[_frame_draws(len(v), b)].mean(axis=1))


def f1_interval(frame_ids: list[str], labels: list[int], preds: list[int], b: int = BOOTSTRAP) -> list[float] | None:
    """Bootstrap interval of ProcessBench F1 with frames resampled."""
    frames = sorted(set(frame_ids))
    if not frames:
        return None
    idx = {f: i for i, f in enumerate(frames)}
    counts = np.zeros((len(frames), 4))  # erroneous items, found exactly, correct items, predicted -1
    for f, lab, p in zip(frame_ids, labels, preds):
        row = counts[idx[f]]
        if lab >= 0:
            row[0] += 1
            row[1] += lab == p
        else:
            row[2] += 1
            row[3] += p < 0
    tot = counts[_frame_draws(len(frames), b)].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        a1 = tot[:, 1] / tot[:, 0]
        a2 = tot[:, 3] / tot[:, 2]
        f1 = np.where(a1 + a2 > 0, 2 * a1 * a2 / (a1 + a2), 0.0)
    f1[np.isnan(a1) | np.isnan(a2)] = np.nan
    return _interval(f1)


def auroc_interval(rows: list[tuple[str, int, float]], b: int = AUROC_BOOTSTRAP) -> list[float] | None:
    """Bootstrap interval of step AUROC with frames resampled."""
    frames = sorted({f for f, _, _ in rows})
    if not frames:
        return None
    by: dict[str, list[int]] = {}
    for i, (f, _, _) in enumerate(rows):
        by.setdefault(f, []).append(i)
    y = np.array([r[1] for r in rows])
    s = np.array([r[2] for r in rows])
    vals = []
    for draw in _frame_draws(len(frames), b):
        sel = np.concatenate([by[frames[j]] for j in draw])
        a = auroc(y[sel], s[sel])
        vals.append(np.nan if a is None else a)
    return _interval(np.array(vals))


def stage_name(index: int) -> str:
    """``none`` for -1, else the stage of a step index."""
    return "none" if index < 0 else STAGES[index] if index < len(STAGES) else f"step{index}"


def first_error_confusion(labels: list[int], preds: list[int]) -> dict[str, Any]:
    """True first-error stage x predicted first-error stage, as counts."""
    names = ["none", *STAGES]
    matrix = [[0] * len(names) for _ in names]
    for lab, p in zip(labels, preds):
        matrix[names.index(stage_name(lab))][names.index(stage_name(p))] += 1
    return {"rows": "true first-error stage", "columns": "predicted first-error stage", "labels": names,
            "matrix": matrix}


def curves_block(bon: dict[str, dict[str, float | None]], ci: dict[str, dict[str, list[float] | None]],
                 rater: str) -> dict[str, Any]:
    """A self-describing best-of-N block: one line per selector with its interval."""
    lines = {}
    for sel, row in bon.items():
        ns = sorted((n for n, v in row.items() if v is not None), key=int)
        lines[sel] = {"n": [int(n) for n in ns], "accuracy": [row[n] for n in ns],
                      "low": [(ci[sel][n] or [None, None])[0] for n in ns],
                      "high": [(ci[sel][n] or [None, None])[1] for n in ns]}
    return {"rater": rater, "x": "N (chains per group)",
            "y": "share of groups whose selected chain's final answer (plan.action) is rated 0 or +1",
            "interval": f"{INTERVAL} ({BOOTSTRAP} resamples, seed {SEED})", "lines": lines}
