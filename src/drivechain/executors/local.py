"""The local executor: in this process (one worker) or a pool of worker processes on this machine."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any


def worker_context(preload: Sequence[str]) -> Any:
    """Workers forked from a clean single-threaded server (no inherited pygame/threads state of
    the caller) that has the heavy modules imported already; spawn where fork does not exist."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(preload))
    return ctx


class LocalExecutor:
    """``workers`` processes of this machine (1: run in this process, no pool)."""

    def __init__(self, workers: int, preload: Sequence[str] = ()) -> None:
        self.size = workers
        self._preload = preload

    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Run ``fn(task)`` for every task; yield (index, result) as tasks finish."""
        if self.size == 1 or len(tasks) <= 1:
            for index, task in enumerate(tasks):
                yield index, fn(task)
            return
        with ProcessPoolExecutor(max_workers=min(self.size, len(tasks)), mp_context=worker_context(self._preload)) as pool:
            futures: dict[Future[Any], int] = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
            try:
                while futures:
                    finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        index = futures.pop(fut)
                        yield index, fut.result()
            finally:
                for fut in futures:
                    fut.cancel()

    def close(self) -> None:
        """Nothing to release: the pool lives only inside ``run``."""
