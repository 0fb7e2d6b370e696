"""results.sqlite: every request and its response, keyed by the request hash (cache + resume point).

WAL + synchronous=NORMAL: a commit is a write to the WAL in the OS page cache, no fsync, so one
commit per response stays cheap on the event loop (FACTS.md: without it commits made a prototype 3x
slower) and a kill -9 of the process loses nothing already committed. A success is never replaced;
a failure is stored as a failure (status 'failed'), never served as an answer, and retried later.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from drivechain.errors import DrivechainError
from drivechain.models.base import Request, Response, Usage

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    frame_id TEXT NOT NULL DEFAULT '',
    request TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    text TEXT NOT NULL DEFAULT '',
    error TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    latency_s REAL NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    reply_chars INTEGER
);
CREATE TABLE IF NOT EXISTS invocations (
    started REAL NOT NULL,
    wall_s REAL NOT NULL,
    calls INTEGER NOT NULL
);
"""
_COLUMNS = {"key", "model", "frame_id", "request", "status", "text", "error", "prompt_tokens", "completion_tokens",
            "reasoning_tokens", "latency_s", "attempts"}

# A success is final; a failure is overwritten by whatever the next attempt brings, and attempts add up.
_UPSERT = """
INSERT INTO results (key, model, frame_id, request, status, text, error,
                     prompt_tokens, completion_tokens, reasoning_tokens, latency_s, attempts, reply_chars)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(key) DO UPDATE SET
    status = excluded.status, text = excluded.text, error = excluded.error, reply_chars = excluded.reply_chars,
    prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
    reasoning_tokens = excluded.reasoning_tokens, latency_s = excluded.latency_s,
    attempts = results.attempts + excluded.attempts
WHERE results.status != 'ok'
"""


@dataclass(frozen=True)
class Stored:
    """One row of the store: the outcome of a request."""

    key: str
    ok: bool
    response: Response
    attempts: int


class ResultStore:
    """The run's results.sqlite; open with ``ResultStore(path)``, close with ``close()``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # Someone else's database is refused before anything is written into it.
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(results)")}
            if columns and not _COLUMNS <= columns:
                self._db.close()
                raise DrivechainError(
                    f"result store {self.path} has a table 'results' of another schema; it was not written by"
                    " drivechain: use another --out")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            if columns and "reply_chars" not in columns:  # a store written before replies were capped
                self._db.execute("ALTER TABLE results ADD COLUMN reply_chars INTEGER")
        except sqlite3.DatabaseError as exc:
            what = "cannot be written" if "readonly" in str(exc) else "is not a readable SQLite file"
            raise DrivechainError(
                f"result store {self.path} {what} ({exc}); fix its permissions, delete it or use another --out"
            ) from None

    def get(self, key: str) -> Stored | None:
        """The stored outcome for ``key`` (success or failure), or None."""
        row = self._db.execute(
            "SELECT status, text, error, prompt_tokens, completion_tokens, reasoning_tokens, latency_s, attempts,"
            " model, reply_chars FROM results WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        status, text, error, pt, ct, rt, lat, attempts, model, reply_chars = row
        resp = Response(
            text=text,
            usage=Usage(prompt_tokens=pt, completion_tokens=ct, reasoning_tokens=rt),
            latency_s=lat,
            error=None if status == "ok" else (error or "failed"),
            model=model,
            reply_chars=reply_chars,
        )
        return Stored(key=key, ok=status == "ok", response=resp, attempts=attempts)

    def get_ok(self, key: str) -> Response | None:
        """The stored successful response for ``key``; failures are never returned as answers."""
        stored = self.get(key)
        return stored.response if stored is not None and stored.ok else None

    def put(self, key: str, model: str, request: Request, response: Response, attempts: int) -> None:
        """Record one outcome and commit at once (a success already stored is never overwritten)."""
        ok = response.ok
        usage = response.usage
        row = (
            key,
            model,
            str(request.meta.get("frame_id", "")),
            request_json(request),
            "ok" if ok else "failed",
            response.text if ok else "",
            None if ok else (response.error or "failed"),
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.reasoning_tokens,
            response.latency_s,
            attempts,
            response.reply_chars,
        )
        try:
            self._db.execute(_UPSERT, row)
        except sqlite3.DatabaseError as exc:
            raise DrivechainError(f"result store {self.path} cannot be written ({exc}); free space or fix permissions,"
                                  " then rerun the same command to resume") from None

    def add_invocation(self, started: float, wall_s: float, calls: int) -> None:
        """Record one command invocation's wall time [s] and model calls (whole-run rates add them up)."""
        try:
            self._db.execute("INSERT INTO invocations VALUES (?, ?, ?)", (started, wall_s, calls))
        except sqlite3.DatabaseError:
            pass  # timing only: never worth failing a finished run

    def totals(self) -> dict[str, float]:
        """Whole-run wall time [s] (invocations that called the model) and calls over every invocation."""
        wall, calls = self._db.execute(
            "SELECT COALESCE(SUM(CASE WHEN calls > 0 THEN wall_s ELSE 0 END), 0), COALESCE(SUM(calls), 0)"
            " FROM invocations").fetchone()
        return {"wall_s": float(wall), "calls": int(calls)}

    def failed_errors(self, limit: int = 5) -> list[tuple[str, int]]:
        """The most frequent distinct errors of stored failures, with their counts."""
        return [(e or "failed", n) for e, n in self._db.execute(
            "SELECT error, COUNT(*) AS n FROM results WHERE status = 'failed' GROUP BY error ORDER BY n DESC, error"
            " LIMIT ?", (limit,))]

    def counts(self) -> dict[str, int]:
        """Rows by status: {'ok': n, 'failed': m}."""
        out = {"ok": 0, "failed": 0}
        for status, n in self._db.execute("SELECT status, COUNT(*) FROM results GROUP BY status"):
            out[status] = n
        return out

    def keys(self) -> list[str]:
        """Every stored key, sorted."""
        return [k for (k,) in self._db.execute("SELECT key FROM results ORDER BY key")]

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._db.close()


def request_json(request: Request) -> str:
    """The request as stored (meta left out: it carries the oracle's answers)."""
    return json.dumps(request.model_dump(exclude={"meta"}), sort_keys=True)
