"""``drivechain prm-loop``: active mining of labels for a PRM ("convincing wrong-answer" selection vs random).

The experiment of "Let's Verify Step by Step" (sec. 4), on driving. Frames are split by episode into a
fixed held-out set and a pool. The held-out set gets whole chains once (``--eval-chains`` per frame,
perturb generator, a seed of its own) and is written as a process folder (``OUT/heldout``), so every
round is measured by ``prm_eval.evaluate`` exactly like ``drivechain prm-eval``.
Round 0: ``--budget`` chains drawn at random from a first pool are labelled (the same for both
strategies) and a PRM is trained. Each round r >= 1:
1. generate ``--chains`` new whole chains per pool frame (perturb generator, seed derived from the
   run's seed and r only: both strategies see the same pool);
2. score them with the current PRM (product of step scores);
3. choose ``--budget`` chains to label: ``convincing`` = the highest-scoring chains whose final
   answer is wrong (checking the final answer is cheap, as checking a MATH answer is; ties in pool
   order, topped up at random when fewer are wrong), ``random`` = uniformly from the pool;
4. label them with the teacher's step ratings (in the paper, people): PRM labels up to and including
   the first step rated -1, a step rated 0 counted by ``--neutral``;
5. retrain the head from scratch on every chain labelled so far, and record the held-out step AUROC,
   first-error F1 and best-of-N, each with its bootstrap interval.
Budget = chains labelled per round (the paper counts solutions).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drivechain.errors import ConfigError
from drivechain.process.candidates import Chain, teacher_chain
from drivechain.process.exports import Item, processbench_rows, write_exports, write_jsonl, write_text_atomic
from drivechain.process.negatives import Problem, make_problem
from drivechain.process.ratings import final_correct, rate
from drivechain.schema import FrameRecord

SELECTS = ("convincing", "random")


@dataclass
class LoopConfig:
    """Options of ``drivechain prm-loop``."""

    rounds: int = 3
    budget: int = 50
    select: str = "convincing"
    chains: int = 8
    eval_chains: int = 8
    backbone: str = "minilm"
    neutral: str = "pos"
    heldout: float = 0.2
    seed: int = 0
    epochs: int = 30
    limit: int | None = None


def _validate(cfg: LoopConfig) -> None:
    if cfg.select not in SELECTS:
        raise ConfigError(f"prm-loop: --select {cfg.select!r} must be convincing or random")
    if cfg.rounds < 1 or cfg.budget < 1 or cfg.chains < 1 or cfg.eval_chains < 1:
        raise ConfigError("prm-loop: --rounds, --budget, --chains and --eval-chains must be >= 1")
    if not 0.0 < cfg.heldout < 1.0:
        raise ConfigError(f"prm-loop: --heldout {cfg.heldout} must be in (0, 1)")


async def _chains(records: list[FrameRecord], n: int, seed: int) -> list[Chain]:
    from drivechain.process.perturb import PerturbGenerator

    gen = PerturbGenerator(seed=seed)
    per = await asyncio.gather(*(gen.chains(r, n) for r in records))
    by_id = {r.frame.frame_id: r for r in records}
    out = [ch for chs in per for ch in chs]
    for ch in out:
        for s in ch.steps:
            rate(by_id[ch.frame_id], s)
    return out


def write_eval_set(records: list[FrameRecord], out: Path, n: int, seed: int) -> None:
    """A process folder (problems, chains, ProcessBench items) of ``records`` for ``prm_eval.evaluate``."""
    from drivechain.process.pipeline import chain_row

    problems = {r.frame.frame_id: make_problem(r) for r in records}
    teacher = {r.frame.frame_id: [rate(r, s) for s in teacher_chain(r)] for r in records}
    chains = asyncio.run(_chains(records, n, seed))
    out.mkdir(parents=True, exist_ok=True)
    write_exports(out, problems, teacher, {f: [[] for _ in steps] for f, steps in teacher.items()}, chains, "perturb")
    write_jsonl(out / "chains.jsonl", [chain_row(ch, problems[ch.frame_id]) for ch in chains])
    write_jsonl(out / "problems.jsonl", [p.model_dump() for p in problems.values()])


def chain_items(chains: list[Chain], problems: dict[str, Problem]) -> list[dict[str, Any]]:
    """Chains as ProcessBench-style items (what ``train.examples`` reads)."""
    items = [Item(id=f"{c.frame_id}#chain{c.chain_id}", generator="perturb", frame_id=c.frame_id, steps=c.steps)
             for c in chains]
    return processbench_rows(items, problems)


def chain_scores(model: Any, chains: list[Chain], problems: dict[str, Problem]) -> np.ndarray:
    """Product of the model's step scores, per chain."""
    from drivechain.process.features import step_texts

    rows = []
    for c in chains:
        text = problems[c.frame_id].text
        rows += [(s.stage, *step_texts(text, s.stage, [p.text for p in c.steps[:k]], s.text)) for k, s in enumerate(c.steps)]
    scores = model.score_rows(rows).reshape(len(chains), -1) if chains else np.zeros((0, 1))
    return scores.prod(axis=1)


def choose(chains: list[Chain], scores: np.ndarray, wrong: list[bool], budget: int, select: str,
           rng: np.random.Generator) -> list[int]:
    """Indices of the chains to label (see the module docstring)."""
    if select == "random":
        return sorted(rng.choice(len(chains), size=min(budget, len(chains)), replace=False).tolist())
    ranked = sorted((i for i in range(len(chains)) if wrong[i]), key=lambda i: (-float(scores[i]), i))
    picked = ranked[:budget]
    if len(picked) < budget:
        rest = [i for i in range(len(chains)) if i not in set(picked)]
        picked += rng.choice(rest, size=min(budget - len(picked), len(rest)), replace=False).tolist()
    return sorted(picked)


