"""Executors: where a command's independent tasks run (this machine's process pool, or a Ray cluster).

A command hands an executor a module-level function and a list of picklable tasks and gets each
result back with its task index as it finishes; the command puts results in task order itself, so
its output does not depend on the executor, the worker count or the order tasks finish in. Ray is
imported only when ``--executor ray`` is chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from drivechain.errors import ConfigError, DrivechainError

EXECUTORS = ("local", "ray")


class WorkerLost(DrivechainError):
    """A worker process (or its node) died during a call; the work it held is gone and may be re-run."""


class Executor(Protocol):
    """Runs tasks somewhere; ``run`` yields ``(task index, result)`` as tasks finish."""

    size: int

    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Run ``fn(task)`` for every task; yield (index, result) in completion order."""
        ...

    def close(self) -> None:
        """Release the workers (a Ray cluster the executor did not start is left running)."""
        ...


def check_executor(name: str, ray_address: str | None) -> None:
    """Refuse an unknown executor, or a Ray address without the Ray executor (one line)."""
    if name not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)} (got '{name}')")
    if ray_address and name != "ray":
        raise ConfigError("--ray-address needs --executor ray")


def make_executor(name: str, workers: int, ray_address: str | None = None,
                  preload: Sequence[str] = ()) -> Executor:
    """The executor ``name`` with ``workers`` processes (Ray: CPUs of a Ray started for the run)."""
    check_executor(name, ray_address)
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1 (got {workers})")
    if name == "ray":
        from drivechain.executors.ray import RayExecutor

        return RayExecutor(workers, ray_address)
    from drivechain.executors.local import LocalExecutor

    return LocalExecutor(workers, preload)
