"""OpenAIModel against a real loopback chat-completions server (tests/fakeserver.py)."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import io
import json
import logging
import time

import pytest
from PIL import Image

from drivechain.models.base import ImagePart, Message, Request, TextPart
from drivechain.models.openai_api import OpenAIModel, parse_retry_after
from tests.fakeserver import FakeServer, image_urls

KEY = "sk-test-SECRET-0123456789"


def text_request(text: str = "which lane is ego in?", **kw) -> Request:
    return Request(messages=[Message(role="user", content=[TextPart(text=text)])], **kw)


def run(model: OpenAIModel, *requests: Request):
    async def go():
        try:
            return await asyncio.gather(*(model.respond(r) for r in requests))
        finally:
            await model.aclose()

    return asyncio.run(go())


def decode_data_url(url: str) -> Image.Image:
    header, data = url.split(",", 1)
    assert header.startswith("data:image/") and header.endswith(";base64")
    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_text_reply_usage_and_body():
    replies = {"lane 2": "B", "lane 3": "C"}
    with FakeServer(reply=lambda msgs: replies[msgs[-1]["content"]], reasoning_tokens=7) as srv:
        model = OpenAIModel("qwen-test", srv.base_url, api_key=KEY)
        a, b = run(model, text_request("lane 2", seed=5), text_request("lane 3", temperature=0.7, max_tokens=33))
        assert (a.text, b.text) == ("B", "C")
        assert a.ok and a.error is None and a.model == "openai:qwen-test"
        assert a.usage.prompt_tokens == 2 and a.usage.completion_tokens == 1 and a.usage.reasoning_tokens == 7
        assert a.latency_s > 0
        bodies = sorted((r.body for r in srv.requests), key=lambda body: body["messages"][0]["content"])
        assert bodies[0]["model"] == "qwen-test" and bodies[0]["seed"] == 5 and bodies[0]["temperature"] == 0.0
        assert bodies[1]["temperature"] == 0.7 and bodies[1]["max_tokens"] == 33 and "seed" not in bodies[1]
        assert all(r.authorization == f"Bearer {KEY}" for r in srv.requests)


def test_reasoning_model_uses_max_completion_tokens():
    with FakeServer(reasoning_tokens=120) as srv:
        model = OpenAIModel("o4-mini", srv.base_url, api_key=KEY, reasoning=True)
        (resp,) = run(model, text_request(max_tokens=2000, temperature=0.3))
        body = srv.requests[0].body
        assert body["max_completion_tokens"] == 2000 and "max_tokens" not in body and "temperature" not in body
        assert resp.usage.reasoning_tokens == 120


def test_images_sent_as_resized_data_urls(tmp_path):
    (tmp_path / "cam").mkdir()
    Image.new("RGB", (600, 150), (10, 200, 30)).save(tmp_path / "cam" / "f0.png")
    Image.new("RGB", (600, 600), (200, 10, 30)).save(tmp_path / "cam" / "f1.png")
    Image.new("RGB", (40, 20), (1, 2, 3)).save(tmp_path / "cam" / "small.jpg", quality=95)
    content = [TextPart(text="past"), ImagePart(path="cam/f0.png"), ImagePart(path="cam/f1.png"),
               TextPart(text="now"), ImagePart(path="cam/small.jpg")]
    req = Request(messages=[Message(role="system", content=[TextPart(text="you drive")]),
                            Message(role="user", content=content)], image_root=str(tmp_path))
    with FakeServer() as srv:
        model = OpenAIModel("vlm", srv.base_url, api_key=KEY, max_image_side_px=64)
        resp, _ = run(model, req, req)
        assert resp.ok, resp.error
        body = srv.requests[0].body
        assert body["messages"][0] == {"role": "system", "content": "you drive"}
        kinds = [p["type"] for p in body["messages"][1]["content"]]
        assert kinds == ["text", "image_url", "image_url", "text", "image_url"]
        urls = image_urls(body)
        sizes = [decode_data_url(u).size for u in urls]
        assert sizes == [(64, 16), (64, 64), (40, 20)]
        assert decode_data_url(urls[0]).getpixel((30, 8)) == (10, 200, 30)
        assert urls[2].startswith("data:image/png;")  # re-encoded to the configured format
        assert image_urls(srv.requests[1].body) == urls  # same frames, same bytes (cached)


@pytest.mark.parametrize("bad", ["../outside.png", "/etc/passwd", "missing.png", "cam/notimage.png"])
def test_bad_image_paths_are_refused(tmp_path, bad):
    root = tmp_path / "data"
    (root / "cam").mkdir(parents=True)
    (root / "cam" / "notimage.png").write_text("hello")
    Image.new("RGB", (8, 8)).save(tmp_path / "outside.png")
    req = Request(messages=[Message(role="user", content=[ImagePart(path=bad)])], image_root=str(root))
    with FakeServer() as srv:
        (resp,) = run(OpenAIModel("vlm", srv.base_url, api_key=KEY), req)
        assert not resp.ok and not resp.retryable and srv.count == 0
        assert bad.split("/")[-1] in resp.error


@pytest.mark.parametrize(
    ("fault", "retryable", "retry_after", "fragment"),
    [
        ("500", True, None, "HTTP 500"),
        ("503", True, None, "HTTP 503"),
        ("429", True, 3.0, "HTTP 429"),
        ("400", False, None, "HTTP 400"),
        ("malformed", True, None, "malformed response"),
        ("nochoices", True, None, "malformed response"),
        ("drop", True, None, "connection error"),
        ("hang", True, None, "timeout"),
    ],
)
def test_faults_become_error_records(fault, retryable, retry_after, fragment):
    with FakeServer(faults={0: fault}, retry_after="3", hang_s=10) as srv:
        model = OpenAIModel("m", srv.base_url, api_key=KEY, timeout_s=0.5)
        (first,) = run(model, text_request())
        assert not first.ok and first.text == ""
        assert fragment in first.error
        assert first.retryable is retryable and first.retry_after_s == retry_after
        (again,) = run(model, text_request("again"))
        assert again.ok and again.text == "echo: again"  # the same adapter recovers after the fault


def test_connection_refused_is_retryable():
    with FakeServer() as srv:
        url = srv.base_url
    (resp,) = run(OpenAIModel("m", url, api_key=KEY, timeout_s=2), text_request())
    assert not resp.ok and resp.retryable and "connection error" in resp.error


def test_key_only_in_header(caplog, monkeypatch):
    monkeypatch.setenv("DRIVECHAIN_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other")
    caplog.set_level(logging.DEBUG)
    with FakeServer(faults={1: "401", 2: "500"}) as srv:
        model = OpenAIModel("m", srv.base_url)  # key from DRIVECHAIN_API_KEY, not OPENAI_API_KEY
        responses = [run(model, text_request(f"q{i}"))[0] for i in range(3)]
        assert [r.authorization for r in srv.requests] == [f"Bearer {KEY}"] * 3
        assert "HTTP 401" in responses[1].error and "***" in responses[1].error
        assert KEY not in repr(model) and KEY not in str(vars(model).get("_session"))
        for r in responses:
            assert KEY not in r.model_dump_json()
        assert KEY not in caplog.text
        assert all(KEY not in json.dumps(r.body) for r in srv.requests)


def test_fallback_key_and_no_key(monkeypatch):
    monkeypatch.delenv("DRIVECHAIN_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fallback")
    with FakeServer() as srv:
        run(OpenAIModel("m", srv.base_url), text_request())
        monkeypatch.delenv("OPENAI_API_KEY")
        run(OpenAIModel("m", srv.base_url), text_request())
        assert [r.authorization for r in srv.requests] == ["Bearer sk-fallback", None]


def test_parse_retry_after():
    now = time.time()
    assert parse_retry_after("7") == 7.0 and parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= parse_retry_after(date, now=now) <= 31
    assert parse_retry_after(email.utils.formatdate(now - 100, usegmt=True), now=now) == 0.0


def test_seeded_fault_rate_is_reproducible():
    def kinds(seed):
        with FakeServer(fault_rate=0.5, fault_kinds=("500", "429"), seed=seed) as srv:
            model = OpenAIModel("m", srv.base_url, api_key=KEY)
            out = [run(model, text_request())[0] for _ in range(12)]
            return [r.fault for r in srv.requests], [r.ok for r in out]

    faults, oks = kinds(3)
    assert kinds(3) == (faults, oks)
    assert 0 < faults.count(None) < 12 and oks == [f is None for f in faults]
