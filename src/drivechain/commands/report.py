"""``drivechain report RUN... --out DIR``: the static HTML report."""

from __future__ import annotations

from pathlib import Path

import typer

from drivechain.commands._common import ConfigOption, RunLock, check_out_folder, check_writable

# A run folder can hold anything a crashed or hand-edited run left: these are read errors, not bugs.
_READ_ERRORS = (TypeError, ValueError, KeyError, AttributeError, IndexError, UnicodeDecodeError, OSError)


def report(
    config: Path | None = ConfigOption,
    runs: list[Path] = typer.Argument(..., help="run folders (eval, closedloop, process, prm-eval) or folders of them"),
    out: Path = typer.Option(Path("report"), "--out", help="output folder; index.html is written there"),
    frames: int = typer.Option(0, "--frames", min=0, hidden=True, help="ignored: every frame is in the browser"),
    single_file: bool = typer.Option(False, "--single-file", help="one index.html with data and images inside, for sharing"),
) -> None:
    """Build a self-contained HTML report (leaderboard, transitions, frames, closed loop, process)."""
    import shutil
    import tempfile

    from drivechain.errors import DrivechainError
    from drivechain.models.base import printable
    from drivechain.report.build import build_report

    check_out_folder(out, "report", ("index.html",))
    del frames
    check_writable(out, "report")
    # Built beside --out and swapped in at the end: a failed build leaves no half report (or charts/).
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        stage.chmod(0o755)  # mkdtemp's 0700 would become the report folder's mode
    except OSError as exc:
        raise DrivechainError(f"--out {out}: cannot write beside it ({exc.strerror}); choose another --out") from None
    try:
        try:
            build_report(runs, stage, single_file=single_file)
        except DrivechainError:
            raise
        except _READ_ERRORS as exc:
            raise DrivechainError(
                f"a run folder holds content the report cannot read ({type(exc).__name__}: "
                f"{printable(str(exc), 160)}); rerun the command that wrote it") from None
        with RunLock(out, "report"):
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            if out.is_dir():
                out.rename(old)
            stage.rename(out)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    typer.echo(f"report: {out / 'index.html'}")


def register(app: typer.Typer) -> None:
    """Add the command to the CLI."""
    app.command("report")(report)
