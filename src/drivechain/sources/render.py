"""Bird's-eye camera geometry (world -> pixel, as highway-env's viewer does it) and id marks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CAMERA = "bev"


@dataclass(frozen=True)
class BevCamera:
    """highway-env's WorldSurface transform: the window follows the ego at ``centering``."""

    width_px: int
    height_px: int
    scaling_px_per_m: float
    centering: tuple[float, float]

    def origin(self, ego_xy: tuple[float, float]) -> tuple[float, float]:
        """World position of the image's top-left corner when the ego is at ``ego_xy``."""
        return (
            ego_xy[0] - self.centering[0] * self.width_px / self.scaling_px_per_m,
            ego_xy[1] - self.centering[1] * self.height_px / self.scaling_px_per_m,
        )

    def box(
        self, ego_xy: tuple[float, float], x_m: float, y_m: float, heading_rad: float, length_m: float, width_m: float
    ) -> list[float]:
        """Axis-aligned pixel box [x0, y0, x1, y1] of a vehicle's rotated rectangle."""
        ox, oy = self.origin(ego_xy)
        c, s = math.cos(heading_rad), math.sin(heading_rad)
        hl, hw = length_m / 2, width_m / 2
        xs, ys = [], []
        for dl, dw in ((hl, hw), (hl, -hw), (-hl, hw), (-hl, -hw)):
            xs.append((x_m + dl * c - dw * s - ox) * self.scaling_px_per_m)
            ys.append((y_m + dl * s + dw * c - oy) * self.scaling_px_per_m)
        return [round(min(xs), 1), round(min(ys), 1), round(max(xs), 1), round(max(ys), 1)]

    def reach_m(self) -> float:
        """Farthest distance from the ego's centre to any point of the image window [m]."""
        cx, cy = self.centering
        half_w = max(cx, 1.0 - cx) * self.width_px / self.scaling_px_per_m
        half_h = max(cy, 1.0 - cy) * self.height_px / self.scaling_px_per_m
        return math.hypot(half_w, half_h)

    def visible(self, box: list[float]) -> bool:
        """Does the box intersect the image?"""
        return box[2] > 0 and box[0] < self.width_px and box[3] > 0 and box[1] < self.height_px


_FONT = None


def _font() -> ImageFont.ImageFont:
    global _FONT
    if _FONT is None:
        # the built-in bitmap font: no file on disk, identical everywhere
        _FONT = ImageFont.load_default(size=11)
    return _FONT


def draw_marks(image: np.ndarray, marks: list[tuple[int, list[float]]]) -> np.ndarray:
    """Draw each id as a small white-on-black label at its box's top-right corner; returns a new array."""
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    font = _font()
    for agent_id, box in marks:
        text = str(agent_id)
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        w, h = x1 - x0, y1 - y0
        # beside the vehicle, not on it, so the car itself stays visible
        left, top = round(box[2]) + 1, round(box[1]) - h - 1
        # a vehicle on the image border keeps its label readable: clamp the label inside the image
        left = min(max(left, 1), pil.width - w - 2)
        top = min(max(top, 1), pil.height - h - 2)
        draw.rectangle((left - 1, top - 1, left + w + 1, top + h + 1), fill=(0, 0, 0))
        draw.text((left - x0, top - y0), text, fill=(255, 255, 255), font=font)
    return np.asarray(pil)
