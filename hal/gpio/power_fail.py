"""The mains-loss input on a GPIO pin (``[hardware] power_fail_pin``)."""

from __future__ import annotations

from gpiozero import DigitalInputDevice
from gpiozero.pins import Factory

from hal.power_fail import PowerFailInput


class GpioPowerFail(PowerFailInput):
    """A UPS / supply-monitor output on ``pin``: active (mains lost) at high level when
    ``active_high``, else at low level; the board wires the pull resistor.

    Args:
        pin: BCM GPIO number.
        active_high: the level that means "mains lost".
        pin_factory: the gpiozero pin factory.
    """

    def __init__(self, pin: int, active_high: bool = True,
                 pin_factory: Factory | None = None) -> None:
        super().__init__()
        self._input = DigitalInputDevice(pin, pull_up=None, active_state=active_high,
                                         pin_factory=pin_factory)
        self._input.when_activated = lambda: self._emit(True)
        self._input.when_deactivated = lambda: self._emit(False)

    @property
    def failing(self) -> bool:
        return bool(self._input.is_active)

    def close(self) -> None:
        self._input.close()
