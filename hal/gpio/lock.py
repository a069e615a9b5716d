"""Type 2 socket cable lock: a DC motor (or solenoid) on two outputs plus a feedback switch."""

from __future__ import annotations

import logging
import threading

from gpiozero import DigitalInputDevice, DigitalOutputDevice
from gpiozero.pins import Factory

from hal.lock import ConnectorLock, ConnectorLockFailure

log = logging.getLogger(__name__)


class GpioLock(ConnectorLock):
    """Cable lock with ``lock_pin`` / ``unlock_pin`` motor outputs (driven one at a time, e.g.
    through an H-bridge) and a ``feedback_pin`` that is active while locked.

    Args:
        lock_pin: output that drives the motor towards "locked".
        unlock_pin: output that drives it towards "unlocked".
        feedback_pin: input, active while the lock is engaged.
        feedback_active_high: level of ``feedback_pin`` that means "locked".
        timeout_s: the feedback must report the commanded position within this, s.
        pin_factory: gpiozero pin factory.
    """

    def __init__(
        self,
        lock_pin: int | str,
        unlock_pin: int | str,
        feedback_pin: int | str,
        feedback_active_high: bool = True,
        timeout_s: float = 1.0,
        pin_factory: Factory | None = None,
    ) -> None:
        self._lock_out = DigitalOutputDevice(lock_pin, pin_factory=pin_factory)
        self._unlock_out = DigitalOutputDevice(unlock_pin, pin_factory=pin_factory)
        self._feedback = DigitalInputDevice(
            feedback_pin, pull_up=not feedback_active_high, pin_factory=pin_factory
        )
        self.timeout_s = timeout_s
        self._cond = threading.Condition()
        self._busy = threading.Lock()
        self._feedback.when_activated = self._notify
        self._feedback.when_deactivated = self._notify

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _move(self, to_locked: bool) -> None:
        motor = self._lock_out if to_locked else self._unlock_out
        with self._busy:
            self._lock_out.off()
            self._unlock_out.off()
            motor.on()
            try:
                with self._cond:
                    ok = self._cond.wait_for(lambda: self.locked == to_locked, self.timeout_s)
            finally:
                motor.off()
        if not ok:
            what = "lock" if to_locked else "unlock"
            log.error("cable lock: no %s feedback within %.2f s", what, self.timeout_s)
            raise ConnectorLockFailure(f"cable lock did not {what} within {self.timeout_s} s")

    def lock(self) -> None:
        """Drive the motor until the feedback reports locked. Raises ConnectorLockFailure."""
        self._move(True)

    def unlock(self) -> None:
        """Drive the motor until the feedback reports unlocked. Raises ConnectorLockFailure."""
        self._move(False)

    @property
    def locked(self) -> bool:
        return bool(self._feedback.is_active)

    def close(self) -> None:
        for dev in (self._lock_out, self._unlock_out, self._feedback):
            dev.close()
