"""A card reader on a serial port whose thread never dies silently.

The reader thread opens the port and runs the driver's read loop. When the loop raises
(the port was unplugged or reports errors, the reader stops answering, or a driver bug),
the thread logs the exception with its traceback, reports the reader failing
(:meth:`hal.id_reader.IdReader.add_fault_listener`), closes the port, waits a backoff
(doubling from ``backoff_initial_s`` to ``backoff_max_s``) and opens the port again by its
path, so a USB reader plugged back in (a new tty behind the same ``/dev/serial/by-id``
link) is found again. The reader reports itself working once the driver proves the device
answers; the backoff starts over then.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

import serial

from hal.id_reader import IdReader

log = logging.getLogger(__name__)


class SerialReader(IdReader):
    """Base of serial card readers: owns the port and the supervised reader thread.

    Subclasses implement :meth:`_serve` and call :meth:`_report_working` when the device
    proves alive.

    Args:
        device: serial device path (a stable ``/dev/serial/by-id/...`` link is best).
        baudrate: bit/s.
        read_timeout_s: serial read timeout, s (bounds how long ``close()`` waits).
        backoff_initial_s: wait before the first reopen after a failure, s.
        backoff_max_s: longest wait between reopens, s.

    Raises:
        ValueError: not ``0 < backoff_initial_s <= backoff_max_s``.
    """

    thread_name = "rfid"

    def __init__(self, device: str, baudrate: int, read_timeout_s: float = 0.1,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0) -> None:
        super().__init__()
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError("need 0 < backoff_initial_s <= backoff_max_s")
        self.device = device
        self.baudrate = baudrate
        self.read_timeout_s = read_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        #: Times the read loop was started again after a failure.
        self.restarts = 0
        self._backoff_s = 0.0
        self._port: serial.Serial | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the port and start the reader thread (a missing device is a reader
        failure the thread retries with backoff, not an error of the caller)."""
        try:
            self._port = self._open()
        except (serial.SerialException, OSError) as exc:
            self._failed(exc)
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread (waits at most 2 s) and close the port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self._close_port()

    @property
    def running(self) -> bool:
        """The reader thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def describe(self) -> dict[str, Any]:
        state = super().describe()
        state.update(device=self.device, restarts=self.restarts, running=self.running)
        return state

    def _open(self) -> serial.Serial:
        return serial.Serial(self.device, baudrate=self.baudrate, timeout=self.read_timeout_s)

    def _serve(self, port: serial.Serial) -> None:
        """Read cards from ``port`` until :attr:`_stop` is set; raise when the device fails."""
        raise NotImplementedError

    def _report_working(self) -> None:
        self._backoff_s = 0.0
        super()._report_working()

    def _run(self) -> None:
        if self._port is None:  # start() could not open it: back off first
            self._stop.wait(self._backoff_s)
        try:
            while not self._stop.is_set():
                try:
                    if self._port is None:
                        self._port = self._open()
                    self._serve(self._port)
                    if not self._stop.is_set():
                        raise RuntimeError("read loop ended on its own")
                except Exception as exc:
                    if self._stop.is_set():
                        break  # close() pulled the port from under the read
                    self._failed(exc)
                finally:
                    self._close_port()
                if not self._stop.is_set():
                    self._stop.wait(self._backoff_s)
                    self.restarts += 1
        finally:
            if not self._stop.is_set():  # only a BaseException gets here: say so
                self._report_failure("reader thread ended")
                log.critical("card reader on %s: thread ended, no cards are read",
                             self.device)

    def _failed(self, exc: Exception) -> None:
        """Report the failure first, then log it: with its traceback when the error is new,
        one line when it repeats (an unplugged reader retries for hours)."""
        self._backoff_s = (self.backoff_initial_s if self._backoff_s == 0.0
                           else min(self._backoff_s * 2.0, self.backoff_max_s))
        reason = f"{type(exc).__name__}: {exc}"[:200]
        repeated = reason == self.last_error and not self.healthy
        self._report_failure(reason)
        log.error("card reader on %s failed (%d so far); reopening in %.3g s%s", self.device,
                  self._failures, self._backoff_s, f": {reason}" if repeated else "",
                  exc_info=None if repeated else exc)

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):  # gone with the device
                port.close()
