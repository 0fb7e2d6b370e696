"""The model protocol every adapter implements: one async ``respond(request) -> Response``."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

# Longest reply text kept [characters]; a longer reply is cut here and its full length recorded
# (``Response.reply_chars``), so one runaway reply cannot fill the disk or the report.
MAX_REPLY_CHARS = 100_000
# ESC sequences (ANSI colours, cursor moves) and C0/C1 control characters except tab and newline.
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class ImagePart(BaseModel):
    """An image in a message: a path relative to ``Request.image_root`` (never a URL from data)."""

    type: Literal["image"] = "image"
    path: str


class TextPart(BaseModel):
    """Text in a message."""

    type: Literal["text"] = "text"
    text: str


class Message(BaseModel):
    """One chat message; content parts keep text and images in order."""

    role: Literal["system", "user", "assistant"]
    content: list[TextPart | ImagePart]

    def text(self) -> str:
        """The message's text parts joined."""
        return "\n".join(p.text for p in self.content if isinstance(p, TextPart))


class Request(BaseModel):
    """What is sent to a model. ``meta`` travels with it but is never sent nor hashed."""

    messages: list[Message]
    temperature: float = 0.0
    max_tokens: int = 1024
    seed: int | None = None
    n_sample: int = Field(default=0, description="sample index, so N samples hash apart")
    image_root: str = Field(default="", description="folder image paths are relative to")
    meta: dict[str, Any] = Field(default_factory=dict)

    def key(self, model: str) -> str:
        """Stable hash of model + everything sent: the cache and resume key."""
        body = self.model_dump(exclude={"meta", "image_root"})
        blob = json.dumps({"model": model, "request": body}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def prompt_text(self) -> str:
        """All text of all messages, for text-only models and token estimates."""
        return "\n".join(m.text() for m in self.messages)


class Usage(BaseModel):
    """Token counts of one response."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0


class Response(BaseModel):
    """A model's reply, or an explicit failure (``error`` set, ``text`` empty)."""

    text: str = ""
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    error: str | None = None
    retryable: bool = Field(default=False, description="a transient fault (5xx, 429, timeout, connection)")
    retry_after_s: float | None = Field(default=None, description="server's Retry-After [s], if any")
    model: str = ""
    reply_chars: int | None = Field(default=None, description="full reply length when the text was capped")

    @property
    def ok(self) -> bool:
        """True when the model answered."""
        return self.error is None


def failure_kind(error: str | None) -> str:
    """A short class for an error text (``HTTP 404``, ``timeout``, ``connection``, ``malformed``, ...)."""
    text = (error or "failed").strip()
    m = re.match(r"HTTP (\d{3})", text)
    if m:
        return f"HTTP {m.group(1)}"
    for prefix, kind in (("timeout", "timeout"), ("connection", "connection"), ("malformed", "malformed reply"),
                         ("empty reply", "empty reply"), ("adapter raised", "adapter error"),
                         ("image", "image error")):
        if text.startswith(prefix):
            return kind
    return text.split(":", 1)[0][:40]


def printable(text: str, limit: int | None = None) -> str:
    """``text`` safe for a terminal: ANSI escapes and control characters shown as ``?``, one line."""
    clean = _CONTROL.sub("?", str(text)).replace("\n", " ").replace("\t", " ")
    if limit is not None and len(clean) > limit:
        clean = clean[: max(0, limit - 3)] + "..."
    return clean


@runtime_checkable
class Model(Protocol):
    """Anything that answers requests."""

    name: str

    async def respond(self, request: Request) -> Response:
        """Answer one request; never raises for a model/server fault (returns ``error``)."""
        ...

    async def aclose(self) -> None:
        """Release connections or weights."""
        ...
