"""The Ray executor: tasks run as Ray tasks on an existing cluster or on a Ray started for the run.

A task whose worker process (or node) dies is re-run by Ray up to ``MAX_RETRIES`` times; the
commands make every task idempotent (it writes its own files, atomically), so a re-run leaves no
duplicate or torn output. An exception raised by the task itself is not retried: it ends the run
with one line naming it, as with local workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from drivechain.errors import ConfigError, DrivechainError

MAX_RETRIES = 3  # re-runs of a task whose worker died (Ray's max_retries)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'drivechain[ray]'") from None
    return ray


def _code_path() -> str:
    """The folder this drivechain is imported from, put first on the workers' PYTHONPATH so they
    run the driver's code when it is a source checkout visible to them (a shared filesystem)."""
    import drivechain

    return str(Path(drivechain.__file__).resolve().parent.parent)


def task_error(exc: BaseException) -> DrivechainError:
    """One line for a failed Ray task: the task's own error when it raised one, else what Ray saw."""
    ray = _ray()
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = exc.cause if hasattr(exc, "cause") else None
        if isinstance(cause, DrivechainError):
            return cause
        if cause is not None:
            return DrivechainError(f"a Ray task failed: {type(cause).__name__}: {(str(cause).splitlines() or [''])[0]}")
    if isinstance(exc, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)):
        return DrivechainError(f"a Ray worker died {MAX_RETRIES + 1} times running the same task; see the"
                               " Ray logs of the cluster (ray logs) for why")
    return DrivechainError(f"a Ray task failed: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")


class RayExecutor:
    """Ray tasks of one CPU each. ``address``: a cluster to join ('auto' when RAY_ADDRESS is set);
    without one, a local Ray with ``workers`` CPUs is started for the run and stopped after it."""

    def __init__(self, workers: int, address: str | None = None) -> None:
        ray = _ray()
        self.size = workers
        self._owned = False
        if ray.is_initialized():  # the caller (a notebook, a test) already joined a cluster
            return
        address = address or ("auto" if os.environ.get("RAY_ADDRESS") else None)
        kwargs: dict[str, Any] = {
            "include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING",
            "runtime_env": {"env_vars": {"PYTHONPATH": os.pathsep.join(
                [_code_path(), *filter(None, [os.environ.get("PYTHONPATH")])])}},
        }
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=workers, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"at {address}" if address else "locally"
            raise DrivechainError(f"cannot start or join Ray {where} ({(str(exc).splitlines() or [''])[0]});"
                                  " check --ray-address / RAY_ADDRESS and that the cluster is up") from None
        self._owned = True
        if address:  # a cluster: as many tasks in flight as it has CPUs
            self.size = max(1, int(ray.cluster_resources().get("CPU", workers)))

    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Submit every task; yield (index, result) as tasks finish (a failed task raises one line)."""
        ray = _ray()
        remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(fn)
        refs = {remote.remote(task): i for i, task in enumerate(tasks)}
        try:
            while refs:
                pending = list(refs)
                ready, rest = ray.wait(pending, num_returns=1)
                if rest:  # everything else finished by now too, without waiting
                    ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
                for ref in ready:
                    index = refs.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        raise task_error(exc) from None
                    yield index, result
        finally:
            for ref in refs:  # an error or Ctrl-C: nothing keeps running for a run that ended
                ray.cancel(ref, force=True)

    def close(self) -> None:
        """Disconnect; stop the local Ray when this executor started it."""
        if self._owned:
            _ray().shutdown()
            self._owned = False
