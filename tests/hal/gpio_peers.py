"""The other side of the GPIO wiring, built from gpiozero's own mock machinery.

* ``Mcp3008Slave``: the MCP3008's SPI protocol on MockSPIDevice (start bit, SGL/DIFF,
  3 channel bits; answers a null bit and 10 result bits), as gpiozero's test-suite does.
* ``CpLine``: the CP circuit: the PWM pin's duty decides which plateau each conversion sees.
* ``MirrorPin``: an output wired to an input (a relay's mirror contact, a motor's switch).
"""

from __future__ import annotations

from collections.abc import Callable

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
    """PWM-capable mock pin whose level stays a bool (SPI lines on a MockPWMPin factory)."""

    def _change_state(self, value: object) -> bool:
        return bool(MockPin._change_state(self, bool(value)))


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

    def adc_volts(self, channel: int) -> float:
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
