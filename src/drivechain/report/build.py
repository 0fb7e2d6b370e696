"""Build the static, self-contained HTML report from run folders (no CDN, no script from data)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from drivechain.errors import DrivechainError
from drivechain.report import charts
from drivechain.report.browser import answers_by_frame, frame_view, pick_frames
from drivechain.report.loaders import Run, load_runs

BUILTINS = ("oracle", "heuristic", "constant", "random")


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def bootstrap_mean_ci(values: list[float], samples: int = 1000, seed: int = 0) -> list[float] | None:
    """95 % percentile bootstrap interval of a mean (seeded, so the report is reproducible)."""
    if len(values) < 2:
        return None
    import numpy as np

    rng = np.random.default_rng(seed)
    data = np.asarray(values, dtype=float)
    means = data[rng.integers(0, len(data), size=(samples, len(data)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return [float(lo), float(hi)]


def _is_builtin(model: str) -> bool:
    return model.split(":", 1)[0] in BUILTINS


def leaderboard(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per model: quality next to closed-loop, tokens, dollars and latency."""
    rows: dict[str, dict[str, Any]] = {}
    for run in runs:
        if run.kind not in ("eval", "closedloop"):
            continue
        row = rows.setdefault(run.model, {"model": run.model, "builtin": _is_builtin(run.model)})
        s = run.summary
        if run.kind == "eval":
            tokens = s.get("tokens") or {}
            spent = sum(int(v or 0) for v in tokens.values())
            frames = s.get("frames") or 0
            cost = s.get("cost_usd")
            lat = s.get("latency_s") or {}
            wall = s.get("wall_s") or 0
            row.update(
                overall=s.get("overall"), overall_ci=_ci((s.get("ci95") or {}).get("overall")),
                stages=s.get("stages") or {},
                stage_ci={k: _ci(v) for k, v in ((s.get("ci95") or {}).get("stages") or {}).items()},
                tokens=spent if spent else None,
                cost_per_1k=(cost / frames * 1000) if (spent and cost is not None and frames) else None,
                cost_usd=cost if spent else None,
                p50=lat.get("p50") if spent else None, p95=lat.get("p95") if spent else None,
                rps=(s.get("requests", 0) / wall) if (spent and wall) else None,
                open_weights=None if row["builtin"] else s.get("open_weights"),
                unparsed=s.get("unparsed"), failures=s.get("failures"),
            )
        else:
            scores = [float(e["driving_score"]) for e in run.jsonl("episodes.jsonl")
                      if isinstance(e.get("driving_score"), (int, float))]
            row.update(driving_score=s.get("driving_score"), success_rate=s.get("success_rate"),
                       collision_rate=s.get("collision_rate"), driving_ci=_ci(bootstrap_mean_ci(scores)))
    return sorted(rows.values(), key=lambda r: -(r.get("overall") or r.get("driving_score") or 0.0))


def _frames_section(runs: list[Run], out: Path, limit: int) -> list[Any]:
    evals = [r for r in runs if r.kind == "eval"]
    data_dirs = {r.config.get("data") for r in evals if r.config.get("data")}
    if not evals or not data_dirs:
        return []
    from drivechain.dataset import load_dataset

    root = Path(sorted(data_dirs)[0])
    try:
        dataset = load_dataset(root)
    except DrivechainError:
        return []  # the dataset moved: the leaderboard still stands, the browser is left out
    records = list(dataset.records())
    picked = pick_frames(records, evals, limit)
    ids = {r.frame.frame_id for r in picked}
    answers = {run.model: answers_by_frame(run, ids) for run in evals}
    views = []
    for i, rec in enumerate(picked):
        image = None
        rel = rec.frame.images.get("bev") or next(iter(rec.frame.images.values()), None)
        if rel:
            src = dataset.image_path(rel)
            if src.is_file():
                image = f"frames/{i:03d}{src.suffix}"
                (out / "frames").mkdir(exist_ok=True)
                shutil.copyfile(src, out / image)
        view = frame_view(rec, image, evals, answers)
        view.cameras = _other_cameras(dataset, rec, rel, i, out)
        views.append(view)
    return views


def _other_cameras(dataset: Any, rec: Any, shown: str | None, i: int, out: Path) -> list[tuple[str, str]]:
    """The frame's other named cameras (multi-camera sources), each copied beside the report."""
    cams = []
    for cam, rel in rec.frame.images.items():
        src = dataset.image_path(rel)
        if rel == shown or not src.is_file():
            continue
        dst = f"frames/{i:03d}_{cam}{src.suffix}"
        (out / "frames").mkdir(exist_ok=True)
        shutil.copyfile(src, out / dst)
        cams.append((cam, dst))
    return cams


