"""Energy meter interface and its reading."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


class PowerMeterFailure(Exception):
    """The meter did not answer, answered garbage, or its values cannot be trusted.

    ``reason`` says why (timeout, exception response, NaN, frozen, energy went backwards...).
    A meter never returns a stale value instead of raising this (DESIGN.md, Facts for drivers).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One meter reading.

    Attributes:
        energy_active_import_wh: Energy.Active.Import.Register, Wh (monotonic).
        power_active_w: Power.Active.Import total over all phases, W.
        voltage_v: per-phase voltage L1–L3 (L-N), V; length = phases measured.
        current_a: per-phase current L1–L3, A.
        timestamp: ``time.time()`` (UTC seconds) when the reading was taken.
    """

    energy_active_import_wh: float
    power_active_w: float
    voltage_v: tuple[float, ...] = field(default=())
    current_a: tuple[float, ...] = field(default=())
    timestamp: float = 0.0


class EnergyMeter(ABC):
    """A connector's energy meter."""

    @abstractmethod
    def read(self) -> MeterReading:
        """Read the meter now.

        Blocking for bus meters (Modbus/CAN): call from a worker thread.

        Raises:
            PowerMeterFailure: the meter cannot give a trustworthy value now.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the transport."""
