"""The ``drivechain`` command line: presentation only; each command lives in ``commands/``."""

from __future__ import annotations

import importlib
import sys

import typer

from drivechain.errors import DrivechainError

app = typer.Typer(
    name="drivechain",
    help="Chain-of-thought benchmarks for driving VLMs: perception -> prediction -> planning -> behavior.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines ``register(app)``; imports stay light so start-up stays fast.
COMMANDS = ("generate", "eval", "closedloop", "process", "prm_eval", "report", "demo",
            "import_drivelm", "export_drivelm", "score_drivelm", "probe")
COMMANDS += ("prm_train", "prm_loop", "review")  # reward models: train, active mining, label review

for _name in COMMANDS:
    try:
        _module = importlib.import_module(f"drivechain.commands.{_name}")
    except ModuleNotFoundError as exc:  # a command not built yet is simply absent
        if exc.name != f"drivechain.commands.{_name}":
            raise
        continue
    _module.register(app)


@app.callback()
def _root() -> None:
    """drivechain: build chain-of-thought driving benchmarks and score models step by step."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input becomes one line on stderr and exit code 2, never a traceback."""
    try:
        app(args=argv, standalone_mode=False)
    except DrivechainError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: click's own one-line message
        # One line, like every other bad input: the message plus where to look, no usage box.
        ctx = getattr(exc, "ctx", None)
        hint = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
        message = " ".join(exc.format_message().split()).rstrip(".")  # type: ignore[attr-defined]
        typer.echo(f"error: {message}{hint}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
