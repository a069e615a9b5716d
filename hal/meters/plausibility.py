"""Fault checks shared by bus meters: never hand out a stale or implausible value.

A reading is refused (:class:`hal.meter.PowerMeterFailure`) when a value is NaN/infinite,
when the energy register goes backwards, or when every value stays frozen for
``frozen_after_s`` while current flows (a meter whose firmware hung keeps answering the last
values). Recovery is automatic: the next sane reading is accepted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from hal.meter import MeterReading, PowerMeterFailure


class ReadingGuard:
    """Checks successive readings of one meter.

    Args:
        frozen_after_s: seconds all values may stay bit-identical while current flows
            before the meter counts as frozen (0 disables the check).
        current_threshold_a: per-phase current above which "current flows", A.
        clock: monotonic clock (seconds), injectable for tests of other callers.
    """

    def __init__(
        self,
        frozen_after_s: float = 30.0,
        current_threshold_a: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.frozen_after_s = frozen_after_s
        self.current_threshold_a = current_threshold_a
        self._clock = clock
        self._last_energy_wh: float | None = None
        self._last_values: tuple[float, ...] | None = None
        self._unchanged_since: float = 0.0

    def check(self, reading: MeterReading) -> MeterReading:
        """Return ``reading`` if it is trustworthy.

        Raises:
            PowerMeterFailure: NaN/infinite value, energy register went backwards, or values
                frozen while current flows.
        """
        values = (
            reading.energy_active_import_wh,
            reading.power_active_w,
            *reading.voltage_v,
            *reading.current_a,
        )
        if any(math.isnan(v) or math.isinf(v) for v in values):
            raise PowerMeterFailure(f"meter returned a non-number: {values}")
        energy = reading.energy_active_import_wh
        if self._last_energy_wh is not None and energy < self._last_energy_wh:
            raise PowerMeterFailure(
                f"energy register went backwards: {energy} Wh < {self._last_energy_wh} Wh"
            )
        now = self._clock()
        flowing = any(abs(i) > self.current_threshold_a for i in reading.current_a)
        if values != self._last_values or not flowing:
            self._last_values = values
            self._unchanged_since = now
        elif self.frozen_after_s > 0 and now - self._unchanged_since >= self.frozen_after_s:
            raise PowerMeterFailure(
                f"values frozen for {now - self._unchanged_since:.1f} s while "
                f"{max(reading.current_a):.1f} A flows"
            )
        self._last_energy_wh = energy
        return reading
