"""Build the static report from run folders: a page that works from file://, offline, under a strict CSP.

Leaderboard, comparisons, closed-loop and process tables are rendered into the HTML (escaped by
jinja); the frame browser and replays read data files lazily (``site``), rendered by the vendored
``static/report.js`` with textContent only.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from drivechain.errors import DrivechainError
from drivechain.report import charts
from drivechain.report.browser import CHUNK, Transcripts, build_index, frame_chunk, read_requests
from drivechain.report.closedloop import closedloop_section
from drivechain.report.compare import comparisons
from drivechain.report.leaderboard import leaderboard
from drivechain.report.loaders import Run, load_runs
from drivechain.report.probes import probes_section
from drivechain.report.process import process_section
from drivechain.report.scores import RunScores, read_scores
from drivechain.report.site import Site, write_atomic
from drivechain.report.stats import bootstrap_mean_ci, fmt_ci  # noqa: F401  (bootstrap_mean_ci: public API)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _heat(value: Any, signed: bool = False) -> str:
    """A CSS class shading a 0-1 score (or a -0.5..0.5 difference) in ten steps; '' without a value."""
    if not isinstance(value, (int, float)):
        return ""
    if signed:
        return f"d{max(-5, min(5, round(value * 10)))}".replace("-", "m")
    return f"h{max(0, min(10, round(value * 10)))}"


KNOWN_EVAL_KEYS = {"variants", "model", "overall", "stages", "ci95", "transitions", "transitions_no_image", "free_running",
                   "propagation", "cot", "language", "families", "unsafe", "answers", "requests", "failures",
                   "failed_answers", "unparsed", "tokens", "cost_usd", "latency_s", "wall_s", "frames",
                   "open_weights", "this_run", "protocols", "probes"}


def flatten(data: Any, prefix: str = "", limit: int = 200) -> list[tuple[str, Any]]:
    """(dotted key, scalar value) pairs of a nested summary block, at most ``limit``: how the page shows
    summary fields it has no table for (blocks other commands add later)."""
    out: list[tuple[str, Any]] = []

    def walk(value: Any, key: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, v in enumerate(value[:20]):
                walk(v, f"{key}[{i}]")
        else:
            out.append((key, value if isinstance(value, (int, float, str, bool)) or value is None else
                        ", ".join(map(str, value)) if isinstance(value, list) else str(value)))

    walk(data, prefix)
    return out


def _labels(runs: list[Run]) -> dict[str, str]:
    """A display name per eval run: the model, with the folder name when one model has several runs."""
    models = [r.model for r in runs]
    return {str(r.path): r.model if models.count(r.model) == 1 else f"{r.model} ({r.path.name})" for r in runs}


def _browser(evals: list[Run], scored: dict[str, RunScores], labels: dict[str, str], site: Site) -> dict[str, Any] | None:
    data_dirs = sorted({str(r.config.get("data")) for r in evals if r.config.get("data")})
    if not data_dirs:
        return None
    from drivechain.dataset import load_dataset

    try:
        dataset = load_dataset(Path(data_dirs[0]))
    except DrivechainError:
        return None  # the dataset moved: the leaderboard still stands, the browser is left out
    runs = [r for r in evals if str(r.config.get("data")) == data_dirs[0]]
    records = list(dataset.records())
    per_run = [scored[str(r.path)] for r in runs]
    index = build_index(records, [labels[str(r.path)] for r in runs], per_run)
    site.put("index", index)
    chunks = [records[i:i + CHUNK] for i in range(0, len(records), CHUNK)]
    for c, recs in enumerate(chunks):
        site.put(f"frames-{c:04d}", frame_chunk(recs, per_run, site.image, dataset.image_path))
    transcripts = [Transcripts(site.image) for _ in chunks]
    chunk_of = {rec.frame.frame_id: n // CHUNK for n, rec in enumerate(records)}
    for m, (run, s) in enumerate(zip(runs, per_run)):
        stored = read_requests(run, s.requests)
        for fid, keys in s.requests.items():
            if fid not in chunk_of:
                continue
            for key, label in keys.items():
                if key in stored:
                    transcripts[chunk_of[fid]].add(fid, m, len(runs), key, label, stored[key])
    for c, t in enumerate(transcripts):
        site.put(f"requests-{c:04d}", t.data())
    others = [r for r in evals if r not in runs]
    return {"frames": len(records), "dataset": runs[0].dataset, "left_out": [labels[str(r.path)] for r in others]}


def _cost_points(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": r["model"], "usd": r.get("usd_per_1k"), "tokens": r.get("tokens_per_1k"),
             "score": r["overall"], "ci": r.get("overall_ci")}
            for t in board["tables"] if t["title"] == "Chain evaluation"
            for r in t["rows"] if r.get("overall") is not None and r["complete"]]


def build_report(run_dirs: list[Path], out: Path, frames: int | None = None, single_file: bool = False) -> Path:
    """Write ``out/index.html`` (data, images and charts beside it, or all inside it with single_file)."""
    del frames  # every frame is reachable now; the option is kept for older scripts
    runs = load_runs(run_dirs)
    out.mkdir(parents=True, exist_ok=True)
    site = Site(out, single_file=single_file)
    evals = [r for r in runs if r.kind == "eval"]
    scored = {str(r.path): read_scores(r) for r in evals}
    labels = _labels(evals)
    board = leaderboard(runs, scored)
    with tempfile.TemporaryDirectory() as tmp:
        chart_dir = Path(tmp) if single_file else out / "charts"
        per_model = [{"model": labels[str(run.path)], "summary": run.summary,
                      "other": flatten({k: v for k, v in run.summary.items() if k not in KNOWN_EVAL_KEYS})}
                     for run in sorted(evals, key=lambda r: -(r.summary.get("overall") or 0.0))]
        points = _cost_points(board)
        scatter = charts.cost_scatter(points, chart_dir / "cost_score.png") if points else None
        cost = {"chart": site.image(chart_dir / scatter) if scatter else None, "points": points,
                "front": sorted(charts.pareto_front([(p["name"], p["usd"], p["score"]) for p in points
                                                     if p["usd"] is not None]))}
        process = process_section(runs, chart_dir, site.image)
        compare = comparisons(scored, evals, labels)
        browser = _browser(evals, scored, labels, site)
        closedloop = closedloop_section(runs, site.image, site.put)
        probes = probes_section(evals, labels, site.image)
        head = site.head()
        inline = {"@@DC_JS@@": head["js"], "@@DC_CSS@@": head["css"]}
        head = {**head, "js": "@@DC_JS@@", "css": "@@DC_CSS@@"}  # put in after the text pass below
        env = Environment(loader=PackageLoader("drivechain.report", "templates"),
                          autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
        env.filters["fmt"] = _fmt
        env.filters["ci"] = fmt_ci
        env.filters["heat"] = _heat
        html = env.get_template("index.html.j2").render(
            head=head, board=board, per_model=per_model, cost=cost, compare=compare, browser=browser,
            closedloop=closedloop, probes=probes, process=process, blobs=site.blobs,
            runs=[{"path": str(r.path), "kind": r.kind, "model": r.model,
                   "other": flatten(r.summary) if r.kind == "other" else []} for r in runs],
        )
    # "(0-1)" must not break at its hyphen in narrow headers: a non-breaking hyphen reads the same
    html = html.replace("(0-1)", "(0\u20111)")
    # the inline style and app script exactly as hashed in the CSP: the style is the first mark (in
    # <head>, before any data), the script the last (after every data block)
    if head["single"]:
        html = html.replace("@@DC_CSS@@", inline["@@DC_CSS@@"], 1)
        at = html.rfind("@@DC_JS@@")
        html = html[:at] + inline["@@DC_JS@@"] + html[at + len("@@DC_JS@@"):]
    write_atomic(out / "index.html", html)
    return out / "index.html"
