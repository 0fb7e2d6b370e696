"""Adapter for a local transformers model (``hf:PATH``): a vision-language model or a text-only
causal LM (also from a GGUF file, ``--gguf FILE``; see models/hf_text.py), batched.

Concurrent ``respond`` calls are queued and collected into batches of up to ``batch_size``;
each batch runs ``generate`` in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivechain.errors import ConfigError
from drivechain.models.base import ImagePart, Request, Response, TextPart, Usage
from drivechain.models.images import ImageError, load_pil, resolve_image

log = logging.getLogger(__name__)


@dataclass
class _Job:
    request: Request
    future: asyncio.Future
    start: float = field(default_factory=time.perf_counter)


class HFModel:
    """``hf:PATH``: AutoProcessor chat template + AutoModelForImageTextToText on CPU or GPU."""

    def __init__(
        self,
        path: str,
        device: str = "cpu",
        batch_size: int = 4,
        max_new_tokens: int = 256,
        *,
        dtype: str | None = None,
        max_image_side_px: int | None = None,
        gguf: str | None = None,
    ) -> None:
        from drivechain.models.hf_text import gguf_path, is_vision_config

        folder = Path(path).expanduser()
        if folder.is_file() and folder.suffix == ".gguf" and not gguf:
            folder, gguf = folder.parent, folder.name
        file = gguf_path(folder, gguf)
        if file is not None and not file.is_file():
            raise ConfigError(f"hf model: GGUF file {str(file)!r} not found; pass hf:FOLDER --gguf FILE.gguf")
        if file is None and (not folder.is_dir() or not (folder / "config.json").is_file()):
            raise ConfigError(f"hf model {path!r} is not a model folder (no config.json); pass hf:/path/to/model")
        if batch_size < 1:
            raise ConfigError(f"hf batch size {batch_size} must be >= 1")
        self.path = folder
        self.gguf = gguf
        # GGUF files hold text-only LMs here; a folder is text-only unless its config takes images
        self.text_only = file is not None or not is_vision_config(folder)
        self.name = f"hf:{file.stem if file is not None else folder.name}"
        self.device = device
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.dtype = dtype
        self.max_image_side_px = max_image_side_px
        self._model: Any = None
        self._processor: Any = None
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task | None = None
        self._worker_loop: asyncio.AbstractEventLoop | None = None
        self._load_error: str | None = None

    def __repr__(self) -> str:
        return f"HFModel(path={str(self.path)!r}, device={self.device!r})"

    # ---- loading --------------------------------------------------------------------------
    def _load(self) -> None:
        if self._model is not None or self._load_error is not None:
            return
        try:
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor

            kwargs: dict[str, Any] = {}
            if self.dtype:
                kwargs["dtype"] = getattr(torch, self.dtype)
            if self.text_only:
                from drivechain.models.hf_text import load_text_lm

                self._processor, self._model = load_text_lm(self.path, self.gguf, kwargs.get("dtype"), self.device)
                return
            processor = AutoProcessor.from_pretrained(self.path)
            model = AutoModelForImageTextToText.from_pretrained(self.path, **kwargs).to(self.device).eval()
        except Exception as exc:  # any load failure becomes an error record per request
            self._load_error = f"cannot load hf model {self.path}: {type(exc).__name__}: {exc}"
            log.warning(self._load_error)
            return
        # Decoder-only generation needs the prompt right-aligned so new tokens follow it directly.
        processor.tokenizer.padding_side = "left"
        if processor.tokenizer.pad_token is None:
            processor.tokenizer.pad_token = processor.tokenizer.eos_token
        self._processor, self._model = processor, model

    # ---- batching -------------------------------------------------------------------------
    async def respond(self, request: Request) -> Response:
        """Queue the request; it is answered with the batch it lands in."""
        loop = asyncio.get_running_loop()
        # The batch worker belongs to one event loop; a new loop (another asyncio.run) gets a new one.
        if self._worker is None or self._worker.done() or self._worker_loop is not loop:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run_batches(self._queue))
            self._worker_loop = loop
        job = _Job(request, loop.create_future())
        await self._queue.put(job)
        return await job.future

    async def _run_batches(self, queue: asyncio.Queue[_Job]) -> None:
        while True:
            jobs = [await queue.get()]
            await asyncio.sleep(0)  # let callers started in the same tick join this batch
            while len(jobs) < self.batch_size and not queue.empty():
                jobs.append(queue.get_nowait())
            try:
                results = await asyncio.to_thread(self._answer_batch, [j.request for j in jobs])
            except Exception as exc:  # never leave a caller waiting
                results = [Response(error=f"generation failed: {type(exc).__name__}: {exc}", model=self.name)] * len(jobs)
            now = time.perf_counter()
            for job, resp in zip(jobs, results):
                if not job.future.done():
                    job.future.set_result(resp.model_copy(update={"latency_s": now - job.start}))

    def _answer_batch(self, requests: list[Request]) -> list[Response]:
        self._load()
        if self._load_error is not None:
            return [Response(error=self._load_error, model=self.name) for _ in requests]
        out: list[Response | None] = [None] * len(requests)
        prepared: dict[tuple[float, int, int | None], list[tuple[int, list[dict], list]]] = {}
        for i, req in enumerate(requests):
            try:
                conv, images = self._conversation(req)
            except ImageError as exc:
                out[i] = Response(error=str(exc), model=self.name)
                continue
            # One generate call per sampling setting: temperature and length apply to the whole batch.
            key = (req.temperature, min(req.max_tokens, self.max_new_tokens), req.seed if req.temperature > 0 else None)
            prepared.setdefault(key, []).append((i, conv, images))
        for (temperature, max_new, seed), group in prepared.items():
            try:
                texts = self._generate([g[1] for g in group], [g[2] for g in group], temperature, max_new, seed)
            except Exception as exc:
                texts = [Response(error=f"generation failed: {type(exc).__name__}: {exc}", model=self.name)] * len(group)
            for (i, _, _), resp in zip(group, texts):
                out[i] = resp
        return [r if r is not None else Response(error="not answered", model=self.name) for r in out]

    def _conversation(self, req: Request) -> tuple[list[dict[str, Any]], list]:
        if self.text_only:
            from drivechain.models.hf_text import TEXT_ONLY_IMAGE_ERROR, text_conversation

            if any(isinstance(p, ImagePart) for m in req.messages for p in m.content):
                raise ImageError(TEXT_ONLY_IMAGE_ERROR)
            return text_conversation(req.messages), []
        conv, images = [], []
        for msg in req.messages:
            parts: list[dict[str, Any]] = []
            for part in msg.content:
                if isinstance(part, TextPart):
                    parts.append({"type": "text", "text": part.text})
                elif isinstance(part, ImagePart):
                    images.append(load_pil(resolve_image(req.image_root, part.path), self.max_image_side_px))
                    parts.append({"type": "image"})
            conv.append({"role": msg.role, "content": parts})
        return conv, images

    def _generate(self, convs: list, images: list[list], temperature: float, max_new: int,
                  seed: int | None) -> list[Response]:
        import torch

        proc = self._processor
        prompts = [proc.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in convs]
        flat = [img for imgs in images for img in imgs]
        if self.text_only:  # a tokenizer: the chat template already holds the special tokens
            inputs = proc(prompts, padding=True, return_tensors="pt", add_special_tokens=False).to(self.device)
        else:
            inputs = proc(text=prompts, images=flat or None, padding=True, return_tensors="pt").to(self.device)
        gen_kwargs: dict[str, Any] = {"max_new_tokens": max_new, "do_sample": temperature > 0}
        if temperature > 0:
            gen_kwargs["temperature"] = temperature
            if seed is not None:
                torch.manual_seed(seed)
        with torch.inference_mode():
            output = self._model.generate(**inputs, **gen_kwargs)
        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = output[:, prompt_len:]
        texts = proc.batch_decode(new_tokens, skip_special_tokens=True)
        pad_id = self._tokenizer().pad_token_id
        eos_ids = self._eos_ids()
        results = []
        for row, text, mask in zip(new_tokens.tolist(), texts, inputs["attention_mask"]):
            n_completion = 0
            for tok in row:  # count up to and including the first end token; padding follows it
                if tok == pad_id and pad_id not in eos_ids:
                    break
                n_completion += 1
                if tok in eos_ids:
                    break
            usage = Usage(prompt_tokens=int(mask.sum()), completion_tokens=n_completion)
            results.append(Response(text=text.strip(), usage=usage, model=self.name))
        return results

    def _eos_ids(self) -> set[int]:
        eos = self._model.generation_config.eos_token_id
        if eos is None:
            eos = self._tokenizer().eos_token_id
        return set(eos) if isinstance(eos, list) else ({eos} if eos is not None else set())

    def _tokenizer(self) -> Any:
        return self._processor if self.text_only else self._processor.tokenizer

    async def aclose(self) -> None:
        """Stop the batch worker and drop the weights."""
        if self._worker is not None and self._worker_loop is asyncio.get_running_loop():
            self._worker.cancel()
            try:
                await self._worker
            except (asyncio.CancelledError, Exception):
                pass
        self._worker = self._queue = None
        self._model = self._processor = None
