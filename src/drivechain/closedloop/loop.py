"""The closed loop: the model drives, the teacher labels every state it reaches (docs/closedloop.md).

``run_closedloop(cfg, out)`` runs every (scenario, episode) with the model driving and, for the
efficiency baseline, the same seeds with the teacher driving. Simulators live in worker processes
(``workers.py``); all model requests go through one ``Asker`` (results.sqlite cache, retries,
``--concurrency`` in flight) on this process's event loop, so the requests of all running episodes
are in flight together. Each finished episode writes its step records and then, atomically, its
completion record: a repeated command skips finished episodes and re-runs the rest (their model
answers come back from the cache).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from drivechain.closedloop.ask import ASK_MODES, Decision, decide
from drivechain.closedloop.corner import corner_block
from drivechain.closedloop.episode import EpisodeSpec, SimConfig
from drivechain.closedloop.metrics import abilities, aggregate, ability_breakdown, episode_metrics, latency_percentiles
from drivechain.closedloop.replay import caption
from drivechain.dataset import atomic_write_bytes
from drivechain.errors import ConfigError, DrivechainError
from drivechain.evaluation.runfolder import remove_run_files
from drivechain.schema import FrameRecord

CONFIG = "config.json"
SUMMARY = "summary.json"
EPISODES = "episodes.jsonl"
DONE_DIR = "episodes"
STEPS_DIR = "steps"
RECORD_DIR = "record"
DATASET_DIR = "dataset"
DRIVERS = ("model", "teacher")
LOST_RETRIES = 3  # re-runs of an episode whose (Ray) worker died under it; its answers come from the cache
META_ACTIONS = ("LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER")


class LoopConfig(BaseModel):
    """Everything that decides a closed-loop run's content (config.json)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    base_url: str | None = None
    source: str = "highway"
    scenarios: list[str] = Field(default_factory=lambda: ["highway", "merge", "intersection", "roundabout"])
    episodes: int = Field(default=2, ge=1)
    seed: int = 0
    max_steps: int = Field(default=20, ge=1)
    ask: str = "plan"
    fallback: str = "IDLE"
    horizon_s: float = Field(default=3.0, gt=0.0)
    image_size: tuple[int, int] | None = None
    teacher_baseline: bool = True
    record: bool = False
    replay: bool = True
    temperature: float = 0.0
    max_tokens: int = Field(default=1024, ge=1)

    @field_validator("scenarios")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from drivechain.sources.scenarios import get_scenario

        if not value:
            raise ValueError("at least one scenario is needed")
        for name in value:
            get_scenario(name)
        return value

    @field_validator("fallback")
    @classmethod
    def _action(cls, value: str) -> str:
        if value not in META_ACTIONS:
            raise ValueError(f"--fallback must be one of {', '.join(META_ACTIONS)}")
        return value

    @field_validator("ask")
    @classmethod
    def _mode(cls, value: str) -> str:
        if value not in ASK_MODES:
            raise ValueError(f"--ask must be one of {', '.join(ASK_MODES)}")
        return value

    def specs(self) -> list[EpisodeSpec]:
        """Every episode of the run, model-driven first, in a fixed order."""
        from drivechain.generate import episode_seed

        drivers = DRIVERS if self.teacher_baseline else ("model",)
        return [
            EpisodeSpec(sc, ep, episode_seed(self.seed, sc, ep), driver)
            for driver in drivers for sc in self.scenarios for ep in range(self.episodes)
        ]


class RunOptions(BaseModel):
    """How a run executes (does not change its results)."""

    workers: int = Field(default=1, ge=1)
    executor: str = "local"  # local worker processes, or Ray actors ("ray") on a cluster
    ray_address: str | None = None
    concurrency: int = Field(default=8, ge=1)
    timeout_s: float = 120.0
    retries: int = 4
    prices: str | None = None
    progress: bool = True
    # An episode whose decisions fell back on failed requests above this share is incomplete.
    max_failure_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    force: bool = False


# ---------------------------------------------------------------------- run folder


def _write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def _write_jsonl(path: Path, rows: list[Any]) -> None:
    atomic_write_bytes(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode())


def done_path(out: Path, spec: EpisodeSpec) -> Path:
    """The completion record of an episode."""
    return out / DONE_DIR / f"{spec.key}.json"


