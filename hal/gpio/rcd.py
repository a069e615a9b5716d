"""RCD / RDC-DD module on GPIO (e.g. a 6 mA DC sensor such as the Western Automation RCMB
or Bender RDC-M with trip output, test input and optional reset input).

The trip input calls the trip listeners on gpiozero's callback thread at the trip edge (they
open the contactor there). During :meth:`GpioRcd.self_test` the induced trip is expected and
is not reported as a trip.
"""

from __future__ import annotations

import logging
import threading
import time

from gpiozero import DigitalInputDevice, DigitalOutputDevice
from gpiozero.pins import Factory

from hal.rcd import Rcd

log = logging.getLogger(__name__)


class GpioRcd(Rcd):
    """Residual current monitor on GPIO.

    Args:
        trip_pin: input that is active while the device reports a trip.
        trip_active_high: level of ``trip_pin`` that means "tripped".
        test_pin: output that drives the device's test input (None = no self-test).
        reset_pin: output pulsed to reset a latched trip (None = device self-resets).
        test_active_high: level of ``test_pin`` / ``reset_pin`` that activates them.
        trip_window_s: the trip must appear within this after driving the test input, s.
        clear_window_s: the trip must clear within this after releasing test / reset, s.
        reset_pulse_s: length of the reset pulse, s.
        pin_factory: gpiozero pin factory.
    """

    def __init__(
        self,
        trip_pin: int | str,
        trip_active_high: bool = True,
        test_pin: int | str | None = None,
        reset_pin: int | str | None = None,
        test_active_high: bool = True,
        trip_window_s: float = 0.5,
        clear_window_s: float = 1.0,
        reset_pulse_s: float = 0.1,
        pin_factory: Factory | None = None,
    ) -> None:
        super().__init__()
        self._trip = DigitalInputDevice(
            trip_pin, pull_up=not trip_active_high, pin_factory=pin_factory
        )
        self._test = (
            DigitalOutputDevice(test_pin, active_high=test_active_high, pin_factory=pin_factory)
            if test_pin is not None
            else None
        )
        self._reset = (
            DigitalOutputDevice(reset_pin, active_high=test_active_high, pin_factory=pin_factory)
            if reset_pin is not None
            else None
        )
        self.trip_window_s = trip_window_s
        self.clear_window_s = clear_window_s
        self.reset_pulse_s = reset_pulse_s
        self._cond = threading.Condition()
        self._testing = False
        self._trip.when_activated = self._on_trip
        self._trip.when_deactivated = self._on_clear

    def _on_trip(self) -> None:
        with self._cond:
            testing = self._testing
            self._cond.notify_all()
        if not testing:
            # Notify first (the interlock drives the contactor low), log after: a stalled
            # log handler must never delay the open (DESIGN.md Safety first).
            self._emit_trip()
            log.error("RCD trip")

    def _on_clear(self) -> None:
        with self._cond:
            self._cond.notify_all()

    @property
    def tripped(self) -> bool:
        return bool(self._trip.is_active)

    def self_test(self) -> bool:
        """Drive the test input, expect a trip within ``trip_window_s``, release (and reset),
        expect the trip to clear within ``clear_window_s`` (IEC 62955 periodic test).

        Returns False (and logs why) when there is no test pin, the device was already
        tripped, did not trip, or did not clear. Blocks at most both windows.
        """
        if self._test is None:
            log.error("RCD self-test: no test pin configured")
            return False
        if self.tripped:
            log.error("RCD self-test: device is tripped before the test")
            return False
        with self._cond:
            self._testing = True
        try:
            self._test.on()
            with self._cond:
                tripped = self._cond.wait_for(lambda: self.tripped, self.trip_window_s)
            self._test.off()
            if not tripped:
                log.error("RCD self-test: no trip within %.2f s", self.trip_window_s)
                return False
            self.reset()
            with self._cond:
                cleared = self._cond.wait_for(lambda: not self.tripped, self.clear_window_s)
            if not cleared:
                log.error("RCD self-test: trip did not clear within %.2f s", self.clear_window_s)
            return cleared
        finally:
            if self._test is not None:
                self._test.off()
            with self._cond:
                self._testing = False

    def reset(self) -> None:
        """Pulse the reset input (if wired) for ``reset_pulse_s``."""
        if self._reset is None:
            return
        self._reset.on()
        time.sleep(self.reset_pulse_s)
        self._reset.off()

    def close(self) -> None:
        for dev in (self._trip, self._test, self._reset):
            if dev is not None:
                dev.close()
