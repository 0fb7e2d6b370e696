"""Helpers shared by the perception and prediction families: node construction and lane membership."""

from __future__ import annotations

from dataclasses import dataclass

from drivechain.schema import QA, Stage
from drivechain.teacher import bands
from drivechain.teacher.geometry import LanePosition, RoadView

LANE_NAMES = {1: "left lane", 0: "ego lane", -1: "right lane"}
SIDE_WORDS = {1: "left", 0: "same", -1: "right"}


def qa(qid: str, family: str, stage: Stage, question: str, answer, explanation: str,
       parents: list[str] | None = None, objects: list[int] | None = None,
       ambiguous: bool = False, **meta) -> QA:
    """One QA node; ``meta`` keys with None values are dropped so the JSON stays small and stable."""
    return QA(
        qid=qid, family=family, stage=stage, question=question, answer=answer, explanation=explanation,
        parents=list(parents or []), objects=sorted(set(objects or [])), ambiguous=ambiguous,
        meta={k: v for k, v in meta.items() if v is not None},
    )


NON_VEHICLES = frozenset({"pedestrian", "obstacle"})
"""Agent categories that are not vehicles (log sources have them); vehicle families skip them."""


def visible_vehicles(agents: list) -> list:
    """The visible agents that are vehicles, ordered by id."""
    return sorted((a for a in agents if a.visible and a.category not in NON_VEHICLES), key=lambda a: a.id)


def r1(x: float) -> float:
    """Round to 0.1 (labels are stored at this resolution)."""
    return round(float(x), 1)


@dataclass(frozen=True)
class Members:
    """Vehicles of one lane on one side of the ego: surely there, and uncertain (band)."""

    sure: list[LanePosition]
    unsure: list[LanePosition]


def lane_members(view: RoadView, offset: int, side: str) -> Members:
    """Visible vehicles in the lane at ``offset`` (+ left) on ``side`` ('ahead'/'behind'/'any')."""
    sure, unsure = [], []
    for p in view.visible_positions():
        if offset not in p.offsets():
            continue
        side_ok = side == "any" or (p.ahead() if side == "ahead" else not p.ahead())
        side_unsure = side != "any" and p.alongside()
        if not side_ok and not side_unsure:
            continue
        if p.straddling or side_unsure:
            unsure.append(p)
        else:
            sure.append(p)
    key = lambda p: (abs(p.ds_m), p.agent.id)  # noqa: E731
    return Members(sorted(sure, key=key), sorted(unsure, key=key))


def in_band(x: float, threshold: float, band: float) -> bool:
    """x lies inside [threshold - band, threshold + band]."""
    return abs(x - threshold) <= band


def lane_phrase(offset: int) -> str:
    """'the left lane' / 'your lane' / 'the right lane'."""
    return {1: "the left lane", 0: "your lane", -1: "the right lane"}[offset]


__all__ = ["qa", "r1", "visible_vehicles", "NON_VEHICLES", "Members", "lane_members", "in_band", "lane_phrase", "bands", "LANE_NAMES", "SIDE_WORDS"]
