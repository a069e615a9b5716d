"""Secrets masked in exported text (diagnostics archives): evse.text_redaction.redact."""

from __future__ import annotations

import json

import pytest

from evse.text_redaction import redact

SECRET = "0123456789abcdefSECRET"


@pytest.mark.parametrize(
    "text",
    [
        json.dumps([2, "1", "ChangeConfiguration", {"key": "AuthorizationKey", "value": SECRET}]),
        json.dumps({"value": SECRET, "key": "AuthorizationKey"}),
        f"KeyValue(key='BasicAuthPassword', readonly=False, value='{SECRET}')",
        f"connecting to wss://CP001:{SECRET}@csms.example.com:443/ocpp/CP001",
        f"Authorization: Basic {SECRET}",
        f"headers [('Authorization', 'Basic {SECRET}')]",
        f'{{"password": "{SECRET}"}}',
        f'{{"ftp_password": "{SECRET}"}}',
        f"-----BEGIN PRIVATE KEY-----\nMIIEv{SECRET}\nAAAA\n-----END PRIVATE KEY-----",
        f"truncated -----BEGIN EC PRIVATE KEY-----\nMHc{SECRET}",
    ],
)
def test_secrets_masked(text: str) -> None:
    out = redact(text)
    assert SECRET not in out and "***" in out


def test_harmless_text_kept() -> None:
    text = "connector 1: Charging, 11.0 kW, ws://csms.example:9000/CP001"
    assert redact(text) == text
    long_word = "A" * 30_000  # the CALLERROR description that froze the old redactor
    assert redact(f"description {long_word} password") == f"description {long_word} password"
