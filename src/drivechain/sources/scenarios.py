"""The scenario table: drivechain scenario name -> highway-env id and config (docs/scenarios.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drivechain.errors import ConfigError


@dataclass(frozen=True)
class Scenario:
    """One scenario: the highway-env id, the config on top of its defaults, the default command."""

    name: str
    env_id: str
    config: dict[str, Any] = field(default_factory=dict)
    command: str = "follow lane"
    description: str = ""


# Every scenario runs physics at 15 Hz and decides at 1 Hz, so rollouts sample alike everywhere.
_COMMON = {"simulation_frequency": 15, "policy_frequency": 1}

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "highway",
            "highway-v0",
            # lighter than highway-v0's 50 vehicles: the O(N^2) traffic update dominates the cost
            {**_COMMON, "lanes_count": 4, "vehicles_count": 25, "vehicles_density": 1.0, "duration": 40},
            "follow lane",
            "4-lane motorway, dense traffic",
        ),
        Scenario(
            "merge",
            "merge-v0",
            {**_COMMON},
            "follow lane, let the on-ramp traffic merge",
            "2-lane motorway with an on-ramp merging from the right",
        ),
        Scenario(
            "intersection",
            "intersection-v0",
            {**_COMMON, "duration": 13},
            "cross the intersection",
            "4-way unsignalised intersection, speed actions only",
        ),
        Scenario(
            "roundabout",
            "roundabout-v0",
            {**_COMMON, "duration": 11},
            "take the exit",
            "2-lane roundabout, target speeds 0/8/16 m/s",
        ),
        Scenario(
            "exit",
            "exit-v0",
            {**_COMMON, "lanes_count": 6, "vehicles_count": 20, "vehicles_density": 1.5, "duration": 18},
            "take the exit on the right",
            "6-lane motorway with an exit lane on the right",
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    """The scenario by name, or a ConfigError listing the valid ones."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ConfigError(f"unknown scenario '{name}'; choose from: {', '.join(SCENARIOS)}") from None


# the corner-case library (sources/corner_cases.py): scripted hazards on the roads above
from drivechain.sources.corner_cases import corner_scenarios  # noqa: E402

SCENARIOS.update({s.name: s for s in corner_scenarios()})
