"""Adapter for any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, Ollama, OpenAI...).

aiohttp, not httpx: at 128 requests in flight aiohttp held 96 % of the ideal span on loopback
while httpx's async pool collapsed (FACTS.md). The adapter never retries: it reports
``retryable`` / ``retry_after_s`` and the runner owns the policy.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import time
from typing import Any

import aiohttp

from drivechain.errors import ConfigError
from drivechain.models.base import ImagePart, Message, Request, Response, TextPart, Usage
from drivechain.models.images import ImageError, image_data_url, resolve_image

log = logging.getLogger(__name__)

KEY_ENV_VARS = ("DRIVECHAIN_API_KEY", "OPENAI_API_KEY")
_RETRYABLE_STATUS = {408, 409, 425, 429}
_ERROR_SNIPPET_CHARS = 300


def api_key_from_env() -> str | None:
    """The API key from DRIVECHAIN_API_KEY, else OPENAI_API_KEY, else None."""
    for var in KEY_ENV_VARS:
        value = os.environ.get(var)
        if value:
            return value
    return None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After header as seconds (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class OpenAIModel:
    """``openai:MODEL``: POST {base_url}/chat/completions with images as data URLs."""

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 120.0,
        max_image_side_px: int | None = 1024,
        image_format: str = "png",
        temperature: float | None = None,
        reasoning: bool = False,
        max_connections: int | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        if not model:
            raise ConfigError("openai model name is empty; use --model openai:NAME")
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base URL {base_url!r} is not an http(s) URL; pass --base-url http://HOST:PORT/v1")
        if image_format not in ("png", "jpeg"):
            raise ConfigError(f"image format {image_format!r} is not png or jpeg")
        self.name = f"openai:{model}"
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.timeout_s = timeout_s
        self.max_image_side_px = max_image_side_px
        self.image_format = image_format
        self.temperature = temperature
        self.reasoning = reasoning
        self.max_connections = max_connections
        self.extra_body = dict(extra_body or {})
        # The key lives only here and in the session's default headers: never logged or returned.
        self.__api_key = api_key if api_key is not None else api_key_from_env()
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"OpenAIModel(model={self.model!r}, base_url={self.base_url!r})"

    # ---- request building -----------------------------------------------------------------
    def _session_for_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        # A session is bound to the loop that made it; a new loop (another asyncio.run) gets its own.
        if session is None or session.closed or self._session_loop is not loop:
            headers = {"Content-Type": "application/json"}
            if self.__api_key:
                headers["Authorization"] = f"Bearer {self.__api_key}"
            # No pool limit by default: the runner's semaphore bounds requests in flight, and a pool smaller
            # than that bound would silently queue requests (and count the wait against the timeout).
            connector = aiohttp.TCPConnector(limit=self.max_connections or 0, limit_per_host=0, keepalive_timeout=60)
            session = aiohttp.ClientSession(
                connector=connector, headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                json_serialize=json.dumps,
            )
            self._session, self._session_loop = session, loop
        return session

    async def _content(self, msg: Message, image_root: str) -> str | list[dict[str, Any]]:
        if all(isinstance(p, TextPart) for p in msg.content):
            return "\n".join(p.text for p in msg.content)  # plain string: every server accepts it
        parts: list[dict[str, Any]] = []
        for part in msg.content:
            if isinstance(part, TextPart):
                parts.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                path = resolve_image(image_root, part.path)
                # Encoding is CPU work; only a cache miss pays it, in a thread off the event loop.
                url = await asyncio.to_thread(image_data_url, path, self.max_image_side_px, self.image_format)
                parts.append({"type": "image_url", "image_url": {"url": url}})
        return parts

    async def build_body(self, request: Request) -> dict[str, Any]:
        """The JSON body sent for ``request`` (public for tests and debugging; holds no key)."""
        messages = [
            {"role": m.role, "content": await self._content(m, request.image_root)} for m in request.messages
        ]
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if self.reasoning:
            # Reasoning models reject max_tokens and most reject a non-default temperature.
            body["max_completion_tokens"] = request.max_tokens
            if self.temperature is not None:
                body["temperature"] = self.temperature
        else:
            body["max_tokens"] = request.max_tokens
            body["temperature"] = self.temperature if self.temperature is not None else request.temperature
        if request.seed is not None:
            body["seed"] = request.seed
        body.update(self.extra_body)
        return body

    # ---- the call -------------------------------------------------------------------------
    async def respond(self, request: Request) -> Response:
        """Send one request; every fault comes back as ``Response(error=...)``, never raised."""
        start = time.perf_counter()
        try:
            body = await self.build_body(request)
        except ImageError as exc:
            return self._fail(str(exc), start, retryable=False)
        session = self._session_for_loop()
        try:
            async with session.post(self.url, json=body) as resp:
                raw = await resp.read()
                status = resp.status
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        except asyncio.TimeoutError:
            return self._fail(f"timeout after {self.timeout_s:g} s", start, retryable=True)
        except aiohttp.ClientError as exc:
            return self._fail(f"connection error: {type(exc).__name__}: {exc}", start, retryable=True)
        except OSError as exc:
            return self._fail(f"connection error: {type(exc).__name__}: {exc}", start, retryable=True)
        if status != 200:
            retryable = status >= 500 or status in _RETRYABLE_STATUS
            # Redact first, cut second: a cut through the key would let most of it survive.
            snippet = self._redact(raw[: 4 * _ERROR_SNIPPET_CHARS].decode("utf-8", "replace"))[:_ERROR_SNIPPET_CHARS]
            return self._fail(f"HTTP {status}: {snippet}", start, retryable=retryable, retry_after_s=retry_after)
        return self._parse(raw, start)

    def _parse(self, raw: bytes, start: float) -> Response:
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            content = choice["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            snippet = self._redact(raw[:480].decode("utf-8", "replace"))[:120]
            # A truncated or garbled body is usually a transient proxy/server fault.
            return self._fail(f"malformed response: {type(exc).__name__}: {snippet!r}", start, retryable=True)
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str) or not content.strip():
            # No text is no answer: a failure retried like a server fault, never graded as 'unparsed'.
            what = "content null" if content is None else "empty text" if isinstance(content, str) else "content not text"
            finish = choice.get("finish_reason") if isinstance(choice, dict) else None
            return self._fail(f"empty reply ({what}, finish_reason {finish!r})", start, retryable=True)
        usage_raw = data.get("usage") or {}
        details = usage_raw.get("completion_tokens_details") or {}
        try:
            usage = Usage(
                prompt_tokens=int(usage_raw.get("prompt_tokens") or 0),
                completion_tokens=int(usage_raw.get("completion_tokens") or 0),
                reasoning_tokens=int(details.get("reasoning_tokens") or 0),
            )
        except (TypeError, ValueError):
            usage = Usage()
        return Response(text=self._redact(content), usage=usage, latency_s=time.perf_counter() - start,
                        model=self.name)

    def _fail(self, error: str, start: float, *, retryable: bool, retry_after_s: float | None = None) -> Response:
        error = self._redact(error)
        log.debug("%s: %s", self.name, error)
        return Response(error=error, retryable=retryable, retry_after_s=retry_after_s,
                        latency_s=time.perf_counter() - start, model=self.name)

    def _redact(self, text: str) -> str:
        # A server may echo the request headers back in an error body or a reply: never let the key through.
        if self.__api_key and self.__api_key in text:
            text = text.replace(self.__api_key, "***")
        return text

    async def aclose(self) -> None:
        """Close the HTTP session (idempotent)."""
        session = self._session
        if session is not None and not session.closed and self._session_loop is asyncio.get_running_loop():
            await session.close()
        self._session = None
