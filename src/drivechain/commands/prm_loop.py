"""``drivechain prm-loop``: active mining of PRM labels, convincing wrong chains vs random ones."""

from __future__ import annotations

from pathlib import Path

import typer

from drivechain.commands._common import ConfigOption, check_out_folder


def register(app: typer.Typer) -> None:
    """Add the ``prm-loop`` command to the CLI."""

    @app.command("prm-loop")
    def prm_loop_command(
        config: Path | None = ConfigOption,
        data: Path = typer.Option(..., "--data", help="Dataset folder (from 'drivechain generate')."),
        rounds: int = typer.Option(3, "--rounds", help="Rounds after the random seed round."),
        budget: int = typer.Option(50, "--budget", help="Chains labelled per round."),
        select: str = typer.Option("convincing", "--select", help="'convincing' (top-scoring wrong chains) or 'random'."),
        chains: int = typer.Option(8, "--chains", help="New chains per pool frame and round."),
        eval_chains: int = typer.Option(8, "--eval-chains", help="Chains per held-out frame (fixed)."),
        backbone: str = typer.Option("minilm", "--backbone", help="'minilm' or 'hash'."),
        heldout: float = typer.Option(0.2, "--heldout", help="Share of episodes held out for measuring."),
        seed: int = typer.Option(0, "--seed", help="Seed of the split, the pools and training."),
        limit: int | None = typer.Option(None, "--limit", help="Use only the first K frames."),
        out: Path = typer.Option(..., "--out", help="Output folder (created): rounds.jsonl, summary.json, heldout/, models/."),
    ) -> None:
        """Each round: new chains, scored by the current PRM, BUDGET labelled (convincing or random), retrain, measure."""
        from drivechain.process.loop import LoopConfig, run_loop

        check_out_folder(out, "prm-loop", ("rounds.jsonl", "heldout"))
        cfg = LoopConfig(rounds=rounds, budget=budget, select=select, chains=chains, eval_chains=eval_chains,
                         backbone=backbone, heldout=heldout, seed=seed, limit=limit)
        s = run_loop(data, out, cfg)
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        for r in s["rows"]:
            typer.echo(f"round {r['round']} ({r['select']}): {r['labelled_chains']} chains labelled, "
                       f"held-out step AUROC {fmt(r['heldout_step_auroc'])}, first-error F1 {fmt(r['heldout_first_error_f1'])}")
        typer.echo(f"wrote {out / 'summary.json'}")
