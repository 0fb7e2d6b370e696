"""Seeded bootstrap intervals the report adds to figures the summaries give as points.

Every interval is a 95 % percentile bootstrap (1,000 resamples, seed 0: the same runs give the same
report). Ratios are resampled as ratios of sums over the resampled units (frames or episodes), so
the full-sample value equals the summary's row-weighted mean. Differences between two models are
*paired*: both models are resampled with the same frame indices, on the frames both answered.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SAMPLES = 1000


def _interval(values: np.ndarray) -> list[float] | None:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [round(float(lo), 6), round(float(hi), 6)]


def resample_indices(units: int, samples: int = SAMPLES, seed: int = 0) -> np.ndarray:
    """(samples, units) indices drawn with replacement, seeded."""
    return np.random.default_rng(seed).integers(0, units, size=(samples, units))


def bootstrap_mean_ci(values: list[float], samples: int = SAMPLES, seed: int = 0) -> list[float] | None:
    """95 % percentile bootstrap interval of a mean (None with fewer than two values)."""
    if len(values) < 2:
        return None
    data = np.asarray(values, dtype=float)
    return _interval(data[resample_indices(len(data), samples, seed)].mean(axis=1))


def ratio_draws(sums: np.ndarray, counts: np.ndarray, pick: np.ndarray) -> np.ndarray:
    """Bootstrap draws of sum/count per column: (units, cells) arrays -> (samples, cells), NaN where empty."""
    s, n = sums[pick].sum(axis=1), counts[pick].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / n


def ratio_ci(sums: list[float], counts: list[float], samples: int = SAMPLES, seed: int = 0) -> list[float] | None:
    """Interval of sum(sums)/sum(counts) resampling units (frames, episodes); None below two units."""
    if len(sums) < 2 or not sum(counts):
        return None
    pick = resample_indices(len(sums), samples, seed)
    draws = ratio_draws(np.asarray(sums, float)[:, None], np.asarray(counts, float)[:, None], pick)
    return _interval(draws[:, 0])


def interval(draws: np.ndarray) -> list[float] | None:
    """95 % percentile interval of bootstrap draws (NaN draws left out)."""
    return _interval(np.asarray(draws, dtype=float))


def fmt_ci(ci: Any) -> str:
    """'[0.41, 0.47]' or '' (no interval)."""
    if not ci or len(ci) != 2 or ci[0] is None:
        return ""
    return f"[{float(ci[0]):.2f}, {float(ci[1]):.2f}]"
