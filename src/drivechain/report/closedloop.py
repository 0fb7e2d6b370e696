"""Closed-loop section: per-scenario and per-ability tables with intervals, readable episodes, replays.

Intervals resample episodes (``stats``). A replay's steps (image, the model's and the teacher's
action, collision, the reply) go to a lazily loaded data file per episode.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from drivechain.report import stats
from drivechain.report.browser import read_requests
from drivechain.report.loaders import Run


def _words(key: str) -> str:
    return key.replace("_", " ")


def _scenario_table(runs: list[Run], episodes: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    scenarios = sorted({str(e.get("scenario")) for eps in episodes for e in eps})
    rows = []
    for sc in scenarios:
        for run, eps in zip(runs, episodes):
            mine = [e for e in eps if str(e.get("scenario")) == sc]
            if not mine:
                continue
            ds = [float(e["driving_score"]) for e in mine if isinstance(e.get("driving_score"), (int, float))]
            ok = [1.0 if e.get("success") else 0.0 for e in mine]
            col = [1.0 if e.get("collision") else 0.0 for e in mine]
            rows.append({
                "name": sc, "model": run.model, "episodes": len(mine),
                "driving": sum(ds) / len(ds) if ds else None, "driving_ci": stats.bootstrap_mean_ci(ds),
                "success": sum(ok) / len(ok) if ok else None, "success_ci": stats.bootstrap_mean_ci(ok),
                "collision": sum(col) / len(col) if col else None, "collision_ci": stats.bootstrap_mean_ci(col),
            })
    return rows


def _ability_table(runs: list[Run], episodes: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    names = sorted({a for run in runs for a in (run.summary.get("abilities") or {})}
                   | {a for eps in episodes for e in eps for a in (e.get("abilities") or {})})
    rows = []
    for name in names:
        for run, eps in zip(runs, episodes):
            got = [e["abilities"][name] for e in eps if isinstance((e.get("abilities") or {}).get(name), dict)]
            agree = [float(g.get("agree") or 0) for g in got]
            judged = [float(g.get("judged") or 0) for g in got]
            unsafe = [float(g.get("unsafe") or 0) for g in got]
            steps = [float(g.get("steps") or 0) for g in got]
            point = (run.summary.get("abilities") or {}).get(name) or {}
            rows.append({
                "name": _words(name), "model": run.model, "episodes": len(got), "steps": int(sum(steps)),
                "agreement": sum(agree) / sum(judged) if sum(judged) else None,
                "agreement_ci": stats.ratio_ci(agree, judged),
                "unsafe": sum(unsafe) / sum(steps) if sum(steps) else None,
                "unsafe_ci": stats.ratio_ci(unsafe, steps),
                "driving": point.get("driving_score"),
            })
    return rows


def _episode_row(e: dict[str, Any]) -> dict[str, Any]:
    incidents = []
    if e.get("collision"):
        incidents.append("collision, at fault" if e.get("at_fault_collision") else "collision, not at fault")
    if e.get("off_road"):
        incidents.append("off road")
    if e.get("timeout"):
        incidents.append("timeout")
    penalties = e.get("penalties") or []
    return {
        "Scenario": e.get("scenario"), "Episode": e.get("episode"),
        "Driving score (0-1)": e.get("driving_score"), "Route completion (0-1)": e.get("route_completion"),
        "Success": "yes" if e.get("success") else "no", "Incidents": ", ".join(incidents) or "none",
        "Decisions": e.get("decisions", e.get("steps")),
        "Agrees with teacher (0-1)": e.get("teacher_agreement"),
        "Unsafe actions (0-1)": e.get("unsafe_action_rate"),
        "Mean speed [m/s]": e.get("mean_speed_mps"),
        "Penalties": ", ".join(_penalty(p) for p in penalties) if isinstance(penalties, list) else str(penalties),
        "Failed requests": e.get("failures"),
    }


def _penalty(p: Any) -> str:
    if isinstance(p, dict):
        return " ".join(f"{_words(str(k))} {v}" for k, v in p.items())
    return str(p)


def _replay_steps(run: Run, e: dict[str, Any], image: Callable[[Path], str | None]) -> list[dict[str, Any]]:
    rel = e.get("steps_file")
    path = run.path / str(rel) if rel and ".." not in Path(str(rel)).parts else None
    if path is None or not path.is_file():
        return []
    steps = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                s = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(s, dict):
                steps.append(s)
    wanted = {"": {str(r.get("key")): "" for s in steps for r in s.get("requests") or [] if r.get("key")}}
    stored = read_requests(run, wanted)
    out = []
    for s in steps:
        teacher = s.get("teacher") if isinstance(s.get("teacher"), dict) else {}
        img = s.get("image")
        src = image(run.path / str(img)) if img and ".." not in Path(str(img)).parts else None
        reply = "\n\n".join(str(stored[k][2] or stored[k][3] or "") for r in s.get("requests") or []
                            if (k := str(r.get("key"))) in stored)
        after = s.get("after") if isinstance(s.get("after"), dict) else {}
        out.append({
            "step": s.get("step"), "t_s": s.get("t_s"), "image": src or "",
            "action": s.get("action"), "model_action": s.get("model_action"),
            "teacher": teacher.get("preferred"), "acceptable": teacher.get("acceptable") or [],
            "agree": s.get("agree"), "unsafe": s.get("unsafe"), "fallback": s.get("fallback"),
            "collision": after.get("collision"), "failure": s.get("failure") or "", "reply": reply,
        })
    return out


def closedloop_section(runs: list[Run], image: Callable[[Path], str | None],
                       put: Callable[[str, Any], None]) -> dict[str, Any] | None:
    """Tables for every closed-loop run; replays' steps written through ``put(name, data)``."""
    cl = [r for r in runs if r.kind == "closedloop"]
    if not cl:
        return None
    episodes = [list(r.jsonl("episodes.jsonl")) for r in cl]
    per_run = []
    for k, (run, eps) in enumerate(zip(cl, episodes)):
        rows = []
        for j, e in enumerate(eps):
            name = f"replay-{k:02d}-{j:03d}"
            steps = _replay_steps(run, e, image)
            gif = e.get("replay")
            gif_src = image(run.path / str(gif)) if gif and ".." not in Path(str(gif)).parts else None
            if steps:
                put(name, {"model": run.model, "steps": steps})
            rows.append({"cols": _episode_row(e), "replay": name if steps else None, "gif": gif_src})
        per_run.append({"model": run.model, "summary": run.summary, "episodes": rows,
                        "complete": run.complete, "reason": run.incomplete_reason})
    rows = [e["cols"] for r in per_run for e in r["episodes"]]
    # a column with nothing to say in any episode (no penalties, no failed request) is left out
    cols = [k for k in (rows[0] if rows else {}) if any(r.get(k) not in (None, "", 0) for r in rows)
            or k in ("Scenario", "Episode", "Driving score (0-1)")]
    return {"models": [r.model for r in cl], "scenarios": _scenario_table(cl, episodes),
            "abilities": _ability_table(cl, episodes), "runs": per_run, "episode_cols": cols}
