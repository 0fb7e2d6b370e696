"""The asyncio scheduler: bounded requests in flight, retries with backoff, the store as cache.

``Asker.ask(request)`` is the one door to the model: a stored success is returned without a call;
otherwise the request waits for a slot (semaphore), is sent with a per-request timeout, retried on
transient faults (exponential backoff with jitter, Retry-After honoured up to a cap) and its final
outcome, success or explicit failure, is committed to the store as soon as it is known.
``run_stream`` reads frames lazily, runs each frame's protocol coroutines (frames in parallel,
bounded), writes the graded rows in frame order and folds them into running sums (aggregate.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivechain.evaluation.aggregate import RequestTotals, ScoreSums
from drivechain.evaluation.store import ResultStore
from drivechain.models.base import MAX_REPLY_CHARS, Model, Request, Response, failure_kind, printable

# A run whose failed requests exceed this share is written but marked incomplete (exit code 1).
MAX_FAILURE_RATE = 0.05


@dataclass(frozen=True)
class RunPolicy:
    """How requests are scheduled and retried."""

    concurrency: int = 16
    timeout_s: float = 120.0
    retries: int = 4
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 60.0
    # The adapter enforces timeout_s itself; this guard only catches an adapter that does not.
    guard_s: float = 5.0


@dataclass
class Outcome:
    """A request's final answer as the protocols see it."""

    key: str
    response: Response
    cached: bool
    attempts: int

    @property
    def ok(self) -> bool:
        """True when the model answered."""
        return self.response.ok


@dataclass
class AskStats:
    """Counters for the live progress and the summary."""

    done: int = 0
    failed: int = 0
    cached: int = 0
    calls: int = 0
    outcomes: dict[str, Response] = field(default_factory=dict)
    first_errors: dict[str, str] = field(default_factory=dict)  # failure kind -> its first error text


def request_key(request: Request, model: str) -> str:
    """Store key: the request hash (``Request.key``) bound to its frame.

    Two frames can produce the same prompt (e.g. a link without the image whose upstream answers
    coincide); binding the frame keeps one row per frame's request, so the oracle stays exact.
    """
    frame_id = request.meta.get("frame_id")
    base = request.key(model)
    if not frame_id:
        return base
    return hashlib.sha256(f"{base}|{frame_id}".encode()).hexdigest()


