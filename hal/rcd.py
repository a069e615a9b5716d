"""Residual current device (RCD / RDC-DD, e.g. a 6 mA DC sensor) interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

RcdTripListener = Callable[[], None]


class Rcd(ABC):
    """A residual current monitor with a trip output, a test input and a reset."""

    def __init__(self) -> None:
        self._trip_listeners: list[RcdTripListener] = []

    def add_trip_listener(self, listener: RcdTripListener) -> None:
        """Register ``listener()``, called on the driver's thread at the trip edge."""
        self._trip_listeners.append(listener)

    def _emit_trip(self) -> None:
        for listener in self._trip_listeners:
            listener()

    @property
    @abstractmethod
    def tripped(self) -> bool:
        """True while the device reports a residual current trip."""

    @abstractmethod
    def self_test(self) -> bool:
        """Drive the test input, expect a trip within the driver's window, release, expect clear.

        Returns True when the device passed (IEC 62955 periodic test). Blocks for at most the
        configured test window; call it from a worker thread, never from the event loop.
        """

    @abstractmethod
    def reset(self) -> None:
        """Reset a latched trip on the device (if it has a reset input)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the hardware."""
