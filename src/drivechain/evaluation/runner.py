"""The asyncio scheduler: bounded requests in flight, retries with backoff, the store as cache.

``Asker.ask(request)`` is the one door to the model: a stored success is returned without a call;
otherwise the request waits for a slot (semaphore), is sent with a per-request timeout, retried on
transient faults (exponential backoff with jitter, Retry-After honoured up to a cap) and its final
outcome, success or explicit failure, is committed to the store as soon as it is known.
``run_protocols`` drives the per-frame protocol coroutines (frames in parallel) and streams each
graded answer to scores.jsonl.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    ) -> None:
        self.model = model
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

    async def ask(self, request: Request) -> Outcome:
        """The outcome of ``request``: from the store if it succeeded before, else from the model."""
        key = request_key(request, self.model_key)
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


def failure_report(outcomes: dict[str, Response], max_failure_rate: float) -> dict[str, Any]:
    """Failed requests by kind, their rate, the first distinct errors, and whether the run is complete."""
    failed = [r for r in outcomes.values() if not r.ok]
    total = len(outcomes)
    rate = len(failed) / total if total else 0.0
    kinds = Counter(failure_kind(r.error) for r in failed)
    distinct: dict[str, str] = {}
    for r in failed:
        distinct.setdefault(failure_kind(r.error), printable(r.error or "failed", 300))
    complete = total > 0 and rate <= max_failure_rate
    reason = None
    if total == 0:
        reason = "no request was made"
    elif not complete:
        reason = (f"{len(failed)} of {total} requests failed ({100 * rate:.1f} % > --max-failure-rate "
                  f"{100 * max_failure_rate:g} %): " + ", ".join(f"{k} x{n}" for k, n in kinds.most_common()))
    return {
        "complete": complete,
        "incomplete_reason": reason,
        "failure_rate": round(rate, 6),
        "max_failure_rate": max_failure_rate,
        "failures_by_kind": dict(sorted(kinds.items())),
        "first_errors": [distinct[k] for k, _ in kinds.most_common()][:5],
    }


FrameJob = Callable[[Asker], Awaitable[list[dict[str, Any]]]]


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
        if self._p is not None:
            self._p.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.stop()

    def update(self, stats: AskStats) -> None:
        if self._p is not None:
            self._p.update(self._task, completed=stats.done, failed=stats.failed, cached=stats.cached)


async def run_jobs(
    jobs: Iterable[FrameJob],
    asker: Asker,
    scores_path: Path,
    *,
    total_requests: int,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], str]:
    """Run every job (one per frame x protocol) concurrently; graded rows in job order and their JSONL text.

    Rows are appended to ``scores.jsonl.partial`` as each job finishes (what a killed run had graded);
    ``scores_path`` itself is left alone: the caller replaces it together with summary.json.
    """
    jobs = list(jobs)
    results: list[tuple[list[dict[str, Any]], str]] = [([], "")] * len(jobs)
    partial = scores_path.with_name(scores_path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as stream, _Progress(total_requests, progress) as bar:
        prev = asker.on_outcome

        def on_outcome(out: Outcome) -> None:
            if prev is not None:
                prev(out)
            bar.update(asker.stats)

        asker.on_outcome = on_outcome
        # Bounded frame jobs: requests are built when a job starts, so a big dataset is not held
        # in memory as prompts all at once; enough jobs to keep every request slot busy.
        job_slots = asyncio.Semaphore(max(32, 4 * asker.policy.concurrency))

        async def one(i: int, job: FrameJob) -> None:
            async with job_slots:
                rows = await job(asker)
            text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
            results[i] = (rows, text)
            stream.write(text)
            stream.flush()

        try:
            await asyncio.gather(*(one(i, job) for i, job in enumerate(jobs)))
        finally:
            asker.on_outcome = prev
        bar.update(asker.stats)
    partial.unlink(missing_ok=True)
    rows_all = [r for rows, _ in results for r in rows]
    return rows_all, "".join(text for _, text in results)


def write_pair(scores_path: Path, scores_text: str, summary_path: Path, summary: dict[str, Any]) -> None:
    """Replace scores.jsonl and summary.json together: both written to temp files first, renamed last.

    summary.json carries the sha256 of the scores it describes, so a reader can tell a matching pair.
    """
    summary = {**summary, "scores_sha256": hashlib.sha256(scores_text.encode()).hexdigest()}
    tmp_scores = scores_path.with_name(scores_path.name + ".tmp")
    tmp_summary = summary_path.with_name(summary_path.name + ".tmp")
    tmp_scores.write_text(scores_text, encoding="utf-8")
    tmp_summary.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp_scores.replace(scores_path)
    tmp_summary.replace(summary_path)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file then rename: never a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


async def evaluate(
    records: list[Any],
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
) -> dict[str, Any]:
    """Run the protocols over the records into ``out_dir`` (results.sqlite, scores.jsonl, summary.json).

    Re-running into the same folder reuses every stored success and retries stored failures. A
    cancelled run (Ctrl-C, SIGTERM) keeps every stored response and leaves the previous
    scores.jsonl/summary.json pair as it was.
    """
    from drivechain.evaluation.extra import extra_blocks
    from drivechain.evaluation.protocols import PROTOCOL_FUNCS, count_requests
    from drivechain.evaluation.summary import summarize

    started = time.time()
    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    store = ResultStore(out_dir / "results.sqlite")
    asker = Asker(model, store, policy)
    try:
        jobs: list[FrameJob] = []
        for rec in records:
            for name in protocols:
                fn = PROTOCOL_FUNCS[name]
                jobs.append(lambda a, rec=rec, fn=fn: fn(rec, a.ask, opts))
        total = sum(count_requests(r, protocols, opts.image, opts) for r in records)
        if variants:  # every kept rewording asked on the teacher-forced links (evaluation/variants.py)
            from drivechain.evaluation.variants import variant_jobs

            more, n_more = variant_jobs(records, opts)
            jobs += more
            total += n_more
        rows, scores_text = await run_jobs(jobs, asker, out_dir / "scores.jsonl", total_requests=total,
                                           progress=progress)
    finally:
        store.add_invocation(started, time.perf_counter() - t0, asker.stats.calls)
        totals = store.totals()
        store.close()
    from drivechain.evaluation.variants import split_rows, variants_summary

    rows, reworded = split_rows(rows)  # the usual summary sees the template wording only
    summary = summarize(
        rows, model=model.name, frames=[r.frame.frame_id for r in records], outcomes=asker.stats.outcomes,
        prices=prices, wall_s=totals["wall_s"], tokenizer=tokenizer,
    )
    summary.update(failure_report(asker.stats.outcomes, max_failure_rate))
    summary["dataset_hash"] = dataset_hash
    summary["requests_per_s"] = round(summary["requests"] / totals["wall_s"], 3) if totals["wall_s"] > 0 else None
    # What this invocation did (differs between a resumed and an uninterrupted run; scores do not).
    summary["this_run"] = {"calls": asker.stats.calls, "from_store": asker.stats.cached,
                           "wall_s": round(time.perf_counter() - t0, 3)}
    summary.update(extra_blocks(rows, records))  # probes / corner-case blocks when the data has them
    summary["protocols"] = list(protocols)
    if variants:
        summary["variants"] = variants_summary(rows + reworded, [r.frame.frame_id for r in records])
    write_pair(out_dir / "scores.jsonl", scores_text, out_dir / "summary.json", summary)
    return summary