class Asker:
    """Sends requests to ``model`` through the store, the semaphore and the retry policy."""

    def __init__(
        self,
        model: Model,
        store: ResultStore,
        policy: RunPolicy,
        *,
        on_outcome: Callable[[Outcome], None] | None = None,
        rng: random.Random | None = None,
        on_new_failure: Callable[[str, str], None] | None = None,
        remember: bool = True,
    ) -> None:
        self.model = model
        # remember=False: outcomes are not held for the whole run (a streamed eval scopes them per frame)
        self.remember = remember
        self.model_key = model.name
        self.store = store
        self.policy = policy
        self.stats = AskStats()
        self._sem = asyncio.Semaphore(max(1, policy.concurrency))
        self._inflight: dict[str, asyncio.Future[Outcome]] = {}
        self.on_outcome = on_outcome
        # The first failure of each kind is told at once (default: one line on stderr).
        self.on_new_failure = on_new_failure if on_new_failure is not None else print_failure
        self._rng = rng or random.Random()

    async def ask(self, request: Request, key: str | None = None) -> Outcome:
        """The outcome of ``request``: from the store if it succeeded before, else from the model."""
        key = key or request_key(request, self.model_key)
        # Two protocols can send the same request (free-running Per == V->Per): one call serves both.
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        if key in self.stats.outcomes:
            resp = self.stats.outcomes[key]
            return Outcome(key, resp, cached=True, attempts=0)
        stored = self.store.get_ok(key)
        if stored is not None:
            out = Outcome(key, stored, cached=True, attempts=0)
            self._record(out)
            return out
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            out = await self._fetch(key, request)
            fut.set_result(out)
            return out
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: waiters get it, nobody else logs it
            raise
        finally:
            del self._inflight[key]

    async def _fetch(self, key: str, request: Request) -> Outcome:
        attempts = 0
        while True:
            attempts += 1
            async with self._sem:
                resp = await self._call(request)
            if resp.ok or not resp.retryable or attempts > self.policy.retries:
                break
            await asyncio.sleep(self.delay_s(attempts, resp.retry_after_s))
        if not resp.ok and resp.retryable:
            resp = resp.model_copy(update={"error": f"{resp.error} (gave up after {attempts} attempts)"})
        if resp.ok and len(resp.text) > MAX_REPLY_CHARS:
            resp = resp.model_copy(update={"text": resp.text[:MAX_REPLY_CHARS], "reply_chars": len(resp.text)})
        self.store.put(key, self.model_key, request, resp, attempts)
        out = Outcome(key, resp, cached=False, attempts=attempts)
        self._record(out)
        return out

    async def _call(self, request: Request) -> Response:
        self.stats.calls += 1
        t0 = time.perf_counter()
        try:
            resp = await asyncio.wait_for(self.model.respond(request), self.policy.timeout_s + self.policy.guard_s)
        except asyncio.TimeoutError:
            return Response(error=f"timeout after {self.policy.timeout_s:g} s", retryable=True,
                            latency_s=time.perf_counter() - t0)
        except Exception as exc:  # an adapter bug must not stop the run: an explicit, final failure
            return Response(error=f"adapter raised {type(exc).__name__}: {exc}"[:300], retryable=False,
                            latency_s=time.perf_counter() - t0)
        return resp

    def delay_s(self, attempt: int, retry_after_s: float | None) -> float:
        """Wait before retry ``attempt`` (1-based): backoff x jitter, at least Retry-After (capped)."""
        p = self.policy
        backoff = min(p.backoff_max_s, p.backoff_s * 2 ** (attempt - 1)) * self._rng.uniform(0.5, 1.5)
        if retry_after_s is not None:
            return max(backoff, min(retry_after_s, p.retry_after_max_s))
        return backoff

    def _record(self, out: Outcome) -> None:
        if self.remember:
            self.stats.outcomes[out.key] = out.response
        self.stats.done += 1
        self.stats.failed += 0 if out.ok else 1
        self.stats.cached += 1 if out.cached else 0
        if not out.ok:
            kind = failure_kind(out.response.error)
            if kind not in self.stats.first_errors:
                self.stats.first_errors[kind] = out.response.error or "failed"
                self.on_new_failure(kind, out.response.error or "failed")
        if self.on_outcome is not None:
            self.on_outcome(out)


def print_failure(kind: str, error: str) -> None:
    """One stderr line for the first failed request of a kind (terminal-safe, cut to 200 characters)."""
    print(f"warning: a request failed ({kind}): {printable(error, 200)}", file=sys.stderr, flush=True)


class FrameScope:
    """One frame's door to the Asker: a request asked twice within the frame (free-running Per and
    V->Per) is one call, and the frame's distinct outcomes are known when it is done."""

    def __init__(self, asker: Asker) -> None:
        self.asker = asker
        self.outcomes: dict[str, Response] = {}

    async def ask(self, request: Request) -> Outcome:
        """The outcome of ``request`` (once per distinct request of this frame)."""
        key = request_key(request, self.asker.model_key)
        resp = self.outcomes.get(key)
        if resp is not None:
            return Outcome(key, resp, cached=True, attempts=0)
        out = await self.asker.ask(request, key)
        self.outcomes[key] = out.response
        return out


