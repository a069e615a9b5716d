"""Temperature sensors for derating: a 1-Wire DS18B20 via the kernel's w1 sysfs, or an
analog sensor (e.g. TMP36, NTC with linearising divider) on an MCP3xxx ADC channel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hal.temperature import TemperatureSensor

#: Where the w1-therm driver publishes DS18B20 devices (``dtoverlay=w1-gpio`` on a Pi).
W1_DEVICES = Path("/sys/bus/w1/devices")


class Ds18b20(TemperatureSensor):
    """DS18B20 read through ``<w1_dir>/<device_id>/w1_slave`` (w1-therm driver format)::

        72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
        72 01 4b 46 7f ff 0e 10 57 t=23125

    Args:
        device_id: 1-Wire id, e.g. "28-0316a2799bff"; empty = the only 28-* device.
        w1_dir: sysfs directory of 1-Wire devices.
    """

    def __init__(self, device_id: str = "", w1_dir: Path = W1_DEVICES) -> None:
        if not device_id:
            found = sorted(w1_dir.glob("28-*"))
            if len(found) != 1:
                raise OSError(f"expected exactly one DS18B20 under {w1_dir}, found {len(found)}")
            self.path = found[0] / "w1_slave"
        else:
            self.path = w1_dir / device_id / "w1_slave"

    def read_c(self) -> float:
        """Temperature, °C (0.0625 °C resolution).

        Raises:
            OSError: file missing, CRC check failed, or the 85 °C power-on reset value.
        """
        lines = self.path.read_text().splitlines()
        if len(lines) < 2 or not lines[0].strip().endswith("YES"):
            raise OSError(f"{self.path}: CRC check failed")
        _, _, milli = lines[1].partition("t=")
        if not milli:
            raise OSError(f"{self.path}: no temperature")
        value = int(milli) / 1000.0
        if value == 85.0:
            raise OSError(f"{self.path}: power-on reset value 85 °C (conversion not done)")
        return value


class AdcTemperature(TemperatureSensor):
    """Analog sensor on an MCP3xxx channel: °C = (V − offset_v) × degrees_per_volt.

    TMP36: offset 0.5 V, 100 °C/V. ``adc`` is a gpiozero MCP3xxx device (``.voltage``).
    """

    def __init__(self, adc: Any, offset_v: float = 0.5, degrees_per_volt: float = 100.0) -> None:
        self._adc = adc
        self.offset_v = offset_v
        self.degrees_per_volt = degrees_per_volt

    def read_c(self) -> float:
        """Temperature, °C."""
        return (float(self._adc.voltage) - self.offset_v) * self.degrees_per_volt

    def close(self) -> None:
        self._adc.close()
