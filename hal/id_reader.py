"""RFID / identification reader interface, with the reader's health.

A reader whose device fails (serial port unplugged, driver bug) reports it through
:meth:`IdReader.add_fault_listener` so the core can tell the CSMS (OCPP 1.6 §7.6
ChargePointErrorCode ``ReaderFailure`` on connector 0). A reader failure never concerns
the power path: no contactor depends on it.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

CardListener = Callable[[str], None]
#: ``listener(active, reason)``: ``active`` True when the reader fails (``reason`` says
#: why), False when it works again (``reason`` "").
FaultListener = Callable[[bool, str], None]


class IdReader(ABC):  # noqa: B024 - an interface whose hooks are optional
    """Reports identifiers (idTags) presented by users, and whether it can read.

    idTags are delivered normalised: uppercase hex, no separators (the form CSMSs expect,
    OCPP 1.6 IdToken ≤ 20 characters).
    """

    def __init__(self) -> None:
        self._listeners: list[CardListener] = []
        self._fault_listeners: list[FaultListener] = []
        self._health_lock = threading.Lock()
        self._healthy = True
        self._last_error: str | None = None
        self._failures = 0

    def add_listener(self, listener: CardListener) -> None:
        """Register ``listener(id_tag)``, called on the reader's thread per card presented."""
        self._listeners.append(listener)

    def add_fault_listener(self, listener: FaultListener) -> None:
        """Register ``listener(active, reason)``, called on the reader's thread when the
        reader starts failing (``active`` True) and when it reads again (False)."""
        self._fault_listeners.append(listener)

    @property
    def healthy(self) -> bool:
        """False while the reader cannot read (device lost, driver failing)."""
        return self._healthy

    @property
    def last_error(self) -> str | None:
        """Why the reader last failed (kept after it recovers), None if it never did."""
        return self._last_error

    def describe(self) -> dict[str, Any]:
        """JSON-able health for ``evse status``."""
        return {"reader": type(self).__name__, "healthy": self._healthy,
                "last_error": self._last_error, "failures": self._failures}

    def _emit(self, id_tag: str) -> None:
        for listener in self._listeners:
            try:
                listener(id_tag)
            except Exception:  # one listener's bug must not lose the card for the others
                log.exception("card listener failed on %s", id_tag)

    def _report_failure(self, reason: str) -> None:
        """The reader cannot read: count it; listeners hear of it once per failing spell."""
        with self._health_lock:
            self._failures += 1
            self._last_error = reason
            changed, self._healthy = self._healthy, False
        if changed:
            self._notify(True, reason)

    def _report_working(self) -> None:
        """The reader reads again (device open, answering)."""
        with self._health_lock:
            changed, self._healthy = not self._healthy, True
        if changed:
            self._notify(False, "")

    def _notify(self, active: bool, reason: str) -> None:
        for listener in self._fault_listeners:
            try:
                listener(active, reason)
            except Exception:
                log.exception("reader fault listener failed")

    def start(self) -> None:  # noqa: B027 - optional hook
        """Start reading (opens the device, starts the reader thread)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Stop reading and release the device."""
