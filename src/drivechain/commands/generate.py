"""``drivechain generate``: build a benchmark dataset folder from a simulator or a recorded-log source."""

from __future__ import annotations

from pathlib import Path

import typer

from drivechain.commands._common import (
    RESUME_HINT, ConfigOption, ExecutorOption, RayAddressOption, check_out_path, check_writable, finite,
)


def register(app: typer.Typer) -> None:
    """Add the ``generate`` command to the CLI."""

    @app.command("generate")
    def generate_command(
        config: Path | None = ConfigOption,
        source: str = typer.Option("highway", "--source",
                                   help="Source: highway (simulator) or a log source (bench2drive, nuscenes)."),
        dataroot: Path | None = typer.Option(None, "--dataroot", help="Log sources: the folder of recorded clips."),
        routes: str = typer.Option("*", "--routes", help="Log sources: glob on 'Scenario/Route' clip ids."),
        scenes: str = typer.Option("", "--scenes", help="nuscenes: comma-separated scene names or globs (default: all)."),
        version: str = typer.Option("v1.0-mini", "--version", help="nuscenes: the table version under --dataroot."),
        cameras: str = typer.Option("front", "--cameras", help="Log sources: 'front' or 'all' (six named cameras)."),
        stride: int | None = typer.Option(None, "--stride", min=1,
                                          help="Log sources: label every N-th recorded frame (bench2drive 5, nuscenes 1)."),
        limit: int | None = typer.Option(None, "--limit", min=1, help="Log sources: at most N frames in total."),
        scenarios: str = typer.Option(
            "highway,merge,intersection,roundabout", "--scenarios", help="Comma-separated scenario names."
        ),
        episodes: int = typer.Option(2, "--episodes", min=1, help="Episodes per scenario."),
        steps_per_episode: int = typer.Option(10, "--steps-per-episode", min=1, help="Decision steps per episode (max)."),
        seed: int = typer.Option(0, "--seed", help="Base seed; each episode's seed derives from it."),
        workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (output is identical for any W)."),
        executor: str = ExecutorOption,
        ray_address: str | None = RayAddressOption,
        shards: int | None = typer.Option(None, "--shards", min=1,
                                          help="Write the records as N shard files (frames-00000-of-0000N.jsonl)."),
        epsilon: float = typer.Option(0.2, "--epsilon", min=0.0, max=1.0, help="Probability of a random available action."),
        image_size: str = typer.Option("", "--image-size", help="WxH, e.g. 320x80; default: each scenario's size."),
        marks: bool = typer.Option(True, "--marks/--no-marks", help="Draw agent ids on the vehicles."),
        history: int = typer.Option(0, "--history", min=0, help="K previous frames listed per frame (video models)."),
        horizon_s: float = typer.Option(3.0, "--horizon", help="Prediction / safety look-ahead horizon [s], in (0, 10]."),
        name: str = typer.Option("drivechain-highway", "--name", help="Dataset name in the manifest."),
        out: Path = typer.Option(..., "--out", help="Output dataset folder (created)."),
        force: bool = typer.Option(False, "--force", help="Replace a non-empty output folder."),
    ) -> None:
        """Run episodes, label every decision step with the teacher, write manifest + frames.jsonl + images."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        from drivechain.dataset import partial_folder
        from drivechain.errors import ConfigError
        from drivechain.executors import check_executor
        from drivechain.generate import GenerateConfig, generate, parse_image_size, prepare_out
        from drivechain.sources.base import SOURCES
        from drivechain.sources.logs import DEFAULT_STRIDE, is_log_source

        check_out_path(out, "generate")
        check_writable(out, "generate")
        finite(horizon_s, "--horizon", 0.1, 10.0)
        finite(epsilon, "--epsilon", 0.0, 1.0)
        if not name.strip():
            raise ConfigError("--name is empty; give the dataset a name (it goes into the manifest)")
        if source not in SOURCES:
            raise ConfigError(f"unknown source '{source}'; choose one of: {', '.join(SOURCES)}")
        check_executor(executor, ray_address)
        if is_log_source(source):
            if executor != "local" or shards is not None:
                raise ConfigError(f"--executor ray and --shards are for simulator sources, not '{source}'")
            if source == "nuscenes":
                routes = scenes or "*"
            elif scenes:
                raise ConfigError("--scenes is for the nuscenes source; bench2drive selects clips with --routes")
            _generate_log(source, dataroot, routes, cameras, stride or DEFAULT_STRIDE.get(source, 1), limit,
                          horizon_s, marks, version if source == "nuscenes" else None,
                          name if name != "drivechain-highway" else f"drivechain-{source}", out, force)
            return
        if dataroot is not None:
            raise ConfigError(f"--dataroot is for recorded-log sources; source '{source}' is a simulator")
        names = [s.strip() for s in scenarios.split(",") if s.strip()]
        try:
            cfg = GenerateConfig(
                name=name,
                source=source,
                scenarios=names,
                episodes=episodes,
                steps_per_episode=steps_per_episode,
                seed=seed,
                epsilon=epsilon,
                image_size=parse_image_size(image_size),
                marks=marks,
                history=history,
                horizon_s=horizon_s,
            )
        except ValueError as exc:  # pydantic's ValidationError
            raise ConfigError(f"invalid generate options: {str(exc).splitlines()[-1].strip()}") from None
        prepare_out(out, force)
        RESUME_HINT.append(f"finished episodes are kept in {partial_folder(out)}; rerun the same command to resume")
        total = len(cfg.scenarios) * cfg.episodes * cfg.steps_per_episode
        with Progress(
            TextColumn("generate"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
            TimeElapsedColumn(), TimeRemainingColumn(),
        ) as progress:
            task = progress.add_task("generate", total=total)
            # an episode that ends early still counts its full step budget, so the bar reaches the end
            manifest, _ = generate(
                cfg, out, workers=workers, force=force,
                on_episode=lambda res: progress.advance(task, cfg.steps_per_episode),
                executor=executor, ray_address=ray_address, shards=shards,
            )
        counts = manifest.counts
        typer.echo(f"wrote {counts['frames']} frames ({counts['episodes']} episodes) to {out}")


def _generate_log(source: str, dataroot: Path | None, routes: str, cameras: str, stride: int, limit: int | None,
                  horizon_s: float, marks: bool, version: str | None, name: str, out: Path, force: bool) -> None:
    """The log-source path of ``generate``: replay the clips under --dataroot."""
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    from drivechain.errors import ConfigError
    from drivechain.generate_logs import LogGenerateConfig, generate_logs

    if dataroot is None:
        raise ConfigError(f"source '{source}' reads recorded clips: give --dataroot DIR")
    if cameras not in ("front", "all"):
        raise ConfigError(f"--cameras must be 'front' or 'all' (got '{cameras}')")
    try:
        cfg = LogGenerateConfig(name=name, source=source, dataroot=str(dataroot), routes=routes, cameras=cameras,
                                stride=stride, limit=limit, horizon_s=horizon_s, marks=marks, version=version)
    except ValueError as exc:  # pydantic's ValidationError
        raise ConfigError(f"invalid generate options: {str(exc).splitlines()[-1].strip()}") from None
    with Progress(TextColumn("generate"), TextColumn("{task.completed} frames"), TimeElapsedColumn()) as progress:
        task = progress.add_task("generate", total=None)
        manifest = generate_logs(cfg, out, force=force, on_frame=lambda: progress.advance(task))
    counts = manifest.counts
    typer.echo(f"wrote {counts['frames']} frames ({counts['episodes']} clips) to {out}")
