"""The leaderboard: one row per run (model, dataset, protocol options), every score with its interval.

Columns empty for every row are dropped; incomplete runs are kept, greyed, with their reason, and
get no rank. Tokens and dollars are per 1,000 frames (per 1,000 decisions in closed loop).
"""

from __future__ import annotations

from typing import Any

from drivechain.report import stats
from drivechain.report.loaders import Run
from drivechain.report.scores import RunScores

BUILTINS = ("oracle", "heuristic", "constant", "random")
STAGES = ("perception", "prediction", "planning", "behavior")

# key, header (words, units), kind: "score" (0-1, with interval), "num", "text"
EVAL_COLUMNS: list[tuple[str, str, str]] = [
    ("model", "Model", "text"),
    ("setup", "Dataset and protocol options", "text"),
    ("overall", "Overall score (0-1)", "score"),
    *[(s, f"{s.capitalize()} (0-1)", "score") for s in STAGES],
    ("free_planning", "Free-running planning (0-1)", "score"),
    ("cot", "Chain-of-thought score (0-1)", "score"),
    ("language", "Language, DriveLM (0-1)", "num"),
    ("unparsed_pct", "Unparsed answers [%]", "num"),
    ("failures", "Failed requests", "num"),
    ("tokens_per_1k", "Tokens per 1,000 frames", "num"),
    ("usd_per_1k", "$ per 1,000 frames", "num"),
    ("p50_s", "Latency p50 [s]", "num"),
    ("p95_s", "Latency p95 [s]", "num"),
    ("open_weights", "Open weights", "text"),
    ("tokenizer", "Language tokenizer", "text"),
]
LOOP_COLUMNS: list[tuple[str, str, str]] = [
    ("model", "Model", "text"),
    ("setup", "Scenarios and options", "text"),
    ("driving_score", "Driving score (0-1)", "score"),
    ("success_rate", "Success rate (0-1)", "score"),
    ("collision_rate", "Collision rate (0-1)", "score"),
    ("agreement", "Agreement with the teacher (0-1)", "num"),
    ("failures", "Failed requests", "num"),
    ("tokens_per_1k", "Tokens per 1,000 decisions", "num"),
    ("usd_per_1k", "$ per 1,000 decisions", "num"),
    ("p50_s", "Latency p50 [s]", "num"),
    ("p95_s", "Latency p95 [s]", "num"),
]


def is_builtin(model: str) -> bool:
    """True for drivechain's built-in baselines (no tokens, no price)."""
    return model.split(":", 1)[0] in BUILTINS


def _options(run: Run) -> str:
    c = run.config
    if run.kind == "closedloop":
        scenarios = c.get("scenarios")
        if isinstance(scenarios, list):
            scenarios = ", ".join(map(str, scenarios))
        parts = [f"scenarios {scenarios}" if scenarios else "",
                 f"{c.get('episodes')} episodes per scenario" if c.get("episodes") else "",
                 f"asks {run.summary.get('ask')}" if run.summary.get("ask") else ""]
    else:
        protocols = c.get("protocols") or run.summary.get("protocols") or []
        parts = ["+".join(protocols) if isinstance(protocols, list) else str(protocols),
                 f"image {c.get('image')}" if c.get("image") else "",
                 "history" if c.get("history") else "", "reasoning" if c.get("reasoning") else "",
                 f"limit {c.get('limit')}" if c.get("limit") else "",
                 f"temperature {c.get('temperature')}" if c.get("temperature") not in (None, 0, 0.0) else ""]
    return ", ".join(p for p in parts if p)


def _per_1k(total: float | None, units: int | float | None) -> float | None:
    return None if total is None or not units else round(total / units * 1000, 6)


