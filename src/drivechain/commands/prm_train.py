"""``drivechain prm-train``: train a process- (PRM) or outcome-supervised (ORM) reward model on process data."""

from __future__ import annotations

from pathlib import Path

import typer

from drivechain.commands._common import ConfigOption, check_out_folder


def register(app: typer.Typer) -> None:
    """Add the ``prm-train`` command to the CLI."""

    @app.command("prm-train")
    def prm_train_command(
        config: Path | None = ConfigOption,
        data: Path = typer.Option(..., "--data", help="Folder written by 'drivechain process'."),
        kind: str = typer.Option("prm", "--kind", help="'prm' (labels per step, up to the first error) or 'orm' (final answer on every step)."),
        backbone: str = typer.Option("minilm", "--backbone", help="'minilm' (frozen all-MiniLM-L6-v2) or 'hash' (feature hashing, no model)."),
        neutral: str = typer.Option("pos", "--neutral", help="PRM: a step rated 0 counts as 'pos'itive or 'neg'ative."),
        heldout: float = typer.Option(0.2, "--heldout", help="Share of episodes held out (never trained on)."),
        split_by: str = typer.Option("episode", "--split-by", help="Split 'episode's (default) or single 'frame's."),
        seed: int = typer.Option(0, "--seed", help="Seed of the split and of training."),
        epochs: int = typer.Option(40, "--epochs", help="Maximum epochs (early stopping on the dev split)."),
        hidden: int = typer.Option(64, "--hidden", help="Hidden units of the head."),
        shuffle_labels: bool = typer.Option(False, "--shuffle-labels", help="Control: permute the training labels."),
        out: Path = typer.Option(..., "--out", help="Model folder (created): weights.npz, config.json, curves.json."),
    ) -> None:
        """Train a reward model; it is then a rater everywhere as 'model:MODEL_DIR'."""
        from drivechain.process.train import TrainConfig, train_model

        check_out_folder(out, "prm-train", ("weights.npz", "config.json"))
        cfg = TrainConfig(kind=kind, backbone=backbone, neutral=neutral, heldout=heldout, seed=seed, epochs=epochs,
                          hidden=hidden, shuffle_labels=shuffle_labels, split_by=split_by)
        c = train_model(data, out, cfg)
        au = c["heldout_auroc"]
        typer.echo(f"{kind} on {backbone}: {c['examples']['train']} training steps, {c['epochs_run']} epochs, "
                   f"held-out step AUROC {'-' if au is None else f'{au:.3f}'} over {c['examples']['heldout']} steps "
                   f"of {len(c['frames']['heldout'])} frames; wrote {out}")
