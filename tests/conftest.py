"""Shared fixtures: a tiny dataset generated once per session through the real generator."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_SCENARIOS = ["highway", "merge", "intersection", "roundabout"]


@pytest.fixture(scope="session")
def tiny_config():
    """The GenerateConfig of ``tiny_dataset``: 4 scenarios, 1 episode, 3 steps, 160x120 images."""
    from drivechain.generate import GenerateConfig

    return GenerateConfig(
        scenarios=TINY_SCENARIOS, episodes=1, steps_per_episode=3, seed=7, epsilon=0.2, image_size=(160, 120), history=1
    )


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, tiny_config) -> Path:
    """Path of a tiny dataset folder (manifest, frames.jsonl, images) made by the real generator."""
    from drivechain.generate import generate

    out = tmp_path_factory.mktemp("tiny") / "data"
    generate(tiny_config, out, workers=1)
    return out