def run_loop(data: Path, out: Path, cfg: LoopConfig, cache: Any = None) -> dict[str, Any]:
    """Run the active-learning loop; writes OUT/rounds.jsonl, OUT/summary.json, OUT/heldout/, OUT/models/.

    ``cache``: an ``EmbeddingCache`` of the backbone to share between runs (one process, both strategies)."""
    from drivechain.dataset import load_dataset
    from drivechain.process.corrections import apply_corrections, default_path, load_corrections
    from drivechain.process.features import EmbeddingCache, featurize, get_encoder
    from drivechain.process.prm_eval import evaluate
    from drivechain.process.reward_model import RewardModel, TrainedRater, head_scores
    from drivechain.process.train import TrainConfig, examples, split_frames, train_examples, tune_threshold, write_model

    _validate(cfg)
    ds = load_dataset(data)
    records = list(ds.records())[: cfg.limit] if cfg.limit else list(ds.records())
    apply_corrections(records, load_corrections(default_path(Path(ds.root))))
    split = split_frames([r.frame.frame_id for r in records], cfg.heldout, cfg.seed)
    held = set(split["heldout"])
    pool = [r for r in records if r.frame.frame_id not in held]
    if not held or not pool:
        raise ConfigError(f"prm-loop: dataset {data} needs at least two episodes (one held out)")
    problems = {r.frame.frame_id: make_problem(r) for r in pool}
    write_eval_set([r for r in records if r.frame.frame_id in held], out / "heldout", cfg.eval_chains, cfg.seed + 7919)
    tcfg = TrainConfig(kind="prm", backbone=cfg.backbone, neutral=cfg.neutral, seed=cfg.seed, epochs=cfg.epochs)
    cache = cache if cache is not None else EmbeddingCache(get_encoder(cfg.backbone))
    labelled: list[Chain] = []
    rows: list[dict[str, Any]] = []
    model: RewardModel | None = None
    for rnd in range(cfg.rounds + 1):
        pool_chains = asyncio.run(_chains(pool, cfg.chains, cfg.seed * 100_003 + rnd))
        wrong = [not final_correct(c.steps, problems[c.frame_id].final_qid) for c in pool_chains]
        rng = np.random.default_rng([cfg.seed, rnd])
        if model is None:  # round 0: a random seed set, identical for both strategies
            picked = choose(pool_chains, np.zeros(len(pool_chains)), wrong, cfg.budget, "random", rng)
            scores = np.zeros(len(pool_chains))
        else:
            scores = chain_scores(model, pool_chains, problems)
            picked = choose(pool_chains, scores, wrong, cfg.budget, cfg.select, rng)
        labelled += [pool_chains[i] for i in picked]
        exs = examples(problems, chain_items(labelled, problems), "prm", cfg.neutral)
        weights, curves = train_examples(exs, [], tcfg, cache)
        mdir = out / "models" / f"round-{rnd}"
        threshold, _ = tune_threshold(exs, head_scores(weights, featurize(cache, [e.row for e in exs])))
        write_model(mdir, weights, {"kind": "prm", "backbone": cfg.backbone, "neutral": cfg.neutral, "seed": cfg.seed,
                                    "threshold": threshold, "threshold_tuned_on": "labelled chains",
                                    "round": rnd, "select": cfg.select, "labelled_chains": len(labelled),
                                    "frames": {"train": sorted(problems), "heldout": sorted(held)}}, curves)
        model = RewardModel(mdir)
        model.cache = cache
        rater = TrainedRater(model, f"model:{mdir.name}")
        ev = asyncio.run(evaluate(out / "heldout", rater, threshold=rater.threshold))
        chosen = [pool_chains[i] for i in picked]
        rows.append({
            "round": rnd, "select": "random (seed set)" if rnd == 0 else cfg.select, "labelled_chains": len(labelled),
            "labelled_steps": len(exs), "labelled_negatives": sum(1 - e.label for e in exs),
            "pool_chains": len(pool_chains), "pool_wrong_final": sum(wrong),
            "chosen_wrong_final": sum(wrong[i] for i in picked), "chosen_with_error": sum(c.first_error >= 0 for c in chosen),
            "chosen_mean_score": round(float(np.mean([scores[i] for i in picked])), 6) if picked else None,
            "heldout_step_auroc": ev["step_auroc"]["auroc"], "heldout_step_auroc_interval": ev["step_auroc"]["interval"],
            "heldout_first_error_f1": ev["first_error"]["f1"], "heldout_first_error_f1_interval": ev["first_error"]["f1_interval"],
            "heldout_best_of_n_product": ev["best_of_n"]["product"],
        })
    write_jsonl(out / "rounds.jsonl", rows)
    summary = {"select": cfg.select, "budget": cfg.budget, "rounds": cfg.rounds, "chains_per_frame": cfg.chains,
               "backbone": cfg.backbone, "seed": cfg.seed, "data": str(data), "pool_frames": len(pool),
               "heldout_frames": len(held),
               "curve": {"x": "chains labelled", "y": "held-out step AUROC of the PRM (95% bootstrap over frames)",
                         "labels": [r["labelled_chains"] for r in rows], "auroc": [r["heldout_step_auroc"] for r in rows],
                         "low": [(r["heldout_step_auroc_interval"] or [None, None])[0] for r in rows],
                         "high": [(r["heldout_step_auroc_interval"] or [None, None])[1] for r in rows],
                         "first_error_f1": [r["heldout_first_error_f1"] for r in rows]},
               "rows": rows}
    write_text_atomic(out / "summary.json", json.dumps(summary, sort_keys=True, indent=2) + "\n")
    return summary
