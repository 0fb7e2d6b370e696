"""Reduced rollouts on the patched road (sources/fast_road.py) equal highway-env's own code exactly."""

from __future__ import annotations

import pytest

from drivechain.sources.highway import HighwaySource


def _rollout_json(source: HighwaySource, action: str, fast: bool) -> str:
    source._rollouts = {}
    source.fast_road = fast
    try:
        return source.rollout(action, 3.0, reduced=True).model_dump_json()
    finally:
        source._rollouts = {}
        source.fast_road = True


# highway: many vehicles (vectorised collision pairs, lane cache); intersection: RegulatedRoad
@pytest.mark.parametrize("scenario", ["highway", "intersection"])
def test_patched_rollouts_are_identical(scenario: str) -> None:
    source = HighwaySource(scenario, image_size=(64, 64))
    source.reset(0)
    compared = 0
    for _ in range(3):
        for action in source.available_actions():
            assert _rollout_json(source, action, fast=True) == _rollout_json(source, action, fast=False)
            compared += 1
        if source.step("IDLE").done:
            break
    source.close()
    assert compared >= 3


def test_patch_leaves_the_source_env_alone() -> None:
    source = HighwaySource("intersection", image_size=(64, 64))
    source.reset(1)
    road = source.env.road
    source.rollout("IDLE", 3.0, reduced=True)
    # the patches are instance attributes of the copy only
    assert "step" not in vars(road) and "act" not in vars(road) and "neighbour_vehicles" not in vars(road)
    assert "get_closest_lane_index" not in vars(road.network)
    assert all("predict_trajectory_constant_speed" not in vars(v) for v in road.vehicles)
    source.close()
