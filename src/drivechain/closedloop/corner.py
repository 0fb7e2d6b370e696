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


def _ci(values: list[float], seed: int = 0) -> list[float] | None:
    import numpy as np

    if not values:
        return None
    arr = np.asarray(values, dtype=float)
    means = arr[np.random.default_rng(seed).integers(0, len(arr), size=(1000, len(arr)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return [round(float(lo), 6), round(float(hi), 6)]


def _cell(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ds = [float(r["metrics"]["driving_score"]) for r in rows]
    fault = [float(bool(r["metrics"]["at_fault_collision"])) for r in rows]
    ok = [float(bool(r["metrics"]["success"])) for r in rows]
    mean = lambda v: round(sum(v) / len(v), 6) if v else None  # noqa: E731
    return {"episodes": len(rows), "driving_score": mean(ds), "driving_score_ci95": _ci(ds),
            "at_fault_rate": mean(fault), "at_fault_rate_ci95": _ci(fault), "success": mean(ok)}


def corner_block(rows: list[dict[str, Any]], teacher_rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The closed-loop ``corner`` block: per ability and per case level, model and teacher episodes."""
    def level_key(c: dict[str, Any]) -> str:
        return f"{c['case']} L{c['level']} (TTC {c['params'].get('ttc_s')} s)"

    model = [r for r in rows if (r.get("info") or {}).get("corner")]
    teacher = [r for r in teacher_rows if (r.get("info") or {}).get("corner")]
    if not model and not teacher:
        return None
    scored = [r for r in model if not r["info"]["corner"].get("unavoidable")]
    by_ability: dict[str, list[dict[str, Any]]] = {}
    by_level: dict[str, list[dict[str, Any]]] = {}
    for r in scored:
        by_ability.setdefault(r["info"]["corner"]["ability"], []).append(r)
        by_level.setdefault(level_key(r["info"]["corner"]), []).append(r)
    teacher_levels: dict[str, list[dict[str, Any]]] = {}
    for r in teacher:
        teacher_levels.setdefault(level_key(r["info"]["corner"]), []).append(r)
    return {
        "kind": "corner",
        "title": "Corner cases (closed loop)",
        "description": "Driving score, at-fault collision rate and success of the model on the scripted-hazard "
                       "scenarios, per ability and per case and difficulty level (L0 easiest), and the teacher's own "
                       "outcome per level. Episodes of levels the teacher cannot drive (unavoidable) are excluded "
                       "from the model's scores. 95 % bootstrap intervals over episodes. docs/scenarios.md",
        "episodes": len(model),
        "unavoidable_episodes_excluded": len(model) - len(scored),
        "by_ability": {k: _cell(v) for k, v in sorted(by_ability.items())},
        "by_level": {k: _cell(v) for k, v in sorted(by_level.items())},
        "teacher_by_level": {k: _cell(v) for k, v in sorted(teacher_levels.items())},
    }
