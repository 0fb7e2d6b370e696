"""``drivechain review``: teacher labels a trained PRM most confidently disagrees with, to check first."""

from __future__ import annotations

from pathlib import Path

import typer

from drivechain.commands._common import ConfigOption, check_out_path


def register(app: typer.Typer) -> None:
    """Add the ``review`` command to the CLI."""

    @app.command("review")
    def review_command(
        config: Path | None = ConfigOption,
        data: Path = typer.Option(..., "--data", help="Folder written by 'drivechain process'."),
        model: Path = typer.Option(..., "--model", help="PRM folder written by 'drivechain prm-train'."),
        top: int = typer.Option(20, "--top", min=1, help="Steps to list."),
        out: Path | None = typer.Option(None, "--out", help="Also write the list as JSON lines to this file."),
    ) -> None:
        """List steps by |teacher label - PRM score| with the (frame, question) labels to check and their correction line."""
        from drivechain.process.exports import write_jsonl
        from drivechain.process.review import review

        if out is not None:
            check_out_path(out.parent, "review")
            if out.is_dir():
                from drivechain.errors import ConfigError

                raise ConfigError(f"--out {out} is a folder; give a file name such as review.jsonl")
        rows = review(data, model, top)
        for r in rows:
            qids = ", ".join(f"{lab['qid']} (teacher {lab['teacher_answer']!s}, step {lab['answer']!s})" for lab in r["labels"])
            typer.echo(f"{r['disagreement']:.2f}  {r['frame_id']}  {r['stage']}  teacher {r['teacher_rating'] if r['teacher_rating'] is not None else '?'}  "
                       f"PRM {r['prm_score']:.2f}  [{r['split']}]  {qids}")
        if not rows:
            typer.echo("the PRM agrees with the teacher on every step (no disagreement above 0.5)")
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            write_jsonl(out, rows)
            typer.echo(f"wrote {out}; add a row's 'correction' to corrections.jsonl when the teacher is wrong")
