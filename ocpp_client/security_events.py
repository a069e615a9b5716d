"""Security events of the station: every one in the bounded local security log, the ones
the CSMS must hear queued durably in the outbox (1.6 security whitepaper ed. 3, "Security
events" and Appendix 1; OCPP 2.0.1 A04).

Version-neutral: the adapter passes ``to_call`` (the event → its outbox action and payload,
e.g. 1.6 SecurityEventNotification). The log row and the queued message commit together
(one SQLite transaction), so after a power cut the CSMS hears of an event exactly when the
local log holds it.

Pushed to the CSMS: the whitepaper's *critical* events, and the connect failures of the
link (FailedToAuthenticateAtCentralSystem, InvalidCentralSystemCertificate,
InvalidTLSVersion, InvalidTLSCipherSuite) — an operator needs to see those, and they can
only arrive once the link works again. A failing link retries every few seconds, so a
connect failure is pushed once per kind until the next successful connect (every attempt
is still logged locally). InvalidMessages is rate-limited to one log row per
:data:`INVALID_MESSAGES_INTERVAL_S` (a flood of bad frames must not flood the log).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from evse.clock import Clock
from evse.state_db import transaction
from ocpp_client.queue import Outbox
from ocpp_client.security.events import SecurityEventType
from ocpp_client.security.security_log import SecurityLog, SecurityLogEntry

log = logging.getLogger(__name__)

#: Connect failures pushed to the CSMS although not critical (see the module docstring).
CONNECT_FAILURES = frozenset({
    SecurityEventType.FAILED_TO_AUTHENTICATE_AT_CSMS,
    SecurityEventType.INVALID_CSMS_CERTIFICATE,
    SecurityEventType.INVALID_TLS_VERSION,
    SecurityEventType.INVALID_TLS_CIPHER_SUITE,
})
#: At most one InvalidMessages event per this many seconds, s.
INVALID_MESSAGES_INTERVAL_S = 60.0

#: (outbox action, payload) of one event for the CSMS.
ToCall = Callable[[SecurityLogEntry], tuple[str, dict[str, Any]]]


class SecurityEvents:
    """Records security events (see the module docstring).

    Args:
        db: the state database (security log and outbox share it).
        outbox: the durable outbox.
        clock: the station clock (event timestamps, UTC epoch s).
        to_call: the version's message for an event.
        max_entries: bound of the local security log (rows).
        monotonic: monotonic time for the InvalidMessages rate limit, s.
    """

    def __init__(self, db: sqlite3.Connection, outbox: Outbox, clock: Clock, to_call: ToCall,
                 max_entries: int = 1000,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.log = SecurityLog(db, max_entries)
        self._db = db
        self._outbox = outbox
        self.clock = clock
        self._to_call = to_call
        self._monotonic = monotonic
        self._pushed_failures: set[SecurityEventType] = set()
        self._last_invalid: float | None = None
        self._invalid_suppressed = 0

    def record(self, event: SecurityEventType, tech_info: str | None = None) -> SecurityLogEntry:
        """Log ``event`` locally; queue it for the CSMS when critical (or a first connect
        failure of its kind). ``tech_info`` must hold no secret.

        Raises:
            sqlite3.Error: the state database cannot be written (nothing is kept).
        """
        push = event.critical
        if event in CONNECT_FAILURES and event not in self._pushed_failures:
            push = True
        synced = self.clock.synced
        with transaction(self._db):
            entry = self.log.append(event, self.clock.now(), tech_info)
            if push:
                action, payload = self._to_call(entry)
                self._outbox.put(action, payload, 0, None, clock_synced=synced)
        if event in CONNECT_FAILURES:
            self._pushed_failures.add(event)
        log.warning("security event %s%s%s", event.value, ": " if tech_info else "",
                    tech_info or "")
        return entry

    def link_up(self) -> None:
        """A connect succeeded: the next connect failure of any kind is pushed again."""
        self._pushed_failures.clear()

    def invalid_message(self, description: str) -> SecurityLogEntry | None:
        """The frame guard refused a frame: InvalidMessages, at most once per
        :data:`INVALID_MESSAGES_INTERVAL_S` (the count of refused frames in between goes
        into the next one's techInfo). Returns the entry, or None when rate-limited."""
        now = self._monotonic()
        if self._last_invalid is not None and now - self._last_invalid < \
                INVALID_MESSAGES_INTERVAL_S:
            self._invalid_suppressed += 1
            return None
        more = (f" (+{self._invalid_suppressed} more since the last event)"
                if self._invalid_suppressed else "")
        self._last_invalid = now
        self._invalid_suppressed = 0
        try:
            return self.record(SecurityEventType.INVALID_MESSAGES, description[:200] + more)
        except sqlite3.Error as exc:  # a refused frame must not end the link
            log.error("security log: %s", exc)
            return None
