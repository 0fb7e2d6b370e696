"""Aggregate graded rows into summary.json: stages, transitions, free-running, propagation, CoT, cost.

Typed scores leave out ambiguous questions and text questions (text goes to ``language``); an
unparsed answer or a failed request scores 0 and is counted. A link's score is the mean over its
answers; a stage is the mean over the teacher-forced links into it (with the image); ``overall`` is
the mean of the stages. Bootstrap CIs resample frames (seeded) and recompute exactly that. The
inputs are running sums (evaluation/aggregate.py), so the summary of a streamed run needs no rows.
"""

from __future__ import annotations

import warnings
from typing import Any

from drivechain.evaluation.aggregate import CELLS, TF_LINKS, RequestTotals, ScoreSums, typed  # noqa: F401
from drivechain.evaluation.protocols import LINKS
from drivechain.schema import STAGES

# The teacher-forced link a free-running step mirrors (same evidence, teacher's instead of own upstream).
FREE_MIRROR = {"perception": "V->Per", "prediction": "Per->Pred", "planning": "Pred->Plan", "behavior": "Pred->Plan"}
BOOTSTRAP_SAMPLES = 1000
_CHUNK = 50  # bootstrap resamples drawn at a time: memory stays (chunk x frames), not (samples x frames x cells)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


def stage_scores(sums: ScoreSums) -> dict[str, float | None]:
    """Each stage: mean over the teacher-forced links into it (with the image)."""
    out: dict[str, float | None] = {}
    for stage, links in TF_LINKS.items():
        out[stage] = _mean([m for link in links if (m := sums.tf_stage.mean((link, stage))) is not None])
    return out


def _overall(stages: dict[str, float | None]) -> float | None:
    return _mean([v for v in stages.values() if v is not None])


