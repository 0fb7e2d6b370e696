"""The benchmark generator: run episodes, label every decision step with the teacher, write a dataset.

The ego follows the teacher's preferred action, with seeded epsilon exploration (a random
available action) so the dataset also holds states an expert would not visit. Each episode's seed
and exploration stream derive from (seed, scenario, episode) only, so the output is byte-identical
whatever the executor (local pool or Ray), the number of workers or the order episodes finish in.

An episode is one task. It writes its images and its records' part file (atomically) into the
build folder beside ``--out`` and, last, a completion record naming the part's hash; an interrupted
build is resumed by the same command: episodes whose completion record verifies are not re-run.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import random
import shutil
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from drivechain.dataset import (
    IMAGES, atomic_write_bytes, building_folder, images_sha256, sha256_file, write_frames, write_manifest, write_png,
    write_shards,
)
from drivechain.errors import ConfigError
from drivechain.schema import FrameRecord, Manifest
from drivechain.sources.corner_cases import corner_meta
from drivechain.sources.render import CAMERA
from drivechain.sources.scenarios import get_scenario

VERSION_PACKAGES = ("drivechain", "highway-env", "gymnasium", "numpy", "pillow", "pygame-ce", "pydantic")


class GenerateConfig(BaseModel):
    """Everything that decides a dataset's content (recorded in the manifest)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "drivechain-highway"
    source: str = "highway"
    scenarios: list[str] = Field(default_factory=lambda: ["highway", "merge", "intersection", "roundabout"])
    episodes: int = Field(default=2, ge=1)
    steps_per_episode: int = Field(default=10, ge=1)
    seed: int = 0
    epsilon: float = Field(default=0.2, ge=0.0, le=1.0)
    image_size: tuple[int, int] | None = None
    marks: bool = True
    history: int = Field(default=0, ge=0)
    horizon_s: float = Field(default=3.0, gt=0.0)

    @field_validator("scenarios")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one scenario")
        for name in value:
            get_scenario(name)
        return value


def parse_image_size(text: str | None) -> tuple[int, int] | None:
    """'WxH' -> (W, H); None or '' keeps each scenario's default size."""
    if not text:
        return None
    try:
        w, h = (int(p) for p in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"image size '{text}' is not WxH (e.g. 320x80)") from None
    if w < 16 or h < 16 or w > 4096 or h > 4096:
        raise ConfigError(f"image size '{text}' must be between 16x16 and 4096x4096")
    return (w, h)


