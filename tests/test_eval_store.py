"""The result store and the retry policy in isolation."""

from __future__ import annotations

import asyncio
import random

from drivechain.evaluation.runner import Asker, RunPolicy
from drivechain.evaluation.store import ResultStore
from drivechain.models.base import Message, Request, Response, TextPart, Usage


def req(text: str = "q") -> Request:
    return Request(messages=[Message(role="user", content=[TextPart(text=text)])], meta={"frame_id": "f/1"})


def test_success_is_final_failures_are_replaced_and_never_served(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.put("k", "m", req(), Response(error="HTTP 500", retryable=True), attempts=3)
    assert store.get_ok("k") is None and store.get("k").attempts == 3
    store.put("k", "m", req(), Response(text="yes", usage=Usage(prompt_tokens=5)), attempts=1)
    assert store.get_ok("k").text == "yes" and store.get("k").attempts == 4
    store.put("k", "m", req(), Response(error="late failure"), attempts=1)  # never overwrites a success
    assert store.get_ok("k").text == "yes" and store.get_ok("k").usage.prompt_tokens == 5
    assert store.counts() == {"ok": 1, "failed": 0}
    store.close()
    again = ResultStore(tmp_path / "r.sqlite")  # persisted across processes
    assert again.get_ok("k").text == "yes" and again.keys() == ["k"]
    again.close()


class Flaky:
    """Fails ``n`` times with a 429 (Retry-After) then answers."""

    name = "flaky"

    def __init__(self, n: int, retry_after_s: float | None = None) -> None:
        self.n, self.calls, self.retry_after_s = n, 0, retry_after_s

    async def respond(self, request: Request) -> Response:
        self.calls += 1
        if self.calls <= self.n:
            return Response(error="HTTP 429", retryable=True, retry_after_s=self.retry_after_s)
        return Response(text=f"answer {self.calls}")

    async def aclose(self) -> None:
        pass


def test_retries_then_caches_and_gives_up_explicitly(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    policy = RunPolicy(retries=2, backoff_s=0.001, backoff_max_s=0.002)

    async def go(model):
        asker = Asker(model, store, policy)
        outs = await asyncio.gather(asker.ask(req("a")), asker.ask(req("a")))  # same request: one call
        return asker, outs

    model = Flaky(2)
    asker, outs = asyncio.run(go(model))
    assert model.calls == 3 and all(o.ok and o.response.text == "answer 3" for o in outs)
    model2 = Flaky(0)
    asker2, outs2 = asyncio.run(go(model2))  # a new run: served from the store, no call
    assert model2.calls == 0 and outs2[0].cached and outs2[0].response.text == "answer 3"
    model3 = Flaky(10)
    asker3 = Asker(model3, store, policy)
    out = asyncio.run(asker3.ask(req("b")))
    assert not out.ok and model3.calls == 3 and "gave up after 3 attempts" in out.response.error
    assert store.get(out.key).ok is False
    store.close()


def test_backoff_grows_with_jitter_and_retry_after_is_honoured_up_to_a_cap(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    asker = Asker(Flaky(0), store, RunPolicy(backoff_s=1.0, backoff_max_s=8.0, retry_after_max_s=20.0),
                  rng=random.Random(0))
    delays = [asker.delay_s(a, None) for a in (1, 2, 3, 4, 5, 6)]
    assert 0.5 <= delays[0] <= 1.5 and 2.0 <= delays[2] <= 6.0 and all(d <= 12.0 for d in delays)
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered
    assert asker.delay_s(1, 7.0) >= 7.0  # Retry-After wins over a shorter backoff
    assert asker.delay_s(1, 3600.0) == 20.0  # ...but is capped
    store.close()
