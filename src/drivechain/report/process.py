"""Process-supervision section: the counts exactly as summary.json gives them (the terminal prints the same
summary), a few candidate frames, and reward-model evaluations with best-of-N curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from drivechain.report import charts, stats
from drivechain.report.loaders import Run

RATING_WORDS = {"-1": "-1 (wrong)", "0": "0 (acceptable, not preferred)", "1": "+1 (correct)"}


def _counts(s: dict[str, Any]) -> list[tuple[str, Any]]:
    """The headline counts of a process run, named in words, read from its summary only."""
    chains = s.get("chains") if isinstance(s.get("chains"), dict) else {"count": s.get("chains")}
    hard = s.get("hard_negatives") if isinstance(s.get("hard_negatives"), dict) else {}
    items = [
        ("Frames", s.get("frames")), ("Candidate steps", s.get("candidates")),
        ("Chains", chains.get("count")), ("Chains fully correct", chains.get("fully_correct")),
        ("Chains with a correct final answer", chains.get("final_correct")),
        ("Hard negatives kept", hard.get("kept")), ("Hard negatives dropped", hard.get("dropped")),
        ("Hard-negative rater", hard.get("rater")), ("Generator", s.get("generator")),
        ("Generator failures", s.get("generator_failures")),
    ]
    # the generator's candidates and prm800k.jsonl's completions (which add the teacher's +1 steps and the
    # sampled chains) are different sets: each is named, never a bare "steps rated"
    for key, what in (("ratings", "Candidate steps"), ("prm800k_completions", "Completions in prm800k.jsonl")):
        ratings = s.get(key)
        if isinstance(ratings, dict):
            items += [(f"{what} rated {RATING_WORDS.get(k, k)}", ratings[k]) for k in ("-1", "0", "1") if k in ratings]
    files = s.get("files")
    if isinstance(files, dict):
        items += [(f"Lines in {k}", v) for k, v in sorted(files.items())]
    return [(k, v) for k, v in items if v is not None]


def _candidates(run: Run) -> dict[str, list[dict[str, Any]]]:
    by_frame: dict[str, list[dict[str, Any]]] = {}
    for c in run.jsonl("candidates.jsonl"):
        by_frame.setdefault(str(c.get("frame_id")), []).append(c)
    for group in by_frame.values():  # per step, the kept hard negatives first
        group.sort(key=lambda c: (c.get("step_index", 0), not c.get("kept"), -(c.get("rater_score") or 0)))
    by_scenario: dict[str, list[str]] = {}
    for fid in by_frame:  # frame ids are source/scenario/episode/step: show every scenario
        by_scenario.setdefault(fid.split("/")[1] if fid.count("/") >= 3 else "", []).append(fid)
    picked = [ids[i] for i in range(2) for ids in by_scenario.values() if i < len(ids)]
    return {fid: by_frame[fid] for fid in picked}


def best_of_n_intervals(run: Run) -> dict[str, dict[str, list[float]]]:
    """Bootstrap 95 % intervals of the best-of-N curves over frames, rebuilt from the rater's stored
    scores (step_scores.jsonl) and the process folder's chains; {} when either is missing."""
    from drivechain.errors import DrivechainError
    from drivechain.process.prm_eval import ScoredChain, best_of_n, load_process_dir
    from drivechain.process.ratings import final_correct

    stored = {(str(r.get("frame_id")), r.get("chain_id")): r for r in run.jsonl("step_scores.jsonl")}
    data = run.summary.get("data")
    if not stored or not data:
        return {}
    try:
        problems, _, chains = load_process_dir(Path(str(data)))
    except (DrivechainError, OSError, ValueError):
        return {}
    frames: dict[str, list[ScoredChain]] = {}
    for c in chains:
        row, fq = stored.get((c.frame_id, c.chain_id)), problems[c.frame_id].final_qid
        if row is None or fq is None:
            continue
        frames.setdefault(c.frame_id, []).append(ScoredChain(
            step_scores=list(row.get("scores") or []), outcome=row.get("outcome"),
            final_answer=next((st.answers[fq] for st in c.steps if fq in st.answers), ""),
            final_correct=final_correct(c.steps, fq), fully_correct=c.first_error < 0))
    per_frame = [best_of_n([group]) for group in frames.values()]  # each frame's own hit rates
    out: dict[str, dict[str, list[float]]] = {}
    for method in (per_frame[0] if per_frame else {}):
        for n in per_frame[0][method]:
            values = [f[method][n] for f in per_frame if f[method].get(n) is not None]
            ci = stats.bootstrap_mean_ci(values)
            if ci:
                out.setdefault(method, {})[n] = ci
    return out


def process_section(runs: list[Run], chart_dir: Path, image: Callable[[Path], str | None]) -> list[dict[str, Any]]:
    """One entry per process or prm-eval run, in the order given."""
    sections: list[dict[str, Any]] = []
    for j, run in enumerate(runs):
        if run.kind == "process":
            sections.append({"kind": "process", "name": run.path.name, "summary": run.summary,
                             "counts": _counts(run.summary), "frames": _candidates(run),
                             "complete": run.complete, "reason": run.incomplete_reason})
        elif run.kind == "prm_eval":
            s = run.summary
            sec: dict[str, Any] = {"kind": "prm_eval", "name": run.path.name, "summary": s,
                                   "complete": run.complete, "reason": run.incomplete_reason}
            curves = s.get("best_of_n") or {}
            cis = s.get("best_of_n_ci") if isinstance(s.get("best_of_n_ci"), dict) else best_of_n_intervals(run)
            if curves and all(isinstance(v, dict) for v in curves.values()):
                name = charts.best_of_n_chart(curves, chart_dir / f"best_of_n_{j:02d}.png", cis)
                sec["chart"] = image(chart_dir / name)
                ns = sorted({int(n) for v in curves.values() for n in v})
                sec["bon_ns"] = ns
                sec["bon_rows"] = [(method, [(curves[method].get(str(n)), (cis.get(method) or {}).get(str(n)))
                                             for n in ns]) for method in sorted(curves)]
            sections.append(sec)
    return sections
