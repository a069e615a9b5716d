"""Contactor (main power relay) interface, with optional mirror-contact feedback.

The contactor output must be active-high with a pull-down in hardware, so a crashed or
stopped process leaves it open (DESIGN.md "Safety first").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

ContactorFaultListener = Callable[[str], None]


class Contactor(ABC):
    """Switches the connector's power. ``open()`` must be safe to call from any thread, any
    number of times, and must not block on anything but the output itself."""

    def __init__(self) -> None:
        self._fault_listeners: list[ContactorFaultListener] = []

    def add_fault_listener(self, listener: ContactorFaultListener) -> None:
        """Register ``listener(reason)``, called on the driver's thread when the feedback
        contact disagrees with the command for longer than the driver's window
        (``"welded"`` when it stays closed after open, ``"failed_to_close"`` otherwise)."""
        self._fault_listeners.append(listener)

    def _emit_fault(self, reason: str) -> None:
        for listener in self._fault_listeners:
            listener(reason)

    @abstractmethod
    def close(self) -> None:
        """Command the contactor closed (energize the connector)."""

    @abstractmethod
    def open(self) -> None:
        """Command the contactor open. Thread-safe, idempotent, non-blocking."""

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
