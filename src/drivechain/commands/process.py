"""``drivechain process``: process-supervision data (step candidates, ratings, hard negatives, exports)."""

from __future__ import annotations

from pathlib import Path

import typer

from drivechain.commands._common import (
    OWNED_NOTE, RESUME_HINT, ConfigOption, RunLock, check_model_server, check_out_folder, check_writable,
    claim_run_folder, finite, frames_hash, gate_stored_failures,
)

OWNED = ("candidates.jsonl", "chains.jsonl", "problems.jsonl", "summary.json", "results.sqlite", "prm800k.jsonl",
         "processbench.json", "trl_prm.jsonl")
# Options that change the output (not how fast it is made): a folder of another run is refused.
IDENTITY = ("data", "generator", "n", "chains", "temperature", "rater", "top_k", "seed", "limit", "p_correct",
            "propagate", "corrections", "frames_sha256")


def _by_rating(counts: dict[str, int] | None) -> str:
    counts = counts or {}
    return "/".join(str(counts.get(k, 0)) for k in ("-1", "0", "1"))


def process_line(s: dict, out: Path) -> str:
    """The terminal's one-line account of a process run, every figure read from its summary.

    Candidate steps are the generator's samples (all of them, kept or not); prm800k.jsonl's completions
    are the teacher's steps, the kept candidates and the sampled chains' steps, so they hold the +1 steps
    a perturbing generator never makes."""
    hn = s["hard_negatives"]
    return (f"{s['frames']} frames, {s['candidates']} candidate steps (rated -1/0/+1: {_by_rating(s['ratings'])}), "
            f"{s['chains']['count']} chains; prm800k.jsonl completions rated -1/0/+1: "
            f"{_by_rating(s.get('prm800k_completions'))}; hard negatives kept {hn['kept']} (rater mean "
            f"{hn['kept_mean']}) vs dropped {hn['dropped']} (mean {hn['dropped_mean']}); wrote {out}")


def register(app: typer.Typer) -> None:
    """Add the ``process`` command to the CLI."""

    @app.command("process")
    def process_command(
        config: Path | None = ConfigOption,
        data: Path = typer.Option(..., "--data", help="Dataset folder (from 'drivechain generate')."),
        generator: str = typer.Option("perturb", "--generator", help="'perturb' (no model) or a model spec."),
        n: int = typer.Option(8, "--n", help="Candidates per frame and step."),
        chains: int = typer.Option(16, "--chains", help="Whole chains per frame, for best-of-N (0: none)."),
        temperature: float = typer.Option(0.7, "--temperature", help="Sampling temperature of a model generator."),
        rater: str = typer.Option("plausibility", "--rater", help="'plausibility' (built in), 'oracle', 'model:MODEL_DIR' or a model spec."),
        top_k: int = typer.Option(2, "--top-k", help="Hard negatives kept per frame and step."),
        seed: int = typer.Option(0, "--seed", help="Seed of perturbations and sampling."),
        limit: int | None = typer.Option(None, "--limit", help="Use only the first K frames."),
        base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server for model specs."),
        concurrency: int = typer.Option(16, "--concurrency", help="Model requests in flight."),
        p_correct: float = typer.Option(0.7, "--p-correct", help="perturb chains: chance a step gets no fresh mistake."),
        propagate: float = typer.Option(0.8, "--propagate", help="perturb chains: chance a step carries an upstream mistake (0: independent steps)."),
        corrections: Path | None = typer.Option(None, "--corrections", help="Human verdicts on labels (default: DATA/corrections.jsonl)."),
        out: Path = typer.Option(..., "--out", help="Output folder (created)."),
        max_failure_rate: float = typer.Option(0.05, "--max-failure-rate", min=0.0, max=1.0,
                                               help="Share of failed model requests above which the run is incomplete (exit 1)."),
        force: bool = typer.Option(False, "--force", help="Replace a run with other settings in --out."),
        verify: bool = typer.Option(True, "--verify/--no-verify", help="Refuse a dataset whose frames.jsonl no longer matches its manifest."),
    ) -> None:
        """Rate candidate steps (-1/0/+1) on the teacher's prefix, keep hard negatives, export PRM800K/ProcessBench/TRL."""
        from drivechain.dataset import load_dataset
        from drivechain.process.pipeline import ProcessConfig, run_process

        for value, option in ((temperature, "--temperature"), (p_correct, "--p-correct"), (propagate, "--propagate")):
            finite(value, option)
        check_out_folder(out, "process", ("candidates.jsonl", "chains.jsonl", "config.json"))
        check_writable(out, "process")
        dataset_hash = frames_hash(load_dataset(data), verify)
        for spec in (generator, rater):
            check_model_server(spec, base_url)
        cfg = ProcessConfig(generator=generator, n=n, chains=chains, temperature=temperature, rater=rater,
                            top_k=top_k, seed=seed, limit=limit, base_url=base_url, concurrency=concurrency,
                            p_correct=p_correct, propagate=propagate,
                            corrections=str(corrections) if corrections else None)
        config = {"data": str(data), **{k: v for k, v in vars(cfg).items() if k != "base_url"},
                  "frames_sha256": dataset_hash}
        claim_run_folder(out, "process", config, IDENTITY, OWNED, force)
        with RunLock(out, "process"):
            RESUME_HINT.append(f"{OWNED_NOTE.format(out=out)} when a model was asked; rerun the same command")
            s = run_process(data, out, cfg)
        hn = s["hard_negatives"]
        typer.echo(process_line(s, out))
        gate_stored_failures(out, max_failure_rate)
