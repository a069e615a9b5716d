"""The other side of the GPIO wiring, built from gpiozero's own mock machinery.

* ``Mcp3008Slave``: the MCP3008's SPI protocol on MockSPIDevice (start bit, SGL/DIFF,
  3 channel bits; answers a null bit and 10 result bits), as gpiozero's test-suite does.
* ``CpLine``: the CP circuit: the PWM pin's duty decides which plateau each conversion sees.
* ``MirrorPin``: an output wired to an input (a relay's mirror contact, a motor's switch).
* ``Timeline`` with ``LoggedPin`` / ``LoggedMirrorPin``: every level change of the pins
  under watch, across pins, in the order it happened (MockPin.states keeps one pin's history
  with relative times only), plus markers the test writes (e.g. "CP line to 9 V").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gpiozero import Device
from gpiozero.pins.mock import (
    MockConnectedPin,
    MockPin,
    MockPWMPin,
    MockSPIClockPin,
    MockSPIDevice,
    MockSPISelectPin,
)


class MirrorPin(MockConnectedPin, MockPWMPin):  # type: ignore[misc]
    """An output pin whose level drives ``input_pin`` (gpiozero's MockConnectedPin)."""


@dataclass(frozen=True)
class Mark:
    """One entry of a :class:`Timeline`: ``what`` (a pin name or a marker), the level
    (None for a marker), the thread and perf_counter_ns when it happened."""

    what: str
    level: object
    thread: str
    t_ns: int


class Timeline:
    """Level changes of several pins and test markers, in the order they happened."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.entries: list[Mark] = []

    def record(self, what: str, level: object = None) -> None:
        mark = Mark(what, level, threading.current_thread().name, time.perf_counter_ns())
        with self._lock:
            self.entries.append(mark)
            self._changed.notify_all()

    def clear(self) -> None:
        """Forget every entry (indexes from :meth:`__len__` restart at 0)."""
        with self._lock:
            self.entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self.entries)

    def wait_first(self, what: str, level: object, start: int,
                   timeout_s: float) -> Mark | None:
        """The first entry about ``what`` at ``level`` from index ``start`` on, waiting up to
        ``timeout_s`` for it without polling (a benchmark's injector must not take the GIL
        from the thread under test)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            index = start
            while True:
                entries = self.entries
                while index < len(entries):
                    e = entries[index]
                    index += 1
                    if e.what == what and e.level == level:
                        return e
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def mark(self, what: str) -> None:
        """A test marker (e.g. the CP line voltage changed)."""
        self.record(what)

    def of(self, what: str) -> list[Mark]:
        with self._lock:
            return [e for e in self.entries if e.what == what]

    def order(self, *whats: str) -> list[tuple[str, object]]:
        """(what, level) of the entries about ``whats``, in order."""
        with self._lock:
            return [(e.what, e.level) for e in self.entries if e.what in whats]

    def first(self, what: str, level: object = None, after_ns: int = 0) -> Mark | None:
        with self._lock:
            for e in self.entries:
                if e.what == what and e.t_ns >= after_ns and (level is None
                                                              or e.level == level):
                    return e
        return None


class LoggedPin(MockPWMPin):  # type: ignore[misc]
    """A mock pin that records each change of level in ``timeline`` as ``label``."""

    def __init__(self, factory: object, info: object, timeline: Timeline | None = None,
                 label: str = "") -> None:
        super().__init__(factory, info)
        self.timeline = timeline
        self.label = label

    def _change_state(self, value: object) -> bool:
        changed = bool(super()._change_state(value))
        if changed and self.timeline is not None:
            self.timeline.record(self.label, value)
        return changed


class LoggedMirrorPin(LoggedPin):
    """A logged output (a contactor coil) whose level drives ``input_pin`` (its mirror
    contact). The coil's change is recorded before the mirror contact follows."""

    def __init__(self, factory: object, info: object, input_pin: MockPin | None = None,
                 timeline: Timeline | None = None, label: str = "") -> None:
        super().__init__(factory, info, timeline=timeline, label=label)
        self.input_pin = input_pin

    def _change_state(self, value: object) -> bool:
        changed = super()._change_state(value)
        if changed and self.input_pin is not None:
            if value:
                self.input_pin.drive_high()
            else:
                self.input_pin.drive_low()
        return changed


class LockMotorPin(MockPWMPin):  # type: ignore[misc]
    """A motor output: while on, it moves the lock so the feedback switch reads ``engages``."""

    def __init__(self, factory: object, info: object, feedback: MockPin | None = None,
                 engages: bool = True) -> None:
        super().__init__(factory, info)
        self.feedback = feedback
        self.engages = engages
        self.jammed = False

    def _change_state(self, value: object) -> bool:
        changed = bool(super()._change_state(value))
        if value and self.feedback is not None and not self.jammed:
            if self.engages:
                self.feedback.drive_high()
            else:
                self.feedback.drive_low()
        return changed


class _BoolPWMPin(MockPWMPin):  # type: ignore[misc]
    """PWM-capable mock pin whose level stays a bool (SPI lines on a MockPWMPin factory).

    It keeps no level history (``MockPin.states`` stays at its first entry): a sampler
    clocking ~50 bits per conversion would pile up millions of records, and the garbage
    collector's full passes over them stall every thread for up to seconds (a test-rig
    artifact: spidev keeps no history); it also halves this peer's Python per bit."""

    def _change_state(self, value: object) -> bool:
        level = bool(value)
        if self._state != level:
            self._state = level
            return True
        return False


class SpiClockPin(MockSPIClockPin, _BoolPWMPin):  # type: ignore[misc]
    pass


class SpiSelectPin(MockSPISelectPin, _BoolPWMPin):  # type: ignore[misc]
    pass


class Mcp3008Slave(MockSPIDevice):  # type: ignore[misc]
    """MCP3008 on the default SPI0/CE0 mock pins; ``source(channel)`` gives the input volts.

    Wired like MockSPIDevice does it, but with PWM-capable pin classes so it lives on a
    ``MockFactory(pin_class=MockPWMPin)``.
    """

    def __init__(self, source: Callable[[int], float], vref: float = 3.3) -> None:
        factory = Device.pin_factory
        self.clock_pin = factory.pin(11, pin_class=SpiClockPin)
        self.mosi_pin = factory.pin(10, pin_class=_BoolPWMPin)
        self.miso_pin = factory.pin(9, pin_class=_BoolPWMPin)
        self.select_pin = factory.pin(8, pin_class=SpiSelectPin)
        self.clock_polarity = False
        self.clock_phase = False
        self.lsb_first = False
        self.bits_per_word = 8
        self.select_high = False
        self.rx_bit = 0
        self.rx_buf: list[int] = []
        self.tx_buf: list[int] = []
        self.clock_pin.spi_devices.append(self)
        self.select_pin.spi_device = self
        self.source = source
        self.vref = vref
        self.state = "idle"

    def on_start(self) -> None:
        super().on_start()
        self.state = "idle"

    def on_bit(self) -> None:
        if self.state == "idle":
            if self.rx_buf[-1]:
                self.state = "mode"
                self.rx_buf = []
        elif self.state == "mode":
            self.state = "single" if self.rx_buf[-1] else "diff"
            self.rx_buf = []
        elif self.state in ("single", "diff"):
            if len(self.rx_buf) == 3:
                volts = min(max(self.source(self.rx_word()), 0.0), self.vref)
                counts = min(int(volts / self.vref * 1023 + 0.5), 1023)
                self.tx_word(counts, 12)
                self.state = "result"
        elif self.state == "result" and not self.tx_buf:
            self.state = "idle"
            self.rx_buf = []


class CpLine:
    """CP line as the ADC sees it: ``high_v`` on the positive plateau (EV state), ``low_v``
    on the negative one; the PWM pin's duty (0–1) decides the plateau of each conversion."""

    GOLDEN = 0.6180339887

    def __init__(self, pwm_pin: MockPin, offset_v: float = 1.65, divider: float = 8.0) -> None:
        self.pwm_pin = pwm_pin
        self.high_v = 12.0
        self.low_v = -12.0
        self.offset_v = offset_v
        self.divider = divider
        self._k = 0
        #: Cleared: conversions hang (a stuck SPI transfer; the sampler stops cycling).
        self.running = threading.Event()
        self.running.set()
        #: Temperature sensor volts on other channels (TMP36: 0.5 V + 10 mV/°C).
        self.channels: dict[int, float] = {1: 0.75}

    def set_high(self, volts: float, timeline: Timeline | None = None) -> None:
        """The EV changes its resistor: the positive plateau moves to ``volts``."""
        if timeline is not None:
            timeline.mark(f"cp {volts:+.0f} V")
        self.high_v = volts

    def adc_volts(self, channel: int) -> float:
        self.running.wait()
        if channel != 0:
            return self.channels.get(channel, 0.0)
        duty = float(self.pwm_pin.state)
        self._k += 1
        phase = (self._k * self.GOLDEN) % 1.0
        if duty >= 1.0:
            pilot = self.high_v
        elif duty <= 0.0:
            pilot = -12.0
        else:
            pilot = self.high_v if phase < duty else self.low_v
        return pilot / self.divider + self.offset_v
