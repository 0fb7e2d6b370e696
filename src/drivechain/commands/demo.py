"""``drivechain demo``: the whole pipeline on the embedded default (``make run``)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import typer

from drivechain.commands._common import ConfigOption, check_out_path
from drivechain.errors import DrivechainError

MARKER = ".drivechain-demo"
BUILTIN_MODELS = ("oracle", "heuristic", "constant", "random")
SCENARIOS = "highway,merge,intersection,roundabout"
# size -> (episodes, steps per episode, closed-loop episodes, closed-loop steps, process frames, closed-loop
# scenarios). "tiny" is the size the tests run: its closed loop drives merge, whose few vehicles the teacher's
# look-ahead labels about twice as fast as highway-v0's 50 (the four closed loops were most of the demo's time).
SIZES = {"tiny": (1, 2, 1, 3, 8, "merge,intersection"), "small": (2, 4, 2, 15, 32, "highway,intersection")}


def _fresh_out(out: Path) -> None:
    """Empty a folder the demo wrote before; refuse to touch any other non-empty folder."""
    check_out_path(out, "demo")
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise DrivechainError(f"{out} is not empty and was not written by 'drivechain demo'; pick another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by drivechain demo; safe to delete\n", encoding="utf-8")


def _run(args: list[str]) -> None:
    from drivechain.cli import app

    typer.secho("$ drivechain " + " ".join(args), fg="cyan", err=True)
    app(args=args, standalone_mode=False)


def demo(
    config: Path | None = ConfigOption,
    out: Path = typer.Option(Path("demo"), "--out", help="folder for the dataset, runs and report"),
    size: str = typer.Option("small", "--size", help="tiny | small"),
    workers: int = typer.Option(2, "--workers", min=1, help="worker processes for simulation"),
    seed: int = typer.Option(0, "--seed", help="base seed"),
) -> None:
    """Build a small benchmark, evaluate the built-in models on every protocol, closed loop, process, report."""
    if size not in SIZES:
        raise DrivechainError(f"unknown --size {size!r}; use one of: {', '.join(SIZES)}")
    episodes, steps, cl_episodes, cl_steps, pframes, cl_scenarios = SIZES[size]
    started = time.perf_counter()
    _fresh_out(out)
    data, runs = out / "data", out / "runs"
    models = [(m, None) for m in BUILTIN_MODELS]
    base_url, model_name = os.environ.get("DRIVECHAIN_BASE_URL"), os.environ.get("DRIVECHAIN_MODEL")
    if base_url and model_name:  # the user's OpenAI-compatible model joins (key from DRIVECHAIN_API_KEY)
        models.append((f"openai:{model_name}", base_url))

    _run(["generate", "--scenarios", SCENARIOS, "--episodes", str(episodes), "--steps-per-episode", str(steps),
          "--seed", str(seed), "--workers", str(workers), "--out", str(data)])
    run_dirs: list[Path] = []
    for spec, url in models:
        slug = spec.replace(":", "-").replace("/", "-")
        extra = ["--base-url", url] if url else []
        _run(["eval", "--data", str(data), "--model", spec, *extra, "--protocol", "all",
              "--no-progress", "--out", str(runs / f"eval-{slug}")])
        _run(["closedloop", "--model", spec, *extra, "--scenarios", cl_scenarios,
              "--episodes", str(cl_episodes), "--max-steps", str(cl_steps), "--seed", str(seed),
              "--workers", str(workers), "--out", str(runs / f"closedloop-{slug}")])
        run_dirs += [runs / f"eval-{slug}", runs / f"closedloop-{slug}"]
    _run(["process", "--data", str(data), "--generator", "perturb", "--n", "4", "--limit", str(pframes),
          "--seed", str(seed), "--out", str(runs / "process")])
    for rater in ("oracle", "plausibility"):
        _run(["prm-eval", "--rater", rater, "--data", str(runs / "process"), "--out", str(runs / f"prm-{rater}")])
        run_dirs.append(runs / f"prm-{rater}")
    run_dirs.append(runs / "process")
    _run(["report", *map(str, run_dirs), "--out", str(out / "report")])
    _print_leaderboard(run_dirs)
    typer.echo(f"demo finished in {time.perf_counter() - started:.0f} s; open {out / 'report' / 'index.html'}")


def _print_leaderboard(run_dirs: list[Path]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from drivechain.models.base import printable
    from drivechain.report.leaderboard import leaderboard
    from drivechain.report.loaders import load_runs

    def f(v: object, d: int = 3) -> str:
        return "—" if v is None else f"{v:.{d}f}"

    board = leaderboard(load_runs(run_dirs), {})
    rows = {t["title"]: t["rows"] for t in board["tables"]}
    drive = {r["model"]: r.get("driving_score") for r in rows.get("Closed loop", [])}
    table = Table(title="drivechain leaderboard")
    for col in ("model", "overall", "Per", "Pred", "Plan", "Beh", "drive", "tok/1k fr", "$/1k fr"):
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=col == "model")
    for r in rows.get("Chain evaluation", []):
        table.add_row(escape(printable(r["model"])), f(r.get("overall")), *(f(r.get(s)) for s in
                      ("perception", "prediction", "planning", "behavior")),
                      f(drive.get(r["model"])), f(r.get("tokens_per_1k"), 0), f(r.get("usd_per_1k"), 4))
    from drivechain.commands._common import wide_console

    wide_console().print(table)


def register(app: typer.Typer) -> None:
    """Add the command to the CLI."""
    app.command("demo")(demo)
