"""The charge point's UTC clock for timestamps: monotonic-anchored, corrected by the CSMS.

A controller board without an RTC boots with a system time of 1970 (or whatever
fake-hwclock saved), and NTP may come late or never. Timestamps of sessions, meter values
and queued OCPP messages must still be usable, so:

- the clock starts at ``max(system time, last persisted instant, EARLIEST_PLAUSIBLE_S)``
  and advances with ``time.monotonic()`` — it never goes backwards and never says 1970;
- the first CSMS time of a run (BootNotification.conf / Heartbeat.conf ``currentTime``,
  OCPP 1.6 §4.2, §4.6) *synchronizes* it; listeners registered with
  :meth:`Clock.on_first_sync` get the correction (seconds) and shift the timestamps they
  stamped before it (queued messages, open sessions);
- later CSMS times only trim drift, still without going backwards.

The core (``evse``) stamps events with it; the protocol adapter feeds it the CSMS time.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

log = logging.getLogger(__name__)

#: No timestamp earlier than this is ever produced: 2024-01-01T00:00:00Z, UTC epoch s.
EARLIEST_PLAUSIBLE_S = 1_704_067_200.0


class Clock:
    """UTC epoch seconds for timestamps.

    Args:
        floor_s: an instant known to have passed already (e.g. the newest persisted
            timestamp), UTC epoch s; the clock never starts before it.
        wall: the system wall clock (``time.time``), injectable for tests.
        monotonic: the monotonic clock (``time.monotonic``), injectable for tests.
    """

    def __init__(self, floor_s: float = 0.0, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        start = max(wall(), floor_s, EARLIEST_PLAUSIBLE_S)
        self._base = start - monotonic()
        self._last = start
        #: The clock's value when this run started (after :meth:`raise_floor`); an older
        #: timestamp was not stamped by this run and is never corrected by its sync.
        self.run_started_s = start
        #: True once a CSMS time arrived in this run.
        self.synced = False
        #: Identifies this run: timestamps stamped before sync can only be corrected by
        #: the run that stamped them (the monotonic clock restarts with the process).
        self.run_id = uuid.uuid4().hex
        self._listeners: list[Callable[[float], None]] = []

    def now(self) -> float:
        """Current UTC epoch seconds, never less than a value returned before."""
        value = max(self._monotonic() + self._base, self._last)
        self._last = value
        return value

    def raise_floor(self, floor_s: float) -> None:
        """Before sync: make sure the clock is at least ``floor_s`` (UTC epoch s), e.g.
        the newest timestamp found in the state database after a restart."""
        if not self.synced and floor_s > self.now():
            self._base += floor_s - self.now()
            self._last = max(self._last, floor_s)
            self.run_started_s = max(self.run_started_s, floor_s)

    def stamped_unsynced(self, timestamp_s: float) -> bool:
        """Whether ``timestamp_s`` was stamped by this run before its first sync, and so
        needs the correction listeners get (older timestamps come from persisted data)."""
        return not self.synced and timestamp_s >= self.run_started_s

    def on_first_sync(self, listener: Callable[[float], None]) -> None:
        """Call ``listener(correction_s)`` once, when the first CSMS time arrives; the
        correction is what to add to timestamps stamped before that (may be negative)."""
        self._listeners.append(listener)

    def sync(self, utc_s: float) -> float:
        """Take the CSMS's time (UTC epoch s); returns the correction applied, s.

        The first sync of a run steps the clock (and tells the listeners); later ones
        adjust for drift, but ``now()`` still never goes backwards.
        """
        correction = utc_s - (self._monotonic() + self._base)
        self._base += correction
        if not self.synced:
            self.synced = True
            self._last = self._monotonic() + self._base
            if abs(correction) > 1.0:
                log.warning("clock corrected by %.3f s from the CSMS time", correction)
            for listener in self._listeners:
                try:
                    listener(correction)
                except Exception:
                    log.exception("clock correction listener failed")
        return correction
