"""DriveLM object tags ``<c1,CAM_BACK,1088.3,497.5>``: object id, camera, pixel x, y (origin top-left).

Standard library only: sources, prompts and parsers use these helpers without importing the rest
of the DriveLM package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUM = r"[-+]?\d+(?:\.\d+)?"
TAG_RE = re.compile(rf"<\s*c(\d+)\s*,\s*([A-Za-z][A-Za-z0-9_]*)\s*,\s*({_NUM})\s*,\s*({_NUM})\s*>")
_BARE_ID = re.compile(r"(?<![A-Za-z0-9_])c(\d+)(?![A-Za-z0-9_.])")

TAG_NOTE = (
    "Objects are named by tags like <c1,CAM_BACK,1088.3,497.5>: the object's id (c1), the camera it is "
    "seen in, and its centre's pixel x, y in that camera's image (origin top-left, x right, y down)."
)


@dataclass(frozen=True)
class Tag:
    """One parsed tag: id number N of ``cN``, camera name, pixel x and y [px]."""

    number: int
    camera: str
    x_px: float
    y_px: float
    text: str

    @property
    def name(self) -> str:
        """The short id, e.g. ``c1``."""
        return f"c{self.number}"


def format_tag(number: int, camera: str, x_px: float, y_px: float) -> str:
    """DriveLM's tag text for an object (one decimal, as DriveLM writes them)."""
    return f"<c{int(number)},{camera},{float(x_px):.1f},{float(y_px):.1f}>"


def parse_tags(text: str) -> list[Tag]:
    """Every tag in ``text``, in order of appearance (duplicates kept)."""
    return [
        Tag(int(m.group(1)), m.group(2), float(m.group(3)), float(m.group(4)), m.group(0))
        for m in TAG_RE.finditer(str(text))
    ]


def has_tags(text: str) -> bool:
    """True when ``text`` names at least one object by tag."""
    return TAG_RE.search(str(text)) is not None


def only_tags(text: str) -> list[Tag] | None:
    """The tags when ``text`` is nothing but tags (separators, "and", a final period), else None."""
    tags = parse_tags(text)
    if not tags:
        return None
    rest = TAG_RE.sub(" ", str(text))
    rest = re.sub(r"\band\b", " ", rest, flags=re.I)
    return tags if re.fullmatch(r"[\s,;.]*", rest) else None


def tags_to_ids(text: str) -> str:
    """``text`` with every tag and bare ``cN`` id replaced by the number N (for id parsers)."""
    out = TAG_RE.sub(lambda m: f" {int(m.group(1))} ", str(text))
    return _BARE_ID.sub(lambda m: str(int(m.group(1))), out)
