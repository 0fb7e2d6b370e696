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
    attempts INTEGER NOT NULL DEFAULT 0
);
"""

# A success is final; a failure is overwritten by whatever the next attempt brings, and attempts add up.
_UPSERT = """
INSERT INTO results (key, model, frame_id, request, status, text, error,
                     prompt_tokens, completion_tokens, reasoning_tokens, latency_s, attempts)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(key) DO UPDATE SET
    status = excluded.status, text = excluded.text, error = excluded.error,
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
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise DrivechainError(
                f"result store {self.path} is not a readable SQLite file ({exc}); delete it or use another --out"
            ) from None

    def get(self, key: str) -> Stored | None:
        """The stored outcome for ``key`` (success or failure), or None."""
        row = self._db.execute(
            "SELECT status, text, error, prompt_tokens, completion_tokens, reasoning_tokens, latency_s, attempts,"
            " model FROM results WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        status, text, error, pt, ct, rt, lat, attempts, model = row
        resp = Response(
            text=text,
            usage=Usage(prompt_tokens=pt, completion_tokens=ct, reasoning_tokens=rt),
            latency_s=lat,
            error=None if status == "ok" else (error or "failed"),
            model=model,
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
        self._db.execute(
            _UPSERT,
            (
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
            ),
        )

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
