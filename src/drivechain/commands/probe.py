"""``drivechain probe``: counterfactual probes of a simulator dataset (edit one vehicle, re-label)."""

from __future__ import annotations

from pathlib import Path

import typer

from drivechain.commands._common import ConfigOption, check_out_path


def register(app: typer.Typer) -> None:
    """Add the ``probe`` command to the CLI."""

    @app.command("probe")
    def probe_command(
        config: Path | None = ConfigOption,
        data: Path = typer.Option(..., "--data", help="dataset folder from 'drivechain generate' (source highway)"),
        edits: str = typer.Option("remove,shift_lane,speed,brake", "--edits", help="comma-separated edits"),
        per_frame: int = typer.Option(2, "--per-frame", min=1, help="probes per frame (edit x critical/distractor)"),
        frames: int | None = typer.Option(None, "--frames", min=1, help="sample at most N frames (default: all)"),
        seed: int = typer.Option(0, "--seed", help="sampling seed (frames and probes)"),
        out: Path = typer.Option(..., "--out", help="probe set folder (created); evaluate it with --protocol probes"),
        force: bool = typer.Option(False, "--force", help="replace a non-empty output folder"),
    ) -> None:
        """Rebuild sampled frames, edit one vehicle (critical or distractor), re-render and re-label."""
        from drivechain.probing import ProbeConfig, build_probes

        check_out_path(out, "probe")
        cfg = ProbeConfig(edits=[e.strip() for e in edits.split(",") if e.strip()], per_frame=per_frame,
                          frames=frames, seed=seed)
        stats = build_probes(data, out, cfg, force=force)
        typer.echo(f"wrote {stats['probes']} probes ({stats['valid']} verified) on {stats['frames']} frames to {out}")
