"""The systemd notification protocol (``sd_notify(3)``), spoken directly.

A service of ``Type=notify`` tells the service manager how it is doing by sending newline
separated ``KEY=VALUE`` assignments in one datagram to the ``AF_UNIX`` socket named by
``$NOTIFY_SOCKET`` (a filesystem path, or an abstract-namespace name written with a leading
``@``). Sources: ``sd_notify(3)``, ``systemd.service(5)`` (``Type=notify``, ``WatchdogSec=``)
and systemd's "The sd_notify protocol" (docs/NOTIFY.md, a stable interface).

Keys this daemon sends:

``READY=1``
    Start-up finished (hardware initialised, contactors verified open); ``systemctl start``
    returns and units ordered after ``evse.service`` start.
``STATUS=text``
    One line shown by ``systemctl status evse`` (CSMS link state, connector states).
``WATCHDOG=1``
    Keep-alive. With ``WatchdogSec=`` set, systemd exports ``WATCHDOG_USEC`` (and
    ``WATCHDOG_PID``) and kills / restarts the service when no ping arrives within that time.
``STOPPING=1``
    Shutdown began.

Without ``$NOTIFY_SOCKET`` (not started by systemd, e.g. ``evse run`` in a shell) every call is
a no-op, so the daemon calls these unconditionally.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)

#: Environment variable naming the notification socket (``sd_notify(3)``).
NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"
#: Watchdog timeout in microseconds, exported by systemd when ``WatchdogSec=`` is set.
WATCHDOG_USEC_ENV = "WATCHDOG_USEC"
#: PID the watchdog timeout is meant for; absent means "this process".
WATCHDOG_PID_ENV = "WATCHDOG_PID"


def _socket_address(value: str) -> str | bytes | None:
    """Turn ``$NOTIFY_SOCKET`` into a ``socket.sendto`` address, or None if unusable.

    ``@name`` is Linux's abstract namespace: the address starts with a NUL byte instead.
    """
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    # vsock:… and other schemes of newer systemd are not used on our boards.
    return None


class Notifier:
    """Sends ``sd_notify`` messages to the service manager; every method is a no-op outside
    systemd.

    ``environ`` defaults to ``os.environ`` and is read once, at construction (systemd sets it
    before ``exec``). ``pid`` defaults to ``os.getpid()``; it decides whether ``WATCHDOG_USEC``
    is meant for this process (``WATCHDOG_PID``). Sending never raises: a failed send is logged
    once at warning level and then at debug level, because losing a status line must not take
    the charge point down (a lost ``WATCHDOG=1`` is what the watchdog is for).
    """

    def __init__(self, environ: Mapping[str, str] | None = None, pid: int | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _socket_address(env.get(NOTIFY_SOCKET_ENV, ""))
        self._pid = os.getpid() if pid is None else pid
        self._watchdog_usec = self._parse_watchdog(env)
        self._sock: socket.socket | None = None
        self._warned = False

    def _parse_watchdog(self, env: Mapping[str, str]) -> int | None:
        usec_text = env.get(WATCHDOG_USEC_ENV)
        if not usec_text:
            return None
        pid_text = env.get(WATCHDOG_PID_ENV)
        if pid_text:
            try:
                if int(pid_text) != self._pid:
                    return None
            except ValueError:
                return None
        try:
            usec = int(usec_text)
        except ValueError:
            return None
        return usec if usec > 0 else None

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a usable ``$NOTIFY_SOCKET``."""
        return self._address is not None

    def watchdog_interval_s(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings: half of ``WATCHDOG_USEC`` (as ``sd_notify(3)``
        recommends), or None when the watchdog is off or meant for another PID."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2_000_000

    def notify(self, *assignments: str) -> bool:
        """Send ``assignments`` (``"KEY=VALUE"``) in one datagram; True if it was sent.

        Returns False (and sends nothing) outside systemd or when the send failed.
        """
        if self._address is None or not assignments:
            return False
        payload = "\n".join(assignments).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(payload, self._address)
        except OSError as exc:
            level = logging.DEBUG if self._warned else logging.WARNING
            self._warned = True
            log.log(level, "sd_notify to %s failed: %s", self._address, exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1`` (plus ``STATUS=`` when given): start-up is complete."""
        return self.notify("READY=1", *self._status(status))

    def status(self, text: str) -> bool:
        """``STATUS=text``: one line for ``systemctl status`` (newlines become spaces)."""
        return self.notify(*self._status(text))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the keep-alive ping. Call only while the safety path is healthy."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1`` (plus ``STATUS=`` when given): shutdown has begun."""
        return self.notify("STOPPING=1", *self._status(status))

    @staticmethod
    def _status(text: str | None) -> tuple[str, ...]:
        if text is None:
            return ()
        return ("STATUS=" + " ".join(text.splitlines()),)

    def close(self) -> None:
        """Close the datagram socket (sending again reopens it)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
