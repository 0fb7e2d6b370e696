"""Options shared by every command: ``--config FILE`` (TOML) fills the command's options."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import typer

from drivechain.errors import ConfigError
from drivechain.evaluation.runfolder import LOCK_NAME, RunLock, claim_run_folder  # noqa: F401  (used by commands)


def load_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file or raise ConfigError with one line naming the problem."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML ({exc}); fix the file") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror})") from None


def _apply_config(ctx: typer.Context, param: object, value: Path | None) -> Path | None:
    if value is None:
        return None
    data = load_toml(value)
    # A [command] table applies to that command; top-level keys apply to any command.
    section = data.get(ctx.info_name or "", {})
    flat = {k: v for k, v in data.items() if not isinstance(v, dict)}
    if isinstance(section, dict):
        flat.update(section)
    known = {p.name for p in ctx.command.params}
    unknown = sorted(k.replace("-", "_") for k in flat if k.replace("-", "_") not in known)
    if unknown:
        raise ConfigError(
            f"config file {value}: unknown option(s) {', '.join(unknown)} for '{ctx.info_name}'; "
            f"see 'drivechain {ctx.info_name} --help'"
        )
    ctx.default_map = {**(ctx.default_map or {}), **{k.replace("-", "_"): v for k, v in flat.items()}}
    return value


ConfigOption = typer.Option(
    None,
    "--config",
    help="TOML file with this command's options (keys = option names); flags given override it.",
    callback=_apply_config,
    is_eager=True,
    exists=False,
    dir_okay=False,
)

ExecutorOption = typer.Option("local", "--executor",
                              help="Where episodes run: local (worker processes) or ray (a Ray cluster); same output.")
RayAddressOption = typer.Option(
    None, "--ray-address", help="Ray cluster to join (default: RAY_ADDRESS if set, else a Ray started for the run).")


def check_out_path(out: Path, command: str) -> None:
    """Refuse an ``--out`` that is a file or lies under a file (no folder can be made there)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder; choose a folder for '{command}'")
    blocker = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ConfigError(f"--out {out} lies under {blocker}, which is a file; choose a folder for '{command}'")


def check_out_folder(out: Path, command: str, owned: tuple[str, ...]) -> None:
    """Refuse an ``--out`` that is a file, or a non-empty folder holding none of ``command``'s own files."""
    check_out_path(out, command)
    if out.is_dir() and any(p.name != LOCK_NAME for p in out.iterdir()) and not any(
            (out / name).exists() for name in owned):
        # Writing into someone else's folder could overwrite their files; resuming our own is fine.
        raise ConfigError(f"--out {out} is a non-empty folder not written by '{command}'; choose another --out")


def check_server(base_url: str, timeout_s: float = 5.0) -> None:
    """Fail fast (one line) when nothing listens at the base URL; any HTTP answer counts as reachable."""
    import asyncio

    import aiohttp

    from drivechain.errors import DrivechainError

    async def probe() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as s:
            async with s.get(base_url.rstrip("/") + "/models") as resp:
                await resp.read()

    try:
        asyncio.run(probe())
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        raise DrivechainError(
            f"model server {base_url} is unreachable ({type(exc).__name__}); start it or fix --base-url"
        ) from None


def check_model_server(spec: str, base_url: str | None) -> None:
    """Probe the server of an ``openai:`` spec up front, so a dead server is one line, not a run of failed requests."""
    import os

    from drivechain.models.registry import BASE_URL_ENV

    url = base_url or os.environ.get(BASE_URL_ENV)
    if spec.strip().startswith("openai:") and url and url.startswith("http"):
        check_server(url)


GROUP_HELP = {
    "import": "Read another benchmark's data into a drivechain dataset.",
    "export": "Write a drivechain dataset in another benchmark's format.",
    "score": "Score predictions exactly as another benchmark's own scorer does.",
}


def command_group(app: typer.Typer, name: str) -> typer.Typer:
    """The sub-command group ``name`` of the CLI (``import``, ``export``, ``score``), made once and shared."""
    groups: dict[str, typer.Typer] = app.__dict__.setdefault("_drivechain_groups", {})
    if name not in groups:
        group = typer.Typer(help=GROUP_HELP.get(name, name), no_args_is_help=True, add_completion=False)
        app.add_typer(group, name=name)
        groups[name] = group
    return groups[name]


# ---------------------------------------------------------------------- run folders

# Set by a command before it starts writing: printed when the run is interrupted (Ctrl-C, SIGTERM).
RESUME_HINT: list[str] = []


def _read_only(path: Path) -> bool:
    import os
    import stat

    # Mode bits count too: root may write anywhere, but a folder or file marked read-only says "keep out".
    return not os.access(path, os.W_OK) or stat.S_IMODE(path.stat().st_mode) & 0o222 == 0