def episode_seed(seed: int, scenario: str, episode: int) -> int:
    """The simulator seed of one episode, from (seed, scenario, episode) only."""
    digest = hashlib.sha256(f"{seed}/{scenario}/{episode}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


PARTS = ".parts"  # per-episode frames.jsonl parts inside the temp folder (memory stays flat)


class EpisodeResult(BaseModel):
    """One episode's records (in a part file, not in memory), its counts and where its time went."""

    scenario: str
    episode: int
    part: str = Field(description="path of the episode's JSON-lines part file")
    frames: int
    actions: list[str]
    stages: dict[str, int] = Field(default_factory=dict)
    families: dict[str, int] = Field(default_factory=dict)
    ambiguous: dict[str, int] = Field(default_factory=dict, description="ambiguous nodes per family")
    edges_checked: dict[str, int] = Field(default_factory=dict, description="coherence-checked edges per edge")
    violations: dict[str, int] = Field(default_factory=dict, description="coherence violations per edge")
    seconds: dict[str, float]


def part_path(root: Path, scenario: str, episode: int) -> Path:
    """Where one episode's records are written before frames.jsonl is assembled."""
    return root / PARTS / f"{scenario}_{episode:05d}.jsonl"


def done_path(root: Path, scenario: str, episode: int) -> Path:
    """One finished episode's completion record (its EpisodeResult and its part's sha256)."""
    return root / PARTS / f"{scenario}_{episode:05d}.done.json"


_SOURCES: dict[tuple[str, str], Any] = {}  # per process: one source per scenario, reused across episodes


def _source(cfg: GenerateConfig, scenario: str) -> Any:
    from drivechain.sources.base import make_source

    key = (cfg.model_dump_json(), scenario)
    if key not in _SOURCES:
        _SOURCES[key] = make_source(
            cfg.source, scenario, image_size=cfg.image_size, marks=cfg.marks, horizon_s=cfg.horizon_s
        )
    return _SOURCES[key]


def run_episode(cfg: GenerateConfig, scenario: str, episode: int, root: Path) -> EpisodeResult:
    """Run one episode, write its images under ``root``, return its records."""
    from drivechain.teacher.coherence import check_graph
    from drivechain.teacher.graph import build_graph, preferred_action

    source = _source(cfg, scenario)
    seed = episode_seed(cfg.seed, scenario, episode)
    source.reset(seed, episode)
    rng = random.Random(seed)
    history: deque[str] = deque(maxlen=cfg.history)
    actions: list[str] = []
    stages: Counter[str] = Counter()
    families: Counter[str] = Counter()
    ambiguous: Counter[str] = Counter()
    edges_checked: Counter[str] = Counter()
    violations: Counter[str] = Counter()
    part = part_path(root, scenario, episode)
    part.parent.mkdir(parents=True, exist_ok=True)
    # written under a name of this process, renamed when whole: a re-run of the task (its worker
    # died) never appends to or tears a part another attempt wrote
    writing = part.with_name(f".{part.name}.{os.getpid()}.tmp")
    with open(writing, "w", encoding="utf-8") as out:
        spent = Counter({"frame": 0.0, "render": 0.0, "teacher": 0.0, "step": 0.0, "write": 0.0})
        for step in range(cfg.steps_per_episode):
            t0 = time.perf_counter()
            frame = source.frame()
            frame.meta.update(corner_meta(source.env))  # the scripted hazard's state (corner cases only)
            t1 = time.perf_counter()
            image = source.render()
            t2 = time.perf_counter()
            rel = f"{IMAGES}/{scenario}/{episode:04d}_{step:03d}.png"
            write_png(root / rel, image)
            frame.images = {CAMERA: rel}
            frame.history_images = list(history) if cfg.history else []
            t3 = time.perf_counter()
            graph = build_graph(frame, source, horizon_s=cfg.horizon_s)
            action = preferred_action(graph)
            explored = rng.random() < cfg.epsilon
            if explored:
                action = rng.choice(frame.available_actions or ["IDLE"])
            frame.meta["ego_action"] = action
            frame.meta["explored"] = explored
            t4 = time.perf_counter()
            out.write(FrameRecord(frame=frame, graph=graph).model_dump_json() + "\n")
            stages.update(n.stage for n in graph.nodes)
            families.update(n.family for n in graph.nodes)
            ambiguous.update(n.family for n in graph.nodes if n.ambiguous)
            checked, violated, _ = check_graph(graph)
            edges_checked.update(checked)
            violations.update(violated)
            history.append(rel)
            actions.append(action)
            t5 = time.perf_counter()
            result = source.step(action)
            t6 = time.perf_counter()
            spent.update(
                {"frame": t1 - t0, "render": t2 - t1, "write": (t3 - t2) + (t5 - t4), "teacher": t4 - t3, "step": t6 - t5}
            )
            if result.done:
                break
    os.replace(writing, part)
    return EpisodeResult(
        scenario=scenario, episode=episode, part=str(part), frames=len(actions), actions=actions,
        stages=dict(stages), families=dict(families), ambiguous=dict(ambiguous), edges_checked=dict(edges_checked),
        violations=dict(violations), seconds=dict(spent),
    )


def _run_task(args: tuple[str, str, int, str]) -> EpisodeResult:
    """One episode as a task: run it, then write its completion record (the resume point)."""
    cfg_json, scenario, episode, root = args
    res = run_episode(GenerateConfig.model_validate_json(cfg_json), scenario, episode, Path(root))
    record = {"result": res.model_dump(mode="json"), "part_sha256": sha256_file(Path(res.part))}
    atomic_write_bytes(done_path(Path(root), scenario, episode), json.dumps(record, sort_keys=True).encode())
    return res


def finished_episode(root: Path, scenario: str, episode: int) -> EpisodeResult | None:
    """The result of an episode a previous build finished, if its part and images are all there."""
    path = done_path(root, scenario, episode)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        res = EpisodeResult.model_validate(record["result"])
        part = part_path(root, scenario, episode)
        if sha256_file(part) != record["part_sha256"]:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    images = (root / IMAGES / scenario / f"{episode:04d}_{step:03d}.png" for step in range(res.frames))
    if not all(p.is_file() for p in images):
        return None
    return res.model_copy(update={"part": str(part)})


# imported once in the fork server instead of once per worker (~1.5 s of CPU each)
WORKER_PRELOAD = ["drivechain.generate", "drivechain.teacher.graph", "drivechain.sources.highway", "highway_env"]


def _versions() -> dict[str, str]:
    out = {}
    for name in VERSION_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _counts(results: list[EpisodeResult]) -> dict[str, Any]:
    scenarios: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    families: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    ambiguous: Counter[str] = Counter()
    checked: Counter[str] = Counter()
    violations: Counter[str] = Counter()
    for res in results:
        scenarios[res.scenario] += res.frames
        actions.update(res.actions)
        stages.update(res.stages)
        families.update(res.families)
        ambiguous.update(res.ambiguous)
        checked.update(res.edges_checked)
        violations.update(res.violations)
    return {
        "frames": sum(scenarios.values()),
        "episodes": len(results),
        "scenarios": dict(sorted(scenarios.items())),
        "stages": dict(sorted(stages.items())),
        "families": dict(sorted(families.items())),
        "actions": dict(sorted(actions.items())),
        # share of each family's nodes marked ambiguous (left out of scoring)
        "ambiguous_share": {f: round(ambiguous[f] / n, 4) for f, n in sorted(families.items())},
        # coherence (teacher/coherence.py): edges checked and parent answers contradicting the child, per edge
        "coherence": {e: {"checked": n, "violations": violations[e]} for e, n in sorted(checked.items())},
    }


def _part_lines(results: list[EpisodeResult]) -> Iterator[str]:
    """Every record line of every episode, in task order, one part file open at a time."""
    for res in results:
        with open(res.part, encoding="utf-8") as fh:
            yield from fh


def prepare_out(out: Path, force: bool) -> None:
    """Refuse a non-empty output folder unless ``force``."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"output folder {out} is not empty; choose another --out or pass --force")


def _resume_folder(tmp: Path, cfg: GenerateConfig) -> None:
    """Keep the finished episodes of an interrupted build with the same config; start afresh otherwise."""
    stamp = tmp / PARTS / "config.json"
    text = cfg.model_dump_json()
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == text:
        return
    for child in tmp.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    atomic_write_bytes(stamp, text.encode())


def _shard_groups(results: list[EpisodeResult], shards: int) -> Iterator[Iterator[str]]:
    """Episodes in task order, cut into ``shards`` runs of consecutive episodes (sizes differ by <= 1)."""
    n = len(results)
    for i in range(shards):
        yield _part_lines(results[i * n // shards:(i + 1) * n // shards])


def generate(
    cfg: GenerateConfig,
    out: Path,
    workers: int = 1,
    force: bool = False,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    shards: int | None = None,
) -> tuple[Manifest, list[EpisodeResult]]:
    """Generate a dataset folder at ``out`` (built beside it, then renamed into place; an interrupted
    build resumes). ``shards``: write the records as that many shard files instead of frames.jsonl."""
    from drivechain.executors import check_executor, make_executor

    if workers < 1:
        raise ConfigError(f"--workers must be >= 1 (got {workers})")
    check_executor(executor, ray_address)
    n_tasks = len(cfg.scenarios) * cfg.episodes
    if shards is not None and not 1 <= shards <= n_tasks:
        raise ConfigError(f"--shards must be between 1 and the number of episodes ({n_tasks}), not {shards}")
    out = Path(out)
    prepare_out(out, force)
    with building_folder(out, resumable=True) as tmp:
        _resume_folder(tmp, cfg)
        (tmp / IMAGES).mkdir(parents=True, exist_ok=True)
        keys = [(sc, ep) for sc in cfg.scenarios for ep in range(cfg.episodes)]
        results: list[EpisodeResult | None] = [finished_episode(tmp, sc, ep) for sc, ep in keys]
        for res in results:
            if res is not None and on_episode:
                on_episode(res)
        todo = [i for i, res in enumerate(results) if res is None]
        if todo:
            runner = make_executor(executor, workers, ray_address, WORKER_PRELOAD)
            try:
                tasks = [(cfg.model_dump_json(), *keys[i], str(tmp)) for i in todo]
                for index, res in runner.run(_run_task, tasks):
                    results[todo[index]] = res
                    if on_episode:
                        on_episode(res)
            finally:
                runner.close()
        done = [r for r in results if r is not None]
        if shards is None:
            frames_hash, shard_list = write_frames(tmp, _part_lines(done)), None
        else:
            frames_hash, shard_list = write_shards(tmp, _shard_groups(done, shards), shards)
        shutil.rmtree(tmp / PARTS, ignore_errors=True)
        for stray in (tmp / IMAGES).rglob(".*.tmp"):  # an image write cut short by a worker that died
            stray.unlink()
        manifest = Manifest(
            name=cfg.name,
            source=cfg.source,
            config=cfg.model_dump(mode="json"),
            seed=cfg.seed,
            versions=_versions(),
            counts=_counts(done),
            frames_sha256=frames_hash,
            images_sha256=images_sha256(tmp),
            shards=shard_list,
        )
        write_manifest(tmp, manifest)
    return manifest, done
