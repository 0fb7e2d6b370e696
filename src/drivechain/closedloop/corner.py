"""The teacher drives a corner case: does it get through without an at-fault collision?

A level the teacher cannot drive is "unavoidable" (sources/corner_cases.py): labelled, never
scored. The same drive is the oracle's closed loop, measured by bench/corner_cases.py.
"""

from __future__ import annotations

from typing import Any

from drivechain.closedloop.metrics import classify_collision, collision_partner


def teacher_drive(scenario: str, seed: int, level: int, max_steps: int = 15, horizon_s: float = 3.0,
                  source: Any = None) -> dict[str, Any]:
    """Drive one episode with the teacher's preferred action; outcome, collision and hazard record."""
    from drivechain.sources.corner_cases import corner_meta
    from drivechain.sources.highway import HighwaySource
    from drivechain.teacher.graph import build_graph, preferred_action

    own = source is None
    src = source or HighwaySource(scenario, env_config={"corner_level": level}, horizon_s=horizon_s)
    try:
        src.reset(seed)
        actions: list[str] = []
        collision: dict[str, Any] | None = None
        prev = src.frame()
        for _ in range(max_steps):
            action = preferred_action(build_graph(prev, src, horizon_s=horizon_s))
            result = src.step(action)
            actions.append(action)
            after = src.frame()
            if result.crashed:
                collision = classify_collision(prev, after, action, collision_partner(prev, after))
                break
            prev = after
            if result.done:
                break
        meta = corner_meta(src.env).get("corner", {})
        return {
            "scenario": scenario, "seed": seed, "level": level, "steps": len(actions), "actions": actions,
            "collision": collision, "at_fault": bool(collision and collision["at_fault"]),
            "triggered": meta.get("triggered"), "ttc_at_trigger_s": meta.get("ttc_at_trigger_s"),
            "variant": meta.get("variant"),
        }
    finally:
        if own:
            src.close()
