"""A real loopback HTTP server speaking OpenAI chat completions, with injectable faults.

Usage in a test::

    from tests.fakeserver import FakeServer

    with FakeServer(latency_s=0.01, faults={0: "429"}, reply=lambda msgs: "B") as srv:
        model = OpenAIModel("m", base_url=srv.base_url, api_key="k")
        ...
        assert srv.count == 2 and srv.requests[0].authorization == "Bearer k"

or as a pytest fixture: ``from tests.fakeserver import fake_server`` in a test module, then a
test takes ``fake_server`` (a default ``FakeServer``, configure it with ``srv.configure(...)``).

Fault kinds: ``"500"``, ``"502"``, ``"503"`` (server error), ``"429"`` (with Retry-After),
``"400"`` (client error, not retryable), ``"401"`` (echoes the Authorization header back in the
body, as careless servers do; ``"401pad"`` after 227 characters of message, so a cut at 300 splits it), ``"hang"`` (no answer until ``hang_s`` or server stop),
``"malformed"`` (200 with a body that is not JSON), ``"nochoices"`` (200, JSON without choices),
``"emptychoices"`` (200, ``choices: []``), ``"null"`` (200, ``content: null``), ``"empty"`` (200,
``content: ""``), ``"404"`` (not found, as a base URL without /v1 gets), ``"ansi"`` (500 whose body
carries terminal escape sequences), ``"drop"`` (connection closed without a response). Faults come from a script per request index
(``faults={index: kind}`` or a callable ``faults(index, body) -> kind | None``) and/or a seeded rate
(``fault_rate=0.2, fault_kinds=("500", "429")``).

Concurrency as the server sees it: ``srv.max_in_flight`` is the most requests it held at once. With
``gate=N`` every request is held until N requests have been in flight together (once; later requests
pass at once) or ``gate_s`` elapsed, so a test of concurrency does not depend on how fast the machine
readies the next request: a client that never has N requests out gets ``max_in_flight < N``.

Run standalone (for benchmarks, in its own process): ``python -m tests.fakeserver --latency 0.2``
prints ``PORT <n>`` on stdout and serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

FAULT_KINDS = ("500", "502", "503", "429", "400", "401", "401pad", "404", "hang", "malformed", "nochoices", "emptychoices",
               "null", "empty", "ansi", "drop")

Reply = Callable[[list[dict[str, Any]]], str]
Faults = Mapping[int, str] | Callable[[int, dict[str, Any]], str | None]


@dataclass
class SeenRequest:
    """One request as the server received it."""

    index: int
    path: str
    body: dict[str, Any] | None
    authorization: str | None
    fault: str | None
    received_at: float  # time.time() when the request arrived


def echo_reply(messages: list[dict[str, Any]]) -> str:
    """Default answer: echo the last user message's text (images ignored)."""
    for msg in reversed(messages):
        if msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            return f"echo: {content[:200]}"
        texts = [p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "text"]
        return "echo: " + " ".join(texts)[:200]
    return "echo"


def count_images(messages: list[dict[str, Any]]) -> int:
    """Number of image_url parts across all messages."""
    n = 0
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list):
            n += sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url")
    return n


def image_urls(body: dict[str, Any]) -> list[str]:
    """All image data URLs of a request body, in order."""
    urls = []
    for msg in body.get("messages", []):
        content = msg.get("content")
        if isinstance(content, list):
            urls += [p["image_url"]["url"] for p in content if isinstance(p, dict) and p.get("type") == "image_url"]
    return urls


def default_usage(messages: list[dict[str, Any]], text: str) -> dict[str, int]:
    """Deterministic token counts: words of the prompt (+85 per image) and of the reply."""
    words = 0
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, str):
            words += len(content.split())
        elif isinstance(content, list):
            words += sum(len(p.get("text", "").split()) for p in content if isinstance(p, dict))
    return {"prompt_tokens": words + 85 * count_images(messages), "completion_tokens": len(text.split())}


