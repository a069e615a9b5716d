"""Control pilot on a co-processor (an MCU that generates the PWM and samples the CP line
edge-synchronously), talking a small framed line protocol over a UART (pyserial).

Framing (both directions; ASCII, one frame per line, ``\\n`` terminated, 115200 8N1)::

    <seq> <payload>*<crc>\\n        e.g.  "1A S C 0*7C\\n"

* ``<seq>``: two upper-case hex digits, 00–FF, +1 per frame sent in that direction
  (wrapping FF → 00). The receiver expects each frame's seq to follow the previous one; a
  gap means frames were lost.
* ``<crc>``: two upper-case hex digits, CRC-8/SMBUS (polynomial x⁸+x²+x+1 = 0x07,
  init 0x00, not reflected, no final XOR; check value 0xF4 for ``b"123456789"``) over the
  bytes from the first seq digit up to, not including, the ``*``.

Payloads, host → MCU
    ``D <duty>``   run 1 kHz PWM at ``<duty>`` percent (0.0–100.0, one decimal);
                   ``D 100.0`` is constant +12 V (no charging allowed)
    ``F``          state F: constant −12 V
    ``P``          ping (the MCU answers with an ``S`` frame)

Payloads, MCU → host
    ``S <state> <diode>``  pilot state letter A–F and diode fault 0/1, sent on every change
                           and at least every 100 ms as a heartbeat. The MCU debounces only
                           changes *into* C/D; leaving C/D (A, B, E, F, diode fault) is sent
                           on the first conversions that show it (debounce protects against
                           closing on noise, never delays opening)
    ``K <command>``        command accepted (echo of the payload)
    ``E <text>``           command refused or MCU fault

On the host a frame with a bad CRC, a malformed frame, a sequence gap, an unknown payload
and every ``E`` frame is a *fault*: the pilot's fault listeners hear of it at once on the
reader thread (the board's interlock inhibits the contactor: COPROCESSOR), and
:meth:`UartPilot.hardware_fault` reports it until a good ``S`` frame follows. A missing
heartbeat is a dead sampler (:meth:`UartPilot.sampler_age_s` grows; the interlock's
supervisor inhibits: LIVENESS). Listeners are called on the reader thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import serial

from hal.pilot import ControlPilot, PilotReading, PilotState

log = logging.getLogger(__name__)


def crc8(data: bytes) -> int:
    """CRC-8/SMBUS: polynomial 0x07, init 0x00, not reflected, no final XOR."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def encode_frame(seq: int, payload: str) -> bytes:
    """One frame ``<seq> <payload>*<crc>\\n`` (see the module docstring)."""
    body = f"{seq & 0xFF:02X} {payload}".encode("ascii")
    return body + f"*{crc8(body):02X}\n".encode("ascii")


def decode_frame(raw: bytes) -> tuple[int, str]:
    """``(seq, payload)`` of one frame without its newline.

    Raises:
        ValueError: not ASCII, malformed, or the CRC does not match.
    """
    body, star, crc_text = raw.rstrip(b"\r").rpartition(b"*")
    if not star or len(crc_text) != 2 or len(body) < 4 or body[2:3] != b" ":
        raise ValueError(f"malformed frame {raw!r}")
    try:
        crc = int(crc_text, 16)
        seq = int(body[:2], 16)
        payload = body[3:].decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"malformed frame {raw!r}") from None
    if crc8(body) != crc:
        raise ValueError(f"CRC mismatch in frame {raw!r} (got {crc:02X}, "
                         f"computed {crc8(body):02X})")
    return seq, payload


def parse_state_line(line: str) -> PilotReading:
    """Parse an ``S <state> <diode>`` payload.

    Raises:
        ValueError: not a well-formed state payload.
    """
    parts = line.split()
    if (len(parts) != 3 or parts[0] != "S" or parts[2] not in ("0", "1")
            or parts[1] not in {s.value for s in PilotState}):
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
        self._tx_seq = 0
        self._rx_seq: int | None = None
        self._fault: str | None = None
        self._duty = 100.0
        self._reading = PilotReading(PilotState.A)
        self._last_heard = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pilot-uart", daemon=True)
        self._thread.start()
        self.set_off()

    def _send(self, payload: str) -> None:
        with self._write_lock:
            self._port.write(encode_frame(self._tx_seq, payload))
            self._tx_seq = (self._tx_seq + 1) & 0xFF
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
                buffer = b""
                self._bad("256 bytes without a newline")

    def _bad(self, text: str) -> None:
        """A protocol fault: listeners first (the interlock opens), log after."""
        self._fault = text
        self._emit_fault(f"pilot co-processor: {text}")
        log.error("pilot co-processor: %s", text)

    def _handle(self, raw: bytes) -> None:
        if not raw.strip():
            return
        try:
            seq, line = decode_frame(raw)
        except ValueError as exc:
            self._rx_seq = None  # reported already: resynchronise on the next good frame
            self._bad(str(exc))
            return
        expected = self._rx_seq
        self._rx_seq = seq
        if expected is not None and seq != (expected + 1) & 0xFF:
            self._bad(f"sequence gap: frame {seq:02X} after {expected:02X}")
            return
        if line.startswith("S"):
            try:
                reading = parse_state_line(line)
            except ValueError as exc:
                self._bad(str(exc))
                return
            self._last_heard = time.monotonic()
            self._fault = None
            if reading != self._reading:
                self._reading = reading
                self._emit(reading)
        elif line.startswith("E"):
            self._bad(f"reports {line[1:].strip()!r}")
        elif not line.startswith("K"):
            self._bad(f"unknown frame {line!r}")

    def hardware_fault(self) -> str | None:
        """The last protocol fault, until a good ``S`` frame follows it."""
        return self._fault

    def read(self) -> PilotReading:
        return self._reading

    def sampler_age_s(self) -> float:
        """Seconds since the last good ``S`` frame (change or heartbeat) from the
        co-processor."""
        return time.monotonic() - self._last_heard

    def close(self) -> None:
        """Ask for constant +12 V, stop the reader and close the port."""
        with contextlib.suppress(serial.SerialException, OSError):
            self.set_off()
        self._stop.set()
        self._thread.join(2)
        self._port.close()
