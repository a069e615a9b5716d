"""Contactor on a GPIO output, with an optional mirror-contact feedback input.

The output is active-high with a hardware pull-down (DESIGN.md "Safety first"): a crashed
process leaves the contactor open. ``active_high = false`` exists for driver boards whose
relay stage inverts, and must still fail open in hardware.
"""

from __future__ import annotations

import logging
import threading

from gpiozero import DigitalInputDevice, DigitalOutputDevice
from gpiozero.pins import Factory

from hal.contactor import Contactor

log = logging.getLogger(__name__)


class GpioContactor(Contactor):
    """Contactor driven by a GPIO output. ``close()`` returns False when an inhibit holds
    (see :class:`hal.contactor.Contactor`).

    Args:
        pin: output pin (gpiozero name, e.g. "GPIO17" or 17).
        active_high: output level that closes the contactor.
        feedback_pin: mirror-contact input (None = no feedback wired).
        feedback_active_high: input level that means "contactor closed".
        feedback_pull_up: enable the SoC pull-up on the feedback input (else pull-down).
        fault_after_s: how long feedback may disagree with the command before it is a
            fault ("welded" after open, "failed_to_close" after close), s.
        pin_factory: gpiozero pin factory.
    """

    def __init__(
        self,
        pin: int | str,
        active_high: bool = True,
        feedback_pin: int | str | None = None,
        feedback_active_high: bool = True,
        feedback_pull_up: bool = False,
        fault_after_s: float = 1.0,
        pin_factory: Factory | None = None,
    ) -> None:
        super().__init__()
        self._out = DigitalOutputDevice(
            pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
        )
        self._feedback: DigitalInputDevice | None = None
        self.fault_after_s = fault_after_s
        self._lock = threading.Lock()
        self._commanded = False
        self._timer: threading.Timer | None = None
        self._agree = threading.Condition(self._lock)
        if feedback_pin is not None:
            self._feedback = DigitalInputDevice(
                feedback_pin, pull_up=feedback_pull_up, pin_factory=pin_factory
            )
            self._feedback_active_high = feedback_active_high
            self._feedback.when_activated = self._on_feedback
            self._feedback.when_deactivated = self._on_feedback

    # -- output (see hal.contactor.Contactor for the close / open / inhibit protocol) ------
    def _drive(self, closed: bool) -> None:
        if closed:
            self._out.on()
        else:
            self._out.off()

    def _after_write(self) -> None:
        """Start or stop feedback supervision for the level the output has now."""
        with self._lock:
            commanded = bool(self._out.value)
            if self._commanded == commanded and (self._timer is not None or self._agrees()):
                return
            self._commanded = commanded
            self._rearm()

    # -- feedback ------------------------------------------------------------------------
    def _on_feedback(self) -> None:
        with self._lock:
            self._rearm()

    def _agrees(self) -> bool:
        fb = self.feedback_closed
        return fb is None or fb == self._commanded

    def _rearm(self) -> None:
        """Start or stop the disagreement timer (call with the lock held)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._agrees():
            self._agree.notify_all()
            return
        self._timer = threading.Timer(self.fault_after_s, self._expired)
        self._timer.daemon = True
        self._timer.start()

    def _expired(self) -> None:
        with self._lock:
            if self._timer is None or self._agrees():
                return
            self._timer = None
            reason = "failed_to_close" if self._commanded else "welded"
        # Notify first (the interlock opens the output), log after (DESIGN.md Safety first).
        self._emit_fault(reason)
        log.error("contactor feedback disagrees for %.1f s: %s", self.fault_after_s, reason)

    # -- state -------------------------------------------------------------------------
    @property
    def commanded_closed(self) -> bool:
        return bool(self._out.value)

    @property
    def feedback_closed(self) -> bool | None:
        if self._feedback is None:
            return None
        level = bool(self._feedback.pin.state)  # raw level, independent of pull config
        return level if self._feedback_active_high else not level

    @property
    def confirmed_closed(self) -> bool | None:
        """True = PowerOn (commanded and confirmed closed), False = PowerOff (confirmed open),
        None while feedback disagrees with the command. Without feedback: the command."""
        with self._lock:
            if not self._agrees():
                return None
            return self._commanded

    def wait_confirmed(self, timeout_s: float) -> bool:
        """Block until the feedback agrees with the command; False on timeout."""
        with self._agree:
            return self._agree.wait_for(self._agrees, timeout_s)

    def close_hw(self) -> None:
        """Open the contactor and release the pins."""
        self.open()
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if self._feedback is not None:
            self._feedback.close()
        self._out.close()
