"""Daemon logging: through a queue, syslog priority prefixes for journald, secrets kept out.

**No thread ever blocks on log I/O** (DESIGN.md, Safety first). Every record goes to a
bounded in-memory queue (:class:`logging.handlers.QueueHandler`); one listener thread
(:class:`logging.handlers.QueueListener`) writes them to the stream. A stalled stream (a
full journald pipe) stalls only that thread; when the queue is full, records are dropped
and counted, and the listener says how many once it can write again. The caller pays only
for merging the message with its arguments (and a traceback), cut to
:data:`MAX_RECORD_CHARS`.

Under systemd, stdout/stderr go to journald, which reads a ``<N>`` prefix on each line as the
syslog priority of that line (``sd-daemon(3)``: ``SD_ERR`` = ``<3>`` … ``SD_DEBUG`` = ``<7>``),
so ``journalctl -p warning -u evse`` works. The prefix is added when journald is on the other
end (``$JOURNAL_STREAM`` is set, ``systemd.exec(5)``) or when asked for; in a terminal lines get
a timestamp instead. Every line of a multi-line record (a traceback) carries the prefix.

**Secrets are masked where they are logged**, not by scanning every line: OCPP frames by
:mod:`ocpp_client.frame_log` (``AuthorizationKey`` / ``BasicAuthPassword`` values, password
fields), the CSMS URL by :func:`evse.config.redact_url` (basic-auth userinfo). Nothing else
the daemon logs carries a secret.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import queue
import sys
import threading
from typing import TextIO

#: What a secret is replaced with.
MASK = "***"

#: OCPP configuration keys whose values are secrets (OCPP 1.6 Security Whitepaper
#: AuthorizationKey; OCPP 2.0.1 SecurityCtrlr.BasicAuthPassword).
SECRET_CONFIG_KEYS = ("AuthorizationKey", "BasicAuthPassword")

#: Longest log record (message + traceback) put on the queue, characters; longer ones keep
#: their head and tail (journald's default LineMax is 48 KiB).
MAX_RECORD_CHARS = 16_000

#: Records held while the stream is stalled; more are dropped (and counted).
QUEUE_CAPACITY = 10_000


def cut(text: str, limit: int) -> str:
    """``text`` shortened to about ``limit`` characters: head and tail kept, the middle
    replaced by a note saying how much was left out. Linear in ``limit``, not ``len(text)``."""
    if len(text) <= limit:
        return text
    half = max(limit // 2, 1)
    return f"{text[:half]} …[{len(text) - 2 * half} characters cut]… {text[-half:]}"


def syslog_priority(levelno: int) -> int:
    """Syslog priority (``syslog(3)``, 2 = crit … 7 = debug) for a :mod:`logging` level."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno > logging.INFO:
        return 5  # NOTICE: levels between INFO and WARNING
    if levelno >= logging.INFO:
        return 6
    return 7


class JournalFormatter(logging.Formatter):
    """Formats a record and prefixes every line with ``<priority>`` (journald) or a
    timestamp (terminal)."""

    def __init__(self, syslog_prefix: bool) -> None:
        fmt = "%(name)s: %(message)s" if syslog_prefix else (
            "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
        )
        super().__init__(fmt)
        self.syslog_prefix = syslog_prefix

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if not self.syslog_prefix:
            return text
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in text.split("\n"))


