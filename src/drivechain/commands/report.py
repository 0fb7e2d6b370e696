"""``drivechain report RUN... --out DIR``: the static HTML report."""

from __future__ import annotations

from pathlib import Path

import typer

from drivechain.commands._common import ConfigOption, check_out_folder


def report(
    config: Path | None = ConfigOption,
    runs: list[Path] = typer.Argument(..., help="run folders (eval, closedloop, process, prm-eval) or folders of them"),
    out: Path = typer.Option(Path("report"), "--out", help="output folder; index.html is written there"),
    frames: int = typer.Option(0, "--frames", min=0, hidden=True, help="ignored: every frame is in the browser"),
    single_file: bool = typer.Option(False, "--single-file", help="one index.html with data and images inside, for sharing"),
) -> None:
    """Build a self-contained HTML report (leaderboard, transitions, frames, closed loop, process)."""
    from drivechain.report.build import build_report

    check_out_folder(out, "report", ("index.html",))
    del frames
    index = build_report(runs, out, single_file=single_file)
    typer.echo(f"report: {index}")


def register(app: typer.Typer) -> None:
    """Add the command to the CLI."""
    app.command("report")(report)
