"""Secrets masked in *exported* text: log lines put into a diagnostics archive (OCPP 1.6
§5.9 GetDiagnostics), which may come from older releases or other programs.

The daemon's own log output does not go through this (it masks secrets where they are
logged: :mod:`ocpp_client.frame_log`, :func:`evse.config.redact_url`); this is the net for
text the station hands out. Masked: OCPP ``AuthorizationKey`` / ``BasicAuthPassword`` values
in ChangeConfiguration / GetConfiguration frames, HTTP ``Authorization`` header credentials,
passwords in URLs (``ws://user:pass@host``), fields named like passwords or private keys, and
PEM private key blocks.
"""

from __future__ import annotations

import re

from evse.logging_setup import MASK, SECRET_CONFIG_KEYS

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
    rf"""(?P<pre>{_Q}?(?:\b\w*(?:pass(?:word|wd)|secret)|private_?key|authorization_?key)"""
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
    """``text`` with every secret it contains replaced by :data:`MASK`.

    Linear in ``len(text)`` for the inputs that froze the daemon before (a 30 000-letter
    word: the password-field pattern starts only at word boundaries); still six scans of
    the text, so it is kept off the live log path and used on exported text only."""
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


__all__ = ["redact"]
