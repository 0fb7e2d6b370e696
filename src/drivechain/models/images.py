"""Image loading for adapters: safe path resolution and cached, resized data-URL encoding."""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from pathlib import Path

from drivechain.errors import DrivechainError


class ImageError(DrivechainError):
    """An image a request names is missing, unreadable or outside its image root."""


def resolve_image(image_root: str, rel_path: str) -> Path:
    """The file ``rel_path`` names under ``image_root``; refuses absolute paths and ``..`` escapes."""
    root = Path(image_root or ".").resolve()
    if Path(rel_path).is_absolute():
        raise ImageError(f"image path {rel_path!r} is absolute; image paths must be relative to the image root")
    path = (root / rel_path).resolve()
    if not path.is_relative_to(root):
        raise ImageError(f"image path {rel_path!r} escapes the image root; fix the dataset's image paths")
    if not path.is_file():
        raise ImageError(f"image {rel_path!r} not found under {root}; regenerate or fix the dataset")
    return path


def image_data_url(path: Path, max_side_px: int | None, fmt: str = "png") -> str:
    """``data:image/...;base64,...`` for the file, shrunk to ``max_side_px``; cached per file version."""
    stat = path.stat()
    return _encode(str(path), stat.st_mtime_ns, stat.st_size, max_side_px, fmt)


@lru_cache(maxsize=256)  # bounded: ~256 frames x (20 KB BEV .. 1 MB camera) of base64
def _encode(path: str, mtime_ns: int, size: int, max_side_px: int | None, fmt: str) -> str:
    # mtime and size are part of the key so a rewritten file is encoded again.
    from PIL import Image, UnidentifiedImageError

    raw = Path(path).read_bytes()
    try:
        with Image.open(io.BytesIO(raw)) as img:
            src_format = (img.format or "").lower()
            too_big = max_side_px is not None and max(img.size) > max_side_px
            if not too_big and src_format == fmt:
                return _url(fmt, raw)  # already fine: send the original bytes untouched
            keep_mode = fmt == "png" and img.mode in ("RGB", "RGBA", "L")
            img = img.copy() if keep_mode else img.convert("RGB")
            if too_big:
                img.thumbnail((max_side_px, max_side_px), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            img.save(buf, format=fmt.upper(), **({"quality": 90} if fmt == "jpeg" else {}))
            return _url(fmt, buf.getvalue())
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(f"image {path} is not a readable image ({exc}); regenerate the dataset") from exc


def _url(fmt: str, data: bytes) -> str:
    return f"data:image/{fmt};base64,{base64.b64encode(data).decode('ascii')}"


def load_pil(path: Path, max_side_px: int | None = None):  # -> PIL.Image.Image
    """The file as an RGB PIL image, shrunk to ``max_side_px`` if given (for local models)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            out = img.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(f"image {path} is not a readable image ({exc}); regenerate the dataset") from exc
    if max_side_px is not None and max(out.size) > max_side_px:
        out.thumbnail((max_side_px, max_side_px), Image.Resampling.LANCZOS)
    return out
