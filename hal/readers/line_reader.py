"""A generic serial RFID reader that prints one UID per line (USB-serial "keyboard-less"
readers, RDM6300-style modules set to ASCII output)."""

from __future__ import annotations

import logging
import threading
import time

import serial

from hal.id_reader import IdReader
from hal.readers.normalise import Debouncer, UidFormat, normalise_uid

log = logging.getLogger(__name__)


class LineReader(IdReader):
    """Reads lines from a serial port; each line is one UID.

    Args:
        device: serial device path.
        baudrate: bit/s.
        fmt: UID normalisation.
        debounce_s: the same card is reported again only after this long without reads, s.
    """

    def __init__(
        self,
        device: str,
        baudrate: int = 9600,
        fmt: UidFormat | None = None,
        debounce_s: float = 2.0,
    ) -> None:
        super().__init__()
        self.device = device
        self.baudrate = baudrate
        self.fmt = fmt or UidFormat()
        self._debounce = Debouncer(debounce_s)
        self._port: serial.Serial | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the port and start the reader thread."""
        self._port = serial.Serial(self.device, baudrate=self.baudrate, timeout=0.1)
        self._thread = threading.Thread(target=self._run, name="rfid-line", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._port is not None
        buffer = b""
        while not self._stop.is_set():
            try:
                buffer += self._port.read(64)
            except (serial.SerialException, OSError) as exc:
                if not self._stop.is_set():
                    log.error("RFID reader %s: %s", self.device, exc)
                    self._stop.wait(1.0)
                continue
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

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        if self._port is not None:
            self._port.close()
