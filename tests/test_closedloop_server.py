"""Closed loop against a loopback OpenAI-compatible server: garbage and faults fall back, counted."""

from __future__ import annotations

import json
from pathlib import Path

from drivechain.closedloop.loop import LoopConfig, RunOptions, run_closedloop
from tests.fakeserver import FakeServer, count_images


def test_garbage_replies_and_failed_requests_fall_back_and_are_counted(tmp_path: Path) -> None:
    seen_images: list[int] = []

    def reply(messages: list[dict]) -> str:
        seen_images.append(count_images(messages))
        # alternately prose without an answer and a JSON object naming an option that does not exist
        return "I think the road looks nice." if len(seen_images) % 2 else json.dumps({"plan.action": "Z"})

    # request 2 fails for good (400 is not retried); the others answer garbage
    with FakeServer(reply=reply, faults={2: "400"}) as srv:
        cfg = LoopConfig(model="openai:garbage", base_url=srv.base_url, scenarios=["merge"], episodes=1,
                         max_steps=4, seed=5, teacher_baseline=False, replay=False, fallback="SLOWER")
        # one failed request in four decisions: allowed here (the incomplete case is in test_faults.py)
        summary = run_closedloop(cfg, tmp_path / "run", RunOptions(workers=1, concurrency=2, retries=0, progress=False,
                                                                   max_failure_rate=0.5))
        requests_seen = srv.count
    assert summary["episodes"] == 1 and summary["errors"] == []
    steps = [json.loads(line) for line in (tmp_path / "run" / "steps/model/merge/0000.jsonl").read_text().splitlines()]
    assert len(steps) == 4 and requests_seen == 4 and all(n == 1 for n in seen_images)
    assert all(s["fallback"] and s["action"] == "SLOWER" and s["model_action"] is None for s in steps)
    assert sum(1 for s in steps if s["failure"].startswith("request failed")) == 1
    assert summary["failures"] == {"requests": 1, "fallback_actions": 4, "episodes": 0, "fallback_request_failed": 1,
                                   "fallback_unusable": 3, "incomplete_episodes": 0}
    assert summary["complete"] is True
    assert summary["teacher_agreement"] == 0.0 and summary["qa"]["planning"] == 0.0


def test_chain_mode_asks_each_stage_on_the_models_own_answers(tmp_path: Path) -> None:
    cfg = LoopConfig(model="oracle", scenarios=["merge"], episodes=1, max_steps=3, seed=5, ask="chain",
                     teacher_baseline=False, replay=False)
    summary = run_closedloop(cfg, tmp_path / "run", RunOptions(workers=1, concurrency=2, progress=False))
    steps = [json.loads(line) for line in (tmp_path / "run" / "steps/model/merge/0000.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in steps[0]["requests"]] == ["perception", "prediction", "planning+behavior"]
    assert summary["requests"] == 3 * len(steps)
    assert set(summary["qa"]) >= {"perception", "prediction", "planning"}
    assert all(score == 1.0 for score in summary["qa"].values())
    assert summary["teacher_agreement"] == 1.0


def test_requests_of_running_episodes_are_in_flight_together(tmp_path: Path) -> None:
    # The server holds every request until two are in flight at once (then lets all pass), for up to 30 s:
    # a loop that waits for each reply before sending the next request never gets there, whatever the
    # machine's load, while one that readies the other episodes during the wait does.
    with FakeServer(gate=2, gate_s=30.0, reply=lambda msgs: '{"plan.action": "B"}') as srv:
        cfg = LoopConfig(model="openai:slow", base_url=srv.base_url, scenarios=["merge"], episodes=3, max_steps=2,
                         seed=5, teacher_baseline=False, replay=False)
        summary = run_closedloop(cfg, tmp_path / "run", RunOptions(workers=1, concurrency=3, progress=False))
        seen, most = srv.count, srv.max_in_flight
    assert seen == 6 and summary["episodes"] == 3
    assert most >= 2


def test_fake_server_counts_requests_in_flight_at_once() -> None:
    """The gate the test above relies on: one request at a time never reaches two in flight."""
    import asyncio

    from drivechain.models.openai_api import OpenAIModel

    async def ask(model: OpenAIModel, n: int, together: bool) -> None:
        from drivechain.models.base import Message, Request, TextPart

        reqs = [Request(messages=[Message(role="user", content=[TextPart(text=f"q{i}")])]) for i in range(n)]
        if together:
            await asyncio.gather(*(model.respond(r) for r in reqs))
        else:
            for r in reqs:
                await model.respond(r)
        await model.aclose()

    for together, expect in ((False, 1), (True, 2)):
        with FakeServer(gate=2, gate_s=0.3) as srv:
            asyncio.run(ask(OpenAIModel("m", base_url=srv.base_url, api_key="k"), 2, together))
            assert srv.count == 2 and srv.max_in_flight == expect