OWNED = (CONFIG, SUMMARY, EPISODES, DONE_DIR, STEPS_DIR, RECORD_DIR, DATASET_DIR, "images", "replays",
         "results.sqlite")


def prepare_run(cfg: LoopConfig, out: Path, force: bool = False) -> None:
    """Create the run folder or check that an existing one belongs to the same config (``force``: replace it)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder; choose another --out")
    path = out / CONFIG
    data = cfg.model_dump(mode="json")
    if out.is_dir() and not path.exists() and any(p.name != ".drivechain.lock" for p in out.iterdir()):
        raise ConfigError(f"--out {out} is a non-empty folder that holds no closedloop run; choose another --out")
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
            if not force:
                raise ConfigError(f"{path} is unreadable; use --force to replace the run or choose another --out") from None
        finished = out / DONE_DIR
        if old != data and force:
            remove_run_files(out, OWNED)
        elif old != data and finished.is_dir() and any(finished.rglob("*.json")):
            diff = sorted(k for k in set(old) | set(data) if old.get(k) != data.get(k))
            raise ConfigError(
                f"--out {out} holds a closedloop run with other settings ({', '.join(diff)}); use --force to"
                " replace it or choose another --out"
            )
        if old == data:
            return
        # nothing finished under the old settings (e.g. a mistyped model spec): take the new ones
    out.mkdir(parents=True, exist_ok=True)
    _write_json(path, data)


def load_done(out: Path, specs: list[EpisodeSpec], incomplete: bool = False) -> dict[str, dict[str, Any]]:
    """Completion records of the finished episodes, by episode key (``incomplete``: only those marked so).

    An episode marked incomplete (too many decisions fell back on failed requests) is not finished:
    the next run drives it again, its stored answers coming back from the cache.
    """
    done = {}
    for spec in specs:
        path = done_path(out, spec)
        if path.exists():
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                continue  # cannot happen with atomic writes; re-run the episode if it does
            if bool(record.get("incomplete")) == incomplete:
                done[spec.key] = record
    return done


# ---------------------------------------------------------------------- one episode


def _labels(record: FrameRecord) -> dict[str, Any]:
    return {n.qid: {**n.answer.model_dump(mode="json"), "ambiguous": n.ambiguous} for n in record.graph.nodes}


def _judge(decision: Decision, teacher: dict[str, Any] | None) -> tuple[bool | None, bool | None]:
    if teacher is None or teacher.get("ambiguous"):
        return None, None
    model = decision.model_action
    agree = model is not None and model in teacher["acceptable"]
    unsafe = model is not None and teacher["safe"] is not None and model not in teacher["safe"]
    return agree, unsafe


class _Runner:
    """Runs episodes against one worker pool and one asker."""

    def __init__(self, cfg: LoopConfig, opts: RunOptions, out: Path, pool: Any, asker: Any, prices: Any) -> None:
        self.cfg, self.opts, self.out, self.pool, self.asker, self.prices = cfg, opts, out, pool, asker, prices
        self.load = [0] * pool.size
        self.errors: list[str] = []
        self.bar: Any = None
        self.advanced: dict[str, int] = {}  # bar steps per running episode (taken back if it is re-run)

    async def episode(self, spec: EpisodeSpec) -> dict[str, Any] | None:
        """Run one episode on the least busy worker; None (error listed) if it failed."""
        from drivechain.executors import WorkerLost

        for attempt in range(LOST_RETRIES + 1):
            try:
                return await self._on_worker(spec)
            except WorkerLost as exc:  # its simulator is gone: drive the episode again from the start
                if self.bar is not None:
                    self.bar.step(spec.driver, -self.advanced.pop(spec.key, 0))
                if attempt == LOST_RETRIES:
                    self.errors.append(f"{spec.key}: {exc}")
        return None

    async def _on_worker(self, spec: EpisodeSpec) -> dict[str, Any] | None:
        from drivechain.executors import WorkerLost

        worker = min(range(len(self.load)), key=lambda i: self.load[i])
        self.load[worker] += 1
        try:
            return await self._episode(spec, worker)
        except WorkerLost:
            raise
        except Exception as exc:  # one broken episode must not end a long run: listed, re-run next time
            text = (str(exc).splitlines() or [""])[0]
            if not isinstance(exc, DrivechainError):
                text = f"{type(exc).__name__}: {text}"
            self.errors.append(f"{spec.key}: {text}")
            try:
                await self.pool.call(worker, "abort", spec.key)
            except DrivechainError:
                pass
            return None
        finally:
            self.load[worker] -= 1

    async def _episode(self, spec: EpisodeSpec, worker: int) -> dict[str, Any]:
        cfg = self.cfg
        call = self.pool.call
        obs = await call(worker, "start", spec.key, spec.__dict__)
        info = obs.pop("info")
        steps: list[dict[str, Any]] = []
        recorded: list[str] = []
        captions: list[str] = []
        while not obs["done"]:
            record = FrameRecord.model_validate_json(obs["record"])
            teacher = obs["teacher"]
            # a fallback the scenario lacks (LANE_LEFT at the intersection) becomes IDLE
            fallback = cfg.fallback if cfg.fallback in record.frame.actions else "IDLE"
            if spec.driver == "teacher":
                action = teacher["preferred"] if teacher else fallback
                decision = Decision(action=action, model_action=action)
            else:
                decision = await decide(
                    record, self.asker, mode=cfg.ask, image_root=str(self.out), fallback=fallback,
                    max_tokens=cfg.max_tokens, temperature=cfg.temperature, prices=self.prices,
                )
            after = await call(worker, "step", spec.key, decision.action)
            agree, unsafe = _judge(decision, teacher)
            frame = record.frame
            steps.append({
                "step": frame.step, "frame_id": frame.frame_id, "t_s": frame.t_s,
                "image": frame.images.get("bev"), "ego": obs["ego"], "available_actions": frame.available_actions,
                "teacher": teacher, "action": decision.action, "model_action": decision.model_action,
                "fallback": decision.fallback, "failure": decision.failure, "request_failed": decision.request_failed,
                "agree": agree, "unsafe": unsafe,
                "qa": decision.qa, "grades": decision.grades, "answers": decision.answers,
                "labels": _labels(record), "requests": decision.requests,
                "abilities": abilities(frame, teacher, bool(obs["goal_reached"])),
                "after": {"collision": after["collision"], "goal_reached": after["goal_reached"]},
            })
            captions.append(caption(frame.step, decision.model_action, teacher["preferred"] if teacher else None,
                                    "FALLBACK" if decision.fallback else ""))
            if self.bar is not None:
                self.bar.step(spec.driver)
                self.advanced[spec.key] = self.advanced.get(spec.key, 0) + 1
            if cfg.record and spec.driver == "model":
                frame.meta["closedloop"] = {
                    "model": cfg.model, "model_action": decision.model_action, "action": decision.action,
                    "fallback": decision.fallback, "answers": decision.answers, "teacher": teacher,
                }
                recorded.append(FrameRecord(frame=frame, graph=record.graph).model_dump_json())
            obs = after
        if self.bar is not None:  # an episode that ended early fills its remaining steps
            self.bar.step(spec.driver, max(0, cfg.max_steps - len(steps)))
        final = {k: obs[k] for k in ("ego", "collision", "goal_reached", "truncated")}
        note = "collision" if final["collision"] else ("goal" if final["goal_reached"] else "end")
        if final["collision"]:
            note += " (at fault)" if final["collision"]["at_fault"] else " (not at fault)"
        captions.append(f"t{obs['step']} {note}")
        finished = await call(worker, "finish", spec.key, captions)
        env_steps = info.get("env_duration_steps") or cfg.max_steps
        info["planned_s"] = min(cfg.max_steps, env_steps) * info["dt_s"]
        metrics = episode_metrics(steps, final, info)
        reqs = [r for s in steps for r in s["requests"]]
        steps_rel = f"{STEPS_DIR}/{spec.key}.jsonl"
        _write_jsonl(self.out / steps_rel, steps)
        if recorded:
            atomic_write_bytes(self.out / RECORD_DIR / f"{spec.key}.jsonl", "".join(r + "\n" for r in recorded).encode())
        done = {
            "key": spec.key, "driver": spec.driver, "scenario": spec.scenario, "episode": spec.episode,
            "seed": spec.seed, "info": info, "final": final, "metrics": metrics, "steps_file": steps_rel,
            "replay": finished["replay"], "seconds": finished["seconds"],
            "requests": {
                "count": len(reqs), "failed": sum(1 for r in reqs if not r["ok"]),
                "cached": sum(1 for r in reqs if r["cached"]),
                "latencies_s": [r["latency_s"] for r in reqs if r["ok"]],
                "prompt_tokens": sum(r["prompt_tokens"] for r in reqs),
                "completion_tokens": sum(r["completion_tokens"] for r in reqs),
                "reasoning_tokens": sum(r["reasoning_tokens"] for r in reqs),
                "cost_usd": _cost(reqs),
            },
        }
        failed = metrics.get("fallback_request_failed", 0)
        if spec.driver == "model" and steps and failed / len(steps) > self.opts.max_failure_rate:
            done["incomplete"] = (f"{failed} of {len(steps)} decisions fell back on failed requests "
                                  f"(> --max-failure-rate {self.opts.max_failure_rate:g}); not scored, re-run next time")
        _write_json(done_path(self.out, spec), done)  # last: the episode counts as finished from here
        return done


def _cost(reqs: list[dict[str, Any]]) -> float | None:
    costs = [r["cost_usd"] for r in reqs if r["ok"]]
    if any(c is None for c in costs):
        return None
    return round(sum(costs), 8)


# ---------------------------------------------------------------------- the run


async def _run_pending(
    cfg: LoopConfig, opts: RunOptions, out: Path, pending: list[EpisodeSpec], timing: dict[str, float]
) -> list[str]:
    from drivechain.closedloop.workers import WorkerPool
    from drivechain.evaluation.runner import Asker, RunPolicy
    from drivechain.evaluation.store import ResultStore
    from drivechain.models.pricing import load_prices
    from drivechain.models.registry import load_model

    if not pending:
        return []
    prices = load_prices(Path(opts.prices) if opts.prices else None)
    needs_model = any(s.driver == "model" for s in pending)
    model = load_model(cfg.model, base_url=cfg.base_url, timeout_s=opts.timeout_s) if needs_model else None
    store = ResultStore(out / "results.sqlite")
    sim_cfg = SimConfig(
        run_dir=str(out), source=cfg.source, max_steps=cfg.max_steps, horizon_s=cfg.horizon_s,
        image_size=cfg.image_size, replay=cfg.replay,
        warm_scenarios=tuple(dict.fromkeys(s.scenario for s in pending)),
    )
    t0 = time.perf_counter()
    if opts.executor == "ray":
        from dataclasses import asdict

        from drivechain.closedloop.workers import SimHost
        from drivechain.executors.ray import RayActorPool

        pool: Any = RayActorPool(min(opts.workers, len(pending)), SimHost, (asdict(sim_cfg),), opts.ray_address)
    else:
        pool = WorkerPool(min(opts.workers, len(pending)), sim_cfg)
    try:
        await pool.wait_ready()
        t1 = time.perf_counter()
        timing["startup_s"] = round(t1 - t0, 4)
        policy = RunPolicy(concurrency=opts.concurrency, timeout_s=opts.timeout_s, retries=opts.retries)
        asker = Asker(model, store, policy) if model is not None else None
        runner = _Runner(cfg, opts, out, pool, asker, prices)
        # enough episodes at once to keep --concurrency requests in flight and every worker busy
        slots = asyncio.Semaphore(max(opts.workers, opts.concurrency))

        async def one(spec: EpisodeSpec) -> None:
            async with slots:
                await runner.episode(spec)

        with _progress(pending, cfg.max_steps, opts.progress) as bar:
            runner.bar = bar
            await asyncio.gather(*(one(s) for s in pending))
        timing["episodes_s"] = round(time.perf_counter() - t1, 4)
        return runner.errors
    finally:
        pool.close()
        store.close()
        if model is not None:
            await model.aclose()


class _progress:
    """Rich progress on stderr per decision step: model episodes and the teacher's baseline apart."""

    def __init__(self, pending: list[EpisodeSpec], max_steps: int, enabled: bool) -> None:
        self.pending, self.max_steps, self.enabled, self._p = pending, max_steps, enabled, None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> "_progress":
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("decisions"), TimeRemainingColumn(), console=Console(stderr=True))
        for driver, label in (("model", "closedloop model"), ("teacher", "teacher baseline")):
            n = sum(1 for s in self.pending if s.driver == driver)
            if n:
                self._tasks[driver] = self._p.add_task(f"{label} ({n} episodes)", total=n * self.max_steps)
        self._p.start()
        return self

    def step(self, driver: str, n: int = 1) -> None:
        """Advance ``driver``'s bar by ``n`` decision steps."""
        if self._p is not None and driver in self._tasks:
            self._p.advance(self._tasks[driver], n)

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.stop()


