"""Options shared by every command: ``--config FILE`` (TOML) fills the command's options."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import typer

from drivechain.errors import ConfigError


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
    if out.is_dir() and any(out.iterdir()) and not any((out / name).exists() for name in owned):
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
