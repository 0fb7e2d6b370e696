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
