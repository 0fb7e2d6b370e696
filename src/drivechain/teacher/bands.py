"""Every threshold and band the perception and prediction families use, in one place (docs/questions.md).

A rule "x < T" has a band [T - b, T + b]: a frame whose x falls inside it accepts both answers
(BooleanAnswer.accept_both, or both neighbouring choices) or is marked ambiguous (not scored).
Units are in the names.
"""

from __future__ import annotations

# --- geometry --------------------------------------------------------------------------------
STRAIGHT_LANE_MAX_TURN_RAD = 0.05
"""The ego lane counts as straight (lane families apply) if its heading turns less than this near the ego."""
LANE_FAMILY_SCENARIOS = frozenset({"highway", "merge", "exit"})
"""Scenarios whose roads are parallel straight lanes indexed from the left (highway-env: LANE_LEFT = index - 1)."""
CROSSING_SCENARIOS = frozenset({"intersection", "roundabout"})
"""Scenarios where the path-crossing family applies."""
# the corner cases (sources/corner_cases.py) share the rules of the scenario whose road they use
from drivechain.sources.corner_cases import with_corner_cases  # noqa: E402

LANE_FAMILY_SCENARIOS, CROSSING_SCENARIOS = map(with_corner_cases, (LANE_FAMILY_SCENARIOS, CROSSING_SCENARIOS))

LANE_STRADDLE_BAND = 0.2
"""A vehicle whose lateral offset is within this fraction of a lane width of a lane boundary is
straddling: both lanes are accepted (it is half-way through a lane change)."""

AHEAD_BAND_M = 2.5
"""|longitudinal centre offset| below this: the vehicle is alongside, 'ahead' and 'behind' both accepted."""

# --- perception --------------------------------------------------------------------------------
LANE_FREE_BAND_M = 2.0
"""A neighbouring lane is free when every vehicle in it keeps its RSS longitudinal distance from the
ego at the current speeds (teacher/rss.py); gaps within that distance +- this accept both answers."""

LEAD_DISTANCE_ABS_TOL_M = 2.0
LEAD_DISTANCE_REL_TOL = 0.1
"""Tolerance of the lead distance (bumper to bumper, along the lane)."""
LEAD_TIE_M = 2.0
"""Two lead candidates within this distance of each other make the lead ambiguous."""

SAME_SPEED_MPS = 1.0
"""|v_lead - v_ego| below this is 'about the same speed'."""
SAME_SPEED_BAND_MPS = 0.5
"""|dv| within SAME_SPEED_MPS +- this accepts 'same' and the neighbouring answer."""
CLOSING_ABS_TOL_MPS = 1.0
"""Tolerance of a closing speed (per.closing) [m/s]: what 'about the same speed' leaves unresolved."""

EXISTS_RANGE_M = 30.0
"""Existence questions look this far (centre distance along the lane) ahead or behind."""
COUNT_NEAR_BAND_M = 1.0
"""per.count.near: vehicles within EXISTS_RANGE_M +- this widen the count's tolerance by one each (not ambiguous)."""
EXISTS_BAND_M = 3.0
"""A vehicle within EXISTS_RANGE_M +- this makes the existence answer accept both."""

REFER_TIE_M = 2.0
"""Referring questions ('the closest one behind'): a runner-up within this distance makes it ambiguous."""

# --- prediction --------------------------------------------------------------------------------
CUT_IN_BAND_M = 0.5
"""A vehicle 'enters the ego lane' when its centre comes within half a lane width of the ego lane
centre line; a closest approach within half a width +- this accepts both answers."""
CUT_IN_RANGE_M = 40.0
"""Cut-in questions are asked about adjacent-lane vehicles within this longitudinal distance."""

ACCEL_MPS2 = 0.5
"""Mean acceleration over the horizon above +this is accelerating, below -this braking, else steady."""
ACCEL_BAND_MPS2 = 0.25
"""|mean acceleration| within ACCEL_MPS2 +- this accepts 'steady' and the neighbouring answer."""

TTC_MIN_CLOSING_MPS = SAME_SPEED_MPS
"""The ego closes on the lead only if v_ego - v_lead exceeds this; otherwise TTC is none (equal to
per.lead_speed's 'about the same speed' threshold, so a lead about as fast never has a TTC)."""
TTC_CLOSING_BAND_MPS = 0.3
"""Closing speeds within TTC_MIN_CLOSING_MPS +- this: TTC is ambiguous (none or a huge number)."""
TTC_ABS_TOL_S = 0.5
TTC_REL_TOL = 0.2
TTC_MAX_S = 30.0
"""A constant-velocity TTC above this is reported as none (not closing in any practical sense)."""

NEAR_EGO_M = 10.0
"""'Comes within D m of the ego': centre-to-centre distance below this at some future sample."""
NEAR_EGO_BAND_M = 2.0
"""Vehicles whose closest approach is within NEAR_EGO_M +- this are optional (ObjectsAnswer.optional_ids)."""

PATH_CROSS_RADIUS_M = 2.0
"""Two future paths cross where they come closer than this."""
PATH_CROSS_MIN_ANGLE_RAD = 0.5
"""Paths meeting at a smaller angle are following / merging, not crossing: not asked."""
CROSS_ORDER_BAND_S = 0.5
"""Arrival times at the crossing point within this of each other accept both answers."""
PATH_DENSIFY_M = 0.5
"""Future paths (0.5 s samples) are resampled at this spacing before crossing tests."""
PATH_CROSS_GRAZE_M = 0.75
"""Paths whose contact comes no closer than PATH_CROSS_RADIUS_M - this only graze: both answers accepted
(future samples are 0.5 s apart, and a chord cuts a roundabout's arc by up to ~0.7 m)."""
PATH_CROSS_BAND_M = 1.0
"""Paths that come within PATH_CROSS_RADIUS_M + this, but not within PATH_CROSS_RADIUS_M, accept both."""
EGO_ROUTE_AHEAD_M = 50.0
"""The ego's path for crossings continues this far along its route beyond its H-second future."""
EGO_STOPPED_MPS = 0.1
"""Beyond H the ego is timed at its last future speed, floored at this (a stopped ego arrives 'never')."""
