"""Aggregate graded rows into summary.json: stages, transitions, free-running, propagation, CoT, cost.

Typed scores leave out ambiguous questions and text questions (text goes to ``language``); an
unparsed answer or a failed request scores 0 and is counted. A link's score is the mean over its
answers; a stage is the mean over the teacher-forced links into it (with the image); ``overall`` is
the mean of the stages. Bootstrap CIs resample frames (seeded) and recompute exactly that.
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from drivechain.evaluation.protocols import LINKS
from drivechain.schema import STAGES

TF_LINKS: dict[str, tuple[str, ...]] = {
    stage: tuple(link for link, (_, stages) in LINKS.items() if stage in stages) for stage in STAGES
}
# The teacher-forced link a free-running step mirrors (same evidence, teacher's instead of own upstream).
FREE_MIRROR = {"perception": "V->Per", "prediction": "Per->Pred", "planning": "Pred->Plan", "behavior": "Pred->Plan"}
BOOTSTRAP_SAMPLES = 1000


def typed(row: dict[str, Any]) -> bool:
    """True when the row counts in typed scores (not text, not ambiguous)."""
    return row.get("type") != "text" and row.get("status") != "ambiguous"


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


def _scores(rows: Iterable[dict[str, Any]], **match: Any) -> list[float]:
    return [float(r["score"]) for r in rows if typed(r) and all(r.get(k) == v for k, v in match.items())]


def transition_scores(rows: list[dict[str, Any]], image: bool) -> dict[str, float | None]:
    """Mean score per teacher-forced link."""
    tf = [r for r in rows if r["protocol"] == "transitions" and r["image"] is image]
    return {link: _mean(_scores(tf, link=link)) for link in LINKS}


def stage_scores(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Each stage: mean over the teacher-forced links into it (with the image)."""
    tf = [r for r in rows if r["protocol"] == "transitions" and r["image"] is True]
    out: dict[str, float | None] = {}
    for stage, links in TF_LINKS.items():
        per_link = [m for link in links if (m := _mean(_scores(tf, link=link, stage=stage))) is not None]
        out[stage] = _mean(per_link)
    return out


def _overall(stages: dict[str, float | None]) -> float | None:
    return _mean([v for v in stages.values() if v is not None])


def bootstrap_ci(rows: list[dict[str, Any]], frames: list[str], seed: int = 0,
                 samples: int = BOOTSTRAP_SAMPLES) -> dict[str, Any]:
    """95 % percentile CIs over frames for ``overall`` and each stage (None where no data)."""
    import numpy as np

    tf = [r for r in rows if r["protocol"] == "transitions" and r["image"] is True and typed(r)]
    if not tf or not frames:
        return {"overall": None, "stages": {s: None for s in STAGES}}
    fidx = {f: i for i, f in enumerate(frames)}
    cells = [(stage, link) for stage, links in TF_LINKS.items() for link in links]
    cidx = {c: i for i, c in enumerate(cells)}
    sums = np.zeros((len(frames), len(cells)))
    counts = np.zeros((len(frames), len(cells)))
    for r in tf:
        c = cidx.get((r["stage"], r["link"]))
        if c is not None and r["frame_id"] in fidx:
            sums[fidx[r["frame_id"]], c] += float(r["score"])
            counts[fidx[r["frame_id"]], c] += 1
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(frames), size=(samples, len(frames)))
    s, n = sums[pick].sum(axis=1), counts[pick].sum(axis=1)  # (samples, cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        link_means = s / n  # NaN where a resample has no answer in that cell
    stage_means = np.full((samples, len(STAGES)), np.nan)
    for si, stage in enumerate(STAGES):
        cols = [cidx[(stage, link)] for link in TF_LINKS[stage]]
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


