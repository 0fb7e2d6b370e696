"""``drivechain export drivelm``: a drivechain dataset -> DriveLM's v1.1 JSON (and the challenge's flat list)."""

from __future__ import annotations

from pathlib import Path

import typer

from drivechain.commands._common import ConfigOption, check_out_path, command_group


def register(app: typer.Typer) -> None:
    """Add ``export drivelm`` to the CLI."""

    @command_group(app, "export").command("drivelm")
    def export_drivelm_cmd(
        data: Path = typer.Argument(..., help="dataset folder (generated or imported)"),
        config: Path | None = ConfigOption,
        out: Path = typer.Option(..., "--out", help="v1.1 JSON file to write"),
        flat: Path | None = typer.Option(None, "--flat", help="also write the challenge's flat [{id, question, answer}] list here"),
    ) -> None:
        """Write DriveLM's layout; DriveLM-imported frames come back exactly as they were."""
        from drivechain.dataset import load_dataset
        from drivechain.errors import ConfigError
        from drivechain.interop.drivelm.exporter import export_drivelm

        for path, opt in ((out, "--out"), (flat, "--flat")):
            if path is None:
                continue
            if path.is_dir():
                raise ConfigError(f"{opt} {path} is a folder; give a .json file name")
            check_out_path(path.parent, "export drivelm")
        counts = export_drivelm(load_dataset(data), out, flat)
        typer.echo(f"{counts['qa']} QA in {counts['frames']} key frames of {counts['scenes']} scenes -> {out}"
                   + (f" (flat list: {flat})" if flat else ""))
