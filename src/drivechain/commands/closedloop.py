"""``drivechain closedloop``: the model drives highway-env, the teacher labels every state it reaches."""

from __future__ import annotations

from pathlib import Path

import typer

from drivechain.commands._common import (
    OWNED_NOTE, RESUME_HINT, ConfigOption, RunLock, check_model_server, check_out_folder, check_writable,
    ExecutorOption, RayAddressOption, fail_if_incomplete, finite,
)


def register(app: typer.Typer) -> None:
    """Add the ``closedloop`` command to the CLI."""

    @app.command("closedloop")
    def closedloop_command(
        config: Path | None = ConfigOption,
        model: str = typer.Option(..., "--model", help="Model spec: openai:NAME, hf:PATH, oracle, heuristic, constant[:TEXT], random[:SEED]."),
        base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server for openai:NAME."),
        scenarios: str = typer.Option("highway,merge,intersection,roundabout", "--scenarios", help="Comma-separated scenario names."),
        episodes: int = typer.Option(2, "--episodes", min=1, help="Episodes per scenario."),
        seed: int = typer.Option(0, "--seed", help="Base seed; each episode's seed derives from it (same as generate)."),
        max_steps: int = typer.Option(20, "--max-steps", min=1, help="Decision steps per episode (max)."),
        ask: str = typer.Option("plan", "--ask", help="plan: image -> planning in one request; chain: free-running Per -> Pred -> Plan."),
        fallback: str = typer.Option("IDLE", "--fallback", help="Action taken when the reply cannot be used (counted as a model failure)."),
        concurrency: int = typer.Option(8, "--concurrency", min=1, help="Model requests in flight."),
        workers: int = typer.Option(1, "--workers", min=1, help="Simulator worker processes."),
        executor: str = ExecutorOption,
        ray_address: str | None = RayAddressOption,
        horizon_s: float = typer.Option(3.0, "--horizon", help="Teacher look-ahead horizon [s], in (0, 10]."),
        image_size: str = typer.Option("", "--image-size", help="WxH, e.g. 320x80; default: each scenario's size."),
        teacher_baseline: bool = typer.Option(True, "--teacher-baseline/--no-teacher-baseline", help="Also drive the same seeds with the teacher (efficiency vs teacher)."),
        record: bool = typer.Option(False, "--record", help="Write the visited frames (labels + model answers) as a dataset in RUN/dataset."),
        replay: bool = typer.Option(True, "--replay/--no-replay", help="Write an animated GIF per episode."),
        timeout_s: float = typer.Option(120.0, "--timeout", min=0.01, max=3600.0, help="Per-request timeout [s]."),
        retries: int = typer.Option(4, "--retries", min=0, max=20, help="Retries of a transient fault."),
        max_tokens: int = typer.Option(1024, "--max-tokens", min=1, help="Completion token limit."),
        prices: Path | None = typer.Option(None, "--prices", help="TOML price table overriding the shipped one."),
        out: Path = typer.Option(..., "--out", help="Run folder (created; an existing run with the same settings resumes)."),
        max_failure_rate: float = typer.Option(0.05, "--max-failure-rate", min=0.0, max=1.0,
                                               help="An episode whose decisions fell back on failed requests above this share is incomplete (exit 1)."),
        force: bool = typer.Option(False, "--force", help="Replace a run with other settings in --out."),
    ) -> None:
        """Drive with the model, label each reached state with the teacher, score the driving and the answers."""
        from pydantic import ValidationError

        from drivechain.closedloop.loop import LoopConfig, RunOptions, run_closedloop
        from drivechain.errors import ConfigError
        from drivechain.executors import check_executor
        from drivechain.generate import parse_image_size

        check_executor(executor, ray_address)
        names = [s.strip() for s in scenarios.split(",") if s.strip()]
        finite(horizon_s, "--horizon", 0.1, 10.0)
        finite(timeout_s, "--timeout", 0.01, 3600.0)
        finite(max_failure_rate, "--max-failure-rate", 0.0, 1.0)
        if max_steps > 1000:
            raise ConfigError(f"--max-steps must be <= 1000, not {max_steps}")
        try:
            cfg = LoopConfig(
                model=model, base_url=base_url, scenarios=names, episodes=episodes, seed=seed, max_steps=max_steps,
                ask=ask, fallback=fallback, horizon_s=horizon_s, image_size=parse_image_size(image_size),
                teacher_baseline=teacher_baseline, record=record, replay=replay, max_tokens=max_tokens,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
            raise ConfigError(f"invalid closedloop option --{where.replace('_', '-')}: {msg}") from None
        check_out_folder(out, "closedloop", ("config.json", "episodes.jsonl", "episodes", "steps"))
        check_writable(out, "closedloop")
        check_model_server(model, base_url)
        opts = RunOptions(workers=workers, executor=executor, ray_address=ray_address, concurrency=concurrency, timeout_s=timeout_s, retries=retries,
                          prices=str(prices) if prices else None, max_failure_rate=max_failure_rate, force=force)
        with RunLock(out, "closedloop"):
            RESUME_HINT.append(f"finished episodes are in {out}, {OWNED_NOTE.format(out=out)}; rerun the same"
                               " command to resume")
            summary = run_closedloop(cfg, out, opts)
        typer.echo(
            f"{summary['episodes']} episodes: driving score {_fmt(summary.get('driving_score'))}, "
            f"success {_fmt(summary.get('success_rate'))}, collisions {_fmt(summary.get('collision_rate'))} "
            f"(at fault {_fmt(summary.get('at_fault_collision_rate'))}), teacher agreement "
            f"{_fmt(summary.get('teacher_agreement'))}; summary in {out / 'summary.json'}"
        )
        fail_if_incomplete(summary, out)


def _fmt(value: object) -> str:
    return "—" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
