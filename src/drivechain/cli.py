"""The ``drivechain`` command line: presentation only; each command lives in ``commands/``."""

from __future__ import annotations

import importlib
import os
import signal
import sys

import typer

from drivechain.errors import DrivechainError

app = typer.Typer(
    name="drivechain",
    help="Chain-of-thought benchmarks for driving VLMs: perception -> prediction -> planning -> behavior.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help text is plain: Rich markup would swallow units such as "[s]" or "[m/s]".
    rich_markup_mode=None,
    context_settings={"max_content_width": 120},
)

# Each module defines ``register(app)``; imports stay light so start-up stays fast.
COMMANDS = ("generate", "eval", "closedloop", "process", "prm_eval", "report", "demo",
            "import_drivelm", "export_drivelm", "score_drivelm", "probe", "polish")
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


_SIGNALLED: list[int] = []


def _on_sigterm(signum: int, frame: object) -> None:
    # SIGTERM takes Ctrl-C's path (asyncio.run cancels its task, stores close cleanly); exit code 143.
    _SIGNALLED.append(signum)
    os.kill(os.getpid(), signal.SIGINT)


def _interrupted() -> None:
    from drivechain.commands._common import RESUME_HINT

    code = 143 if signal.SIGTERM in _SIGNALLED else 130
    what = "terminated" if code == 143 else "interrupted"
    hint = RESUME_HINT[-1] if RESUME_HINT else "nothing was written yet"
    typer.echo(f"{what}: {hint}", err=True)
    sys.exit(code)


def _quiet_environment() -> None:
    """Keep SDL (pygame, under highway-env) from printing noise or rendering black frames."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime or not os.path.isdir(runtime) or not os.access(runtime, os.W_OK):
        import tempfile

        # SDL prints 'XDG_RUNTIME_DIR is invalid or not set' on every start without one: give it a
        # private folder (one per user, mode 0700, reused across runs).
        folder = os.path.join(tempfile.gettempdir(), f"drivechain-runtime-{os.getuid()}")
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            if os.stat(folder).st_uid == os.getuid():
                os.environ["XDG_RUNTIME_DIR"] = folder
        except OSError:
            pass
    if os.environ.get("SDL_VIDEODRIVER", "").lower() == "dummy":
        # The dummy driver makes highway-env's offscreen renderer return black frames; rendering
        # to rgb_array needs no display, so drivechain drops the setting for its own process.
        del os.environ["SDL_VIDEODRIVER"]


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input becomes one line on stderr and exit code 2, never a traceback."""
    if argv is None:  # the command line itself: a command's wall time starts with the process
        from drivechain.commands import _common

        _common.COMMAND_STARTED = _common.process_started()
    _quiet_environment()
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = app(args=argv, standalone_mode=False)
        # outside standalone mode click returns typer.Exit's code instead of exiting with it;
        # typer turns KeyboardInterrupt (Ctrl-C, and SIGTERM through _on_sigterm) into code 130
        if code == 130:
            _interrupted()
        if isinstance(code, int) and code:
            sys.exit(code)
    except DrivechainError as exc:
        from drivechain.models.base import printable

        typer.echo(f"error: {printable(str(exc))}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _interrupted()
    except typer.TyperException as exc:  # usage errors: click's own one-line message
        # One line, like every other bad input: the message plus where to look, no usage box.
        ctx = getattr(exc, "ctx", None)
        hint = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
        message = " ".join(exc.format_message().split()).rstrip(".")  # type: ignore[attr-defined]
        typer.echo(f"error: {message}{hint}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
