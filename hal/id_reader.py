"""RFID / identification reader interface."""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable

CardListener = Callable[[str], None]


class IdReader(ABC):  # noqa: B024 - all hooks are optional
    """Reports identifiers (idTags) presented by users.

    idTags are delivered normalised: uppercase hex, no separators (the form CSMSs expect,
    OCPP 1.6 IdToken ≤ 20 characters).
    """

    def __init__(self) -> None:
        self._listeners: list[CardListener] = []

    def add_listener(self, listener: CardListener) -> None:
        """Register ``listener(id_tag)``, called on the reader's thread per card presented."""
        self._listeners.append(listener)

    def _emit(self, id_tag: str) -> None:
        for listener in self._listeners:
            listener(id_tag)

    def start(self) -> None:  # noqa: B027 - optional hook
        """Start reading (opens the device, starts the reader thread)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Stop reading and release the device."""
