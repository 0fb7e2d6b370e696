"""``drivechain process``: candidates per step and whole chains per frame, rated, hard negatives kept, exported.

Writes into OUT: ``candidates.jsonl`` (every candidate step: rating, per-question grades, rater score,
kept flag), ``chains.jsonl`` (sampled whole chains with ratings, final answer and its correctness),
``problems.jsonl`` (what a rater is told per frame), the exports (see ``exports``), ``summary.json``,
``config.json``, and ``results.sqlite`` when a model generates or rates.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivechain.errors import ConfigError
from drivechain.process.candidates import Candidate, Chain, teacher_chain
from drivechain.process.exports import completion_ratings, write_exports, write_jsonl, write_text_atomic
from drivechain.process.negatives import Problem, kept_dropped_means, make_problem, make_rater, select_hard_negatives
from drivechain.process.ratings import final_correct, rate
from drivechain.schema import STAGES, FrameRecord


@dataclass
class ProcessConfig:
    """Options of one ``drivechain process`` run."""

    generator: str = "perturb"
    n: int = 8
    chains: int = 16
    temperature: float = 0.7
    rater: str = "plausibility"
    top_k: int = 2
    seed: int = 0
    limit: int | None = None
    base_url: str | None = None
    concurrency: int = 16
    p_correct: float = 0.7
    propagate: float = 0.8
    corrections: str | None = None  # corrections.jsonl (default: the dataset's own)


@dataclass
class FrameResult:
    """Everything produced for one frame."""

    problem: Problem
    teacher: list[Candidate]
    candidates: list[list[Candidate]]  # per step, after de-duplication, rated and marked
    chains: list[Chain]
    duplicates: int


def chain_row(ch: Chain, problem: Problem) -> dict[str, Any]:
    """One line of chains.jsonl."""
    fq = problem.final_qid
    final = next((s.answers[fq] for s in ch.steps if fq and fq in s.answers), "")
    return {**ch.model_dump(), "first_error": ch.first_error, "final_answer": final,
            "final_correct": final_correct(ch.steps, fq), "fully_correct": ch.first_error < 0}


def _validate(cfg: ProcessConfig) -> None:
    if cfg.n < 1 or cfg.chains < 0 or cfg.top_k < 0 or cfg.concurrency < 1:
        raise ConfigError("process: --n and --concurrency must be >= 1, --chains and --top-k >= 0")
    if not (0.0 <= cfg.p_correct <= 1.0 and 0.0 <= cfg.propagate <= 1.0):
        raise ConfigError("process: --p-correct and --propagate must be in [0, 1]")
    if not 0.0 <= cfg.temperature <= 2.0:
        raise ConfigError(f"process: --temperature {cfg.temperature} outside [0, 2]")
    if cfg.limit is not None and cfg.limit < 1:
        raise ConfigError(f"process: --limit {cfg.limit} must be >= 1 (or left out for all frames)")


async def _frame(record: FrameRecord, gen: Any, rater: Any, cfg: ProcessConfig) -> FrameResult:
    problem = make_problem(record)
    teacher = [rate(record, s) for s in teacher_chain(record)]
    per_step: list[list[Candidate]] = []
    dup = 0
    for k in range(len(STAGES)):
        seen = {teacher[k].text}
        cands = []
        for c in await gen.candidates(record, k, teacher[:k], cfg.n):
            if c.text in seen:  # a copy of the teacher's step or of an earlier sample adds nothing
                dup += 1
                continue
            seen.add(c.text)
            cands.append(rate(record, c))
        negs = [c for c in cands if c.rating == -1]
        scores = await asyncio.gather(*(rater.score_step(problem, teacher[:k], c) for c in negs))
        for c, s in zip(negs, scores):
            c.rater_score = s
        select_hard_negatives(cands, cfg.top_k)
        per_step.append(cands)
    chains = await gen.chains(record, cfg.chains) if cfg.chains else []
    for ch in chains:
        for s in ch.steps:
            rate(record, s)
    return FrameResult(problem, teacher, per_step, chains, dup)


def _summary(results: list[FrameResult], cfg: ProcessConfig, gen: Any, rater: Any, files: dict[str, int]) -> dict[str, Any]:
    cands = [c for r in results for step in r.candidates for c in step]
    chains = [ch for r in results for ch in r.chains]
    kinds: dict[str, Counter[str]] = {}
    for c in cands:
        kinds.setdefault(c.kind or c.source, Counter())[str(c.rating)] += 1
    with_intent = [c for c in cands if c.intent is not None]
    rows = [chain_row(ch, r.problem) for r in results for ch in r.chains]
    return {
        "generator": gen.name, "rater": rater.name, "n": cfg.n, "chains_per_frame": cfg.chains, "top_k": cfg.top_k,
        "seed": cfg.seed, "temperature": cfg.temperature if gen.name != "perturb" else None,
        "frames": len(results),
        "frames_with_final_answer": sum(1 for r in results if r.problem.final_qid is not None),
        "candidates": len(cands),
        "ratings": {k: sum(1 for c in cands if c.rating == int(k)) for k in ("-1", "0", "1")},
        "ratings_by_stage": {st: {k: sum(1 for c in cands if c.stage == st and c.rating == int(k)) for k in ("-1", "0", "1")}
                             for st in STAGES},
        "kinds": {k: dict(sorted(v.items())) for k, v in sorted(kinds.items())},
        "intent_agreement": (round(sum(c.rating == c.intent for c in with_intent) / len(with_intent), 6)
                             if with_intent else None),
        "hard_negatives": {**kept_dropped_means(cands), "rater": rater.name},
        "kept": sum(1 for c in cands if c.kept),
        "duplicates_dropped": sum(r.duplicates for r in results),
        "generator_failures": getattr(gen, "failures", 0),
        "rater_failures": rater.failures,
        "teacher_step_ratings": {k: sum(1 for r in results for s in r.teacher if s.rating == int(k)) for k in ("-1", "0", "1")},
        "chains": {
            "count": len(chains),
            "fully_correct": sum(1 for x in rows if x["fully_correct"]),
            "final_correct": sum(1 for x in rows if x["final_correct"]),
            "first_error": {str(i): sum(1 for x in rows if x["first_error"] == i) for i in range(-1, len(STAGES))},
        },
        "files": files,
    }


async def run_process_async(data: Path, out: Path, cfg: ProcessConfig) -> dict[str, Any]:
    """Build the process data of a dataset into ``out``; returns the summary."""
    from drivechain.dataset import load_dataset
    from drivechain.process.perturb import PerturbGenerator

    _validate(cfg)
    ds = load_dataset(data)
    records = list(ds.records())
    if cfg.limit is not None:
        records = records[: cfg.limit]
    if not records:
        raise ConfigError(f"process: dataset {data} has no frames")
    from drivechain.process.corrections import apply_corrections, default_path, file_sha256, load_corrections

    corr_path = Path(cfg.corrections) if cfg.corrections else default_path(Path(ds.root))
    if cfg.corrections and not corr_path.is_file():
        raise ConfigError(f"process: --corrections {corr_path} does not exist")
    corr_stats = apply_corrections(records, load_corrections(corr_path))
    store = None

    def asker_for(model: Any) -> Any:
        nonlocal store
        from drivechain.evaluation.runner import Asker, RunPolicy
        from drivechain.evaluation.store import ResultStore

        if store is None:
            out.mkdir(parents=True, exist_ok=True)
            store = ResultStore(out / "results.sqlite")
        return Asker(model, store, RunPolicy(concurrency=cfg.concurrency))

    image_root = str(Path(ds.root).resolve())
    if cfg.generator == "perturb":
        gen: Any = PerturbGenerator(seed=cfg.seed, p_correct=cfg.p_correct, propagate=cfg.propagate)
    else:
        from drivechain.models.registry import load_model
        from drivechain.process.candidates import ModelGenerator

        gen = ModelGenerator(asker_for(load_model(cfg.generator, base_url=cfg.base_url)), cfg.generator,
                             image_root=image_root, temperature=cfg.temperature, seed=cfg.seed)
    rater = make_rater(cfg.rater, lambda m: asker_for(m), image_root=image_root, base_url=cfg.base_url)
    try:
        results = list(await asyncio.gather(*(_frame(r, gen, rater, cfg) for r in records)))
    finally:
        if hasattr(rater, "save_cache"):
            rater.save_cache()
        for obj in (gen, rater):
            model = getattr(getattr(obj, "asker", None), "model", None)
            if model is not None:
                await model.aclose()
        if store is not None:
            store.close()
    problems = {r.problem.frame_id: r.problem for r in results}
    teacher = {r.problem.frame_id: r.teacher for r in results}
    kept = {r.problem.frame_id: [[c for c in step if c.kept] for step in r.candidates] for r in results}
    chains = [ch for r in results for ch in r.chains]
    out.mkdir(parents=True, exist_ok=True)
    files = write_exports(out, problems, teacher, kept, chains, gen.name)
    write_jsonl(out / "candidates.jsonl", [{**c.model_dump(), "text": c.text} for r in results
                                           for step in r.candidates for c in step])
    write_jsonl(out / "chains.jsonl", [chain_row(ch, r.problem) for r in results for ch in r.chains])
    write_jsonl(out / "problems.jsonl", [p.model_dump() for p in problems.values()])
    summary = _summary(results, cfg, gen, rater, files)
    summary["prm800k_completions"] = completion_ratings(out / "prm800k.jsonl")
    summary["corrections"] = corr_stats
    config = {"data": str(data), **{k: v for k, v in vars(cfg).items() if k != "base_url"},
              "corrections": {"path": str(corr_path.resolve()), "sha256": file_sha256(corr_path)}}
    write_text_atomic(out / "config.json", json.dumps(config, sort_keys=True, indent=2) + "\n")
    write_text_atomic(out / "summary.json", json.dumps(summary, sort_keys=True, indent=2) + "\n")
    return summary


def run_process(data: Path, out: Path, cfg: ProcessConfig) -> dict[str, Any]:
    """Synchronous wrapper of ``run_process_async``."""
    return asyncio.run(run_process_async(data, out, cfg))

