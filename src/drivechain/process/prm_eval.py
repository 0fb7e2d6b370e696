"""Reward-model evaluation on process data: ProcessBench first-error F1 and best-of-N selection.

- First error: the rater scores every step of every ProcessBench item (each given the earlier steps);
  the predicted first error is the first step scored below ``THRESHOLD`` (0.5), or -1 when none is.
  acc_error = share of erroneous items (label >= 0) whose first error is found exactly; acc_correct =
  share of correct items (label -1) predicted -1; F1 = 2 a1 a2 / (a1 + a2) (ProcessBench).
- Best-of-N over the sampled chains of each frame (chains.jsonl), N in 1, 2, 4, 8, 16: the M chains
  of a frame (in sampled order) are cut into floor(M / N) disjoint groups of N; in each group one chain
  is selected and the frame's accuracy is the share of groups whose selected chain has a correct final
  answer (plan.action rated 0 or +1); the reported figure is the mean over frames with at least N
  chains and a scored final answer. Selectors: PRM ``product`` / ``min`` / ``last`` of the step scores,
  ``orm`` (the rater asked once about the final answer only), ``majority`` (the most frequent final
  answer; ties to the earliest). Score ties go to the earliest chain; a failed rating counts 0.
  ``pass`` = a group holds a chain with a correct final answer; ``fully_correct`` = a group holds a
  chain with no step rated -1 (where an oracle PRM must select a correct one).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from drivechain.errors import ConfigError, DatasetError
from drivechain.process.candidates import Candidate, Chain
from drivechain.process.negatives import Problem, score_steps

THRESHOLD = 0.5
NS = (1, 2, 4, 8, 16)
SELECTORS = ("product", "min", "last", "orm", "majority")
_LINE = re.compile(r"^([A-Za-z0-9_.]+): (.*)$")


class ScoredChain(BaseModel):
    """A chain's labels and the rater's view of it."""

    step_scores: list[float | None]
    outcome: float | None
    final_answer: str
    final_correct: bool
    fully_correct: bool


def predicted_first_error(scores: list[float | None], threshold: float = THRESHOLD) -> int:
    """Index of the first step scored below ``threshold`` (a failed rating counts 0), or -1."""
    return next((i for i, s in enumerate(scores) if (s or 0.0) < threshold), -1)


def first_error_f1(labels: list[int], predicted: list[int]) -> dict[str, Any]:
    """ProcessBench's F1: harmonic mean of exact first-error accuracy on erroneous and on correct items."""
    err = [(lab, p) for lab, p in zip(labels, predicted) if lab >= 0]
    ok = [(lab, p) for lab, p in zip(labels, predicted) if lab < 0]
    a1 = sum(lab == p for lab, p in err) / len(err) if err else None
    a2 = sum(p < 0 for _, p in ok) / len(ok) if ok else None
    f1 = None
    if a1 is not None and a2 is not None:
        f1 = 0.0 if a1 + a2 == 0 else 2 * a1 * a2 / (a1 + a2)
    return {"f1": f1, "acc_error": a1, "acc_correct": a2, "n_error": len(err), "n_correct": len(ok)}


def _agg(c: ScoredChain, how: str) -> float:
    s = [x or 0.0 for x in c.step_scores]
    if how == "product":
        return math.prod(s)
    if how == "min":
        return min(s) if s else 0.0
    if how == "last":
        return s[-1] if s else 0.0
    return c.outcome or 0.0


def select(group: list[ScoredChain], how: str) -> int:
    """Index (in ``group``) of the chain a selector picks; ties go to the earliest."""
    if how == "majority":
        counts = Counter(c.final_answer for c in group)
        best = max(counts.values())
        return next(i for i, c in enumerate(group) if counts[c.final_answer] == best)
    scores = [_agg(c, how) for c in group]
    return scores.index(max(scores))


