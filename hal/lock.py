"""Cable lock (Type 2 socket outlet) interface."""

from __future__ import annotations

from abc import ABC, abstractmethod


class ConnectorLockFailure(Exception):
    """The lock did not reach the commanded position within its timeout."""


class ConnectorLock(ABC):
    """Locks the plug in a socket outlet. Energizing an unlocked socket is never allowed."""

    @abstractmethod
    def lock(self) -> None:
        """Lock; blocks up to the driver's timeout. Raises ConnectorLockFailure."""

    @abstractmethod
    def unlock(self) -> None:
        """Unlock; blocks up to the driver's timeout. Raises ConnectorLockFailure."""

    @property
    @abstractmethod
    def locked(self) -> bool:
        """True when the feedback reports the lock engaged."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the hardware."""
