"""IEC 61851-1 settings of a connector: timings, fault policy and derating, typed.

Built from the ``[iec61851]`` table (``evse.config_schema.IEC61851``, where each key's range
and unit is declared) and ``[[connector]] ventilation``. Defaults are the values the
standard requires; tests shorten none of them, they drive a manual clock instead.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


class RcdSelfTest(enum.Enum):
    """When the RCD is self-tested before the contactor closes."""

    EVERY_SESSION = "every_session"
    NEVER = "never"


class MeterFailurePolicy(enum.Enum):
    """What a failing energy meter does to the connector."""

    STOP = "stop"
    CONTINUE = "continue"


@dataclass(frozen=True)
class Iec61851Settings:
    """Timings (s), thresholds (°C, A, %) and policies; see ``[iec61851]`` in the docs.

    Attributes:
        pwm_off_timeout_s: PWM withdrawn, EV stays in C → contactor forced open after this
            (IEC 61851-1 Table A.6 seq. 10.2, ≤ 6 s).
        duty_change_interval_s: minimum time between PWM duty changes (IEC 61851-1 A.5.2, 5 s).
        state_f_min_s: minimum state F duration after a fault (IEC 61851-1, ≥ 300 ms).
        fault_retry_s: retry delay of self-clearing faults.
        rcd_retry_s: retry delay after a residual current trip.
        rcd_max_trips: trips after which the RCD fault latches for a technician.
        rcd_self_test: RCD self-test policy before each session's first close.
        overcurrent_margin_percent / overcurrent_margin_a: tolerated draw above the offer.
        overcurrent_time_s: over-current lasting longer than this stops charging.
        derating_start_c / derating_step_c / derating_step_percent: derating steps.
        overtemp_trip_c / overtemp_hysteresis_c: HighTemperature trip and clear levels.
        meter_failure: meter failure policy.
    """

    pwm_off_timeout_s: float = 6.0
    duty_change_interval_s: float = 5.0
    state_f_min_s: float = 0.3
    fault_retry_s: float = 30.0
    rcd_retry_s: float = 300.0
    rcd_max_trips: int = 3
    rcd_self_test: RcdSelfTest = RcdSelfTest.EVERY_SESSION
    overcurrent_margin_percent: float = 10.0
    overcurrent_margin_a: float = 0.5
    overcurrent_time_s: float = 7.0
    derating_start_c: float = 60.0
    derating_step_c: float = 5.0
    derating_step_percent: float = 25.0
    overtemp_trip_c: float = 80.0
    overtemp_hysteresis_c: float = 10.0
    meter_failure: MeterFailurePolicy = MeterFailurePolicy.STOP

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> Iec61851Settings:
        """From a validated ``[iec61851]`` table (missing keys take the defaults)."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in table:
                continue
            value = table[f.name]
            if f.name == "rcd_self_test":
                value = RcdSelfTest(value)
            elif f.name == "meter_failure":
                value = MeterFailurePolicy(value)
            kwargs[f.name] = value
        return cls(**kwargs)

    def overcurrent_threshold_a(self, offered_a: float) -> float:
        """Highest current per phase tolerated for ``offered_a`` (A): +10 % + 0.5 A."""
        return offered_a * (1.0 + self.overcurrent_margin_percent / 100.0) + \
            self.overcurrent_margin_a
