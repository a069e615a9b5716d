"""gpiozero pin factory chosen by name (``[hardware] pin_factory``).

========== =================================== ==========================================
name       library                             PWM on the control pilot pin
========== =================================== ==========================================
pigpio     pigpio daemon (``pigpiod``)         DMA-timed PWM on any pin: the best choice
                                               for the 1 kHz CP signal on a Raspberry Pi
lgpio      lgpio (Pi 5, any gpiochip board)    software-timed (lgpio ``tx_pwm``): jitter
                                               of tens of µs; acceptable, not ideal
rpigpio    RPi.GPIO                            software PWM thread: too jittery for CP
native     gpiozero's own /dev/gpiomem driver  no PWM: only with a UART pilot co-processor
mock       gpiozero MockFactory + MockPWMPin   tests and bench runs without hardware
========== =================================== ==========================================

None of gpiozero's factories drives the SoC's PWM peripheral itself; a board that needs a
jitter-free pilot should use the pilot co-processor (:mod:`hal.gpio.pilot_uart`).
"""

from __future__ import annotations

import importlib
from typing import Any

from gpiozero import Device
from gpiozero.pins import Factory

#: ``pin_factory`` name → (module, class).
FACTORIES: dict[str, tuple[str, str]] = {
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
    "native": ("gpiozero.pins.native", "NativeFactory"),
    "mock": ("gpiozero.pins.mock", "MockFactory"),
}


def create_pin_factory(name: str, **options: Any) -> Factory:
    """Build the gpiozero pin factory called ``name``.

    For ``mock`` the factory already installed as ``gpiozero.Device.pin_factory`` is reused
    when it is a MockFactory (tests drive its pins); otherwise a new
    ``MockFactory(pin_class=MockPWMPin)`` is installed. ``options`` go to the factory
    (e.g. ``host``/``port`` for pigpio).

    Raises:
        ValueError: unknown name, or the library behind it is not installed / has no GPIO
            (the message names ``[hardware] pin_factory``).
    """
    try:
        module_name, class_name = FACTORIES[name]
    except KeyError:
        raise ValueError(
            f"[hardware] pin_factory = {name!r}: unknown (expected one of {', '.join(FACTORIES)})"
        ) from None
    if name == "mock":
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        current = Device.pin_factory
        if isinstance(current, MockFactory):
            return current
        factory = MockFactory(pin_class=MockPWMPin)
        Device.pin_factory = factory
        return factory
    try:
        module = importlib.import_module(module_name)
        factory_cls = getattr(module, class_name)
        built: Factory = factory_cls(**options)
    except (ImportError, OSError, RuntimeError) as exc:
        raise ValueError(f"[hardware] pin_factory = {name!r}: not available ({exc})") from exc
    return built
