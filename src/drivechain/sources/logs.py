"""Recorded-log sources: the protocol, the registry, and what a log source can label.

A log source (Bench2Drive, nuScenes, ...) cannot step, fork or roll out: it replays recorded
clips. It yields Frames in which every agent carries its pixel box per camera and its recorded
future (``Frame.future``: where it really is 1, 2, 3 s later), plus the original camera files.
It also declares the question families it can label (``families``): the generator keeps only
those, so the teacher never asks what the source cannot verify. A live simulator source (CARLA)
implements ``sources.base.Source`` instead and runs through the simulator path of the generator.

Frame conventions shared by log sources: ``Frame.meta['kind'] == 'log'``; ``rel_x_m`` / ``rel_y_m``
in the ego frame (x forward, y left); world coordinates stay the source's own (and
``meta['left_handed']`` says whether world y points to the right of x, as in CARLA);
``meta['ego_path']`` = the ego's recorded future positions in the ego frame, ``meta['ego_future']``
= its recorded states (t, rel x, rel y, speed, lane); ``signals`` = traffic lights and signs.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from drivechain.errors import ConfigError
from drivechain.schema import Frame

LOG_SOURCES: dict[str, str] = {
    "bench2drive": "drivechain.sources.bench2drive:Bench2DriveSource",
    "nuscenes": "drivechain.sources.nuscenes:NuScenesSource",
}
"""Log source name -> 'module:class'. A new log source is one module and one line here."""
DEFAULT_STRIDE: dict[str, int] = {"bench2drive": 5, "nuscenes": 1}
"""Frames labelled per recorded frame when --stride is not given: 2 Hz (Bench2Drive records 10 Hz,
nuScenes' annotated key frames are already 2 Hz)."""


@dataclass
class LogFrame:
    """One recorded frame: the Frame (images empty) and the original camera files it was seen in."""

    frame: Frame
    camera_files: dict[str, Path] = field(default_factory=dict)


@runtime_checkable
class LogSource(Protocol):
    """Replays recorded clips as Frames; says which question families it can label."""

    name: str
    families: frozenset[str]

    def clips(self) -> list[str]:
        """The clip ids found under the data root (sorted, discovered, not configured)."""
        ...

    def frames(self, clip: str) -> Iterator[LogFrame]:
        """The clip's labelled frames in time order (stride and limit applied)."""
        ...


def is_log_source(name: str) -> bool:
    """Is ``name`` a recorded-log source?"""
    return name in LOG_SOURCES


def make_log_source(name: str, dataroot: Path, **options) -> LogSource:
    """Build a log source by name; unknown names raise a ConfigError listing the choices."""
    if name not in LOG_SOURCES:
        raise ConfigError(f"unknown log source '{name}'; choose one of: {', '.join(LOG_SOURCES)}")
    module, cls = LOG_SOURCES[name].split(":")
    return getattr(importlib.import_module(module), cls)(Path(dataroot), **options)
