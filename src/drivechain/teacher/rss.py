"""Responsibility-Sensitive Safety distances (Shalev-Shwartz, Shammah, Shashua 2017), in metres.

Longitudinal (same direction, rear vehicle r behind front vehicle f):

    d_long = [ v_r·ρ + ½·a_acc·ρ² + (v_r + ρ·a_acc)² / (2·b_min) − v_f² / (2·b_max) ]₊

the distance the rear vehicle needs if, during its response time ρ, it still accelerates at
a_acc and then brakes at only b_min, while the front vehicle brakes as hard as b_max.

Lateral (two vehicles side by side, v₁ and v₂ their lateral speeds TOWARD each other):

    d_lat = μ + [ s(v₁) + s(v₂) ]₊,   s(v) = v·ρ + ½·a_lat·ρ² + (v + ρ·a_lat)·|v + ρ·a_lat| / (2·b_lat)

each vehicle may drift toward the other at a_lat during ρ, then brakes its lateral motion at b_lat;
μ is a fluctuation margin. A pair is in a dangerous situation only when BOTH distances are
violated (RSS's definition); docs/planning.md gives the rule and where each parameter comes from.

Parameters are those of highway-env's own vehicles, so "safe" means safe among the simulator's
drivers: every vehicle there brakes with the same physics, so b_min = b_max = 6 m/s² (the hardest
braking an IDM vehicle applies, its ACC_MAX clip; the ego's own speed controller brakes harder);
a_acc = 3 m/s² is the IDM's comfortable acceleration (COMFORT_ACC_MAX). With RSS's road-car
asymmetry (b_min 4, b_max 8 m/s²) a 50 m gap at 25 m/s would be "unsafe" and highway-env's own IDM
traffic, which keeps a 1.5 s headway, would violate RSS in most frames.
"""

from __future__ import annotations

from dataclasses import dataclass

RESPONSE_S = 0.5
"""ρ: response time [s] (a driver's reaction; also when the look-ahead starts checking distances)."""
ACCEL_MAX_MPS2 = 3.0
"""a_acc: the most the rear vehicle may still accelerate during ρ [m/s²] (IDM COMFORT_ACC_MAX)."""
BRAKE_MIN_MPS2 = 6.0
"""b_min: braking the rear vehicle surely applies after ρ [m/s²] (= b_max: identical vehicles)."""
BRAKE_MAX_MPS2 = 6.0
"""b_max: the hardest braking the front vehicle may apply [m/s²] (IDM ACC_MAX)."""
LAT_ACCEL_MAX_MPS2 = 0.2
"""a_lat: lateral drift acceleration during ρ [m/s²] (RSS's usual value)."""
LAT_BRAKE_MIN_MPS2 = 0.8
"""b_lat: lateral braking after ρ [m/s²] (RSS's usual value)."""
LAT_MARGIN_M = 0.2
"""μ: lateral fluctuation margin [m]."""


def longitudinal_m(rear_speed_mps: float, front_speed_mps: float) -> float:
    """RSS safe longitudinal distance [m] (bumper to bumper) for rear/front speeds [m/s] along the lane."""
    v_r, v_f = max(rear_speed_mps, 0.0), max(front_speed_mps, 0.0)
    rho, a, b_min, b_max = RESPONSE_S, ACCEL_MAX_MPS2, BRAKE_MIN_MPS2, BRAKE_MAX_MPS2
    d = v_r * rho + 0.5 * a * rho**2 + (v_r + rho * a) ** 2 / (2 * b_min) - v_f**2 / (2 * b_max)
    return max(d, 0.0)


def _lateral_travel(v_toward_mps: float) -> float:
    rho, a, b = RESPONSE_S, LAT_ACCEL_MAX_MPS2, LAT_BRAKE_MIN_MPS2
    v_end = v_toward_mps + rho * a
    return v_toward_mps * rho + 0.5 * a * rho**2 + v_end * abs(v_end) / (2 * b)


def lateral_m(v1_toward_mps: float, v2_toward_mps: float = 0.0) -> float:
    """RSS safe lateral distance [m] (footprint to footprint) for two lateral speeds toward each other [m/s]."""
    return LAT_MARGIN_M + max(_lateral_travel(v1_toward_mps) + _lateral_travel(v2_toward_mps), 0.0)


@dataclass(frozen=True)
class Check:
    """One vehicle against the ego at one instant: gaps, RSS distances, and which condition fails."""

    agent_id: int
    t_s: float
    ahead: bool
    gap_long_m: float
    required_long_m: float
    gap_lat_m: float
    required_lat_m: float
    rear_speed_mps: float = 0.0
    front_speed_mps: float = 0.0

    @property
    def margin_m(self) -> float:
        """gap − RSS distance along the lane [m]; negative: the longitudinal condition is violated."""
        return self.gap_long_m - self.required_long_m

    @property
    def lateral_conflict(self) -> bool:
        """The lateral condition is violated (the pair is side by side closer than d_lat, or in one lane)."""
        return self.gap_lat_m < self.required_lat_m

    @property
    def dangerous(self) -> bool:
        """RSS's dangerous situation: both conditions violated."""
        return self.lateral_conflict and self.margin_m < 0.0

    def sentence(self) -> str:
        """What is violated, in metres (for explanations)."""
        where = "ahead of" if self.ahead else "behind"
        return (f"{self.gap_long_m:.1f} m {where} the ego where RSS needs {self.required_long_m:.1f} m "
                f"(lateral gap {max(self.gap_lat_m, 0.0):.1f} m, RSS lateral distance {self.required_lat_m:.1f} m)")


__all__ = ["longitudinal_m", "lateral_m", "Check", "RESPONSE_S", "ACCEL_MAX_MPS2", "BRAKE_MIN_MPS2",
           "BRAKE_MAX_MPS2", "LAT_ACCEL_MAX_MPS2", "LAT_BRAKE_MIN_MPS2", "LAT_MARGIN_M"]
