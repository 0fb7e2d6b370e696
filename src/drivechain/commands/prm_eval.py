"""``drivechain prm-eval``: a reward model's first-error F1 and best-of-N curve on process data."""

from __future__ import annotations

from pathlib import Path

import typer

from drivechain.commands._common import (
    OWNED_NOTE, RESUME_HINT, ConfigOption, RunLock, check_model_server, check_out_folder, check_writable,
    claim_run_folder, finite, gate_stored_failures,
)

OWNED = ("step_scores.jsonl", "table.md", "summary.json", "results.sqlite")
IDENTITY = ("rater", "data", "threshold", "data_sha256", "holdout")


def register(app: typer.Typer) -> None:
    """Add the ``prm-eval`` command to the CLI."""

    @app.command("prm-eval")
    def prm_eval_command(
        config: Path | None = ConfigOption,
        rater: str = typer.Option("plausibility", "--rater", help="'plausibility', 'oracle', 'model:MODEL_DIR' (trained by prm-train) or a model spec."),
        data: Path = typer.Option(..., "--data", help="Folder written by 'drivechain process'."),
        threshold: float | None = typer.Option(None, "--threshold", help="A step scored below it is the predicted first error (default: a trained model's own, tuned on its dev split; else 0.5)."),
        base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server for model specs."),
        concurrency: int = typer.Option(16, "--concurrency", help="Model requests in flight."),
        holdout: Path | None = typer.Option(None, "--holdout", help="Evaluate only the frames this prm-train model held out."),
        out: Path = typer.Option(..., "--out", help="Run folder (created): summary.json, table.md, results.sqlite."),
        max_failure_rate: float = typer.Option(0.05, "--max-failure-rate", min=0.0, max=1.0,
                                               help="Share of failed rater requests above which the run is incomplete (exit 1)."),
        force: bool = typer.Option(False, "--force", help="Replace a run with other settings in --out."),
    ) -> None:
        """ProcessBench first-error F1 and best-of-N (N = 1..16) by PRM product/min/last, ORM and majority vote."""
        from drivechain.evaluation.runner import write_json_atomic
        from drivechain.process.prm_eval import run_prm_eval

        if threshold is not None:
            finite(threshold, "--threshold", 0.0, 1.0)
        check_out_folder(out, "prm-eval", ("step_scores.jsonl", "table.md", "config.json"))
        check_writable(out, "prm-eval")
        check_model_server(rater, base_url)
        config = {"rater": rater, "data": str(data), "threshold": threshold, "data_sha256": _data_hash(data),
                  "holdout": str(holdout) if holdout else None}
        claim_run_folder(out, "prm-eval", config, IDENTITY, OWNED, force)
        with RunLock(out, "prm-eval"):
            RESUME_HINT.append(f"{OWNED_NOTE.format(out=out)} when a model rates; rerun the same command")
            s = run_prm_eval(data, out, rater, threshold=threshold, base_url=base_url, concurrency=concurrency,
                             holdout=holdout)
            write_json_atomic(out / "config.json", config)
        from drivechain.process.prm_eval import table

        typer.echo(table(s), nl=False)
        typer.echo(f"wrote {out / 'summary.json'}")
        gate_stored_failures(out, max_failure_rate)


def _data_hash(data: Path) -> str | None:
    """sha256 of the process folder's chains and ProcessBench items (what the rater scores)."""
    import hashlib

    digest = hashlib.sha256()
    for name in ("chains.jsonl", "processbench.json", "problems.jsonl"):
        path = data / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
