"""Sampling and image options of ``drivechain eval`` reach the wire of an OpenAI-compatible server."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from PIL import Image

from drivechain.cli import main
from tests.fakeserver import FakeServer, image_urls


def _sizes(body: dict) -> list[tuple[int, int]]:
    out = []
    for url in image_urls(body):
        raw = base64.b64decode(url.split(",", 1)[1])
        out.append(Image.open(io.BytesIO(raw)).size)
    return out


def test_history_temperature_image_side_and_reasoning_are_sent(tiny_dataset: Path, tmp_path: Path):
    with FakeServer(reply=lambda messages: "{}") as srv:
        main(["eval", "--data", str(tiny_dataset), "--model", "openai:vlm", "--base-url", srv.base_url,
              "--protocol", "transitions", "--image", "with", "--limit", "2", "--history", "--temperature", "0.7",
              "--max-image-side", "64", "--reasoning", "--max-tokens", "77", "--no-progress",
              "--out", str(tmp_path / "run")])
        bodies = [r.body for r in srv.requests if r.body and r.body.get("messages")]
    with_image = [b for b in bodies if image_urls(b)]
    assert with_image, "the V-> links send the frame's image"
    counts = sorted({len(_sizes(b)) for b in with_image})
    assert counts == [1, 2]  # step 0 has no past frame; step 1 sends its past frame too (history K=1)
    assert all(max(w, h) <= 64 for b in with_image for w, h in _sizes(b))
    for body in bodies:  # reasoning models take max_completion_tokens and reject a sampling temperature
        assert body.get("max_completion_tokens") == 77 and "max_tokens" not in body
        assert "temperature" not in body
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["history"] is True and config["max_image_side_px"] == 64 and config["reasoning"] is True


def test_temperature_and_token_limit_of_a_plain_chat_model(tiny_dataset: Path, tmp_path: Path):
    with FakeServer(reply=lambda messages: "{}") as srv:
        main(["eval", "--data", str(tiny_dataset), "--model", "openai:vlm", "--base-url", srv.base_url,
              "--protocol", "free", "--limit", "1", "--temperature", "0.7", "--max-tokens", "77",
              "--no-progress", "--out", str(tmp_path / "run")])
        bodies = [r.body for r in srv.requests if r.body and r.body.get("messages")]
    assert bodies
    assert all(b["temperature"] == 0.7 and b["max_tokens"] == 77 for b in bodies)