class FakeServer:
    """OpenAI-compatible chat-completions server on 127.0.0.1 in a background thread."""

    def __init__(
        self,
        *,
        latency_s: float | Callable[[int], float] = 0.0,
        reply: Reply | None = None,
        faults: Faults | None = None,
        fault_rate: float = 0.0,
        fault_kinds: tuple[str, ...] = ("500", "429", "hang", "malformed", "drop"),
        seed: int = 0,
        reasoning_tokens: int = 0,
        usage: Callable[[list[dict[str, Any]], str], dict[str, int]] | None = None,
        retry_after: str = "1",
        hang_s: float = 30.0,
        gate: int = 0,
        gate_s: float = 30.0,
        port: int = 0,
        log_bodies: bool = True,
    ) -> None:
        self.port = port
        self.in_flight = 0
        self.max_in_flight = 0
        self._gate_open: asyncio.Event | None = None
        self.log_bodies = log_bodies
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self.configure(
            latency_s=latency_s, reply=reply, faults=faults, fault_rate=fault_rate, fault_kinds=fault_kinds,
            seed=seed, reasoning_tokens=reasoning_tokens, usage=usage, retry_after=retry_after, hang_s=hang_s,
            gate=gate, gate_s=gate_s,
        )

    def configure(self, **settings: Any) -> FakeServer:
        """Change behaviour (same keywords as the constructor); resets the seeded fault stream."""
        for key, value in settings.items():
            if key not in {"latency_s", "reply", "faults", "fault_rate", "fault_kinds", "seed",
                           "reasoning_tokens", "usage", "retry_after", "hang_s", "gate", "gate_s"}:
                raise TypeError(f"unknown FakeServer setting {key!r}")
            setattr(self, key, value)
        for kind in self.fault_kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; use one of {FAULT_KINDS}")
        self._rng = random.Random(self.seed)
        return self

    # ---- lifecycle -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """URL to give an OpenAI client (ends in /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def count(self) -> int:
        """Requests received so far (including faulted ones)."""
        return len(self.requests)

    def start(self) -> FakeServer:
        """Start serving; returns once the port is bound."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_app())
            except BaseException as exc:  # surface bind errors to the caller
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fakeserver", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    async def _start_app(self) -> None:
        self._stop = asyncio.Event()
        self._gate_open = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the ephemeral port actually bound

    def stop(self) -> None:
        """Release hanging requests, close the server and join its thread."""
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- behaviour -------------------------------------------------------------------------
    def _pick_fault(self, index: int, body: dict[str, Any]) -> str | None:
        fault = None
        if callable(self.faults):
            fault = self.faults(index, body)
        elif self.faults is not None:
            fault = self.faults.get(index)
        if fault is None and self.fault_rate > 0:
            # Drawn under the lock in arrival order so a seed gives a reproducible fault stream.
            if self._rng.random() < self.fault_rate:
                fault = self._rng.choice(self.fault_kinds)
        return fault

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        # counted on the server's own event loop, so no lock is needed
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.gate > 1:
                if self.in_flight >= self.gate:
                    self._gate_open.set()
                try:
                    await asyncio.wait_for(self._gate_open.wait(), self.gate_s)
                except asyncio.TimeoutError:
                    pass
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self._lock:
            index = len(self.requests)
            fault = self._pick_fault(index, body or {})
            self.requests.append(SeenRequest(
                index=index, path=request.path, body=body if self.log_bodies else None,
                authorization=request.headers.get("Authorization"), fault=fault, received_at=time.time(),
            ))
        if body is None or not isinstance(body.get("messages"), list):
            return web.json_response({"error": {"message": "body must be JSON with messages"}}, status=400)
        latency = self.latency_s(index) if callable(self.latency_s) else self.latency_s
        if latency > 0:
            await asyncio.sleep(latency)
        if fault is not None:
            response = await self._fault_response(fault, request)
            if response is not None:
                return response
        messages = body["messages"]
        text = (self.reply or echo_reply)(messages)
        usage = dict((self.usage or default_usage)(messages, text))
        usage.setdefault("total_tokens", usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0))
        if self.reasoning_tokens:
            usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return web.json_response({
            "id": f"chatcmpl-{index}",
            "object": "chat.completion",
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage,
        })

    async def _fault_response(self, fault: str, request: web.Request) -> web.StreamResponse | None:
        if fault in ("500", "502", "503", "400", "404"):
            return web.json_response({"error": {"message": f"injected {fault}"}}, status=int(fault))
        if fault == "ansi":
            return web.Response(text="\x1b[2J\x1b[31mboom\x1b[0m\x07 \x1b]0;pwned\x07", status=500)
        if fault in ("null", "empty", "emptychoices"):
            choices = [] if fault == "emptychoices" else [
                {"index": 0, "message": {"role": "assistant", "content": None if fault == "null" else ""},
                 "finish_reason": "stop"}]
            return web.json_response({"id": "x", "object": "chat.completion", "choices": choices, "usage": {}})
        if fault == "429":
            return web.json_response({"error": {"message": "rate limited"}}, status=429,
                                     headers={"Retry-After": self.retry_after})
        if fault in ("401", "401pad"):
            echoed = request.headers.get("Authorization", "")
            pad = "p" * 227 if fault == "401pad" else ""
            return web.json_response({"error": {"message": f"{pad}invalid key: {echoed}"}}, status=401)
        if fault == "malformed":
            return web.Response(body=b'{"choices": [ this is not json', content_type="application/json")
        if fault == "nochoices":
            return web.json_response({"id": "x", "object": "chat.completion", "usage": {}})
        if fault == "hang":
            try:
                await asyncio.wait_for(self._stop.wait(), self.hang_s)
            except asyncio.TimeoutError:
                pass
            return None  # answer normally if the client is still waiting
        if fault == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing more is written on a dropped connection
        raise ValueError(f"unknown fault {fault!r}")


def fake_server_fixture() -> Iterator[FakeServer]:
    """Generator behind the ``fake_server`` fixture: a default server for one test."""
    with FakeServer() as srv:
        yield srv


try:  # the fixture is optional so the module also runs standalone without pytest
    import pytest

    fake_server = pytest.fixture(fake_server_fixture, name="fake_server")
except ImportError:  # pragma: no cover
    pass


def main() -> None:
    """Serve until killed; prints ``PORT <n>`` once bound (for benchmarks in another process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--reply", default=None, help="fixed reply text (default: echo)")
    parser.add_argument("--faults", default="", help="KIND=RATE,... e.g. 500=0.2,429=0.1,hang=0.05,null=0.05")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault stream")
    parser.add_argument("--hang", type=float, default=30.0, help="seconds a 'hang' fault holds the request")
    args = parser.parse_args()
    fixed = args.reply
    rates = {k: float(v) for k, v in (item.split("=") for item in args.faults.split(",") if item)}
    rng = random.Random(args.seed)
    lock = threading.Lock()

    def pick(_index: int, _body: dict[str, Any]) -> str | None:
        with lock:
            x = rng.random()
        for kind, rate in rates.items():
            if x < rate:
                return kind
            x -= rate
        return None

    srv = FakeServer(port=args.port, latency_s=args.latency, log_bodies=False, hang_s=args.hang,
                     reply=(lambda _m: fixed) if fixed is not None else None, faults=pick if rates else None)
    srv.start()
    print(f"PORT {srv.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
