"""Rollouts stepped together with shared traffic (sources/shared_rollout.py) equal one-by-one rollouts."""

from __future__ import annotations

import numpy as np
import pytest

from drivechain.sources.highway import HighwaySource
from drivechain.sources.shared_rollout import same_value, shareable


def _all_rollouts(source: HighwaySource, shared: bool) -> dict[tuple[str, bool], str]:
    source._rollouts = {}
    source.share_traffic = shared
    try:
        keys = [("IDLE", False)] + [(a, True) for a in source.available_actions()]
        return {k: source.rollout(k[0], 3.0, reduced=True, ego_idm=k[1]).model_dump_json() for k in keys}
    finally:
        source._rollouts = {}
        source.share_traffic = True


# highway: many IDM vehicles (ghosts, lane changes); merge: an obstacle and few vehicles near the ego;
# intersection: the right-of-way rules (RegulatedRoad) between ghosts and real vehicles
@pytest.mark.parametrize(("scenario", "actions"), [("highway", ["LANE_LEFT"]), ("merge", ["FASTER", "IDLE"]),
                                                   ("intersection", ["FASTER"])])
def test_shared_rollouts_are_identical(scenario: str, actions: list[str]) -> None:
    source = HighwaySource(scenario, image_size=(64, 64))
    source.reset(1)
    assert shareable(source.env)
    compared = 0
    for action in [None] + actions:
        if action is not None and source.step(action).done:
            break
        shared = _all_rollouts(source, shared=True)
        single = _all_rollouts(source, shared=False)
        assert shared == single
        compared += len(shared)
    source.close()
    assert compared >= 6


def test_same_value_is_bitwise() -> None:
    assert same_value(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    assert not same_value(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-15]))
    assert not same_value(0.0, -0.0)  # equal as numbers, not as bits
    assert not same_value(1, 1.0)  # another type may take another code path
    assert same_value({"a": [1.0, (2, "x")]}, {"a": [1.0, (2, "x")]})
    assert not same_value({"a": [1.0]}, {"a": [1.5]})


def test_fast_agent_equals_model_construct() -> None:
    from drivechain.schema import Agent
    from drivechain.sources.highway import _agent

    fields = dict(id=3, category="car", x_m=1.5, y_m=-2.0, heading_rad=0.1, speed_mps=20.0, length_m=5.0,
                  width_m=2.0, lane_id="a>b>1", rel_x_m=1.5, rel_y_m=2.0, visible=False, boxes={}, crashed=False)
    assert list(fields) == list(Agent.model_fields)  # the test covers every field, in order
    fast, slow = _agent(**fields), Agent.model_construct(**fields)
    assert fast == slow and fast.model_dump_json() == slow.model_dump_json()
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.model_copy(update={"x_m": 9.0}).x_m == 9.0 and fast.x_m == 1.5
