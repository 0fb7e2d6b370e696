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

MAX_RETRIES = 3  # re-runs of a task whose worker died (Ray's max_retries), restarts of an actor
RESTART_WAIT_S = 180.0  # how long new work waits for an actor Ray is restarting


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


def connect(workers: int, address: str | None) -> tuple[bool, int]:
    """Join the cluster at ``address`` ('auto' when RAY_ADDRESS is set), else start a local Ray with
    ``workers`` CPUs. Returns (whether this call connected, so should disconnect; the CPUs to use)."""
    ray = _ray()
    if ray.is_initialized():  # the caller (a notebook, a test) already joined a cluster
        return False, workers
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
    if address:  # a cluster: as many tasks in flight as it has CPUs
        return True, max(1, int(ray.cluster_resources().get("CPU", workers)))
    return True, workers


class RayExecutor:
    """Ray tasks of one CPU each. ``address``: a cluster to join ('auto' when RAY_ADDRESS is set);
    without one, a local Ray with ``workers`` CPUs is started for the run and stopped after it."""

    def __init__(self, workers: int, address: str | None = None) -> None:
        self._owned, self.size = connect(workers, address)

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


class RayActorPool:
    """``n`` Ray actors, each an instance of ``cls(*args, name)`` with ``ready()`` and ``handle(*call)``
    methods: the Ray counterpart of a local pool of long-lived worker processes (closed loop).

    An actor whose process dies is restarted by Ray (``MAX_RETRIES`` times); the call that was
    running raises WorkerLost, and the caller re-runs the work the actor held.
    """

    def __init__(self, n: int, cls: type, args: tuple[Any, ...], address: str | None = None) -> None:
        ray = _ray()
        self._owned, _ = connect(n, address)
        actor = ray.remote(num_cpus=1, max_restarts=MAX_RETRIES, max_task_retries=0)(cls)
        self._actors = [actor.remote(*args, f"ray worker {i}") for i in range(n)]
        self.size = n

    async def wait_ready(self) -> None:
        """Wait until every actor has built what it needs (a one-line error if one could not)."""
        import asyncio

        errors = await asyncio.gather(*(self._submit(i, "ready") for i in range(self.size)))
        first = next((e for e in errors if e), None)
        if first:
            raise DrivechainError(first)

    async def call(self, worker: int, *call: Any) -> Any:
        """Run ``handle(*call)`` on actor ``worker``; its result (one-line error if it raised).

        A call that starts work (``"start"``) waits for an actor Ray is restarting; any other call
        on an actor that died raises WorkerLost, its state being gone."""
        return await self._submit(worker, "handle", *call, wait=bool(call) and call[0] == "start")

    async def _submit(self, worker: int, method: str, *args: Any, wait: bool = True) -> Any:
        import asyncio

        from drivechain.executors import WorkerLost

        ray = _ray()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RESTART_WAIT_S
        while True:
            try:
                return await getattr(self._actors[worker], method).remote(*args)
            except ray.exceptions.ActorUnavailableError as exc:  # restarting after its process died
                if not wait or loop.time() > deadline:
                    raise WorkerLost(f"ray worker {worker} died ({type(exc).__name__})") from None
                await asyncio.sleep(0.5)
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                    ray.exceptions.NodeDiedError) as exc:
                raise WorkerLost(f"ray worker {worker} died ({type(exc).__name__})") from None
            except ray.exceptions.RayError as exc:
                raise task_error(exc) from None

    def close(self) -> None:
        """Stop the actors; disconnect (and stop a Ray started for the run)."""
        ray = _ray()
        for a in self._actors:
            ray.kill(a, no_restart=True)
        if self._owned:
            ray.shutdown()
            self._owned = False
