"""``drivechain import drivelm``: a DriveLM v1.1 file and its camera images -> a drivechain dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from drivechain.commands._common import ConfigOption, check_out_folder, command_group


def register(app: typer.Typer) -> None:
    """Add ``import drivelm`` to the CLI."""

    @command_group(app, "import").command("drivelm")
    def import_drivelm_cmd(
        file: Path = typer.Argument(..., help="DriveLM v1.1 JSON (e.g. v1_1_train_nus.json, train_sample.json)"),
        config: Path | None = ConfigOption,
        images: Path | None = typer.Option(None, "--images",
                                           help="folder holding the images the file names (its image_paths are "
                                                "matched by their tail, e.g. samples/CAM_FRONT/x.jpg)"),
        out: Path = typer.Option(..., "--out", help="dataset folder to write"),
        name: str | None = typer.Option(None, "--name", help="dataset name (default: the file's stem)"),
    ) -> None:
        """One frame per key frame with its cameras; each QA a typed node of its stage; objects as agents."""
        from drivechain.interop.drivelm.importer import import_drivelm

        check_out_folder(out, "import drivelm", ("manifest.json", "frames.jsonl"))
        manifest = import_drivelm(file, images, out, name=name)
        c = manifest.counts
        typed = {k[6:]: v for k, v in c.items() if k.startswith("typed_")}
        typer.echo(
            f"{c.get('qa', 0)} QA in {c.get('frames', 0)} key frames of {c.get('scenes', 0)} scenes, "
            f"{c.get('images', 0)} images -> {out}"
        )
        typer.echo("typed: " + ", ".join(f"{k} {v}" for k, v in sorted(typed.items()))
                   + f"; untyped (kept as text): {c.get('untyped', 0)}")
        if not images:
            typer.echo("no --images: frames carry no camera images (text-only evaluation)")
