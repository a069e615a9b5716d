"""Card reader health as a station-level condition (issue 9: nothing dies silently).

A card reader that cannot read (its port lost, its driver failing; the reader thread
restarts itself with backoff in ``hal``) is reported as :attr:`evse.domain.Fault.READER`
on the station, EVSE / connector 0, which an OCPP 1.6 adapter maps to ChargePointErrorCode
``ReaderFailure`` (OCPP 1.6 §7.6) on connector 0. It never concerns the power path: no
EVSE faults, no contactor opens, running transactions go on (a CSMS can still start and
stop them remotely).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from evse.domain import DomainEvent, Fault, SessionStateChanged
from evse.session_machine import IDLE, OUT_OF_SERVICE
from hal.id_reader import IdReader

log = logging.getLogger(__name__)


class ReaderHealth:
    """Follows the station's card readers and publishes the station's reader condition.

    Publishes :class:`~evse.domain.SessionStateChanged` for EVSE 0 / connector 0 (state
    idle, or out of service while the station as a whole is) with ``fault`` READER while
    any reader fails and ``None`` once all read again, only when that changes. Adapters
    that report connector 0 on their own (after a reconnect, on ChangeAvailability) read
    :attr:`fault` and :attr:`info`.

    Args:
        publish: the Station's event publisher (called on the loop).
        now: the UTC clock for event timestamps, s since the epoch.
        operative: whether the station as a whole is in service (OCPP 1.6 §5.2).
    """

    def __init__(self, publish: Callable[[DomainEvent], None], now: Callable[[], float],
                 operative: Callable[[], bool] = lambda: True) -> None:
        self._publish = publish
        self._now = now
        self._operative = operative
        self.readers: list[IdReader] = []
        self._reported: tuple[Fault | None, str] = (None, "")

    def attach(self, reader: IdReader) -> None:
        """Follow ``reader``'s health (call on the loop; the reader reports on its thread)."""
        loop = asyncio.get_running_loop()

        def changed(_active: bool, _reason: str) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: shutting down
                loop.call_soon_threadsafe(self.update)

        self.readers.append(reader)
        reader.add_fault_listener(changed)
        self.update()

    @property
    def fault(self) -> Fault | None:
        """:attr:`Fault.READER` while a reader fails (as last published), else None."""
        return self._reported[0]

    @property
    def info(self) -> str:
        """Why the reader fails ("" when none does)."""
        return self._reported[1]

    def update(self) -> None:
        """Publish the condition if it changed (on the loop)."""
        bad = [r for r in self.readers if not r.healthy]
        now: tuple[Fault | None, str] = (
            (Fault.READER, (bad[0].last_error or "card reader failure")[:200]) if bad
            else (None, ""))
        if now == self._reported:
            return
        self._reported = now
        if bad:
            log.error("card reader failing (charging goes on): %s", now[1])
        else:
            log.warning("card reader reads again")
        self._emit()

    def describe(self) -> list[dict[str, Any]]:
        """Every reader's health (``evse status``)."""
        return [r.describe() for r in self.readers]

    def _emit(self) -> None:
        fault, info = self._reported
        state = IDLE if self._operative() else OUT_OF_SERVICE
        self._publish(SessionStateChanged(0, 0, state, fault, info, self._now()))


__all__ = ["ReaderHealth"]