def _eval_row(run: Run, scores: RunScores | None) -> dict[str, Any]:
    s = run.summary
    ci = s.get("ci95") or {}
    row: dict[str, Any] = {"overall": s.get("overall"), "overall_ci": ci.get("overall")}
    for stage in STAGES:
        row[stage] = (s.get("stages") or {}).get(stage)
        row[f"{stage}_ci"] = (ci.get("stages") or {}).get(stage)
    frames = s.get("frames") or (len(scores.frames) if scores else 0)
    if scores is not None:
        for key, cell in (("free_planning", "free:planning"), ("cot", "cot")):
            per_frame = list(scores.cells.get(cell, {}).values())
            if per_frame:
                total, n = sum(v[0] for v in per_frame), sum(v[1] for v in per_frame)
                row[key] = round(total / n, 6) if n else None
                row[f"{key}_ci"] = stats.ratio_ci([v[0] for v in per_frame], [v[1] for v in per_frame])
    lang = s.get("language") or {}
    tokens = s.get("tokens") or {}
    spent = sum(int(v or 0) for v in tokens.values()) if isinstance(tokens, dict) else 0
    answers = s.get("answers") or 0
    lat = s.get("latency_s") or {}
    builtin = is_builtin(run.model)
    row.update(
        language=lang.get("drivelm"),
        tokenizer=lang.get("tokenizer") or s.get("tokenizer"),
        unparsed_pct=round(100 * (s.get("unparsed") or 0) / answers, 2) if answers else None,
        failures=s.get("failures"),
        tokens_per_1k=None if builtin else _per_1k(spent, frames),
        usd_per_1k=None if builtin else _per_1k(s.get("cost_usd"), frames),
        p50_s=None if builtin else lat.get("p50"), p95_s=None if builtin else lat.get("p95"),
        open_weights=None if builtin else s.get("open_weights"),
    )
    return row


def _closedloop_row(run: Run) -> dict[str, Any]:
    s = run.summary
    episodes = [e for e in run.jsonl("episodes.jsonl")]
    scores = [float(e["driving_score"]) for e in episodes if isinstance(e.get("driving_score"), (int, float))]
    success = [1.0 if e.get("success") else 0.0 for e in episodes if "success" in e]
    collided = [1.0 if e.get("collision") else 0.0 for e in episodes if "collision" in e]
    decisions = s.get("decisions") or sum(int(e.get("decisions") or 0) for e in episodes)
    spent = sum(int((e.get("requests") or {}).get(k) or 0) for e in episodes
                for k in ("prompt_tokens", "completion_tokens", "reasoning_tokens"))
    lat = s.get("latency_s") or {}
    builtin = is_builtin(run.model)
    fails = s.get("failures")
    return {
        "driving_score": s.get("driving_score"), "driving_score_ci": stats.bootstrap_mean_ci(scores),
        "success_rate": s.get("success_rate"), "success_rate_ci": stats.bootstrap_mean_ci(success),
        "collision_rate": s.get("collision_rate"), "collision_rate_ci": stats.bootstrap_mean_ci(collided),
        "agreement": s.get("teacher_agreement"),
        "failures": fails.get("requests") if isinstance(fails, dict) else fails,
        "tokens_per_1k": None if builtin else _per_1k(spent, decisions),
        "usd_per_1k": None if builtin else _per_1k(s.get("cost_usd"), decisions),
        "p50_s": None if builtin else lat.get("p50"), "p95_s": None if builtin else lat.get("p95"),
    }


def _rank(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    rows.sort(key=lambda r: (not r["complete"], -(r.get(key) or 0.0)))
    rank = 0
    for r in rows:
        r["rank"] = None
        if r["complete"]:
            rank += 1
            r["rank"] = rank
    return rows


def _shown(columns: list[tuple[str, str, str]], rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [c for c in columns if c[0] == "model" or any(r.get(c[0]) not in (None, "") for r in rows)]


def leaderboard(runs: list[Run], scored: dict[str, RunScores]) -> dict[str, Any]:
    """Two ranked tables (chain evaluation, closed loop) with the columns that have data; incomplete
    runs last and unranked."""
    evals, loops = [], []
    for run in runs:
        if run.kind not in ("eval", "closedloop"):
            continue
        row: dict[str, Any] = {"model": run.model, "builtin": is_builtin(run.model), "complete": run.complete,
                               "reason": run.incomplete_reason, "path": run.path.name,
                               "dataset": run.dataset, "options": _options(run)}
        row["setup"] = f"{run.dataset}; {row['options']}" if run.kind == "eval" else row["options"]
        if run.kind == "eval":
            row.update(_eval_row(run, scored.get(str(run.path))))
            evals.append(row)
        else:
            row.update(_closedloop_row(run))
            loops.append(row)
    tables = []
    if evals:
        tables.append({"title": "Chain evaluation", "rows": _rank(evals, "overall"),
                       "columns": _shown(EVAL_COLUMNS, evals)})
    if loops:
        tables.append({"title": "Closed loop", "rows": _rank(loops, "driving_score"),
                       "columns": _shown(LOOP_COLUMNS, loops)})
    datasets = {r["dataset"] for r in evals}
    return {"tables": tables, "mixed_datasets": sorted(datasets) if len(datasets) > 1 else []}