class NonBlockingQueueHandler(logging.handlers.QueueHandler):
    """A QueueHandler that never waits: merges the message (cut to MAX_RECORD_CHARS) in
    the caller, drops the record when the queue is full, and can be flushed / stopped.

    Attributes:
        listener: the thread writing the records to the real handler.
        dropped: records dropped because the queue was full.
    """

    def __init__(self, target: logging.Handler, capacity: int = QUEUE_CAPACITY) -> None:
        self._queue: queue.Queue[logging.LogRecord | None] = queue.Queue(capacity)
        super().__init__(self._queue)
        self.target = target
        self.dropped = 0
        self._dropped_lock = threading.Lock()
        self.listener = logging.handlers.QueueListener(self._queue, _DropReporter(self, target))
        self._listening = False

    def start(self) -> None:
        """Start the listener thread."""
        if not self._listening:
            self.listener.start()
            self._listening = True

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = super().prepare(record)
        if len(record.msg) > MAX_RECORD_CHARS:
            record.msg = record.message = cut(record.msg, MAX_RECORD_CHARS)
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            with self._dropped_lock:
                self.dropped += 1

    def take_dropped(self) -> int:
        """Dropped records since the last call (the listener reports them)."""
        with self._dropped_lock:
            count, self.dropped = self.dropped, 0
        return count

    def flush(self) -> None:
        """Wait (up to 5 s) until every record queued so far is written."""
        self.drain()

    def drain(self, timeout_s: float = 5.0) -> bool:
        """Wait up to ``timeout_s`` seconds until every record queued so far is written
        (tests, shutdown); False when the output stayed stalled that long."""
        if not self._listening:
            return True
        written = threading.Event()
        marker = logging.makeLogRecord({"msg": "", "flush_event": written})
        try:
            self._queue.put(marker, timeout=timeout_s)
        except queue.Full:
            return False
        return written.wait(timeout_s)

    def close(self) -> None:
        """Write what is queued (up to 5 s), stop the listener thread, close the target."""
        if self._listening:
            self._listening = False
            if self.drain():
                self.listener.stop()  # a stalled output keeps its (daemon) thread
        self.target.close()
        super().close()


class _DropReporter(logging.Handler):
    """The listener's handler: says how many records were dropped, then writes."""

    def __init__(self, owner: NonBlockingQueueHandler, target: logging.Handler) -> None:
        super().__init__()
        self._owner, self._target = owner, target

    def handle(self, record: logging.LogRecord) -> bool:
        flushed = getattr(record, "flush_event", None)
        if flushed is not None:
            self._target.flush()
            flushed.set()
            return True
        try:
            dropped = self._owner.take_dropped()
            if dropped:
                self._target.handle(logging.makeLogRecord({
                    "name": __name__, "levelno": logging.WARNING, "levelname": "WARNING",
                    "msg": f"{dropped} log record(s) dropped: the log output was stalled"}))
            return bool(self._target.handle(record))
        except Exception:  # a broken output must not end the listener thread
            return False

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does it
        self._target.emit(record)


def under_journald(stream: TextIO) -> bool:
    """True when ``stream`` is connected to journald (``$JOURNAL_STREAM`` = ``dev:inode`` of it).

    ``systemd.exec(5)``: the variable names the device and inode of the journal stream socket.
    """
    value = os.environ.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        dev, ino = (int(part) for part in value.split(":", 1))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


_HANDLER_NAME = "evse-queue"


def configure_logging(
    level: str,
    stream: TextIO | None = None,
    syslog_prefix: bool | None = None,
    target: logging.Handler | None = None,
) -> NonBlockingQueueHandler:
    """Set up the root logger for the daemon and return the queue handler it installed.

    ``level`` is the ``[logging] level`` config value (``debug``, ``info``, ``warning``,
    ``error``; case-insensitive). ``stream`` defaults to ``sys.stdout``. ``syslog_prefix``
    None means "when journald is on the other end" (:func:`under_journald`). ``target``
    replaces the stream handler the listener writes to (tests). Calling it again replaces
    the handler installed before and stops its listener (no duplicate lines).

    Raises:
        ValueError: unknown level name.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    out = sys.stdout if stream is None else stream
    if target is None:
        prefix = under_journald(out) if syslog_prefix is None else syslog_prefix
        target = logging.StreamHandler(out)
        target.setFormatter(JournalFormatter(prefix))
    handler = NonBlockingQueueHandler(target)
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    handler.start()
    root.addHandler(handler)
    root.setLevel(numeric)
    # Frames are logged once, at DEBUG, by ocpp_client.frames.log_frame (secrets masked);
    # the ocpp library's own frame lines (INFO) are dropped, its warnings and errors kept.
    # websockets logs handshake headers (basic-auth credentials) at DEBUG: never.
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    for noisy in ("websockets", "transitions", "pymodbus"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_death
    return handler


def _log_thread_death(args: threading.ExceptHookArgs) -> None:
    """A thread ended with an exception (a driver's reader or sampler thread): log it with
    its traceback at CRITICAL instead of a bare print to stderr (nothing dies silently)."""
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("evse.threads").critical("thread %s died", name, exc_info=args.exc_value)


def stop_logging() -> None:
    """Write every queued record and stop the listener (end of the daemon)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
