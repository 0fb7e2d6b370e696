"""``drivechain prm-eval``: a reward model's first-error F1 and best-of-N curve on process data."""

from __future__ import annotations

from pathlib import Path

import typer

from drivechain.commands._common import ConfigOption, check_model_server, check_out_folder


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
    ) -> None:
        """ProcessBench first-error F1 and best-of-N (N = 1..16) by PRM product/min/last, ORM and majority vote."""
        from drivechain.process.prm_eval import run_prm_eval

        check_out_folder(out, "prm-eval", ("step_scores.jsonl", "table.md"))
        check_model_server(rater, base_url)
        s = run_prm_eval(data, out, rater, threshold=threshold, base_url=base_url, concurrency=concurrency, holdout=holdout)
        from drivechain.process.prm_eval import table

        typer.echo(table(s), nl=False)
        typer.echo(f"wrote {out / 'summary.json'}")
