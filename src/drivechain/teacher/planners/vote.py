"""Planner outputs and the vote that turns them into one trustworthy planning label (docs/planning.md).

Rule (3 planners: look-ahead, IDM/MOBIL, TTC rules):
- the SAFE set is the look-ahead's (forward simulation is the ground truth of safety);
- no safe action -> ambiguous (nothing is scored);
- an action voted preferred by a strict majority of ALL planners and found safe -> preferred;
  acceptable = every safe action any planner voted for (disagreement widens, never with an unsafe one);
- no majority: preferred = the look-ahead's pick (always safe), acceptable = the safe votes; the node
  stays scored, since every acceptable action is verified safe and recommended by some planner;
- the majority pick is unsafe -> ambiguous (the rule planners are misled: nothing is scored);
  preferred = the look-ahead's pick, acceptable = the safe votes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from drivechain.schema import Frame

# fixed tie-break among equally good actions: keep the manoeuvre count low, then speed up
ACTION_ORDER: tuple[str, ...] = ("IDLE", "FASTER", "SLOWER", "LANE_LEFT", "LANE_RIGHT")

ACTION_WORDS: dict[str, str] = {
    "LANE_LEFT": "change to the left lane",
    "IDLE": "keep lane and speed",
    "LANE_RIGHT": "change to the right lane",
    "FASTER": "speed up",
    "SLOWER": "slow down",
}


@dataclass
class PlannerResult:
    """One planner's verdict for a frame: its safe set, its preferred action (None if nothing safe)."""

    name: str
    safe: list[str]
    preferred: str | None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class VoteResult:
    """The voted planning label: look-ahead safe set, acceptable set, preferred action, ambiguity."""

    safe: list[str]
    acceptable: list[str]
    preferred: str | None
    ambiguous: bool
    reason: str
    votes: dict[str, str | None]
    safe_sets: dict[str, list[str]]
    majority: bool


def real_actions(frame: Frame) -> list[str]:
    """The scenario's actions that are available now, in the scenario's order."""
    available = set(frame.available_actions) if frame.available_actions else set(frame.actions)
    return [a for a in frame.actions if a in available]


def order_key(action: str) -> int:
    """Position of an action in the fixed tie-break order (unknown names last)."""
    return ACTION_ORDER.index(action) if action in ACTION_ORDER else len(ACTION_ORDER)


def vote(results: Sequence[PlannerResult], safety: PlannerResult) -> VoteResult:
    """Combine planners by majority; ``safety`` (the look-ahead, also in ``results``) owns the safe set."""
    safe = sorted(safety.safe, key=order_key)
    votes = {r.name: r.preferred for r in results}
    safe_sets = {r.name: sorted(r.safe, key=order_key) for r in results}
    if not safe:
        return VoteResult([], [], None, True, "no action is safe over the horizon", votes, safe_sets, False)
    safe_votes = [a for a in votes.values() if a is not None and a in safe]
    acceptable = sorted(set(safe_votes), key=order_key)
    counts = Counter(a for a in votes.values() if a is not None)
    n = len(results)
    winner = next((a for a, c in counts.items() if 2 * c > n), None)
    if winner is not None and winner in safe:
        return VoteResult(safe, acceptable, winner, False, f"{counts[winner]} of {n} planners prefer {winner}",
                          votes, safe_sets, True)
    fallback = safety.preferred if safety.preferred in safe else safe[0]
    if fallback not in acceptable:
        acceptable = sorted(set(acceptable) | {fallback}, key=order_key)
    if winner is None:
        return VoteResult(safe, acceptable, fallback, False, "no majority among the planners: any safe vote is "
                          "acceptable, the look-ahead's pick is preferred", votes, safe_sets, False)
    return VoteResult(safe, acceptable, fallback, True, f"the majority pick {winner} is unsafe", votes, safe_sets,
                      False)


def agreement_rates(results_per_frame: Iterable[Sequence[PlannerResult]]) -> dict[str, float]:
    """Over a dataset: share of frames with a majority / unanimity, and each planner's agreement with
    the first (look-ahead) planner's preferred action."""
    frames = 0
    majority = 0
    unanimous = 0
    pair: Counter[str] = Counter()
    names: list[str] = []
    for results in results_per_frame:
        frames += 1
        safety = results[0]
        v = vote(results, safety)
        majority += int(v.majority)
        prefs = [r.preferred for r in results]
        unanimous += int(prefs[0] is not None and len(set(prefs)) == 1)
        for r in results[1:]:
            names = names if r.name in names else names + [r.name]
            pair[r.name] += int(r.preferred == safety.preferred)
    out = {"frames": float(frames)}
    if frames:
        out["majority_rate"] = majority / frames
        out["unanimous_rate"] = unanimous / frames
        for name in names:
            out[f"agree_lookahead_{name}"] = pair[name] / frames
    return out
