"""Daemon logging: one stream handler, syslog priority prefixes for journald, secrets redacted.

Under systemd, stdout/stderr go to journald, which reads a ``<N>`` prefix on each line as the
syslog priority of that line (``sd-daemon(3)``: ``SD_ERR`` = ``<3>`` … ``SD_DEBUG`` = ``<7>``),
so ``journalctl -p warning -u evse`` works. The prefix is added when journald is on the other
end (``$JOURNAL_STREAM`` is set, ``systemd.exec(5)``) or when asked for; in a terminal lines get
a timestamp instead. Every line of a multi-line record (a traceback) carries the prefix.

Secrets never reach the log: :func:`redact` masks the OCPP ``AuthorizationKey`` (and OCPP 2.0.1
``BasicAuthPassword``) values in ChangeConfiguration / GetConfiguration frames, HTTP
``Authorization`` header credentials, passwords in URLs (``ws://user:pass@host``), fields
named like passwords or private keys, and PEM private key blocks. The handler's formatter
redacts the finished line (message, arguments and traceback); :class:`RedactingFilter` does the
same to a record for any other handler.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import TextIO

#: What a secret is replaced with.
MASK = "***"

#: OCPP configuration keys whose values are secrets (OCPP 1.6 Security Whitepaper
#: AuthorizationKey; OCPP 2.0.1 SecurityCtrlr.BasicAuthPassword).
SECRET_CONFIG_KEYS = ("AuthorizationKey", "BasicAuthPassword")

_Q = r"""["']"""  # a quote, JSON or Python repr
_KEYS = "|".join(SECRET_CONFIG_KEYS)
# key=AuthorizationKey ... value=SECRET inside one object / call (no nested braces between).
_KEY_THEN_VALUE = re.compile(
    rf"""(?P<pre>{_Q}?key{_Q}?\s*[:=]\s*{_Q}(?:{_KEYS}){_Q}[^{{}}()]*?"""
    rf"""{_Q}?value{_Q}?\s*[:=]\s*)(?P<q>{_Q})(?P<secret>(?:\\.|(?!(?P=q)).)*)(?P=q)"""
)
# value=SECRET ... key=AuthorizationKey (JSON objects are unordered).
_VALUE_THEN_KEY = re.compile(
    rf"""(?P<pre>{_Q}?value{_Q}?\s*[:=]\s*)(?P<q>{_Q})(?P<secret>(?:\\.|(?!(?P=q)).)*)(?P=q)"""
    rf"""(?P<post>[^{{}}()]*?{_Q}?key{_Q}?\s*[:=]\s*{_Q}(?:{_KEYS}){_Q})"""
)
# "password": "x", password='x', private_key = "x", authorization_key: "x", ...
_SECRET_FIELD = re.compile(
    rf"""(?P<pre>{_Q}?(?:\w*pass(?:word|wd)|\w*secret|private_?key|authorization_?key)"""
    rf"""{_Q}?\s*[:=]\s*)(?P<q>{_Q})(?P<secret>(?:\\.|(?!(?P=q)).)*)(?P=q)""",
    re.IGNORECASE,
)
# Authorization: Basic Q1AwMDE6c2VjcmV0  /  ('Authorization', 'Bearer abc')
_AUTH_HEADER = re.compile(
    r"""(?P<pre>Authorization['"]?\s*[:,]\s*['"]?(?:Basic|Bearer|Digest)\s+)[^\s'",)]+""",
    re.IGNORECASE,
)
# scheme://user:password@host
_URL_PASSWORD = re.compile(r"(?P<pre>\b[a-z][a-z0-9+.-]*://[^\s:/@'\"]*:)[^\s@/'\"]+(?=@)", re.I)
# PEM private keys (RSA, EC, ENCRYPTED, PKCS#8), also when cut off before the END line.
_PEM_KEY = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]*)PRIVATE KEY-----"
    r"(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*\Z)",
    re.DOTALL,
)


def redact(text: str) -> str:
    """``text`` with every secret it contains replaced by :data:`MASK`."""
    if "PRIVATE KEY-----" in text:
        text = _PEM_KEY.sub(
            lambda m: f"-----BEGIN {m['kind']}PRIVATE KEY-----{MASK}"
            f"-----END {m['kind']}PRIVATE KEY-----",
            text,
        )
    if any(key in text for key in SECRET_CONFIG_KEYS):
        text = _KEY_THEN_VALUE.sub(lambda m: f"{m['pre']}{m['q']}{MASK}{m['q']}", text)
        text = _VALUE_THEN_KEY.sub(lambda m: f"{m['pre']}{m['q']}{MASK}{m['q']}{m['post']}", text)
    text = _SECRET_FIELD.sub(lambda m: f"{m['pre']}{m['q']}{MASK}{m['q']}", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m['pre']}{MASK}", text)
    return _URL_PASSWORD.sub(lambda m: f"{m['pre']}{MASK}", text)


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message (arguments merged in) before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


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
    """Formats a record, redacts it, and prefixes every line with ``<priority>``."""

    def __init__(self, syslog_prefix: bool) -> None:
        fmt = "%(name)s: %(message)s" if syslog_prefix else (
            "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
        )
        super().__init__(fmt)
        self.syslog_prefix = syslog_prefix

    def format(self, record: logging.LogRecord) -> str:
        text = redact(super().format(record))
        if not self.syslog_prefix:
            return text
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in text.split("\n"))


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


_HANDLER_NAME = "evse-stream"


def configure_logging(
    level: str,
    stream: TextIO | None = None,
    syslog_prefix: bool | None = None,
) -> logging.Handler:
    """Set up the root logger for the daemon and return the handler it installed.

    ``level`` is the ``[logging] level`` config value (``debug``, ``info``, ``warning``,
    ``error``; case-insensitive). ``stream`` defaults to ``sys.stdout``. ``syslog_prefix``
    None means "when journald is on the other end" (:func:`under_journald`). Calling it again
    replaces the handler installed before (no duplicate lines).

    Raises:
        ValueError: unknown level name.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    out = sys.stdout if stream is None else stream
    prefix = under_journald(out) if syslog_prefix is None else syslog_prefix
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JournalFormatter(prefix))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    logging.captureWarnings(True)
    return handler