def check_writable(out: Path, command: str) -> None:
    """Refuse an ``--out`` (or the folder it would be made in) that is read-only, or holds read-only files."""
    probe = out if out.exists() else next((p for p in out.parents if p.exists()), Path.cwd())
    if _read_only(probe):
        raise ConfigError(f"--out {out}: {probe} is read-only; fix its permissions or choose another --out")
    if out.is_dir():
        locked = sorted(p.name for p in out.iterdir() if p.is_file() and _read_only(p))
        if locked:
            raise ConfigError(f"--out {out}: {', '.join(locked[:3])} is read-only; fix the permissions"
                              f" or choose another --out for '{command}'")


def frames_hash(dataset: Any, verify: bool) -> str:
    """sha256 of the dataset's records (frames.jsonl or its shards); refused (one line) when it no
    longer matches the manifest."""
    from drivechain.errors import DatasetError

    try:
        actual = dataset.frames_sha256()
    except OSError as exc:
        raise DatasetError(f"{dataset.root} cannot be read ({exc.strerror}); regenerate the dataset") from None
    if verify and dataset.manifest.frames_sha256 and actual != dataset.manifest.frames_sha256:
        raise DatasetError(f"{dataset.frame_files()[0] if not dataset.manifest.shards else dataset.root}"
                           " no longer matches its manifest (sha256 differs): the file was edited or"
                           " replaced; regenerate the dataset or pass --no-verify")
    return actual


def check_frame_count(dataset: Any, n_records: int, limit: int | None, verify: bool) -> None:
    """Refuse a dataset whose number of frames differs from its manifest's count."""
    from drivechain.errors import DatasetError

    expected = dataset.manifest.counts.get("frames")
    if verify and isinstance(expected, int) and limit is None and n_records != expected:
        raise DatasetError(f"{dataset.root} has {n_records} frames but its manifest says {expected};"
                           " regenerate the dataset or pass --no-verify")


def finite(value: float, option: str, low: float | None = None, high: float | None = None) -> float:
    """``value`` if it is a finite number within [low, high]; else a one-line error naming ``option``."""
    import math

    if not math.isfinite(value):
        raise ConfigError(f"{option} must be a finite number, not {value}")
    if low is not None and value < low or high is not None and value > high:
        span = f"in [{low:g}, {high:g}]" if low is not None and high is not None else (
            f">= {low:g}" if low is not None else f"<= {high:g}")
        raise ConfigError(f"{option} must be {span}, not {value:g}")
    return value


def fail_if_incomplete(summary: dict[str, Any], out: Path) -> None:
    """Exit code 1 with the reason and the first distinct errors when a run is marked incomplete."""
    if summary.get("complete", True):
        return
    from drivechain.models.base import printable

    typer.echo(f"error: run INCOMPLETE: {printable(summary.get('incomplete_reason') or 'failures', 400)}", err=True)
    for err in summary.get("first_errors") or []:
        typer.echo(f"  {printable(err, 300)}", err=True)
    typer.echo(f"what was answered is stored in {out}; fix the cause and rerun the same command to retry the"
               " failed requests", err=True)
    raise typer.Exit(1)


OWNED_NOTE = "every answer received so far is stored in {out}/results.sqlite"


def gate_stored_failures(out: Path, max_failure_rate: float) -> None:
    """Mark a finished run incomplete (summary.json, exit 1) when its stored requests failed too often."""
    import json

    from drivechain.evaluation.store import ResultStore
    from drivechain.models.base import failure_kind, printable

    path = out / "results.sqlite"
    if not path.is_file():
        return  # no model was asked
    store = ResultStore(path)
    try:
        counts, errors = store.counts(), store.failed_errors()
    finally:
        store.close()
    total = counts["ok"] + counts["failed"]
    rate = counts["failed"] / total if total else 0.0
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    summary["failure_rate"] = round(rate, 6)
    summary["max_failure_rate"] = max_failure_rate
    summary["complete"] = rate <= max_failure_rate
    summary["first_errors"] = list(dict.fromkeys(printable(e, 300) for e, _ in errors))[:5]
    summary["incomplete_reason"] = None if summary["complete"] else (
        f"{counts['failed']} of {total} requests failed ({100 * rate:.1f} % > --max-failure-rate "
        f"{100 * max_failure_rate:g} %): " + ", ".join(f"{failure_kind(e)} x{n}" for e, n in errors))
    from drivechain.evaluation.runner import write_json_atomic

    write_json_atomic(summary_path, summary)
    fail_if_incomplete(summary, out)


def wide_console() -> Any:
    """A rich Console for end-of-run tables: the terminal's width, or 160 columns in a pipe or log file."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


# Set by the command-line entry point (cli.main) to when the process started; None when called in-process.
COMMAND_STARTED: float | None = None


def process_started() -> float:
    """When this process started, on the ``time.perf_counter()`` clock [s] (now, where /proc is absent).

    A command's wall time runs from here, interpreter start-up and imports included.
    """
    import os
    import time

    now = time.perf_counter()
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime_s = float(fh.read().split()[0])
        elapsed_s = uptime_s - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return now
    return now - elapsed_s if 0 <= elapsed_s < 3600 else now