def bootstrap_ci(sums: ScoreSums, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> dict[str, Any]:
    """95 % percentile CIs over frames for ``overall`` and each stage (None where no data).

    Each resample draws frames with replacement; a cell's mean is (sum of the drawn frames' sums) /
    (sum of their counts), computed as resample weights x per-frame sums.
    """
    import numpy as np

    n_frames = sums.frames
    counts = np.frombuffer(sums.cell_counts, dtype=float).reshape(n_frames, len(CELLS)) if n_frames else None
    if counts is None or not counts.any():
        return {"overall": None, "stages": {s: None for s in STAGES}}
    totals = np.frombuffer(sums.cell_sums, dtype=float).reshape(n_frames, len(CELLS))
    rng = np.random.default_rng(seed)
    s = np.empty((samples, len(CELLS)))
    n = np.empty((samples, len(CELLS)))
    for lo in range(0, samples, _CHUNK):
        hi = min(samples, lo + _CHUNK)
        pick = rng.integers(0, n_frames, size=(hi - lo, n_frames))
        rows = np.arange(hi - lo)[:, None] * n_frames
        weights = np.bincount((rows + pick).ravel(), minlength=(hi - lo) * n_frames).reshape(hi - lo, n_frames)
        s[lo:hi], n[lo:hi] = weights @ totals, weights @ counts
    with np.errstate(invalid="ignore", divide="ignore"):
        link_means = s / n  # NaN where a resample has no answer in that cell
    stage_means = np.full((samples, len(STAGES)), np.nan)
    for si, stage in enumerate(STAGES):
        cols = [CELLS.index((stage, link)) for link in TF_LINKS[stage]]
        present = counts[:, cols].sum(axis=0) > 0  # links with data in the full sample
        if present.any():
            with warnings.catch_warnings():  # a resample may miss a stage's frames: NaN, not a warning
                warnings.simplefilter("ignore", RuntimeWarning)
                stage_means[:, si] = np.nanmean(link_means[:, [c for c, p in zip(cols, present) if p]], axis=1)
    has_stage = ~np.all(np.isnan(stage_means), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        overall = np.nanmean(stage_means[:, has_stage], axis=1) if has_stage.any() else None

    def ci(values: Any) -> list[float] | None:
        if values is None:
            return None
        values = values[~np.isnan(values)]
        if values.size == 0:
            return None
        lo, hi = np.percentile(values, [2.5, 97.5])
        return [round(float(lo), 6), round(float(hi), 6)]

    return {
        "overall": ci(overall),
        "stages": {stage: ci(stage_means[:, si]) if has_stage[si] else None for si, stage in enumerate(STAGES)},
    }


def cot_summary(sums: ScoreSums) -> dict[str, Any] | None:
    """CoT score, per stage, and the distribution of the first wrong step over frames."""
    if not sums.cot_frames:
        return None
    return {
        "score": sums.cot.mean(),
        "stages": {s: sums.cot_stage.mean(s) for s in STAGES},
        "first_error": dict(sorted(sums.cot_first.items())),
        "frames": sums.cot_frames,
    }


def language_summary(sums: ScoreSums, tokenizer: str = "auto") -> dict[str, Any] | None:
    """BLEU-1..4/ROUGE-L/CIDEr (and DriveLM's aggregate) over text answers of links with the image."""
    if not sums.text_hyps:
        return None
    from drivechain.grading.text_metrics import drivelm_language, language_scores

    hyps = dict(enumerate(sums.text_hyps))
    refs = dict(enumerate(sums.text_refs))
    scores = language_scores(hyps, refs, tokenizer=tokenizer)  # type: ignore[arg-type]
    out = {k: round(v, 6) if isinstance(v, float) else v for k, v in scores.items()}
    out["drivelm"] = round(drivelm_language(scores), 6)
    return out


def summarize(
    sums: ScoreSums,
    totals: RequestTotals,
    *,
    model: str,
    prices: Any = None,
    wall_s: float = 0.0,
    seed: int = 0,
    tokenizer: str = "auto",
) -> dict[str, Any]:
    """summary.json content from the run's running sums and the totals of every request used."""
    stages = stage_scores(sums)
    free = {s: sums.free.mean(s) for s in STAGES} if sums.free_seen else None
    propagation = None
    if free is not None:
        propagation = {}
        for s in STAGES:
            tf = sums.tf_stage.mean((FREE_MIRROR[s], s))
            propagation[s] = None if tf is None or free[s] is None else round(tf - free[s], 6)
    tokens = {"prompt": totals.prompt_tokens, "completion": totals.completion_tokens,
              "reasoning": totals.reasoning_tokens}
    cost = None
    open_weights = None
    if prices is not None:
        from drivechain.models.base import Usage

        cost = prices.cost_usd(model, Usage(prompt_tokens=tokens["prompt"], completion_tokens=tokens["completion"],
                                             reasoning_tokens=tokens["reasoning"]))
        cost = None if cost is None else round(cost, 6)
        open_weights = prices.open_weights(model)
    lat = sorted(totals.latencies_s)
    return {
        "model": model,
        "overall": _overall(stages),
        "stages": stages,
        "ci95": bootstrap_ci(sums, seed=seed),
        "transitions": {link: sums.tf.mean((True, link)) for link in LINKS},
        "transitions_no_image": {link: sums.tf.mean((False, link)) for link in LINKS},
        "free_running": free,
        "propagation": propagation,
        "cot": cot_summary(sums),
        "language": language_summary(sums, tokenizer),
        "families": {f: t.mean() for f, t in sorted(sums.families.items())},
        "unsafe": sums.unsafe,
        "answers": sums.answers,
        "requests": totals.requests,
        "failures": totals.failures,
        "failed_answers": sums.failed_answers,
        "unparsed": sums.unparsed,
        "tokens": tokens,
        "cost_usd": cost,
        "latency_s": {"p50": _percentile(lat, 50), "p95": _percentile(lat, 95)},
        "wall_s": round(wall_s, 3),
        "frames": sums.frames,
        "open_weights": open_weights,
        "drivelm": _drivelm_block(sums.kept),
    }


def _drivelm_block(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """DriveLM's challenge metrics for imported DriveLM data (rows carrying a ``drivelm`` field), else None."""
    if not any("drivelm" in r for r in rows):
        return None
    from drivechain.interop.drivelm.eval_block import drivelm_block

    return drivelm_block(rows)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    k = (len(values) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return round(values[lo] + (values[hi] - values[lo]) * (k - lo), 6)