def run_closedloop(cfg: LoopConfig, out: Path, opts: RunOptions | None = None) -> dict[str, Any]:
    """Run (or resume) a closed-loop evaluation into ``out``; returns the summary."""
    opts = opts or RunOptions()
    out = Path(out)
    prepare_run(cfg, out, force=opts.force)
    specs = cfg.specs()
    done = load_done(out, specs)
    pending = [s for s in specs if s.key not in done]
    timing: dict[str, float] = {}
    errors = asyncio.run(_run_pending(cfg, opts, out, pending, timing))
    done = load_done(out, specs)
    incomplete = load_done(out, specs, incomplete=True)
    summary = summarize(cfg, out, specs, done, errors, timing, [s.key for s in pending], incomplete=incomplete)
    if cfg.record:
        write_record_dataset(cfg, out, [s for s in specs if s.driver == "model" and s.key in done])
    return summary


# ---------------------------------------------------------------------- summary


def summarize(
    cfg: LoopConfig,
    out: Path,
    specs: list[EpisodeSpec],
    done: dict[str, dict[str, Any]],
    errors: list[str],
    timing: dict[str, float] | None = None,
    ran: list[str] | None = None,
    incomplete: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """episodes.jsonl and summary.json from the completion records (incomplete episodes listed, not scored)."""
    rows = []
    for spec in specs:
        if spec.driver != "model" or spec.key not in done:
            continue
        row = dict(done[spec.key])
        teacher = done.get(EpisodeSpec(spec.scenario, spec.episode, spec.seed, "teacher").key)
        m = row["metrics"]
        eff: dict[str, Any] = {"speed_vs_limit": m["speed_vs_limit"], "speed_vs_teacher": None}
        if teacher is not None and teacher["metrics"]["mean_speed_mps"] > 0:
            eff["speed_vs_teacher"] = round(m["mean_speed_mps"] / teacher["metrics"]["mean_speed_mps"], 6)
            eff["teacher_driving_score"] = teacher["metrics"]["driving_score"]
        row["efficiency"] = eff
        rows.append(row)
    teacher_rows = [done[s.key] for s in specs if s.driver == "teacher" and s.key in done]
    # flat rows: the episode's metrics at the top level beside its identity and files
    _write_jsonl(out / EPISODES, [
        {**{k: r[k] for k in ("key", "scenario", "episode", "seed")}, **r["metrics"],
         **{k: r[k] for k in ("efficiency", "replay", "steps_file", "requests", "seconds")}}
        for r in rows
    ])
    reqs = [r["requests"] for r in rows]
    costs = [q["cost_usd"] for q in reqs]
    summary: dict[str, Any] = {
        "model": cfg.model,
        "ask": cfg.ask,
        **aggregate(rows),
        "episodes": len(rows),
        "episodes_planned": cfg.episodes * len(cfg.scenarios),
        "requests": sum(q["count"] for q in reqs),
        "failures": {
            "requests": sum(q["failed"] for q in reqs),
            "fallback_actions": sum(r["metrics"]["failures"] for r in rows),
            "episodes": len(errors),
        },
        "tokens": {
            "prompt": sum(q["prompt_tokens"] for q in reqs),
            "completion": sum(q["completion_tokens"] for q in reqs),
            "reasoning": sum(q["reasoning_tokens"] for q in reqs),
        },
        "cost_usd": None if any(c is None for c in costs) else round(sum(costs), 8),
        "latency_s": latency_percentiles([x for q in reqs for x in q["latencies_s"]]),
        "per_scenario": {
            sc: aggregate([r for r in rows if r["scenario"] == sc]) for sc in cfg.scenarios
        },
        "abilities": ability_breakdown(rows),
        "teacher": aggregate(teacher_rows) if teacher_rows else None,
        "errors": errors,
        "timing": _timing(done, timing or {}, ran or []),
    }
    corner = corner_block(rows, teacher_rows)  # corner cases: per ability / level (closedloop/corner.py)
    if corner is not None:
        summary["corner"] = corner
    summary["failures"]["fallback_request_failed"] = sum(r["metrics"].get("fallback_request_failed", 0) for r in rows)
    summary["failures"]["fallback_unusable"] = sum(r["metrics"].get("fallback_unusable", 0) for r in rows)
    incomplete = {k: v for k, v in (incomplete or {}).items() if v.get("driver") == "model"}
    summary["incomplete_episodes"] = {k: v["incomplete"] for k, v in sorted(incomplete.items())}
    summary["failures"]["incomplete_episodes"] = len(incomplete)
    missing = summary["episodes_planned"] - len(rows)
    reasons = []
    if incomplete:
        reasons.append(f"{len(incomplete)} episode(s) fell back on failed requests too often "
                       f"(first: {next(iter(summary['incomplete_episodes'].items()))[1]})")
    if errors:
        reasons.append(f"{len(errors)} episode(s) failed (first: {errors[0]})")
    if missing and not reasons:
        reasons.append(f"{missing} planned episode(s) not finished")
    summary["complete"] = not reasons
    summary["incomplete_reason"] = "; ".join(reasons) or None
    summary["first_errors"] = _first_errors(out, specs, incomplete)
    _write_json(out / SUMMARY, summary)
    return summary


def _first_errors(out: Path, specs: list[EpisodeSpec], incomplete: dict[str, dict[str, Any]]) -> list[str]:
    """The first distinct request errors of incomplete episodes (from their step files)."""
    from drivechain.models.base import failure_kind, printable

    seen: dict[str, str] = {}
    for key, rec in incomplete.items():
        path = out / rec.get("steps_file", "")
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            for req in json.loads(line).get("requests") or []:
                if req.get("error"):
                    seen.setdefault(failure_kind(req["error"]), printable(req["error"], 300))
    return list(seen.values())[:5]


def _timing(done: dict[str, dict[str, Any]], timing: dict[str, float], ran: list[str]) -> dict[str, Any]:
    """Where this invocation's time went: start-up, episodes wall time, simulator parts summed."""
    rows = [done[k] for k in ran if k in done]
    parts: dict[str, float] = {}
    for row in rows:
        for part, sec in row["seconds"].items():
            parts[part] = round(parts.get(part, 0.0) + sec, 4)
    steps = sum(r["metrics"]["steps"] for r in rows)
    wall = timing.get("episodes_s")
    return {
        **timing,
        "episodes_run": len(rows),
        "steps_run": steps,
        "steps_per_s": round(steps / wall, 4) if wall else None,
        "worker_seconds": parts,
    }


def write_record_dataset(cfg: LoopConfig, out: Path, specs: list[EpisodeSpec]) -> None:
    """The visited frames (teacher labels + model answers in frame.meta.closedloop) as a dataset folder."""
    from drivechain.dataset import images_sha256, write_frames, write_manifest
    from drivechain.generate import _versions
    from drivechain.schema import Manifest

    root = out / DATASET_DIR
    lines: list[str] = []
    for spec in specs:
        path = out / RECORD_DIR / f"{spec.key}.jsonl"
        if path.exists():
            lines += path.read_text(encoding="utf-8").splitlines()
    for line in lines:
        rec = FrameRecord.model_validate_json(line)
        for rel in rec.frame.images.values():
            dst = root / rel
            if not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(out / rel, dst)
                except OSError:
                    shutil.copyfile(out / rel, dst)
    frames_hash = write_frames(root, lines)
    manifest = Manifest(
        name=f"closedloop-{cfg.model}", source=cfg.source, config=cfg.model_dump(mode="json"), seed=cfg.seed,
        versions=_versions(), counts={"frames": len(lines), "episodes": len(specs)},
        frames_sha256=frames_hash, images_sha256=images_sha256(root),
    )
    write_manifest(root, manifest)
