"""Pinhole cameras of recorded logs: 3D box -> pixel box, the visibility rule, id marks, DriveLM tags.

One convention inside: a ``Camera`` holds ``world2cam`` in the computer-vision frame (x right,
y down, z forward). Sources convert once when they read their calibration: CARLA / Bench2Drive
records world2cam in Unreal's camera frame (x forward, y right, z up), ``Camera.from_unreal`` swaps
the axes exactly as readers of that data do ((u, v) = K (y, -z, x) / x); nuScenes' calibration is
already in the CV frame.

Visibility rule (the same for every source, documented in docs/sources/bench2drive.md):
1. in front: the box's centre lies at least ``MIN_DEPTH_M`` in front of the camera and at least
   one corner does; corners behind the camera are clipped to the near plane before projection;
2. inside the image: the pixel box (the hull of the projected corners) clipped to the image keeps
   at least ``MIN_BOX_PX`` pixels on each side;
3. not fully occluded: painted nearest first, at least ``MIN_UNOCCLUDED`` of the clipped pixel box
   is not covered by the pixel boxes of nearer boxes (boxes are opaque rectangles here, a
   conservative stand-in for the real silhouettes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drivechain.interop.drivelm.tags import format_tag
from drivechain.sources.render import draw_marks

MIN_DEPTH_M = 0.5
"""A box's centre must be at least this far in front of the camera [m]."""
MIN_BOX_PX = 4.0
"""The clipped pixel box must be at least this wide and tall [px]."""
MIN_UNOCCLUDED = 0.15
"""Share of the clipped pixel box that nearer boxes must leave uncovered for the box to count as visible."""
OCCLUSION_GRID_PX = 8
"""Occlusion is computed on a grid of cells this size [px] (cheap, deterministic)."""

# Unreal camera axes (x fwd, y right, z up) -> CV camera axes (x right, y down, z fwd)
_UNREAL_TO_CV = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Camera:
    """A calibrated pinhole camera: intrinsics K (3x3), world2cam (4x4, CV axes), image size [px]."""

    name: str
    K: np.ndarray
    world2cam: np.ndarray
    width_px: int
    height_px: int

    @classmethod
    def from_unreal(cls, name: str, K: list, world2cam_unreal: list, width_px: int, height_px: int) -> "Camera":
        """A camera whose recorded world2cam is in Unreal's axes (CARLA, Bench2Drive)."""
        w2c = _UNREAL_TO_CV @ np.asarray(world2cam_unreal, dtype=float)
        return cls(name, np.asarray(K, dtype=float), w2c, int(width_px), int(height_px))

    def to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """N x 3 world points -> N x 3 camera points (CV axes, z = depth [m])."""
        pts = np.asarray(points_world, dtype=float).reshape(-1, 3)
        homo = np.hstack([pts, np.ones((len(pts), 1))])
        return (self.world2cam @ homo.T).T[:, :3]

    def pixels(self, points_cam: np.ndarray) -> np.ndarray:
        """N x 3 camera points (z > 0) -> N x 2 pixels (u right, v down)."""
        uvw = (self.K @ np.asarray(points_cam, dtype=float).T).T
        return uvw[:, :2] / uvw[:, 2:3]

    def project(self, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points -> (N x 2 pixels, N depths [m]); pixels of points behind the camera are NaN."""
        cam = self.to_camera(points_world)
        depth = cam[:, 2]
        uv = np.full((len(cam), 2), np.nan)
        front = depth > 1e-6
        if front.any():
            uv[front] = self.pixels(cam[front])
        return uv, depth


def box_corners(center: tuple[float, float, float], half_extent: tuple[float, float, float],
                yaw_rad: float) -> np.ndarray:
    """The 8 corners (8 x 3, world) of a box: centre, HALF sizes (length, width, height), yaw about z."""
    cx, cy, cz = center
    ex, ey, ez = half_extent
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    out = []
    for dx in (ex, -ex):
        for dy in (ey, -ey):
            for dz in (ez, -ez):
                out.append((cx + dx * c - dy * s, cy + dx * s + dy * c, cz + dz))
    return np.array(out)


def pixel_box(camera: Camera, corners_world: np.ndarray) -> tuple[list[float], float] | None:
    """(clipped pixel box [x0, y0, x1, y1], centre depth [m]) of a 3D box, or None if not in view (rules 1-2)."""
    cam = camera.to_camera(corners_world)
    centre_depth = float(cam[:, 2].mean())
    if centre_depth < MIN_DEPTH_M or not (cam[:, 2] > MIN_DEPTH_M).any():
        return None
    # clip each edge crossing the near plane instead of dropping the corners behind the camera
    pts = [p for p in cam if p[2] >= MIN_DEPTH_M]
    for i in range(8):
        for j in range(i + 1, 8):
            a, b = cam[i], cam[j]
            if (a[2] - MIN_DEPTH_M) * (b[2] - MIN_DEPTH_M) < 0:
                t = (MIN_DEPTH_M - a[2]) / (b[2] - a[2])
                pts.append(a + t * (b - a))
    uv = camera.pixels(np.array(pts))
    x0, y0 = max(0.0, float(uv[:, 0].min())), max(0.0, float(uv[:, 1].min()))
    x1, y1 = min(float(camera.width_px), float(uv[:, 0].max())), min(float(camera.height_px), float(uv[:, 1].max()))
    if x1 - x0 < MIN_BOX_PX or y1 - y0 < MIN_BOX_PX:
        return None
    return [round(x0, 1), round(y0, 1), round(x1, 1), round(y1, 1)], centre_depth


def visible_boxes(camera: Camera, boxes: dict[int, np.ndarray]) -> dict[int, list[float]]:
    """Object id -> clipped pixel box for the boxes (id -> 8 world corners) visible in this camera (rules 1-3)."""
    in_view = []
    for oid, corners in boxes.items():
        got = pixel_box(camera, corners)
        if got is not None:
            in_view.append((got[1], oid, got[0]))
    in_view.sort()  # nearest first; ties by id (deterministic)
    g = OCCLUSION_GRID_PX
    covered = np.zeros((math.ceil(camera.height_px / g), math.ceil(camera.width_px / g)), dtype=bool)
    out: dict[int, list[float]] = {}
    for _, oid, box in in_view:
        c0, r0 = int(box[0] // g), int(box[1] // g)
        c1, r1 = max(c0 + 1, math.ceil(box[2] / g)), max(r0 + 1, math.ceil(box[3] / g))
        cells = covered[r0:r1, c0:c1]
        if cells.size and (~cells).mean() >= MIN_UNOCCLUDED:
            out[oid] = box
        cells[:] = True  # an occluded box still hides what lies behind it
    return out


def mark_image(image: np.ndarray, boxes: dict[int, list[float]]) -> np.ndarray:
    """A copy of the image with each visible id drawn beside its box (the original is untouched)."""
    return draw_marks(image, sorted(boxes.items()))


def drivelm_tag(object_id: int, camera: str, box: list[float]) -> str:
    """DriveLM's object tag ``<c{id},{CAMERA},{x},{y}>`` at the pixel box's centre."""
    return format_tag(object_id, camera, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
