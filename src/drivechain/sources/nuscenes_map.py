"""The nuScenes map expansion, when the user has it: lanes near the ego and which road users share its lane.

The expansion (``maps/expansion/<location>.json``, a separate download) holds lane and lane-connector
polygons, their centre lines (arcline paths) and their connectivity. drivechain reads it through
the devkit's ``NuScenesMap`` and derives:
- ``Frame.lanes``: the centre lines of lanes and lane connectors within LANE_RADIUS_M of the ego
  (``discretize_lanes`` at 1 m); ``Agent.lane_id``: the lane (or connector) under an agent's centre;
- the ego's lane: the lane under the ego, extended along ``outgoing`` connectivity only into lanes
  its recorded path really enters (so a lane change or a turn the ego does not take is not its lane),
  and back into its single incoming lane (none at a merge). ``meta['ego_lane']`` records, per road
  user, whether its centre lies in that lane and how far it is from the lane's edge.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from drivechain.schema import Lane

LANE_RADIUS_M = 50.0
"""Lanes whose polygon comes within this square half-size of the ego are listed in Frame.lanes [m]."""
LANE_WIDTH_M = 3.5
"""Lane.width_m (nuScenes lanes are polygons without a width field; the nominal urban width) [m]."""
CHAIN_STEPS = 4
"""The ego's lane follows at most this many successor lanes along its recorded path."""


def expansion_file(dataroot: Path, location: str) -> Path:
    """Where the map expansion of a location would be."""
    return Path(dataroot) / "maps" / "expansion" / f"{location}.json"


class LaneMap:
    """One location's map expansion (devkit NuScenesMap) and the lane queries drivechain needs."""

    def __init__(self, dataroot: Path, location: str) -> None:
        from nuscenes.map_expansion.map_api import NuScenesMap

        with contextlib.redirect_stdout(io.StringIO()):
            self.map = NuScenesMap(dataroot=str(dataroot), map_name=location)
        self._polygons: dict[str, object] = {}

    def polygon(self, token: str):
        """The shapely polygon of a lane or lane connector."""
        if token not in self._polygons:
            layer = "lane" if token in self.map._token2ind["lane"] else "lane_connector"
            self._polygons[token] = self.map.extract_polygon(self.map.get(layer, token)["polygon_token"])
        return self._polygons[token]

    def lanes_near(self, x_m: float, y_m: float) -> list[Lane]:
        """Centre lines of the lanes and connectors near a world point, sorted by token."""
        found = self.map.get_records_in_radius(x_m, y_m, LANE_RADIUS_M, ["lane", "lane_connector"])
        tokens = sorted(found["lane"] + found["lane_connector"])
        lines = self.map.discretize_lanes(tokens, 1.0)
        return [Lane(id=t, polyline_m=[(round(p[0], 3), round(p[1], 3)) for p in lines[t]], width_m=LANE_WIDTH_M)
                for t in tokens if lines[t]]

    def lane_at(self, x_m: float, y_m: float) -> str | None:
        """The lane under a world point (a lane before a connector), or None off the lanes."""
        from shapely.geometry import Point

        lane = self.map.record_on_point(x_m, y_m, "lane")
        if lane:
            return lane
        near = self.map.get_records_in_radius(x_m, y_m, 0.5, ["lane_connector"])["lane_connector"]
        return next((t for t in sorted(near) if self.polygon(t).contains(Point(x_m, y_m))), None)

    def ego_lane(self, ego_lane: str, path_world: list[tuple[float, float]]) -> list[str]:
        """The ego's lane ahead and behind: its lane, successors its recorded path enters, the single predecessor."""
        from shapely.geometry import Point

        chain, current = [ego_lane], ego_lane
        for _ in range(CHAIN_STEPS):
            nxt = [t for t in self.map.connectivity.get(current, {}).get("outgoing", [])
                   if any(self.polygon(t).contains(Point(p)) for p in path_world)]
            if len(nxt) != 1:
                break  # the path leaves the lane sideways (a lane change) or the map is ambiguous here
            current = nxt[0]
            chain.append(current)
        incoming = self.map.connectivity.get(ego_lane, {}).get("incoming", [])
        if len(incoming) == 1:
            chain.insert(0, incoming[0])
        return chain

    def membership(self, chain: list[str], x_m: float, y_m: float) -> tuple[bool, float]:
        """(centre inside the ego's lane, distance to that lane's edge [m])."""
        from shapely.geometry import Point
        from shapely.ops import unary_union

        area = unary_union([self.polygon(t) for t in chain])
        p = Point(x_m, y_m)
        return bool(area.contains(p)), float(area.exterior.distance(p) if area.geom_type == "Polygon"
                                             else area.boundary.distance(p))
