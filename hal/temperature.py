"""Temperature sensor interface (connector / cable / relay temperature, for derating)."""

from __future__ import annotations

from abc import ABC, abstractmethod


class TemperatureSensor(ABC):
    """A temperature probe (e.g. a DS18B20 at the socket)."""

    @abstractmethod
    def read_c(self) -> float:
        """Temperature in °C. Blocking for bus sensors: call from a worker thread.

        Raises:
            OSError: the sensor did not answer.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the hardware."""
