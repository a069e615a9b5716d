"""Contactor (main power relay) interface, with optional mirror-contact feedback and the
*inhibits* the board's interlock sets on it.

The contactor output must be active-high with a pull-down in hardware, so a crashed or
stopped process leaves it open (DESIGN.md "Safety first"; docs/hardware.md, "Hardware
interlock requirements").

Inhibits (DESIGN.md "Safety first"): a safety input (RCD trip, pilot E/F/diode fault,
over-temperature, feedback disagreement, a dead sampler, ...) calls :meth:`Contactor.inhibit`
on the thread that saw it. That drives the output low at once, then books the cause under
the contactor's lock. :meth:`Contactor.close` writes the output only under that same lock and
only while no inhibit holds and the interlock's live permit passes, and checks the permit
again after writing. A refused close returns False; it never raises for an inhibit. Inhibits
are cleared with :meth:`Contactor.release_inhibit` (normally through
:meth:`hal.interlock.ConnectorInterlock.release`), which refuses while the cause is present.
"""

from __future__ import annotations

import enum
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

ContactorFaultListener = Callable[[str], None]


class InhibitCause(enum.Enum):
    """Why the interlock holds a contactor open (see :mod:`hal.interlock`)."""

    #: The pilot does not read C (or D where ventilation is available) with a good diode.
    #: A *permit*, not a fault: the interlock sets and clears it itself as the pilot moves.
    PILOT_NOT_READY = "pilot_not_ready"
    #: Pilot state E (CP shorted), F not driven by the EVSE, or a diode fault
    #: (IEC 61851-1 A.2.3).
    PILOT_FAULT = "pilot_fault"
    #: The RCD / RDC-DD reports a residual current trip.
    RCD_TRIP = "rcd_trip"
    #: Temperature at or above the trip level.
    OVERTEMP = "overtemp"
    #: Mirror contact stays closed after open.
    WELDED = "welded"
    #: Mirror contact did not follow a close.
    FAILED_TO_CLOSE = "failed_to_close"
    #: A safety input went silent: pilot sampler stale, pilot co-processor silent beyond
    #: its heartbeat period, temperature sensor stale.
    LIVENESS = "liveness"
    #: The pilot co-processor sent a corrupt frame or an ``E`` (error) line.
    COPROCESSOR = "coprocessor"


#: ``permit()`` of the interlock: None = closing is allowed now, else the cause and a text.
Permit = Callable[[], "tuple[InhibitCause, str] | None"]
#: ``still_present(cause)`` of the interlock: None = the cause is gone, else why not.
ReleaseCheck = Callable[[InhibitCause], "str | None"]


class Contactor(ABC):
    """Switches the connector's power.

    Drivers implement :meth:`_drive` (write the output) and the state properties; the base
    class owns the lock, the inhibits and the close/open protocol. ``open()`` is safe to call
    from any thread, any number of times, and blocks on nothing but the output itself.
    """

    def __init__(self) -> None:
        self._fault_listeners: list[ContactorFaultListener] = []
        #: The contactor's lock: every write of "closed" and every inhibit is made under it.
        #: Re-entrant: a driver may report a fault (and so be inhibited) from inside close().
        self._guard = threading.RLock()
        self._inhibits: dict[InhibitCause, str] = {}
        self._permit: Permit | None = None
        self._release_check: ReleaseCheck | None = None

    def add_fault_listener(self, listener: ContactorFaultListener) -> None:
        """Register ``listener(reason)``, called on the driver's thread when the feedback
        contact disagrees with the command for longer than the driver's window
        (``"welded"`` when it stays closed after open, ``"failed_to_close"`` otherwise)."""
        self._fault_listeners.append(listener)

    def _emit_fault(self, reason: str) -> None:
        for listener in self._fault_listeners:
            listener(reason)

    # -- interlock --------------------------------------------------------------------------
    def set_interlock(self, permit: Permit | None, release_check: ReleaseCheck | None) -> None:
        """Install the interlock's live permit (read under the lock before and after every
        close) and its release check (see :meth:`release_inhibit`)."""
        with self._guard:
            self._permit = permit
            self._release_check = release_check

    def inhibit(self, cause: InhibitCause, detail: str = "") -> bool:
        """Drive the output low at once, then hold ``cause`` under the lock (the output is
        written low again there, so a close that raced the first write loses). Any thread;
        never logs, never blocks on more than the lock. Returns True when ``cause`` is new."""
        self._drive(False)
        with self._guard:
            new = cause not in self._inhibits
            self._inhibits[cause] = detail
            self._drive(False)
            self._after_write()
        return new

    def release_inhibit(self, cause: InhibitCause) -> bool:
        """Drop ``cause``. Refused (False) while the interlock's release check says the cause
        is still present; True when it was held and is now gone."""
        with self._guard:
            if cause not in self._inhibits:
                return False
            check = self._release_check
            if check is not None and check(cause) is not None:
                return False
            del self._inhibits[cause]
            return True

    @property
    def inhibits(self) -> Mapping[InhibitCause, str]:
        """The inhibits held now (cause → text); a copy."""
        with self._guard:
            return dict(self._inhibits)

    def _refusal(self) -> tuple[InhibitCause, str] | None:
        """Call with the lock held: why closing is not allowed now (None = allowed)."""
        if self._inhibits:
            cause, detail = next(iter(self._inhibits.items()))
            return cause, detail
        permit = self._permit
        return permit() if permit is not None else None

    # -- commands ---------------------------------------------------------------------------
    def close(self) -> bool:
        """Command the contactor closed (energize the connector).

        Returns True when the output was written closed; False, with the output left low,
        when an inhibit holds or the interlock's permit fails (before or right after the
        write: a trip edge whose callback has not run yet still wins). Never raises for a
        refusal.
        """
        with self._guard:
            if self._refusal() is not None:
                return False
            self._drive(True)
            again = self._refusal()
            if again is not None:
                self._drive(False)
                self._inhibits.setdefault(*again)
            self._after_write()
            return again is None

    def open(self) -> None:
        """Command the contactor open. Thread-safe, idempotent, non-blocking: the output is
        written low first, without the lock (low is always safe)."""
        self._drive(False)
        self._after_write()

    @abstractmethod
    def _drive(self, closed: bool) -> None:
        """Write the output (True = contactor closed). Must be quick and thread-safe."""

    def _after_write(self) -> None:  # noqa: B027 - optional hook
        """Bookkeeping after the output was written (feedback supervision). It must read
        the output back rather than trust the last command: a lock-free ``open()`` on another
        thread may have written after it."""

    @property
    @abstractmethod
    def commanded_closed(self) -> bool:
        """True while the output commands the contactor closed."""

    @property
    @abstractmethod
    def feedback_closed(self) -> bool | None:
        """Mirror-contact state (True = closed), or None when no feedback is wired."""

    def close_hw(self) -> None:
        """Release the hardware, leaving the contactor open."""
        self.open()
