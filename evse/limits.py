"""Charging-current resolution: what a connector may offer the EV, and why.

offered = min(connector rating, cable ampacity from PP, station / grid limit, charging limit
from the protocol side, temperature derating). Below 6 A the EVSE pauses (SuspendedEVSE)
rather than announcing a duty under 10 % (IEC 61851-1 Table A.7).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from evse.iec61851 import Iec61851Settings
from hal.pilot import MAX_CURRENT_A, MIN_CURRENT_A, duty_for_current


@dataclass(frozen=True)
class CurrentLimit:
    """The resolved current per phase (A) and the name of the limit that set it."""

    current_a: float
    limited_by: str

    @property
    def allows_charging(self) -> bool:
        """At least 6 A: charging may run (IEC 61851-1 Table A.7)."""
        return self.current_a >= MIN_CURRENT_A

    @property
    def duty_percent(self) -> float | None:
        """PWM duty announcing the current (IEC formula), or None when charging pauses."""
        if not self.allows_charging:
            return None
        return duty_for_current(min(self.current_a, MAX_CURRENT_A))


def resolve_current(
    connector_max_a: float,
    station_limit_a: float,
    cable_ampacity_a: float | None = None,
    charging_limit_a: float | None = None,
    derating_a: float | None = None,
    charging_limit_source: str = "charging_limit",
) -> CurrentLimit:
    """The lowest of the applicable limits per phase, amperes (never negative).

    Args:
        connector_max_a: rated current of the connector.
        station_limit_a: station / grid limit.
        cable_ampacity_a: cable ampacity read from the PP resistor (IEC 61851-1 B.5), if any.
        charging_limit_a: limit from the protocol side (charging profile), if any.
        derating_a: temperature derating limit, if derating is active.
        charging_limit_source: the name reported when ``charging_limit_a`` sets the
            result (e.g. ``"profile 7"``, ``"load balancing"``).
    """
    candidates: list[tuple[float, str]] = [
        (connector_max_a, "connector"),
        (station_limit_a, "station"),
    ]
    for value, name in ((cable_ampacity_a, "cable"), (charging_limit_a, charging_limit_source),
                        (derating_a, "derating")):
        if value is not None:
            candidates.append((value, name))
    value, name = min(candidates, key=lambda c: c[0])
    return CurrentLimit(max(0.0, value), name)


def derating_limit_a(temperature_c: float | None, rated_a: float,
                     settings: Iec61851Settings) -> float | None:
    """Current limit (A) at ``temperature_c``, or None below the derating start.

    Each started ``derating_step_c`` above ``derating_start_c`` removes
    ``derating_step_percent`` of ``rated_a``; at and above ``overtemp_trip_c`` the limit is 0.
    """
    if temperature_c is None or temperature_c < settings.derating_start_c:
        return None
    if temperature_c >= settings.overtemp_trip_c:
        return 0.0
    steps = 1 + math.floor((temperature_c - settings.derating_start_c) / settings.derating_step_c)
    return max(0.0, rated_a * (1.0 - steps * settings.derating_step_percent / 100.0))
