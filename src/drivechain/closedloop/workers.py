"""Simulator worker processes that host several episodes each, driven from one asyncio loop.

Each worker owns its episodes' simulators (an episode stays on its worker: the env state lives
there) and serves calls in arrival order. The main process keeps every model request on its event
loop, so while one episode waits for its model the workers step the others. Messages travel on
multiprocessing queues (their feeder threads never block the sender); a reader thread in the main
process resolves the awaiting futures.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import threading
import traceback
from dataclasses import asdict
from typing import Any

from drivechain.closedloop.episode import EpisodeSim, EpisodeSpec, SimConfig
from drivechain.errors import DrivechainError


READY = -1  # call id of a worker's start-up message
LIVENESS_S = 2.0  # how often a waiting call checks that its worker is still alive


class WorkerError(DrivechainError):
    """A call failed inside a worker (its traceback's last lines are in the message)."""


class SimHost:
    """The simulators of one worker: the episodes it runs and idle sources kept for reuse.

    Served by a local worker process (``_worker_main``) or as a Ray actor (``--executor ray``).
    """

    def __init__(self, cfg_dict: dict[str, Any], name: str = "worker") -> None:
        self.cfg = SimConfig(**cfg_dict)
        self.name = name
        self.sims: dict[str, EpisodeSim] = {}
        self.free: dict[str, list[Any]] = {}  # scenario -> idle sources, reused across episodes
        self.error: str | None = None
        try:
            for scenario in self.cfg.warm_scenarios:  # build the simulators before the clock of the run starts
                self.free.setdefault(scenario, []).append(self._make(scenario))
        except Exception as exc:
            self.error = f"{name}: {type(exc).__name__}: {exc}"

    def _make(self, scenario: str) -> Any:
        from drivechain.sources.base import make_source

        cfg = self.cfg
        return make_source(cfg.source, scenario, image_size=cfg.image_size, horizon_s=cfg.horizon_s)

    def ready(self) -> str | None:
        """None once the simulators are built, else why they could not be."""
        return self.error

    def handle(self, op: str, key: str, payload: Any = None) -> Any:
        """Run one call (start, step, finish, abort) of episode ``key``."""
        if op == "start":
            spec = EpisodeSpec(**payload)
            pool = self.free.setdefault(spec.scenario, [])
            source = pool.pop() if pool else self._make(spec.scenario)
            self.sims[key] = EpisodeSim(spec, self.cfg, source)
            return self.sims[key].start()
        if op == "step":
            return self.sims[key].step(payload)
        if op == "finish":
            sim = self.sims.pop(key)
            result = sim.finish(payload)
            self.free.setdefault(sim.spec.scenario, []).append(sim.source)
            return result
        if op == "abort":
            sim = self.sims.pop(key, None)
            if sim is not None:
                self.free.setdefault(sim.spec.scenario, []).append(sim.source)
            return None
        raise ValueError(f"unknown op {op}")

    def close(self) -> None:
        """Close every simulator."""
        for sim in self.sims.values():
            sim.source.close()
        for sources in self.free.values():
            for source in sources:
                source.close()


def _worker_main(index: int, inbox: Any, outbox: Any, cfg_dict: dict[str, Any]) -> None:
    host = SimHost(cfg_dict, f"worker {index}")
    if host.error:
        outbox.put((READY, False, host.error))
        return
    outbox.put((READY, True, index))
    while True:
        msg = inbox.get()
        if msg is None:
            break
        call_id, op, key, payload = msg
        try:
            outbox.put((call_id, True, host.handle(op, key, payload)))
        except Exception as exc:  # the episode fails; the worker keeps serving the others
            tb = traceback.format_exc(limit=4).strip().splitlines()[-3:]
            outbox.put((call_id, False, f"worker {index}: {type(exc).__name__}: {exc} | " + " / ".join(tb)))
    host.close()


class WorkerPool:
    """``n`` simulator processes; ``await pool.call(worker, op, key, payload)``."""

    def __init__(self, n: int, cfg: SimConfig) -> None:
        if n < 1:
            raise DrivechainError(f"--workers must be >= 1 (got {n})")
        # spawn: a clean interpreter (no inherited threads, pygame or event loop state)
        ctx = multiprocessing.get_context("spawn")
        self._outbox = ctx.Queue()
        self._inboxes = [ctx.Queue() for _ in range(n)]
        self._procs = [
            ctx.Process(target=_worker_main, args=(i, self._inboxes[i], self._outbox, asdict(cfg)), daemon=True)
            for i in range(n)
        ]
        for p in self._procs:
            p.start()
        self._ids = itertools.count()
        self._pending: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]] = {}
        self._lock = threading.Lock()
        self.size = n
        self._ready = 0
        self._ready_error: str | None = None
        self._ready_event = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    async def wait_ready(self) -> None:
        """Wait until every worker has built its simulators (WorkerError if one could not)."""
        while not self._ready_event.is_set():
            await asyncio.sleep(0.02)
            dead = [i for i, p in enumerate(self._procs) if not p.is_alive()]
            if dead and not self._ready_event.is_set():
                raise WorkerError(f"worker {dead[0]} died while starting (exit code {self._procs[dead[0]].exitcode})")
        if self._ready_error:
            raise WorkerError(self._ready_error)

    def _read(self) -> None:
        while True:
            msg = self._outbox.get()
            if msg is None:
                return
            call_id, ok, result = msg
            if call_id == READY:
                self._ready += 1
                if not ok:
                    self._ready_error = str(result)
                if self._ready == self.size or not ok:
                    self._ready_event.set()
                continue
            with self._lock:
                entry = self._pending.pop(call_id, None)
            if entry is None:
                continue
            loop, fut = entry
            loop.call_soon_threadsafe(_settle, fut, ok, result)

    async def call(self, worker: int, op: str, key: str, payload: Any = None) -> Any:
        """Run ``op`` for episode ``key`` on ``worker``; its result (WorkerError if it raised)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        call_id = next(self._ids)
        with self._lock:
            self._pending[call_id] = (loop, fut)
        self._inboxes[worker].put((call_id, op, key, payload))
        while True:
            try:
                return await asyncio.wait_for(asyncio.shield(fut), LIVENESS_S)
            except asyncio.TimeoutError:
                proc = self._procs[worker]
                if not proc.is_alive():  # killed or crashed: its calls would never be answered
                    with self._lock:
                        self._pending.pop(call_id, None)
                    raise WorkerError(f"worker {worker} died (exit code {proc.exitcode}) during '{op}'") from None

    def close(self) -> None:
        """Stop the workers and the reader thread."""
        for q in self._inboxes:
            q.put(None)
        for p in self._procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
        self._outbox.put(None)
        self._reader.join(timeout=5)

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _settle(fut: asyncio.Future[Any], ok: bool, result: Any) -> None:
    if fut.done():
        return
    if ok:
        fut.set_result(result)
    else:
        fut.set_exception(WorkerError(str(result)))
