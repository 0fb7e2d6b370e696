"""The corner-case library: scripted hazards, their difficulty levels, ability and critical question.

This module is the table (cheap to import); the environments that play the scripts are in
sources/corner_envs.py. Each case is a named scenario (``--scenarios hardbrake,cutin,...``) on the
road of a base scenario, whose label rules it shares (``base``). A level's ``ttc_s`` is the time to
collision the hazard leaves the ego at its trigger if the ego does not react; levels run from easy
(4 s) to hard. ``unavoidable`` lists the levels the teacher itself cannot drive without an at-fault
collision (measured by bench/corner_cases.py): they are labelled but left out of model scoring.
Documented in docs/scenarios.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ABILITIES = ("merging", "overtaking", "emergency brake", "give way", "traffic signs")
ENV_MODULE = "drivechain.sources.corner_envs"


@dataclass(frozen=True)
class CornerCase:
    """One scripted hazard: where it plays, what it tests, its trigger and its difficulty levels."""

    name: str
    base: str  # the base scenario whose road and label rules it shares
    ability: str  # one of ABILITIES
    critical: str  # the question family that decides the case; asked about the hazard vehicle
    trigger: str  # when the script fires (time, gap or position), in words
    description: str
    command: str
    levels: tuple[dict[str, Any], ...]
    variants: tuple[str, ...] = ()
    unavoidable: frozenset[int] = field(default_factory=frozenset)
    duration_s: int = 15

    @property
    def env_id(self) -> str:
        """The gymnasium id (module-qualified, so gymnasium imports the module that registers it)."""
        return f"{ENV_MODULE}:drivechain-corner-{self.name}-v0"

    def critical_qid(self, hazard_id: int | None) -> str:
        """The critical question's qid for this hazard vehicle (per-vehicle families end in .vK)."""
        if self.critical.startswith(("pred.cut_in", "pred.motion", "pred.cross_first")) and hazard_id is not None:
            return f"{self.critical}.v{hazard_id}"
        return self.critical


CASES: tuple[CornerCase, ...] = (
    CornerCase(
        "hardbrake", "highway", "emergency brake", "pred.motion",
        "TTC: the lead brakes when the ego's time to collision with it braking drops to ttc_s (8 s at the latest)", "the lead vehicle brakes hard to a standstill; both neighbouring "
        "lanes are occupied alongside the ego, so braking is the way out", "follow lane",
        tuple({"ttc_s": t, "decel_mps2": 7.0, "speed_mps": 25.0, "closing_mps": 3.0, "latest_s": 8.0}
              for t in (4.0, 3.0, 2.2, 1.5)),
        # bench/corner_cases.py: the teacher before the RSS look-ahead (ego on IDLE after the action) had
        # at-fault collisions at L0 (3/5) and L2 (5/5); with the IDM ego none in 20 seeds of each level
    ),
    CornerCase(
        "cutin", "highway", "emergency brake", "pred.cut_in",
        "TTC at t = 0: the cutter starts ttc_s x closing speed ahead and turns in at once",
        "a slower vehicle in the left or right lane cuts into the short gap in front of the ego", "follow lane",
        tuple({"ttc_s": t, "closing_mps": 5.0, "latest_s": 6.0} for t in (4.0, 3.0, 2.0, 1.5)),
        variants=("left", "right"),
    ),
    CornerCase(
        "stalled", "highway", "emergency brake", "per.lead_vehicle",
        "TTC at t = 0: the vehicle in front moves out at once, the stalled vehicle ttc_s ahead of the ego",
        "a stalled vehicle stands in the ego lane behind the vehicle in front, which moves to the left lane "
        "late; the right lane is mostly free", "follow lane",
        tuple({"ttc_s": t, "latest_s": 5.0, "screen_gap_m": 15.0} for t in (4.0, 3.0, 2.5, 2.0)),
    ),
    CornerCase(
        "onramp", "merge", "merging", "pred.cut_in",
        "position: the on-ramp vehicle paces ttc_s x closing speed ahead of the ego and turns in, dropping to "
        "the ego's speed minus the closing speed, when it is merge_at_m into the merge lane",
        "a slower on-ramp vehicle merges in front of the ego without yielding", "follow lane, let the on-ramp traffic merge",
        tuple({"ttc_s": t, "closing_mps": 5.0, "merge_at_m": 10.0} for t in (4.0, 3.0, 2.0, 1.5)),
    ),
    CornerCase(
        "crossing", "intersection", "give way", "pred.cross_first",
        "TTC at t = 0: the ego and the violator both reach the conflict point ttc_s from now",
        "at the unsignalised intersection a vehicle from the minor road, left or right (seeded), crosses "
        "straight without yielding to the ego, which has priority on the major road",
        "cross the intersection, go straight",
        tuple({"ttc_s": t} for t in (4.0, 3.0, 2.5, 2.0)),
        variants=("left", "right"), duration_s=13,
    ),
    CornerCase(
        "overtake", "highway", "overtaking", "plan.safe.LANE_LEFT",
        "present from the start: the slow vehicle is ttc_s ahead at t = 0",
        "a slow vehicle ahead in the ego lane; the left lane is free (overtake) or occupied alongside "
        "the ego (wait, then overtake)", "follow lane",
        tuple({"ttc_s": t, "slow_mps": 15.0} for t in (4.0, 3.0, 2.0, 1.5)),
        variants=("free", "occupied"),
    ),
)
CORNER_CASES: dict[str, CornerCase] = {c.name: c for c in CASES}


