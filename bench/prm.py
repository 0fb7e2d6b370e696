"""Trained reward models on driving: PRM vs ORM vs plausibility vs majority, active mining, review.

    .venv/bin/python bench/prm.py --data DATASET --work DIR [--backbone minilm] [--rounds 3] [--budget 100]

DATASET is a dataset folder (``drivechain generate``; >= 300 frames of the four scenarios for the
figures of bench/README.md). Steps, each printed as it finishes with its wall time:
1. ``process`` (perturb generator, N candidates per step, C chains per frame, seed 0) -> WORK/prm;
   and the same frames' chains from the built-in ``heuristic`` model through the model-generator path
   (``--model-chains``, default 1: that model is deterministic) -> WORK/prm-heuristic (not
   perturbations of ours: the errors of a prompt-only rule-based model);
2. ``prm-train``: PRM (neutral pos), PRM (neutral neg), ORM, all on the same split (seed 0);
3. ``prm-eval`` on the frames the models never trained on: each trained model, plausibility, oracle;
   best-of-N per selector with 95 % bootstrap intervals over frames, first-error F1, step AUROC;
4. the trained PRM/ORM and plausibility on the heuristic model's chains (same held-out frames);
5. ``prm-loop`` convincing vs random (same seeds, budget, pools), R rounds;
6. ``review``: the top labels where the PRM disagrees with the teacher.
Everything stays in WORK (reused when present: delete a sub-folder to redo it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from drivechain.process.pipeline import ProcessConfig, run_process  # noqa: E402
from drivechain.process.prm_eval import run_prm_eval  # noqa: E402


def pct(v: float | None) -> str:
    """A share as a percentage with one decimal."""
    return "-" if v is None else f"{100 * v:.1f}"


def iv(x: list[float] | None) -> str:
    """An interval as [low, high] percentages."""
    return "" if not x else f" [{pct(x[0])}, {pct(x[1])}]"


def step(label: str, t0: float) -> None:
    """Print a finished step with its wall time."""
    print(f"[{time.perf_counter() - t0:7.1f} s] {label}", flush=True)


def bon_table(runs: dict[str, dict], picks: list[tuple[str, str, str]]) -> None:
    """Best-of-N rows: (label, run name, selector), with intervals."""
    ns = sorted(next(iter(runs.values()))["best_of_n"]["product"], key=int)
    print("| rater / selector | " + " | ".join(f"N={n}" for n in ns) + " |")
    print("|---" * (len(ns) + 1) + "|")
    for label, run, sel in picks:
        s = runs[run]
        row = [pct(s["best_of_n"][sel][n]) + iv(s["best_of_n_ci"][sel][n]) if s["best_of_n"][sel][n] is not None
               else "-" for n in ns]
        print(f"| {label} | " + " | ".join(row) + " |")


def quality_table(runs: dict[str, dict]) -> None:
    """First-error F1 and step AUROC per rater."""
    print("| rater | first-error F1 | acc. erroneous / correct | threshold | step AUROC | items | frames |")
    print("|---|---|---|---|---|---|---|")
    for name, s in runs.items():
        fe, au = s["first_error"], s["step_auroc"]
        print(f"| {name} | {pct(fe['f1'])}{iv(fe['f1_interval'])} | {pct(fe['acc_error'])} / {pct(fe['acc_correct'])} | "
              f"{s['threshold']} | {pct(au['auroc'])}{iv(au['interval'])} | {s['items']} | {s['frames']} |")


def confusion(s: dict) -> None:
    """First-error confusion matrix of one rater."""
    conf = s["first_error_confusion"]
    print("| true \\ predicted | " + " | ".join(conf["labels"]) + " |")
    print("|---" * (len(conf["labels"]) + 1) + "|")
    for name, row in zip(conf["labels"], conf["matrix"]):
        print(f"| {name} | " + " | ".join(map(str, row)) + " |")


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--backbone", default="minilm")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--chains", type=int, default=16)
    ap.add_argument("--model-chains", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--loop-chains", type=int, default=4)
    ap.add_argument("--skip-loop", action="store_true")
    args = ap.parse_args()
    from drivechain.process.train import TrainConfig, train_model

    t0 = time.perf_counter()
    w = args.work
    w.mkdir(parents=True, exist_ok=True)
    prm = w / "prm"
    if not (prm / "summary.json").is_file():
        run_process(args.data, prm, ProcessConfig(n=args.n, chains=args.chains, top_k=2, seed=0))
    ps = json.loads((prm / "summary.json").read_text())
    step(f"process: {ps['frames']} frames, {ps['candidates']} candidates, {ps['chains']['count']} chains "
         f"({ps['chains']['final_correct']} with a correct final answer, {ps['chains']['fully_correct']} fully correct)", t0)
    heur = w / "prm-heuristic"
    if args.model_chains and not (heur / "summary.json").is_file():
        run_process(args.data, heur, ProcessConfig(generator="heuristic", n=1, chains=args.model_chains, top_k=1,
                                                   seed=0, temperature=0.7))
    models = {"PRM": ("prm", "pos"), "PRM neutral=neg": ("prm", "neg"), "ORM": ("orm", "pos")}
    for name, (kind, neutral) in models.items():
        out = w / "models" / name.replace(" ", "_").replace("=", "-")
        if not (out / "config.json").is_file():
            c = train_model(prm, out, TrainConfig(kind=kind, backbone=args.backbone, neutral=neutral, seed=0))
        c = json.loads((out / "config.json").read_text())
        step(f"prm-train {name}: {c['examples']['train']} training steps ({c['positives']['train']} positive), "
             f"{c['epochs_run']} epochs, held-out step AUROC {pct(c['heldout_auroc'])} on its own labels, "
             f"{c['train_seconds']} s, {c['texts_encoded']} texts encoded", t0)
    mdir = {name: w / "models" / name.replace(" ", "_").replace("=", "-") for name in models}
    raters = {"PRM": f"model:{mdir['PRM']}", "PRM neutral=neg": f"model:{mdir['PRM neutral=neg']}",
              "ORM": f"model:{mdir['ORM']}", "plausibility": "plausibility", "oracle": "oracle"}
    runs: dict[str, dict] = {}
    for name, spec in raters.items():
        out = w / "eval" / name.replace(" ", "_").replace("=", "-")
        if not (out / "summary.json").is_file():
            run_prm_eval(prm, out, spec, holdout=mdir["PRM"])
        runs[name] = json.loads((out / "summary.json").read_text())
        step(f"prm-eval {name}: {runs[name]['frames']} frames ({runs[name]['frames_scope']})", t0)
    print("\n### Best-of-N on perturb chains (held-out frames; % correct final answers, 95 % bootstrap over frames)\n")
    bon_table(runs, [("PRM product", "PRM", "product"), ("PRM min", "PRM", "min"),
                     ("PRM neutral=neg product", "PRM neutral=neg", "product"), ("ORM (trained)", "ORM", "orm"),
                     ("plausibility product", "plausibility", "product"), ("majority vote", "PRM", "majority"),
                     ("oracle product", "oracle", "product"), ("pass (ceiling)", "PRM", "pass")])
    print("\n### Step-level quality (held-out frames)\n")
    quality_table(runs)
    for name in ("PRM", "ORM", "plausibility"):
        print(f"\nFirst-error confusion, {name}:\n")
        confusion(runs[name])
    if args.model_chains:
        hs = json.loads((heur / "summary.json").read_text())
        step(f"process heuristic: {hs['chains']['count']} chains ({hs['chains']['final_correct']} correct final)", t0)
        hruns = {}
        for name in ("PRM", "ORM", "plausibility", "oracle"):
            out = w / "eval-heuristic" / name
            if not (out / "summary.json").is_file():
                run_prm_eval(heur, out, raters[name], holdout=mdir["PRM"])
            hruns[name] = json.loads((out / "summary.json").read_text())
        if args.model_chains > 1:  # the heuristic model is deterministic: its chains only differ with sampling models
            print("\n### Best-of-N on chains of the built-in heuristic model (same held-out frames)\n")
            bon_table(hruns, [("PRM product", "PRM", "product"), ("PRM min", "PRM", "min"), ("ORM (trained)", "ORM", "orm"),
                              ("plausibility product", "plausibility", "product"), ("majority vote", "PRM", "majority"),
                              ("oracle product", "oracle", "product"), ("pass (ceiling)", "PRM", "pass")])
        print("\n### Step-level quality on the heuristic model's own chains and step candidates (held-out frames)\n")
        quality_table(hruns)
    if not args.skip_loop:
        from drivechain.process.features import EmbeddingCache, get_encoder
        from drivechain.process.loop import LoopConfig, run_loop

        cache = EmbeddingCache(get_encoder(args.backbone))
        curves = {}
        for sel in ("convincing", "random"):
            out = w / f"loop-{sel}"
            if not (out / "summary.json").is_file():
                run_loop(args.data, out, LoopConfig(rounds=args.rounds, budget=args.budget, select=sel,
                                                    chains=args.loop_chains, backbone=args.backbone, seed=0), cache)
            curves[sel] = json.loads((out / "summary.json").read_text())
            step(f"prm-loop {sel} done", t0)
        print(f"\n### Active mining: held-out PRM quality vs chains labelled (budget {args.budget}/round)\n")
        print("| round | chains labelled | strategy | chosen: wrong final / any error | held-out step AUROC | first-error F1 | best-of-8 product |")
        print("|---|---|---|---|---|---|---|")
        for sel, s in curves.items():
            for r in s["rows"]:
                top = max(r["heldout_best_of_n_product"], key=int) if r["heldout_best_of_n_product"] else None
                print(f"| {r['round']} | {r['labelled_chains']} | {r['select']} | {r['chosen_wrong_final']} / "
                      f"{r['chosen_with_error']} | {pct(r['heldout_step_auroc'])}{iv(r['heldout_step_auroc_interval'])} | "
                      f"{pct(r['heldout_first_error_f1'])}{iv(r['heldout_first_error_f1_interval'])} | "
                      f"{pct(r['heldout_best_of_n_product'].get(str(8))) if top else '-'} |")
    from drivechain.process.review import review

    rows = review(prm, mdir["PRM"], top=20)
    (w / "review.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print("\n### Review: where the PRM most confidently disagrees with the teacher (top 20)\n")
    print("| disagreement | frame | stage | teacher | PRM | split | labels to check (teacher / step) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        labs = "; ".join(f"{x['qid']} ({x['teacher_answer']} / {x['answer']})" for x in r["labels"])
        print(f"| {r['disagreement']:.2f} | {r['frame_id']} | {r['stage']} | {r['teacher_rating']} | "
              f"{r['prm_score']:.2f} | {r['split']} | {labs} |")
    step("done", t0)


if __name__ == "__main__":
    main()
