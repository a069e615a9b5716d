"""A generic serial RFID reader that prints one UID per line (USB-serial "keyboard-less"
readers, RDM6300-style modules set to ASCII output)."""

from __future__ import annotations

import logging
import time

import serial

from hal.readers.normalise import Debouncer, UidFormat, normalise_uid
from hal.readers.serial_reader import SerialReader

log = logging.getLogger(__name__)


class LineReader(SerialReader):
    """Reads lines from a serial port; each line is one UID.

    The reader is working as soon as its port is open (it says nothing without a card);
    a lost port or a driver bug restarts the read loop with backoff
    (:class:`hal.readers.serial_reader.SerialReader`).

    Args:
        device: serial device path.
        baudrate: bit/s.
        fmt: UID normalisation.
        debounce_s: the same card is reported again only after this long without reads, s.
        backoff_initial_s: first wait before reopening a failed port, s.
        backoff_max_s: longest wait before reopening, s.
    """

    thread_name = "rfid-line"

    def __init__(
        self,
        device: str,
        baudrate: int = 9600,
        fmt: UidFormat | None = None,
        debounce_s: float = 2.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        super().__init__(device, baudrate, read_timeout_s=0.1,
                         backoff_initial_s=backoff_initial_s, backoff_max_s=backoff_max_s)
        self.fmt = fmt or UidFormat()
        self._debounce = Debouncer(debounce_s)

    def _serve(self, port: serial.Serial) -> None:
        self._report_working()
        buffer = b""
        while not self._stop.is_set():
            buffer += port.read(64)
            while True:
                cut = min((i for i in (buffer.find(b"\n"), buffer.find(b"\r")) if i >= 0),
                          default=-1)
                if cut < 0:
                    break
                raw, buffer = buffer[:cut], buffer[cut + 1 :]
                self._line(raw)
            if len(buffer) > 128:
                log.error("RFID reader %s: %d bytes without line end dropped", self.device,
                          len(buffer))
                buffer = b""

    def _line(self, raw: bytes) -> None:
        text = raw.decode("ascii", errors="replace").strip().strip("\x02\x03")
        if not text:
            return
        try:
            id_tag = normalise_uid(text, self.fmt)
        except ValueError as exc:
            log.error("RFID reader %s: %s", self.device, exc)
            return
        if self._debounce.accept(id_tag, time.monotonic()):
            self._emit(id_tag)
