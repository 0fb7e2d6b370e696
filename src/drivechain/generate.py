"""The benchmark generator: run episodes, label every decision step with the teacher, write a dataset.

The ego follows the teacher's preferred action, with seeded epsilon exploration (a random
available action) so the dataset also holds states an expert would not visit. Each episode's seed
and exploration stream derive from (seed, scenario, episode) only, so the output is byte-identical
whatever the number of worker processes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import multiprocessing
import random
import shutil
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from drivechain.dataset import IMAGES, building_folder, images_sha256, write_frames, write_manifest, write_png
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
    with open(part, "w", encoding="utf-8") as out:
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
    return EpisodeResult(
        scenario=scenario, episode=episode, part=str(part), frames=len(actions), actions=actions,
        stages=dict(stages), families=dict(families), ambiguous=dict(ambiguous), edges_checked=dict(edges_checked),
        violations=dict(violations), seconds=dict(spent),
    )


def _run_task(args: tuple[str, str, int, str]) -> EpisodeResult:
    cfg_json, scenario, episode, root = args
    return run_episode(GenerateConfig.model_validate_json(cfg_json), scenario, episode, Path(root))


# imported once in the fork server instead of once per worker (~1.5 s of CPU each)
WORKER_PRELOAD = ["drivechain.generate", "drivechain.teacher.graph", "drivechain.sources.highway", "highway_env"]


def _worker_context() -> Any:
    """Workers forked from a clean single-threaded server (no inherited pygame/threads state of
    the caller) that has the heavy modules imported already; spawn where fork does not exist."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(WORKER_PRELOAD)
    return ctx


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


def generate(
    cfg: GenerateConfig,
    out: Path,
    workers: int = 1,
    force: bool = False,
    on_episode: Callable[[EpisodeResult], None] | None = None,
) -> tuple[Manifest, list[EpisodeResult]]:
    """Generate a dataset folder at ``out`` (built in a temp folder, then renamed into place)."""
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1 (got {workers})")
    out = Path(out)
    prepare_out(out, force)
    results: list[EpisodeResult] = []
    with building_folder(out) as tmp:
        (tmp / IMAGES).mkdir(parents=True)
        tasks = [(cfg.model_dump_json(), sc, ep, str(tmp)) for sc in cfg.scenarios for ep in range(cfg.episodes)]
        if workers == 1:
            for task in tasks:
                results.append(_run_task(task))
                if on_episode:
                    on_episode(results[-1])
        else:
            ctx = _worker_context()
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                for res in pool.map(_run_task, tasks):
                    results.append(res)
                    if on_episode:
                        on_episode(res)
        frames_hash = write_frames(tmp, _part_lines(results))
        shutil.rmtree(tmp / PARTS, ignore_errors=True)
        manifest = Manifest(
            name=cfg.name,
            source=cfg.source,
            config=cfg.model_dump(mode="json"),
            seed=cfg.seed,
            versions=_versions(),
            counts=_counts(results),
            frames_sha256=frames_hash,
            images_sha256=images_sha256(tmp),
        )
        write_manifest(tmp, manifest)
    return manifest, results
