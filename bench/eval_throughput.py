"""Throughput of the OpenAI adapter against a loopback server, beside a bare aiohttp client.

    .venv/bin/python bench/eval_throughput.py [--n 1000] [--latency 0.2] [--cpu-n 2000] [--eval-data DIR]

Prints, at C = 32 and 128 in flight: span and ideal/span (ideal = ceil(n/C) x latency; target
>= 0.95) for a bare aiohttp client and for OpenAIModel, measured in the same run against the same
server (its own process, so its CPU is not counted); CPU ms per request through the adapter
against a zero-latency server (target <= 3 ms); and the time from process start to the first
request, for `drivechain eval` when --eval-data names a dataset, and for a bare adapter process.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

import aiohttp  # noqa: E402

from drivechain.models.base import Message, Request, TextPart  # noqa: E402
from drivechain.models.openai_api import OpenAIModel  # noqa: E402

BODY = {"model": "bench", "messages": [{"role": "user", "content": "which lane is ego in? answer A, B or C"}],
        "max_tokens": 16, "temperature": 0.0}


class ServerProcess:
    """tests/fakeserver.py in its own process: its CPU never counts against the client."""

    def __init__(self, latency_s: float) -> None:
        env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'src'}")
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fakeserver", "--latency", str(latency_s),
                                      "--reply", "B"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if line[:1] != ["PORT"]:
            self.proc.kill()
            raise RuntimeError("fake server did not start")
        self.base_url = f"http://127.0.0.1:{line[1]}/v1"

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def bare_aiohttp(base_url: str, n: int, concurrency: int) -> float:
    """Span [s] of n requests with a plain aiohttp session + semaphore."""
    sem = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one() -> None:
            async with sem:
                async with session.post(f"{base_url}/chat/completions", json=BODY) as resp:
                    assert resp.status == 200
                    await resp.json()

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return time.perf_counter() - start


def request(i: int) -> Request:
    return Request(messages=[Message(role="user", content=[TextPart(text=f"which lane is ego in? #{i}")])],
                   max_tokens=16)


async def adapter(base_url: str, n: int, concurrency: int) -> float:
    """Span [s] of n requests through OpenAIModel (Request objects in, Response objects out)."""
    model = OpenAIModel("bench", base_url, api_key="sk-bench", max_connections=concurrency)
    sem = asyncio.Semaphore(concurrency)
    requests = [request(i) for i in range(n)]

    async def one(req: Request) -> None:
        async with sem:
            resp = await model.respond(req)
            assert resp.ok, resp.error

    try:
        start = time.perf_counter()
        await asyncio.gather(*(one(r) for r in requests))
        return time.perf_counter() - start
    finally:
        await model.aclose()


async def cpu_per_request_ms(base_url: str, n: int, concurrency: int, through_adapter: bool) -> float:
    """Client-process CPU milliseconds per request against a zero-latency server (after a warm-up)."""
    run = adapter if through_adapter else bare_aiohttp
    await run(base_url, 50, concurrency)
    cpu0 = time.process_time()
    await run(base_url, n, concurrency)
    return (time.process_time() - cpu0) / n * 1000


def first_request_s(cmd: list[str], env: dict[str, str]) -> float:
    """Seconds from launching ``cmd`` to the first chat request reaching an in-thread fake server."""
    from tests.fakeserver import FakeServer

    with FakeServer(reply=lambda m: "{}") as srv:
        env = dict(env, DRIVECHAIN_BASE_URL=srv.base_url)
        start = time.time()
        proc = subprocess.Popen([c.replace("{BASE_URL}", srv.base_url) for c in cmd], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        while srv.count == 0 and proc.poll() is None and time.time() - start < 60:
            time.sleep(0.002)
        first = srv.requests[0].received_at - start if srv.count else math.nan
        proc.kill()
        _, err = proc.communicate()
        if not srv.count:
            print(f"  (no request arrived; stderr: {err.strip()[-300:]})")
        return first


def main() -> None:
    """Run every measurement and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--cpu-n", type=int, default=2000)
    parser.add_argument("--eval-data", type=Path, default=None, help="a dataset folder for the eval start-up figure")
    args = parser.parse_args()

    print(f"loopback server, latency {args.latency} s, {args.n} requests")
    with ServerProcess(args.latency) as srv:
        for concurrency in (32, 128):
            ideal = math.ceil(args.n / concurrency) * args.latency
            bare = asyncio.run(bare_aiohttp(srv.base_url, args.n, concurrency))
            ours = asyncio.run(adapter(srv.base_url, args.n, concurrency))
            print(f"  C={concurrency:<4} ideal {ideal:.2f} s | bare aiohttp {bare:.2f} s (ideal/span {ideal / bare:.3f})"
                  f" | OpenAIModel {ours:.2f} s (ideal/span {ideal / ours:.3f})")

    print(f"zero-latency server, {args.cpu_n} requests at C=32, client CPU per request")
    with ServerProcess(0.0) as srv:
        bare_ms = asyncio.run(cpu_per_request_ms(srv.base_url, args.cpu_n, 32, through_adapter=False))
        ours_ms = asyncio.run(cpu_per_request_ms(srv.base_url, args.cpu_n, 32, through_adapter=True))
    print(f"  bare aiohttp {bare_ms:.2f} ms | OpenAIModel {ours_ms:.2f} ms (target <= 3 ms)")

    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), DRIVECHAIN_API_KEY="sk-bench")
    adapter_cmd = [sys.executable, "-c",
                   "import asyncio; from drivechain.models.registry import load_model; "
                   "from drivechain.models.base import Request, Message, TextPart; "
                   "m = load_model('openai:bench'); "
                   "asyncio.run(m.respond(Request(messages=[Message(role='user', content=[TextPart(text='hi')])])))"]
    print(f"process start -> first request: adapter alone {first_request_s(adapter_cmd, env):.2f} s")
    if args.eval_data is not None:
        out = Path(tempfile.mkdtemp(prefix="bench-eval-")) / "run"
        drivechain = str(Path(sys.executable).with_name("drivechain"))
        eval_cmd = [drivechain, "eval", "--data", str(args.eval_data.resolve()), "--model", "openai:bench",
                    "--base-url", "{BASE_URL}", "--protocol", "transitions", "--limit", "1", "--no-progress",
                    "--out", str(out)]
        print(f"process start -> first request: drivechain eval {first_request_s(eval_cmd, env):.2f} s (target <= 1 s)")


if __name__ == "__main__":
    main()
