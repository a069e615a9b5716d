"""journald priority prefixes and secret redaction of the daemon's log output."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from evse.logging_setup import configure_logging, redact, syslog_priority

SECRET = "0123456789abcdefSECRET"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging("debug", stream=stream, syslog_prefix=True)
    yield stream
    logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(logging.WARNING)


def test_levels_get_syslog_priority_prefixes(log_output: io.StringIO) -> None:
    log = logging.getLogger("evse.test")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    log.critical("c")
    assert log_output.getvalue().splitlines() == [
        "<7>evse.test: d",
        "<6>evse.test: i",
        "<4>evse.test: w",
        "<3>evse.test: e",
        "<2>evse.test: c",
    ]
    assert syslog_priority(25) == 5


def test_every_traceback_line_keeps_the_priority(log_output: io.StringIO) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("evse.test").exception("failed")
    lines = log_output.getvalue().splitlines()
    assert len(lines) > 3
    assert all(line.startswith("<3>") for line in lines)


def test_level_from_config_filters(log_output: io.StringIO) -> None:
    stream = io.StringIO()
    configure_logging("warning", stream=stream, syslog_prefix=False)  # replaces the handler
    logging.getLogger("evse.test").info("hidden")
    logging.getLogger("evse.test").warning("shown")
    assert "hidden" not in stream.getvalue()
    assert "WARNING evse.test: shown" in stream.getvalue()
    assert log_output.getvalue() == ""  # the old handler is gone, no duplicate lines
    with pytest.raises(ValueError):
        configure_logging("loud", stream=stream)


def test_prefix_off_in_a_terminal_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    stream = io.StringIO()
    handler = configure_logging("info", stream=stream)
    try:
        logging.getLogger("evse.test").info("hello")
    finally:
        logging.getLogger().removeHandler(handler)
    assert not stream.getvalue().startswith("<")
    assert "INFO    evse.test: hello" in stream.getvalue()


def ocpp_frames() -> list[str]:
    return [
        json.dumps([2, "1", "ChangeConfiguration", {"key": "AuthorizationKey", "value": SECRET}]),
        json.dumps(
            [3, "2", {"configurationKey": [
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                {"key": "AuthorizationKey", "readonly": False, "value": SECRET},
            ]}]
        ),
        json.dumps({"value": SECRET, "key": "AuthorizationKey"}),
        f"ChangeConfiguration(key='AuthorizationKey', value='{SECRET}')",
        f"KeyValue(key='BasicAuthPassword', readonly=False, value='{SECRET}')",
    ]


@pytest.mark.parametrize("frame", ocpp_frames())
def test_authorization_key_never_logged(log_output: io.StringIO, frame: str) -> None:
    logging.getLogger("ocpp").info("send %s", frame)
    out = log_output.getvalue()
    assert SECRET not in out
    assert "***" in out


def test_other_configuration_values_stay(log_output: io.StringIO) -> None:
    frame = json.dumps([3, "2", {"configurationKey": [
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        {"key": "AuthorizationKey", "readonly": False, "value": SECRET},
    ]}])
    logging.getLogger("ocpp").info("receive %s", frame)
    assert '"value": "300"' in log_output.getvalue()


@pytest.mark.parametrize(
    "text",
    [
        f"connecting to wss://CP001:{SECRET}@csms.example.com:443/ocpp/CP001",
        f"Authorization: Basic {SECRET}",
        f"headers [('Authorization', 'Basic {SECRET}')]",
        f'{{"password": "{SECRET}"}}',
        f"-----BEGIN PRIVATE KEY-----\nMIIEv{SECRET}\nAAAA\n-----END PRIVATE KEY-----",
        f"-----BEGIN RSA PRIVATE KEY-----\\nMIIEv{SECRET}\\n-----END RSA PRIVATE KEY-----",
        f"truncated -----BEGIN EC PRIVATE KEY-----\nMHc{SECRET}",
    ],
)
def test_passwords_and_keys_never_logged(log_output: io.StringIO, text: str) -> None:
    logging.getLogger("evse.test").warning("%s", text)
    assert SECRET not in log_output.getvalue()


def test_secret_in_exception_text_redacted(log_output: io.StringIO) -> None:
    try:
        raise ConnectionError(f"cannot reach ws://cp:{SECRET}@10.0.0.1/")
    except ConnectionError:
        logging.getLogger("evse.test").exception("link down")
    assert SECRET not in log_output.getvalue()


def test_redact_keeps_harmless_text() -> None:
    text = "connector 1: Charging, 11.0 kW, ws://csms.example:9000/CP001"
    assert redact(text) == text
    assert redact("ws://user@host/") == "ws://user@host/"