def cot_summary(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """CoT score, per stage, and the distribution of the first wrong step over frames."""
    cot = [r for r in rows if r["protocol"] == "cot"]
    if not cot:
        return None
    first: dict[str, Any] = {}
    for r in cot:
        first.setdefault(r["frame_id"], r.get("first_wrong"))
    dist = Counter(str(v) for v in first.values())
    return {
        "score": _mean(_scores(cot)),
        "stages": {s: _mean(_scores(cot, stage=s)) for s in STAGES},
        "first_error": dict(sorted(dist.items())),
        "frames": len(first),
    }


def language_summary(rows: list[dict[str, Any]], tokenizer: str = "auto") -> dict[str, Any] | None:
    """BLEU-1..4/ROUGE-L/CIDEr (and DriveLM's aggregate) over text answers of links with the image."""
    text_rows = [r for r in rows if r.get("type") == "text" and r["protocol"] == "transitions"
                 and r["image"] is True and r.get("status") != "ambiguous"]
    if not text_rows:
        return None
    from drivechain.grading.text_metrics import drivelm_language, language_scores

    hyps = {i: "" if r.get("value") is None else str(r["value"]) for i, r in enumerate(text_rows)}
    refs = {i: list(r.get("refs") or []) for i, r in enumerate(text_rows)}
    scores = language_scores(hyps, refs, tokenizer=tokenizer)  # type: ignore[arg-type]
    out = {k: round(v, 6) if isinstance(v, float) else v for k, v in scores.items()}
    out["drivelm"] = round(drivelm_language(scores), 6)
    return out


def summarize(
    rows: list[dict[str, Any]],
    *,
    model: str,
    frames: list[str],
    outcomes: dict[str, Any],
    prices: Any = None,
    wall_s: float = 0.0,
    seed: int = 0,
    tokenizer: str = "auto",
) -> dict[str, Any]:
    """summary.json content from graded rows and the final outcome (Response) of every request used."""
    stages = stage_scores(rows)
    free_rows = [r for r in rows if r["protocol"] == "free"]
    free = {s: _mean(_scores(free_rows, stage=s)) for s in STAGES} if free_rows else None
    propagation = None
    if free is not None:
        tf_with = [r for r in rows if r["protocol"] == "transitions" and r["image"] is True]
        propagation = {}
        for s in STAGES:
            tf = _mean(_scores(tf_with, link=FREE_MIRROR[s], stage=s))
            propagation[s] = None if tf is None or free[s] is None else round(tf - free[s], 6)
    fam: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["protocol"] == "transitions" and r["image"] is True and typed(r):
            fam[r["family"]].append(float(r["score"]))
    responses = list(outcomes.values())
    ok = [r for r in responses if r.ok]
    tokens = {
        "prompt": sum(r.usage.prompt_tokens for r in responses),
        "completion": sum(r.usage.completion_tokens for r in responses),
        "reasoning": sum(r.usage.reasoning_tokens for r in responses),
    }
    cost = None
    open_weights = None
    if prices is not None:
        from drivechain.models.base import Usage

        cost = prices.cost_usd(model, Usage(prompt_tokens=tokens["prompt"], completion_tokens=tokens["completion"],
                                             reasoning_tokens=tokens["reasoning"]))
        cost = None if cost is None else round(cost, 6)
        open_weights = prices.open_weights(model)
    lat = sorted(r.latency_s for r in ok)
    typed_rows = [r for r in rows if typed(r)]
    return {
        "model": model,
        "overall": _overall(stages),
        "stages": stages,
        "ci95": bootstrap_ci(rows, frames, seed=seed),
        "transitions": transition_scores(rows, True),
        "transitions_no_image": transition_scores(rows, False),
        "free_running": free,
        "propagation": propagation,
        "cot": cot_summary(rows),
        "language": language_summary(rows, tokenizer),
        "families": {f: _mean(v) for f, v in sorted(fam.items())},
        "unsafe": sum(1 for r in typed_rows if r.get("unsafe")),
        "answers": len(typed_rows),
        "requests": len(responses),
        "failures": len(responses) - len(ok),
        "failed_answers": sum(1 for r in typed_rows if r.get("status") == "failed"),
        "unparsed": sum(1 for r in typed_rows if r.get("status") == "unparsed"),
        "tokens": tokens,
        "cost_usd": cost,
        "latency_s": {"p50": _percentile(lat, 50), "p95": _percentile(lat, 95)},
        "wall_s": round(wall_s, 3),
        "frames": len(frames),
        "open_weights": open_weights,
        "drivelm": _drivelm_block(rows),
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