def corner_scenarios() -> list[Any]:
    """The cases as entries of the scenario table (sources/scenarios.py)."""
    from drivechain.sources.scenarios import Scenario

    return [
        Scenario(c.name, c.env_id, {"simulation_frequency": 15, "policy_frequency": 1, "duration": c.duration_s},
                 c.command, c.description)
        for c in CASES
    ]


def with_corner_cases(names: frozenset[str]) -> frozenset[str]:
    """``names`` plus the corner cases whose base scenario is among them (they share its rules)."""
    return frozenset(names) | {c.name for c in CASES if c.base in names}


def base_scenario(name: str) -> str:
    """The base scenario whose road and label rules a scenario uses (itself for non-corner ones)."""
    case = CORNER_CASES.get(name)
    return case.base if case else name


def corner_meta(env: Any) -> dict[str, Any]:
    """{'corner': ...} for a frame of a corner-case env (level, hazard id, trigger state), else {}."""
    info = getattr(env, "dc_corner", None)
    if not info:
        return {}
    case = CORNER_CASES[info["case"]]
    hazard = info["hazard"]
    hid = getattr(hazard, "dc_id", None)
    trigger = info.get("trigger", hazard)
    fired_at = getattr(trigger, "dc_fired_at_s", None)
    params = {k: v for k, v in info["params"].items() if k not in ("level", "variant")}
    return {"corner": {
        "case": case.name,
        "ability": case.ability,
        "level": info["params"]["level"],
        "variant": info["params"]["variant"] or None,
        "params": params,
        "unavoidable": info["params"]["level"] in case.unavoidable,
        "hazard_id": hid,
        "extra_ids": [getattr(v, "dc_id", None) for v in info["extra"]],
        "critical_qid": case.critical_qid(hid),
        "triggered": fired_at is not None,
        "trigger_t_s": fired_at,
        "ttc_at_trigger_s": _ttc_at_trigger(case, info, hazard, trigger),
    }}


def _ttc_at_trigger(case: CornerCase, info: dict[str, Any], hazard: Any, trigger: Any) -> float | None:
    """The hazard's time to collision when the script fired (the reveal's, for a revealed hazard)."""
    if trigger is hazard:
        return getattr(hazard, "dc_ttc_at_trigger_s", None)
    return getattr(trigger, "dc_reveal_ttc_s", None)
