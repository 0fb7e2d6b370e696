"""What the log families share: the ego's recorded path, lane membership from road/lane ids and
geometry, and every threshold and band they use (docs/questions.md, "Recorded logs").

The ego's *path* is its lane as the recording shows it (Frame.meta['ego_path'], ego frame, x forward,
y left): where the ego really drove over the next seconds, cut shortly before a lane change and
extended straight past its end; ``s`` is the distance along it and ``d``
the offset to its left. A log has no lane polylines, so "in the ego lane" needs two independent
signals to agree: the CARLA map's road/lane ids (same road and lane id) and the geometry (|d| below
half a lane width). Where they disagree, or the geometry sits inside the band, the answer is unsure.
"""

from __future__ import annotations

import math

from drivechain.schema import Agent, Frame
from drivechain.sources.logreplay import LANE_WIDTH_M, Path as RefPath
from drivechain.teacher.geometry import project

HALF_LANE_M = LANE_WIDTH_M / 2
LANE_BAND_M = 0.5
"""|d| within HALF_LANE_M +- this: the lane membership is unsure (both answers accepted / ambiguous)."""
LEAD_RANGE_M = 60.0
"""The lead vehicle is looked for this far ahead along the path (centre distance)."""
LEAD_TIE_M = 2.0
PATH_HALF_WIDTH_M = 2.0
"""A pedestrian is in the ego's path if its centre is within this of the path (about the ego's half width + 1 m)."""
PATH_BAND_M = 0.5
PED_RANGE_M = 30.0
"""Pedestrian-in-path questions look this far ahead along the path [m]."""
RANGE_BAND_M = 3.0
"""A distance limit accepts both answers within this of it [m]."""
STOP_SIGN_RANGE_M = 30.0
JUNCTION_RANGE_M = 30.0
STATIC_RANGE_M = 40.0
CUT_IN_RANGE_M = 40.0
RED_LIGHT_REACH_M = 40.0
"""A red / yellow light or a stop sign that affects the ego is a reason to stop when its stop line
(trigger volume) is ahead within this distance."""
STOPPED_MPS = 0.5
AHEAD_BAND_M = 2.5
"""Centres within this of the ego's along the path are alongside: ahead and behind both fit."""


def is_log(frame: Frame) -> bool:
    """Does this frame come from a recorded-log source?"""
    return frame.meta.get("kind") == "log"


def ego_path(frame: Frame) -> RefPath:
    """The ego's recorded path (ego frame) as a replay path."""
    return RefPath([tuple(p) for p in frame.meta.get("ego_path") or []])


def path_sd(frame: Frame, x_m: float, y_m: float) -> tuple[float, float]:
    """(s along the ego's path, d to its LEFT) of an ego-frame point [m]."""
    path = ego_path(frame)
    pts = [tuple(p) for p in path.pts]
    s, d_ydown = project(pts, x_m, y_m)
    return s, -d_ydown  # geometry.project measures "left" in y-down worlds; the ego frame is y-left


def lane_ids(lane_key: str | None) -> tuple[int, int] | None:
    """'road>section>lane' -> (road, lane)."""
    if not lane_key:
        return None
    parts = lane_key.split(">")
    try:
        return int(parts[0]), int(parts[-1])
    except ValueError:
        return None


def lane_offset(ego: Agent, other: Agent) -> int | None:
    """Lanes from the ego's to ``other``'s, + to the left; None on another road or the other direction.

    OpenDRIVE lane ids grow in magnitude to the right of the driving direction (one sign per direction).
    """
    e, o = lane_ids(ego.lane_id), lane_ids(other.lane_id)
    if e is None or o is None or e[0] != o[0] or e[1] * o[1] <= 0:
        return None
    return abs(e[1]) - abs(o[1])


def lane_relation(ego: Agent, other: Agent) -> int | None:
    """Map lane of ``other`` relative to the ego: 0 same lane, +1 left, -1 right, None otherwise."""
    off = lane_offset(ego, other)
    return off if off in (-1, 0, 1) else None


def path_is_lane(frame: Frame) -> bool:
    """The ego's recorded path stays in its lane (no lane change on its road): the path can stand for the lane."""
    return bool(frame.meta.get("path_keeps_lane", False))


def in_ego_lane(frame: Frame, agent: Agent) -> tuple[bool, bool, float, float]:
    """(in the ego lane, unsure, s, d) from lane ids and the path offset together.

    When the ego changes lane along its recorded path the path is not its lane: the map's lane ids
    decide alone, and without them the answer is unsure.
    """
    s, d = path_sd(frame, agent.rel_x_m, agent.rel_y_m)
    rel = lane_relation(frame.ego, agent)
    ids_in = rel == 0
    if not path_is_lane(frame):
        return ids_in, rel is None, s, d
    geo_in = abs(d) < HALF_LANE_M
    edge = abs(abs(d) - HALF_LANE_M) <= LANE_BAND_M
    if rel is None:  # no map evidence (junction, other road): geometry alone, with its band
        return geo_in, edge, s, d
    return geo_in and ids_in, edge or geo_in != ids_in, s, d


def lane_member(frame: Frame, agent: Agent) -> tuple[int | None, bool, float]:
    """(lane offset by the map's ids, + left; unsure; s along the path) of an agent.

    Unsure when the ego's path stands for its lane and the path offset (in lane widths) disagrees with
    the ids or lies within 0.2 lane widths of a lane boundary (the highway straddle band), or when the
    agent is alongside (|s| < AHEAD_BAND_M: ahead and behind both fit).
    """
    off = lane_offset(frame.ego, agent)
    s, d = path_sd(frame, agent.rel_x_m, agent.rel_y_m)
    if off is None:
        return None, True, s
    unsure = abs(s) < AHEAD_BAND_M
    if path_is_lane(frame):
        k = d / LANE_WIDTH_M
        unsure = unsure or round(k) != off or abs(abs(k - math.floor(k)) - 0.5) < 0.2
    return off, unsure, s


def traffic_light(frame: Frame) -> dict | None:
    """The traffic light that affects the ego (nearest if several), or None."""
    lights = [s for s in frame.signals if s.get("kind") == "traffic_light" and s.get("affects_ego")]
    return min(lights, key=lambda s: s.get("distance_m", 0.0)) if lights else None


def stop_line_ahead_m(signal: dict) -> float:
    """Distance ahead of the ego to a signal's stop line (its trigger volume, else the signal itself) [m]."""
    return float(signal.get("trigger_rel_x_m", signal.get("rel_x_m", 0.0)))


def stop_signs(frame: Frame) -> list[dict]:
    """Stop signs that affect the ego."""
    return [s for s in frame.signals if s.get("kind") == "stop_sign" and s.get("affects_ego")]


def future_track(frame: Frame, agent_id: int) -> list[tuple[float, float, float]]:
    """(t, x, y) of an agent's recorded track in the ego frame at the frame's instant (0.5 s steps)."""
    return [(t, x, y) for t, x, y, *_ in frame.meta.get("tracks", {}).get(str(agent_id), [])]


def pedestrians(frame: Frame) -> list[Agent]:
    """Visible pedestrians, by id."""
    return sorted((a for a in frame.agents if a.visible and a.category == "pedestrian"), key=lambda a: a.id)