def _closedloop_section(runs: list[Run], out: Path) -> list[dict[str, Any]]:
    sections = []
    for k, run in enumerate(r for r in runs if r.kind == "closedloop"):
        episodes = list(run.jsonl("episodes.jsonl"))
        gifs = []
        for gif in sorted(run.path.rglob("*.gif"))[:12]:
            name = f"replays/{k:02d}_{gif.name}"
            (out / "replays").mkdir(exist_ok=True)
            shutil.copyfile(gif, out / name)
            gifs.append(name)
        keys = [key for key in ("scenario", "episode", "seed", "driving_score", "route_completion",
                                "collision", "at_fault_collision", "efficiency", "teacher_agreement",
                                "unsafe_action_rate", "steps", "failures") if any(key in e for e in episodes)]
        sections.append({"model": run.model, "summary": run.summary, "episodes": episodes, "cols": keys,
                         "gifs": gifs})
    return sections


def _process_section(runs: list[Run]) -> list[dict[str, Any]]:
    sections = []
    for run in runs:
        if run.kind == "process":
            cands = list(run.jsonl("candidates.jsonl"))
            by_frame: dict[str, list[dict[str, Any]]] = {}
            for c in cands:
                by_frame.setdefault(str(c.get("frame_id")), []).append(c)
            for group in by_frame.values():  # per step, the kept hard negatives first
                group.sort(key=lambda c: (c.get("step_index", 0), not c.get("kept"), -(c.get("rater_score") or 0)))
            by_scenario: dict[str, list[str]] = {}
            for fid in by_frame:  # frame ids are source/scenario/episode/step: show every scenario
                by_scenario.setdefault(fid.split("/")[1] if fid.count("/") >= 3 else "", []).append(fid)
            picked = [ids[i] for i in range(2) for ids in by_scenario.values() if i < len(ids)]
            shown = {fid: by_frame[fid] for fid in picked}
            sections.append({"kind": "process", "name": run.path.name, "summary": run.summary, "frames": shown})
        elif run.kind == "prm_eval":
            sections.append({"kind": "prm_eval", "name": run.path.name, "summary": run.summary})
    return sections


def build_report(run_dirs: list[Path], out: Path, frames: int = 12) -> Path:
    """Write ``out/index.html`` (charts and images beside it) from the given run folders."""
    runs = load_runs(run_dirs)
    out.mkdir(parents=True, exist_ok=True)
    board = leaderboard(runs)
    per_model = []
    evals = sorted((r for r in runs if r.kind == "eval"), key=lambda r: -(r.summary.get("overall") or 0.0))
    for i, run in enumerate(evals):
        s = run.summary
        per_model.append({
            "model": run.model,
            "heatmap": "charts/" + charts.transition_heatmap(s, out / "charts" / f"transitions_{i:02d}.png"),
            "propagation": "charts/" + charts.propagation_chart(s, out / "charts" / f"propagation_{i:02d}.png"),
            "families": sorted((s.get("families") or {}).items()),
            "summary": s,
        })
    points = [(r["model"], r["cost_per_1k"] or 0.0, r["overall"]) for r in board if r.get("overall") is not None]
    scatter = "charts/" + charts.cost_scatter(points, out / "charts" / "cost_score.png") if points else None
    process = _process_section(runs)
    for j, sec in enumerate(process):
        curves = (sec["summary"].get("best_of_n") or {}) if sec["kind"] == "prm_eval" else {}
        if curves and all(isinstance(v, dict) for v in curves.values()):
            sec["chart"] = "charts/" + charts.best_of_n_chart(curves, out / "charts" / f"best_of_n_{j:02d}.png")
            ns = sorted({int(n) for v in curves.values() for n in v})
            sec["bon_ns"] = ns
            sec["bon_rows"] = [(method, [curves[method].get(str(n)) for n in ns]) for method in sorted(curves)]
    env = Environment(loader=PackageLoader("drivechain.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = _fmt
    html = env.get_template("index.html.j2").render(
        board=board, per_model=per_model, scatter=scatter,
        pareto=sorted(charts.pareto_front(points)) if points else [],
        frames=_frames_section(runs, out, frames), closedloop=_closedloop_section(runs, out),
        process=process, models=[r.model for r in runs if r.kind == "eval"],
        runs=[{"path": str(r.path), "kind": r.kind, "model": r.model} for r in runs],
    )
    tmp = out / "index.html.tmp"
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out / "index.html")
    return out / "index.html"
