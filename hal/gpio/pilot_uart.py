"""Control pilot on a co-processor (an MCU that generates the PWM and samples the CP line
edge-synchronously), talking a small line protocol over a UART (pyserial).

Protocol (ASCII, one message per line, ``\\n`` terminated, 115200 8N1 by default):

Host → MCU
    ``D <duty>``   run 1 kHz PWM at ``<duty>`` percent (0.0–100.0, one decimal);
                   ``D 100.0`` is constant +12 V (no charging allowed)
    ``F``          state F: constant −12 V
    ``P``          ping (the MCU answers with an ``S`` line)

MCU → host
    ``S <state> <diode>``  pilot state letter A–F and diode fault 0/1, sent on every change
                           (after the MCU's own debounce) and at least every 100 ms as a
                           heartbeat
    ``K <command>``        command accepted (echo)
    ``E <text>``           command refused or MCU fault

Anything else is logged and ignored. The host treats a missing heartbeat as a stuck sampler
(:meth:`UartPilot.sampler_age_s` grows; the watchdog acts on it). Listeners are called on the
reader thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import serial

from hal.pilot import ControlPilot, PilotReading, PilotState

log = logging.getLogger(__name__)


def parse_state_line(line: str) -> PilotReading:
    """Parse an ``S <state> <diode>`` line.

    Raises:
        ValueError: not a well-formed state line.
    """
    parts = line.split()
    if len(parts) != 3 or parts[0] != "S" or parts[2] not in ("0", "1"):
        raise ValueError(f"malformed state line {line!r}")
    return PilotReading(PilotState(parts[1]), parts[2] == "1")


class UartPilot(ControlPilot):
    """Pilot co-processor on a serial port.

    Args:
        device: serial device, e.g. "/dev/ttyAMA1".
        baudrate: bit/s.
        port: an already open pyserial port (tests); overrides device/baudrate.
    """

    def __init__(
        self,
        device: str = "",
        baudrate: int = 115200,
        port: serial.SerialBase | None = None,
    ) -> None:
        super().__init__()
        self._port = port or serial.Serial(device, baudrate=baudrate, timeout=0.1)
        self._write_lock = threading.Lock()
        self._duty = 100.0
        self._reading = PilotReading(PilotState.A)
        self._last_heard = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pilot-uart", daemon=True)
        self._thread.start()
        self.set_off()

    def _send(self, line: str) -> None:
        with self._write_lock:
            self._port.write(line.encode("ascii") + b"\n")
            self._port.flush()

    def set_duty(self, duty_percent: float) -> None:
        if not 0.0 <= duty_percent <= 100.0:
            raise ValueError(f"duty {duty_percent} % outside 0–100 %")
        self._duty = duty_percent
        if duty_percent == 0.0:
            self._send("F")
        else:
            self._send(f"D {duty_percent:.1f}")

    def set_off(self) -> None:
        self.set_duty(100.0)

    def set_state_f(self) -> None:
        self.set_duty(0.0)

    @property
    def duty_percent(self) -> float:
        return self._duty

    def _run(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            try:
                chunk = self._port.read(256)
            except (serial.SerialException, OSError) as exc:
                if self._stop.is_set():
                    return
                log.error("pilot co-processor: read failed: %s", exc)
                self._stop.wait(0.5)
                continue
            buffer += chunk
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                self._handle(raw)
            if len(buffer) > 256:
                log.error("pilot co-processor: %d bytes without newline dropped", len(buffer))
                buffer = b""

    def _handle(self, raw: bytes) -> None:
        try:
            line = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            log.error("pilot co-processor: non-ASCII line %r ignored", raw)
            return
        if not line:
            return
        if line.startswith("S"):
            try:
                reading = parse_state_line(line)
            except ValueError as exc:
                log.error("pilot co-processor: %s", exc)
                return
            self._last_heard = time.monotonic()
            if reading != self._reading:
                self._reading = reading
                self._emit(reading)
        elif line.startswith("E"):
            log.error("pilot co-processor reports: %s", line[1:].strip())
        elif not line.startswith("K"):
            log.error("pilot co-processor: unknown line %r ignored", line)

    def read(self) -> PilotReading:
        return self._reading

    def sampler_age_s(self) -> float:
        """Seconds since the last ``S`` line (change or heartbeat) from the co-processor."""
        return time.monotonic() - self._last_heard

    def close(self) -> None:
        """Ask for constant +12 V, stop the reader and close the port."""
        with contextlib.suppress(serial.SerialException, OSError):
            self.set_off()
        self._stop.set()
        self._thread.join(2)
        self._port.close()
