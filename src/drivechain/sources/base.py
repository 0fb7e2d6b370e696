"""The Source protocol: anything that produces Frames (a simulator now, recorded logs later).

A source owns one episode at a time. ``frame()`` reads the privileged state of the current
decision step, ``render()`` draws it, ``step(action)`` advances one decision step,
``rollout(action, horizon_s)`` looks ahead from the current state without changing it and
``fork()`` returns an independent copy (for look-ahead that needs several steps).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, Field

from drivechain.errors import ConfigError
from drivechain.schema import Agent, Frame


class Snapshot(BaseModel):
    """One instant of a rollout: every agent within the sampling radius of the ego."""

    t_s: float = Field(description="time after the rollout start [s]")
    ego: Agent
    agents: list[Agent] = Field(default_factory=list, description="other agents, rel_* relative to the ego now")
    crashed: bool = Field(description="the ego has crashed at or before this instant")
    ego_on_road: bool = True


class Rollout(BaseModel):
    """A privileged forward simulation: ``action`` at the first decision step, then IDLE."""

    action: str
    horizon_s: float
    dt_s: float = Field(description="physics step between samples [s]")
    reduced: bool = Field(description="only vehicles near the ego were simulated")
    samples: list[Snapshot] = Field(default_factory=list, description="every physics step, t = dt .. horizon")
    crashed: bool = False
    crashed_with: int | None = Field(default=None, description="id of the agent the ego hit, if known")


class StepResult(BaseModel):
    """What one decision step did."""

    crashed: bool
    done: bool
    reward: float = 0.0
    info: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class Source(Protocol):
    """A producer of Frames that can be stepped, rendered, rolled out and forked."""

    name: str
    scenario: str

    def reset(self, seed: int, episode: int = 0) -> None:
        """Start a new episode from this seed."""
        ...

    def frame(self) -> Frame:
        """The privileged state now, with ``future`` filled; ``images`` is left empty."""
        ...

    def render(self) -> np.ndarray:
        """The current image, H x W x 3 uint8."""
        ...

    def step(self, action: str) -> StepResult:
        """Apply a meta-action (by name) for one decision step."""
        ...

    def rollout(self, action: str, horizon_s: float, reduced: bool = True, ego_idm: bool = False) -> Rollout:
        """Look ahead from the current state (action, then IDLE); never changes the state."""
        ...

    def fork(self) -> "Source":
        """An independent copy of the current state."""
        ...

    def close(self) -> None:
        """Release the simulator and its viewer."""
        ...


SOURCES = ("highway", "bench2drive", "nuscenes")
"""Every source name; recorded-log sources (sources/logs.py) go through generate_logs instead of make_source."""


def make_source(name: str, scenario: str, **config: Any) -> Source:
    """Build a source by name; unknown names raise a ConfigError listing the choices."""
    if name == "highway":
        from drivechain.sources.highway import HighwaySource

        return HighwaySource(scenario, **config)
    if name in SOURCES:
        raise ConfigError(f"source '{name}' replays recorded logs: it cannot be stepped (use generate --dataroot)")
    raise ConfigError(f"unknown source '{name}'; choose one of: {', '.join(SOURCES)}")
