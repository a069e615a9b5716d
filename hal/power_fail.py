"""Mains-loss input: a UPS "on battery" output or a supply monitor that signals, while a
hold-up supply still runs the controller, that the mains supply is gone."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

#: Called with True when the mains supply is lost, False when it is back.
PowerFailListener = Callable[[bool], None]


class PowerFailInput(ABC):
    """The board's mains-loss signal."""

    def __init__(self) -> None:
        self._listeners: list[PowerFailListener] = []

    def add_listener(self, listener: PowerFailListener) -> None:
        """Register ``listener(failing)``, called on the driver's thread at each edge."""
        self._listeners.append(listener)

    def _emit(self, failing: bool) -> None:
        for listener in self._listeners:
            listener(failing)

    @property
    @abstractmethod
    def failing(self) -> bool:
        """True while the signal says the mains supply is lost."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the hardware."""
