"""Animated replay of an episode: one GIF frame per decision step with a caption bar (Pillow).

Kept small: frames are downscaled by the caller and quantised to a few colours; each caption says
the model's action and the teacher's choice (and the outcome on the last frame).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from drivechain.dataset import atomic_write_bytes

CAPTION_PX = 14
FRAME_MS = 500


def caption(step: int, model_action: str | None, teacher_action: str | None, note: str = "") -> str:
    """The caption of one replay frame."""
    text = f"t{step} model {model_action or '-'} | teacher {teacher_action or '-'}"
    return f"{text} {note}".strip()


def _frame(image: np.ndarray, text: str) -> Image.Image:
    h, w = image.shape[:2]
    canvas = Image.new("RGB", (w, h + CAPTION_PX), (0, 0, 0))
    canvas.paste(Image.fromarray(image), (0, CAPTION_PX))
    draw = ImageDraw.Draw(canvas)
    draw.text((2, 1), text, fill=(255, 255, 255), font=ImageFont.load_default(size=10))
    return canvas


def gif_bytes(images: Sequence[np.ndarray], captions: Sequence[str], colors: int = 32) -> bytes:
    """An animated GIF of the images with their captions (missing captions are blank)."""
    if not images:
        raise ValueError("no frames to animate")
    frames = []
    for i, image in enumerate(images):
        text = captions[i] if i < len(captions) else ""
        # fast octree: ~5x cheaper than median cut, and a bird's-eye view has few colours anyway
        quantized = _frame(image, text).quantize(colors=colors, method=Image.Quantize.FASTOCTREE,
                                                 dither=Image.Dither.NONE)
        frames.append(quantized)
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=FRAME_MS, loop=0, optimize=False)
    return buf.getvalue()


def write_gif(path: Path, images: Sequence[np.ndarray], captions: Sequence[str], colors: int = 32) -> None:
    """Write the replay GIF atomically."""
    atomic_write_bytes(Path(path), gif_bytes(images, captions, colors))