class _Progress:
    """Live rich progress on stderr: requests done / failed / from cache, ETA."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.enabled = enabled
        self.total = total
        self._p = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._p = Progress(
                TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(),
                TextColumn("failed {task.fields[failed]}  cached {task.fields[cached]}"),
                TimeRemainingColumn(), console=Console(stderr=True), transient=False,
            )
            self._task = self._p.add_task("eval", total=total, failed=0, cached=0)

    def __enter__(self) -> "_Progress":
        # Not a terminal (a pipe, a log): no live display, the final state is printed once at the end.
        if self._p is not None and self._p.console.is_terminal:
            self._p.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._p is None:
            return
        # A run stopped by an error shows no bar: its one-line message stands alone.
        if not self._p.console.is_terminal:
            if exc_type is None:
                self._p.console.print(self._p)
            return
        if exc_type is not None:
            self._p.live.transient = True
        self._p.stop()

    def update(self, stats: AskStats) -> None:
        if self._p is not None:
            self._p.update(self._task, completed=stats.done, failed=stats.failed, cached=stats.cached)

    def set_total(self, total: int) -> None:
        """A new estimate of the run's requests (the stream's frames are counted as they are read)."""
        if self._p is not None and total != self.total:
            self.total = total
            self._p.update(self._task, total=total)


def _first_error(exc: BaseException) -> BaseException:
    """The first leaf of an exception group (a task group's failure), or ``exc`` itself."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


@dataclass
class Stream:
    """What a streamed run wrote and folded: the scores file's sha256 and the running sums."""

    sums: ScoreSums
    totals: RequestTotals
    scores_sha256: str = ""


async def run_stream(
    records: Iterable[Any],
    asker: Asker,
    protocols: tuple[str, ...],
    opts: Any,
    partial: Path,
    *,
    progress: bool = True,
    expected_frames: int | None = None,
    verify: Awaitable[None] | None = None,
    variants: bool = False,
) -> Stream:
    """Read, ask, grade and write frame by frame, with bounded buffers; rows go to ``partial`` in frame order.

    At most ``window`` frames are being asked at once (enough to keep every request slot busy) and
    at most ``4 x window`` finished frames wait for a slower earlier one, so memory does not grow
    with the dataset. Each frame's rows are folded into running sums as they are written. ``verify``
    (e.g. the dataset hash check) runs beside the stream: if it fails, the run stops with its error.
    ``variants``: each frame is also asked in every kept rewording (evaluation/variants.py); those rows
    follow the frame's own in scores.jsonl and only the ``variants`` block reads them.
    """
    from drivechain.evaluation.protocols import PROTOCOL_FUNCS, count_requests

    window = max(32, 4 * asker.policy.concurrency)
    in_flight = asyncio.Semaphore(window)
    stream = Stream(ScoreSums(variants=variants), RequestTotals())
    digest = hashlib.sha256()
    done: dict[int, tuple[Any, list[dict[str, Any]], dict[str, Response]]] = {}
    written = 0
    advanced = asyncio.Event()

    with open(partial, "w", encoding="utf-8") as fh, _Progress(0, progress) as bar:
        prev = asker.on_outcome

        def on_outcome(out: Outcome) -> None:
            if prev is not None:
                prev(out)
            bar.update(asker.stats)

        asker.on_outcome = on_outcome if progress else prev

        def flush() -> None:
            nonlocal written
            while written in done:
                record, rows, outcomes = done.pop(written)
                text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
                fh.write(text)
                digest.update(text.encode())
                stream.sums.add_frame(record, rows)
                for resp in outcomes.values():
                    stream.totals.add(resp)
                written += 1
            advanced.set()

        async def frame(i: int, record: Any) -> None:
            try:
                scope = FrameScope(asker)
                jobs = [PROTOCOL_FUNCS[name](record, scope.ask, opts) for name in protocols]
                if variants:
                    from drivechain.evaluation.variants import frame_variant_jobs

                    jobs += frame_variant_jobs(record, scope.ask, opts)
                parts = await asyncio.gather(*jobs)
            finally:
                in_flight.release()
            done[i] = (record, [r for rows in parts for r in rows], scope.outcomes)
            flush()

        requests = 0
        try:
            async with asyncio.TaskGroup() as group:
                if verify is not None:
                    group.create_task(verify)
                for i, record in enumerate(records):
                    while i >= written + 4 * window:  # a slow frame holds the writer: wait, do not pile up
                        advanced.clear()
                        await advanced.wait()
                    await in_flight.acquire()
                    group.create_task(frame(i, record))
                    await asyncio.sleep(0)  # the frame's first requests leave before the next record is parsed
                    if progress:
                        requests += count_requests(record, protocols, opts.image, opts)
                        if variants:
                            from drivechain.evaluation.variants import count_variant_requests

                            requests += count_variant_requests(record, opts)
                        bar.set_total(round(requests * max(1, expected_frames or 0) / (i + 1))
                                      if expected_frames and expected_frames > i + 1 else requests)
        except BaseExceptionGroup as eg:
            raise _first_error(eg) from None
        finally:
            asker.on_outcome = prev
        bar.update(asker.stats)
    stream.scores_sha256 = digest.hexdigest()
    return stream


def write_pair(partial: Path, scores_path: Path, summary_path: Path, summary: dict[str, Any]) -> None:
    """Replace scores.jsonl (from the streamed ``partial``) and summary.json together, renamed last.

    summary.json carries the sha256 of the scores it describes, so a reader can tell a matching pair.
    """
    tmp_summary = summary_path.with_name(summary_path.name + ".tmp")
    tmp_summary.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(scores_path)
    tmp_summary.replace(summary_path)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file then rename: never a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


async def evaluate(
    records: Iterable[Any],
    model: Model,
    out_dir: Path,
    *,
    protocols: tuple[str, ...],
    opts: Any,
    policy: RunPolicy,
    prices: Any = None,
    progress: bool = True,
    tokenizer: str = "auto",
    max_failure_rate: float = MAX_FAILURE_RATE,
    dataset_hash: str | None = None,
    variants: bool = False,
    expected_frames: int | None = None,
    verify: Awaitable[None] | None = None,
    after_stream: Callable[[int], None] | None = None,
    started: float | None = None,
) -> dict[str, Any]:
    """Run the protocols over the records (any iterable, read lazily) into ``out_dir``.

    Writes results.sqlite, scores.jsonl and summary.json. Re-running into the same folder reuses
    every stored success and retries stored failures. A cancelled run (Ctrl-C, SIGTERM) keeps every
    stored response and leaves the previous scores.jsonl/summary.json pair as it was. ``verify`` runs
    beside the stream and ``after_stream(frames)`` after it, both before anything is summarised;
    either raising stops the run with no summary written. ``started`` [time.perf_counter()] is when
    the command began: the invocation's wall time runs from there to the summary.
    """
    from drivechain.evaluation.extra import extra_blocks
    from drivechain.evaluation.summary import summarize

    started_wall = time.time()
    t0 = time.perf_counter() if started is None else started
    out_dir.mkdir(parents=True, exist_ok=True)
    store = ResultStore(out_dir / "results.sqlite")
    asker = Asker(model, store, policy, remember=False)
    scores_path = out_dir / "scores.jsonl"
    partial = scores_path.with_name(scores_path.name + ".partial")
    recorded = False
    try:
        stream = await run_stream(records, asker, protocols, opts, partial, progress=progress,
                                  expected_frames=expected_frames, verify=verify, variants=variants)
        if after_stream is not None:
            after_stream(stream.sums.frames)
        t_summary = time.perf_counter()
        summary = summarize(stream.sums, stream.totals, model=model.name, prices=prices, tokenizer=tokenizer)
        summary.update(stream.totals.failure_report(max_failure_rate))
        summary.update(extra_blocks(stream.sums.kept, stream.sums.corner_records, stream.sums.ask.summary()))
        summary_s = time.perf_counter() - t_summary
        # The invocation's wall time covers the whole command, summary included.
        store.add_invocation(started_wall, time.perf_counter() - t0, asker.stats.calls)
        recorded = True
        totals = store.totals()
    finally:
        if not recorded:
            store.add_invocation(started_wall, time.perf_counter() - t0, asker.stats.calls)
        store.close()
    summary["wall_s"] = round(totals["wall_s"], 3)
    summary["dataset_hash"] = dataset_hash
    summary["requests_per_s"] = round(summary["requests"] / totals["wall_s"], 3) if totals["wall_s"] > 0 else None
    # What this invocation did (differs between a resumed and an uninterrupted run; scores do not).
    summary["this_run"] = {"calls": asker.stats.calls, "from_store": asker.stats.cached,
                           "wall_s": round(time.perf_counter() - t0, 3), "summary_s": round(summary_s, 3)}
    summary["protocols"] = list(protocols)
    if variants:
        from drivechain.evaluation.variants import variants_summary

        summary["variants"] = variants_summary(stream.sums.variant_rows, stream.sums.frame_ids)
    summary["scores_sha256"] = stream.scores_sha256
    write_pair(partial, scores_path, out_dir / "summary.json", summary)
    return summary
