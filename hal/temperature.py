"""Temperature sensor interface (socket / cable / board temperature, for derating)."""

from __future__ import annotations

from abc import ABC, abstractmethod


class TemperatureSensor(ABC):
    """A temperature sensor."""

    @abstractmethod
    def read_c(self) -> float:
        """Temperature now, °C.

        Raises:
            OSError: the sensor cannot be read (missing, CRC failure, out of range).
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the hardware."""
