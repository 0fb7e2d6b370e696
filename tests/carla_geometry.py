"""Test-side CARLA geometry written independently of drivechain: transforms, intrinsics, projection.

Used to build Bench2Drive-shaped fixtures and to check drivechain's own projection against.
"""

from __future__ import annotations

import math

import numpy as np


def transform_matrix(location: tuple[float, float, float], rotation_pyr_deg: tuple[float, float, float]) -> np.ndarray:
    """CARLA's Transform.get_matrix (actor -> world) for location and (pitch, roll, yaw) in degrees."""
    pitch, roll, yaw = (math.radians(a) for a in rotation_pyr_deg)
    cy, sy, cr, sr, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch)
    m = np.identity(4)
    m[0, :3] = [cp * cy, cy * sp * sr - sy * cr, -cy * sp * cr - sy * sr]
    m[1, :3] = [sy * cp, sy * sp * sr + cy * cr, -sy * sp * cr + cy * sr]
    m[2, :3] = [sp, -cp * sr, cp * cr]
    m[:3, 3] = location
    return m


def intrinsics(width: int, height: int, fov_deg: float) -> np.ndarray:
    """Bench2Drive's pinhole K for an image size and horizontal field of view."""
    f = width / (2.0 * math.tan(math.radians(fov_deg) / 2))
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])


def project_unreal(point_world, K: np.ndarray, world2cam: np.ndarray) -> tuple[float, float, float]:
    """(u, v, depth) of a world point, the way Bench2Drive's visualiser does it."""
    p = world2cam @ np.array([point_world[0], point_world[1], point_world[2], 1.0])
    std = np.array([p[1], -p[2], p[0]])
    uvw = K @ std
    return uvw[0] / uvw[2], uvw[1] / uvw[2], p[0]


def cube(center, extent, yaw_deg: float) -> list[list[float]]:
    """8 world corners of a box (centre, HALF sizes, yaw in degrees), x forward / y right (CARLA)."""
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    out = []
    for sx in (1, -1):
        for sy in (1, -1):
            for sz in (1, -1):
                lx, ly, lz = sx * extent[0], sy * extent[1], sz * extent[2]
                out.append([center[0] + lx * c - ly * s, center[1] + lx * s + ly * c, center[2] + lz])
    return out
