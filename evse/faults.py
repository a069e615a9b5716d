"""Fault latching and recovery policy of a connector.

Each fault cause (:class:`~evse.domain.Fault`) has a recovery rule (which protocol error
code a cause is reported as is the adapters' business, e.g. ``ocpp_client.v16.mapping``):

* ``RETRY``: leave the fault after a delay if the cause is gone (pilot E / diode / ventilation,
  over-current, lock, contactor failed to close; RCD trips until ``rcd_max_trips``);
* ``CONDITION``: leave the fault as soon as the cause is gone (over-temperature with
  hysteresis, meter answering again, a station-wide fault cleared);
* ``TECHNICIAN``: latched until a technician resets it locally (welded contactor, failed RCD
  self-test, ``rcd_max_trips`` residual current trips). A CSMS command cannot clear it
  (DESIGN.md, Safety first).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from evse.domain import Fault
from evse.iec61851 import Iec61851Settings


class Recovery(enum.Enum):
    """How a fault is left (see module docstring)."""

    RETRY = "retry"
    CONDITION = "condition"
    TECHNICIAN = "technician"


#: Recovery rule of each fault before trip counting (see module docstring).
BASE_RECOVERY: dict[Fault, Recovery] = {
    Fault.RCD_TRIP: Recovery.RETRY,
    Fault.RCD_SELF_TEST: Recovery.TECHNICIAN,
    Fault.PILOT_E: Recovery.RETRY,
    Fault.PILOT_F: Recovery.RETRY,
    Fault.DIODE: Recovery.RETRY,
    Fault.VENTILATION: Recovery.RETRY,
    Fault.WELDED: Recovery.TECHNICIAN,
    Fault.FAILED_CLOSE: Recovery.RETRY,
    Fault.OVERCURRENT: Recovery.RETRY,
    Fault.OVERTEMP: Recovery.CONDITION,
    Fault.METER: Recovery.CONDITION,
    Fault.LOCK: Recovery.RETRY,
    Fault.STATION: Recovery.CONDITION,
    Fault.INTERLOCK: Recovery.CONDITION,
}


@dataclass(frozen=True)
class ActiveFault:
    """A fault currently held: its cause, text and how it is left."""

    fault: Fault
    info: str
    recovery: Recovery
    retry_s: float


class FaultLatch:
    """The faults one connector holds, and its residual current trip count.

    Loop-side only (the safety path opens the contactor before this is touched).
    """

    def __init__(self, settings: Iec61851Settings) -> None:
        self.settings = settings
        self.active: dict[Fault, ActiveFault] = {}
        #: Residual current trips since the last technician reset.
        self.rcd_trips = 0

    def raise_fault(self, fault: Fault, info: str) -> ActiveFault:
        """Record ``fault``; returns its entry with the recovery rule that applies now."""
        recovery = BASE_RECOVERY[fault]
        retry_s = self.settings.fault_retry_s
        if fault is Fault.RCD_TRIP:
            self.rcd_trips += 1
            retry_s = self.settings.rcd_retry_s
            if self.rcd_trips >= self.settings.rcd_max_trips:
                recovery = Recovery.TECHNICIAN
                info = f"{info} ({self.rcd_trips} trips: technician reset required)"
        entry = ActiveFault(fault, info, recovery, retry_s)
        previous = self.active.get(fault)
        if previous is not None and previous.recovery is Recovery.TECHNICIAN:
            entry = previous  # a latched fault never softens
        self.active.pop(fault, None)
        self.active[fault] = entry  # most recent last
        return entry

    def clear(self, fault: Fault) -> bool:
        """Drop a non-latched ``fault``; True when it was held and is now gone."""
        entry = self.active.get(fault)
        if entry is None or entry.recovery is Recovery.TECHNICIAN:
            return False
        del self.active[fault]
        return True

    def technician_reset(self) -> None:
        """A technician cleared the connector locally: every fault and the trip count go."""
        self.active.clear()
        self.rcd_trips = 0

    @property
    def latched(self) -> bool:
        """A fault only a technician can clear is held."""
        return any(e.recovery is Recovery.TECHNICIAN for e in self.active.values())

    @property
    def current(self) -> ActiveFault | None:
        """The fault to report: a latched one first, else the most recent."""
        for entry in self.active.values():
            if entry.recovery is Recovery.TECHNICIAN:
                return entry
        return next(reversed(self.active.values()), None)


__all__ = ["BASE_RECOVERY", "ActiveFault", "Fault", "FaultLatch", "Recovery"]