def _group_hits(chains: list[ScoredChain], n: int, key: str) -> float:
    """Share of a frame's disjoint groups of N chains whose selection (or ceiling) is correct."""
    groups = [chains[g * n:(g + 1) * n] for g in range(len(chains) // n)]
    if key == "pass":
        hits = [any(c.final_correct for c in grp) for grp in groups]
    elif key == "fully_correct":
        hits = [any(c.fully_correct for c in grp) for grp in groups]
    else:
        hits = [grp[select(grp, key)].final_correct for grp in groups]
    return sum(hits) / len(hits)


def per_frame_best_of_n(frames: list[list[ScoredChain]], ns: tuple[int, ...] = NS) -> dict[str, dict[str, list[float]]]:
    """Selector -> N -> accuracy of each frame with at least N chains (the values ``best_of_n`` averages)."""
    keys = (*SELECTORS, "pass", "fully_correct")
    return {k: {str(n): [_group_hits(f, n, k) for f in frames if len(f) >= n] for n in ns} for k in keys}


def best_of_n(frames: list[list[ScoredChain]], ns: tuple[int, ...] = NS) -> dict[str, dict[str, float | None]]:
    """Selector -> N -> accuracy (plus ``pass`` and ``fully_correct`` ceilings); None when no frame has N chains."""
    per = per_frame_best_of_n(frames, ns)
    return {k: {n: (round(sum(v) / len(v), 6) if v else None) for n, v in row.items()} for k, row in per.items()}


def parse_step_text(text: str) -> dict[str, str]:
    """``qid: answer`` lines back into a dict."""
    out = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist; run 'drivechain process --out {path.parent}' first") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path} is not valid JSON lines ({exc}); re-run 'drivechain process'") from None


def load_process_dir(root: Path) -> tuple[dict[str, Problem], list[dict[str, Any]], list[Chain]]:
    """Problems, ProcessBench items and sampled chains of a process folder."""
    if not root.is_dir():
        raise DatasetError(f"process folder {root} does not exist; make it with 'drivechain process'")
    try:
        problems = {p.frame_id: p for p in (Problem.model_validate(r) for r in _read_jsonl(root / "problems.jsonl"))}
        chains = [Chain.model_validate({k: r[k] for k in ("frame_id", "chain_id", "source", "steps")})
                  for r in _read_jsonl(root / "chains.jsonl")]
        pb_path = root / "processbench.json"
        items = json.loads(pb_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DatasetError(f"{exc.filename} does not exist; re-run 'drivechain process'") from None
    except (ValueError, KeyError) as exc:
        raise DatasetError(f"process folder {root} is broken ({str(exc)[:120]}); re-run 'drivechain process'") from None
    if not isinstance(items, list) or any(i.get("frame_id") not in problems for i in items):
        raise DatasetError(f"{root / 'processbench.json'} does not match problems.jsonl; re-run 'drivechain process'")
    return problems, items, chains


def item_steps(item: dict[str, Any]) -> list[Candidate]:
    """A ProcessBench item's steps as candidates (the teacher's ratings kept for the oracle)."""
    return [Candidate(frame_id=item["frame_id"], step_index=i, stage=st, answers=parse_step_text(t),
                      source=item.get("generator", ""), rating=r)
            for i, (t, st, r) in enumerate(zip(item["steps"], item["stages"], item["step_ratings"]))]


async def score_chains(problems: dict[str, Problem], chains: list[Chain], rater: Any
                       ) -> tuple[dict[str, list[ScoredChain]], list[dict[str, Any]]]:
    """Rater step and outcome scores of the chains of frames with a scored final answer, by frame."""
    from drivechain.process.ratings import final_correct

    flat = [c for c in chains if problems[c.frame_id].final_qid is not None]
    step_scores = await asyncio.gather(*(score_steps(rater, problems[c.frame_id], c.steps) for c in flat))
    outcomes = await asyncio.gather(*(rater.score_outcome(problems[c.frame_id], c.steps) for c in flat))
    scored: dict[str, list[ScoredChain]] = {}
    for c, ss, oc in zip(flat, step_scores, outcomes):
        fq = problems[c.frame_id].final_qid
        scored.setdefault(c.frame_id, []).append(ScoredChain(
            step_scores=list(ss), outcome=oc, final_answer=next((s.answers[fq] for s in c.steps if fq in s.answers), ""),
            final_correct=final_correct(c.steps, fq), fully_correct=c.first_error < 0))
    rows = [{"frame_id": c.frame_id, "chain_id": c.chain_id, "scores": list(ss), "outcome": oc}
            for c, ss, oc in zip(flat, step_scores, outcomes)]
    return scored, rows


async def evaluate(root: Path, rater: Any, *, threshold: float = THRESHOLD, ns: tuple[int, ...] = NS,
                   frames: set[str] | None = None) -> dict[str, Any]:
    """First-error F1, step AUROC and best-of-N (with bootstrap intervals over frames); the summary dict.

    ``frames`` restricts everything to those frames (a trained model's held-out split)."""
    from drivechain.process import prm_metrics as pm

    problems, items, chains = load_process_dir(root)
    if frames is not None:
        items = [it for it in items if it["frame_id"] in frames]
        chains = [c for c in chains if c.frame_id in frames]
    pb_scores = await asyncio.gather(*(score_steps(rater, problems[it["frame_id"]], item_steps(it)) for it in items))
    labels = [int(it["label"]) for it in items]
    preds = [predicted_first_error(s, threshold) for s in pb_scores]
    fe = first_error_f1(labels, preds)
    fe["f1_interval"] = pm.f1_interval([it["frame_id"] for it in items], labels, preds)
    step_rows = pm.step_auroc_rows(items, pb_scores)
    auroc = {"auroc": pm.auroc([r[1] for r in step_rows], [r[2] for r in step_rows]),
             "interval": pm.auroc_interval(step_rows), "steps": len(step_rows),
             "positives": sum(r[1] for r in step_rows)}

    scored, rows = await score_chains(problems, chains, rater)
    per = per_frame_best_of_n(list(scored.values()), ns)
    bon = {k: {n: (round(sum(v) / len(v), 6) if v else None) for n, v in row.items()} for k, row in per.items()}
    ci = {k: {n: pm.mean_interval(v) for n, v in row.items()} for k, row in per.items()}
    return {"rater": rater.name, "threshold": threshold, "first_error": fe, "best_of_n": bon,
            "best_of_n_ci": ci, "best_of_n_curves": pm.curves_block(bon, ci, rater.name),
            "step_auroc": auroc, "first_error_confusion": pm.first_error_confusion(labels, preds),
            "items": len(items), "frames": len(scored), "chains": len(rows), "rater_failures": rater.failures,
            "step_scores": rows}


def table(summary: dict[str, Any]) -> str:
    """Best-of-N accuracy as a Markdown table (rows: selectors; columns: N; 95 % interval in brackets), F1 and AUROC below."""
    bon = summary["best_of_n"]
    ci = summary.get("best_of_n_ci", {})
    ns = list(next(iter(bon.values())).keys())
    fmt = lambda v: "-" if v is None else f"{100 * v:.1f}"  # noqa: E731

    def cell(key: str, n: str) -> str:
        iv = ci.get(key, {}).get(n)
        return fmt(bon[key][n]) + (f" [{fmt(iv[0])}, {fmt(iv[1])}]" if iv and bon[key][n] is not None else "")

    lines = [f"rater {summary['rater']}, {summary['frames']} frames" + (f" ({summary['frames_scope']})" if summary.get("frames_scope") else ""),
             "", "| selector | " + " | ".join(f"N={n}" for n in ns) + " |", "|---" * (len(ns) + 1) + "|"]
    for key in bon:
        lines.append(f"| {key} | " + " | ".join(cell(key, n) for n in ns) + " |")
    fe = summary["first_error"]
    iv = fe.get("f1_interval")
    lines += ["", f"first-error F1 {fmt(fe['f1'])}" + (f" [{fmt(iv[0])}, {fmt(iv[1])}]" if iv else "")
              + f" (acc on erroneous {fmt(fe['acc_error'])} of {fe['n_error']}, "
              f"on correct {fmt(fe['acc_correct'])} of {fe['n_correct']}), threshold {summary['threshold']}"]
    au = summary.get("step_auroc")
    if au:
        iv = au.get("interval")
        lines.append(f"step AUROC {fmt(au['auroc'])}" + (f" [{fmt(iv[0])}, {fmt(iv[1])}]" if iv else "")
                     + f" over {au['steps']} steps ({au['positives']} correct)")
    conf = summary.get("first_error_confusion")
    if conf:
        lines += ["", "| true first error \\ predicted | " + " | ".join(conf["labels"]) + " |",
                  "|---" * (len(conf["labels"]) + 1) + "|"]
        lines += [f"| {name} | " + " | ".join(str(c) for c in row) + " |" for name, row in zip(conf["labels"], conf["matrix"])]
    return "\n".join(lines) + "\n"


def heldout_scope(data: Path, rater_spec: str, holdout: Path | None) -> tuple[set[str] | None, str | None]:
    """The frames to evaluate on: those a trained model (the rater, or ``holdout``) never trained on."""
    model_dir = holdout
    if model_dir is None and rater_spec.startswith("model:"):
        model_dir = Path(rater_spec.split(":", 1)[1])
    if model_dir is None:
        return None, None
    try:
        cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        used = set(cfg["frames"]["train"]) | set(cfg["frames"].get("dev", []))
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"{model_dir}: no readable config.json with its frames; give a folder made by 'drivechain prm-train'") from None
    problems, _, _ = load_process_dir(data)
    frames = set(problems) - used
    if not frames:
        raise ConfigError(f"every frame of {data} was used to train {model_dir}; evaluate it on other frames")
    return frames, f"frames {model_dir.name} never trained on"


def run_prm_eval(data: Path, out: Path, rater_spec: str, *, threshold: float | None = None, base_url: str | None = None,
                 concurrency: int = 16, holdout: Path | None = None) -> dict[str, Any]:
    """Evaluate a rater on a process folder; writes summary.json, step_scores.jsonl, table.md into ``out``.

    ``threshold`` None: a trained model's own (tuned on its dev split), else 0.5.
    A ``model:DIR`` rater trained on this data, or ``holdout=DIR``, restricts it to DIR's held-out frames."""
    from drivechain.process.exports import write_jsonl, write_text_atomic
    from drivechain.process.negatives import make_rater

    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"prm-eval: --threshold {threshold} outside [0, 1]")
    if concurrency < 1:
        raise ConfigError("prm-eval: --concurrency must be >= 1")
    load_process_dir(data)  # fail on a broken folder before creating anything
    frames, scope = heldout_scope(data, rater_spec.strip(), holdout)
    image_root = ""
    try:
        cfg = json.loads((data / "config.json").read_text(encoding="utf-8"))
        if Path(cfg.get("data", "")).is_dir():
            image_root = str(Path(cfg["data"]).resolve())
    except (OSError, ValueError, AttributeError):
        pass
    holder: dict[str, Any] = {}

    def asker_for(model: Any) -> Any:
        from drivechain.evaluation.runner import Asker, RunPolicy
        from drivechain.evaluation.store import ResultStore

        out.mkdir(parents=True, exist_ok=True)
        holder["store"] = ResultStore(out / "results.sqlite")
        holder["model"] = model
        return Asker(model, holder["store"], RunPolicy(concurrency=concurrency))

    rater = make_rater(rater_spec, asker_for, image_root=image_root, base_url=base_url, data=data)

    async def go() -> dict[str, Any]:
        try:
            # a trained model brings the threshold tuned on its dev split; others use 0.5
            return await evaluate(data, rater, threshold=threshold if threshold is not None else
                                  getattr(rater, "threshold", THRESHOLD), frames=frames)
        finally:
            if hasattr(rater, "save_cache"):
                rater.save_cache()
            if "model" in holder:
                await holder["model"].aclose()
            if "store" in holder:
                holder["store"].close()

    summary = asyncio.run(go())
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "step_scores.jsonl", summary.pop("step_scores"))
    summary["data"] = str(data)
    summary["frames_scope"] = scope or "all frames"
    summary["failure_examples"] = getattr(rater, "failure_examples", [])
    write_text_atomic(out / "summary.json", json.dumps(summary, sort_keys=True, indent=2) + "\n")
    write_text_atomic(out / "table.md", table(summary))
    return summary
