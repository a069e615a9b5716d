"""The daemon's log output: through a queue (a stalled output never holds a caller up),
journald priority prefixes, and secrets masked where they are logged (OCPP frames, the CSMS
URL) — also for a real CSMS sending them, and in bounded time for huge frames."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from dev_csms import DevCsms
from gpiozero.pins.mock import MockFactory
from ocpp.messages import CallError
from ocpp.v16 import call

from evse.config import redact_url
from evse.logging_setup import (
    MAX_RECORD_CHARS,
    NonBlockingQueueHandler,
    configure_logging,
    syslog_priority,
)
from hal.gpio.contactor import GpioContactor
from hal.gpio.rcd import GpioRcd
from ocpp_client.frame_log import MAX_FRAME_CHARS, FrameLogger, redact_frame
from tests.conftest import DaemonFactory
from tests.hal.gpio_peers import mock_pin_factory

SECRET = "0123456789abcdefSECRET"


@pytest.fixture
def log_output() -> Iterator[tuple[io.StringIO, NonBlockingQueueHandler]]:
    stream = io.StringIO()
    handler = configure_logging("debug", stream=stream, syslog_prefix=True)
    yield stream, handler
    logging.getLogger().removeHandler(handler)
    handler.close()
    logging.getLogger().setLevel(logging.WARNING)


def written(output: tuple[io.StringIO, NonBlockingQueueHandler]) -> str:
    """Everything logged so far, once the listener thread wrote it."""
    stream, handler = output
    assert handler.drain(5.0)
    return stream.getvalue()


def test_levels_get_syslog_priority_prefixes(log_output: Any) -> None:
    log = logging.getLogger("evse.test")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    log.critical("c")
    assert written(log_output).splitlines() == [
        "<7>evse.test: d",
        "<6>evse.test: i",
        "<4>evse.test: w",
        "<3>evse.test: e",
        "<2>evse.test: c",
    ]
    assert syslog_priority(25) == 5


def test_every_traceback_line_keeps_the_priority(log_output: Any) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("evse.test").exception("failed")
    lines = written(log_output).splitlines()
    assert len(lines) > 3
    assert all(line.startswith("<3>") for line in lines)
    assert lines[-1] == "<3>RuntimeError: boom"


def test_level_from_config_filters(log_output: Any) -> None:
    stream = io.StringIO()
    handler = configure_logging("warning", stream=stream, syslog_prefix=False)  # replaces
    try:
        logging.getLogger("evse.test").info("hidden")
        logging.getLogger("evse.test").warning("shown")
        assert handler.drain(5.0)
        assert "hidden" not in stream.getvalue()
        assert "WARNING evse.test: shown" in stream.getvalue()
        assert log_output[0].getvalue() == ""  # the old handler is gone, no duplicate lines
        with pytest.raises(ValueError):
            configure_logging("loud", stream=stream)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def test_prefix_off_in_a_terminal_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    stream = io.StringIO()
    handler = configure_logging("info", stream=stream)
    try:
        logging.getLogger("evse.test").info("hello")
        assert handler.drain(5.0)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert not stream.getvalue().startswith("<")
    assert "INFO    evse.test: hello" in stream.getvalue()


# -- a stalled output ----------------------------------------------------------------------
class StalledOutput(logging.Handler):
    """A log output that blocks (like a full journald pipe) until released, at most 2 s."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled = threading.Event()
        self.unblock = threading.Event()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.stalled.set()
        self.unblock.wait(2.0)
        self.lines.append(record.getMessage())


@pytest.fixture
def gpio() -> Iterator[MockFactory]:
    with mock_pin_factory() as factory:
        yield factory


def test_rcd_trip_opens_the_contactor_while_the_log_output_is_stalled(
        gpio: MockFactory) -> None:
    """The RCD driver logs its trip on the GPIO callback thread before it notifies; with the
    output stalled the contactor pin still drops at once (the record waits in the queue)."""
    output = StalledOutput()
    handler = configure_logging("info", target=output)
    trip_pin = gpio.pin(5)
    contactor = GpioContactor(17, pin_factory=gpio)
    rcd = GpioRcd(5, pin_factory=gpio)
    rcd.add_trip_listener(contactor.open)
    try:
        logging.getLogger("evse.test").warning("before the trip")  # stalls the output
        assert output.stalled.wait(2.0)
        contactor.close()
        assert gpio.pin(17).state == 1
        edge = threading.Thread(target=trip_pin.drive_high, name="rcd-edge")
        edge.start()
        edge.join(1.0)  # the stall lasts 2 s: a thread waiting on the log is still alive
        assert not edge.is_alive()
        assert gpio.pin(17).state == 0
        assert not output.unblock.is_set() and output.lines == []  # still stalled
        output.unblock.set()
        assert handler.drain(5.0)
        assert output.lines == ["before the trip", "RCD trip"]
    finally:
        output.unblock.set()
        logging.getLogger().removeHandler(handler)
        handler.close()
        rcd.close()
        contactor.close_hw()


def test_records_beyond_the_queue_are_dropped_and_counted() -> None:
    output = StalledOutput()
    handler = NonBlockingQueueHandler(output, capacity=3)
    handler.start()
    log = logging.getLogger("evse.test.drop")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("first")
        assert output.stalled.wait(2.0)  # the listener holds "first"; the queue is empty
        for i in range(10):
            log.warning("line %d", i)  # returns at once, stalled or not
        assert handler.dropped == 7
        output.unblock.set()
        assert handler.drain(5.0)
        assert output.lines == ["first",
                                "7 log record(s) dropped: the log output was stalled",
                                "line 0", "line 1", "line 2"]
    finally:
        output.unblock.set()
        log.removeHandler(handler)
        log.propagate = True
        handler.close()


def test_huge_records_are_cut(log_output: Any) -> None:
    logging.getLogger("evse.test").warning("%s", "x" * 200_000 + "END")
    text = written(log_output)
    assert len(text) < MAX_RECORD_CHARS + 200
    assert text.rstrip().endswith("END") and "characters cut" in text


# -- secrets --------------------------------------------------------------------------------
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
        json.dumps([2, "3", "SetVariables", {"setVariableData": [{
            "component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
            "attributeValue": SECRET, "key": "BasicAuthPassword", "value": SECRET}]}]),
        json.dumps({"password": SECRET}),
        json.dumps([2, "4", "GetConfiguration", {"key": ["AuthorizationKey"]}]) + SECRET,
        f"ChangeConfiguration(key='AuthorizationKey', value='{SECRET}')",  # not JSON
    ]


@pytest.mark.parametrize("frame", ocpp_frames())
def test_frame_logger_masks_secrets(log_output: Any, frame: str) -> None:
    FrameLogger(logging.getLogger("test.frames")).info("%s: send %s", "CP1", frame)
    out = written(log_output)
    assert SECRET not in out
    assert out.startswith("<6>test.frames: CP1: send ")


def test_frame_logger_keeps_other_values() -> None:
    frame = json.dumps([3, "2", {"configurationKey": [
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        {"key": "AuthorizationKey", "readonly": False, "value": SECRET},
    ]}])
    assert json.loads(redact_frame(frame)) == [3, "2", {"configurationKey": [
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        {"key": "AuthorizationKey", "readonly": False, "value": "***"},
    ]}]


def test_callerror_with_a_30000_letter_description_is_logged_cut(log_output: Any) -> None:
    """What froze the daemon for 17 s with the old per-line regexes: the library's warning
    about a CALLERROR whose description is 30 000 letters long."""
    error = CallError("42", "InternalError", "A" * 30_000, {})
    FrameLogger(logging.getLogger("test.frames")).warning("Received a CALLError: %s'", error)
    out = written(log_output)
    assert len(out) < MAX_FRAME_CHARS + 200
    assert "InternalError" in out and "characters cut" in out


def test_frame_logger_does_nothing_when_disabled() -> None:
    class Exploding:
        def to_json(self) -> str:
            raise AssertionError("formatted although the level is off")

    logger = logging.getLogger("ocpp.frames.quiet")
    logger.setLevel(logging.WARNING)
    FrameLogger(logger).info("%s", Exploding())


@pytest.mark.parametrize("url,shown", [
    (f"wss://CP001:{SECRET}@csms.example.com:443/ocpp/CP001",
     "wss://CP001:***@csms.example.com:443/ocpp/CP001"),
    ("ws://csms.example:9000/CP001", "ws://csms.example:9000/CP001"),
    ("ws://user@host/", "ws://user@host/"),
])
def test_url_password_masked(url: str, shown: str) -> None:
    assert redact_url(url) == shown


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def test_secrets_from_a_real_csms_never_reach_the_log(
        csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    """The daemon at debug level (every frame logged), a CSMS URL with a basic-auth
    password, and a CSMS setting and reading AuthorizationKey."""
    capture = Capture()
    handler = configure_logging("debug", target=capture)  # as ``[logging] level = "debug"``
    try:
        daemon = await daemon_factory(f"ws://CP-TEST:{SECRET}@127.0.0.1:{csms.port}/")
        await csms.wait_for(lambda: "CP-TEST" in csms.stations)
        await csms.wait_for(lambda: daemon.adapter.online  # type: ignore[union-attr]
                            and csms.actions("StatusNotification"))
        cp = csms.stations["CP-TEST"]
        await cp.call(call.ChangeConfiguration(key="AuthorizationKey", value=SECRET))
        await cp.call(call.GetConfiguration(key=["AuthorizationKey", "HeartbeatInterval"]))
        status = daemon.adapter.describe()  # type: ignore[union-attr]
        assert handler.drain(5.0)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    text = "\n".join(capture.lines)
    assert "ocpp_client.frames: CP-TEST <- [2," in text  # frames were logged
    assert "AuthorizationKey" in text
    assert f"CP-TEST:***@127.0.0.1:{csms.port}" in text
    assert SECRET not in text
    assert base64.b64encode(f"CP-TEST:{SECRET}".encode()).decode() not in text  # Basic auth
    assert SECRET not in json.dumps(status)


def test_a_dying_thread_is_logged_with_its_traceback(log_output: Any) -> None:
    def reader() -> None:
        raise ValueError("bad frame from the RFID reader")

    thread = threading.Thread(target=reader, name="rfid-line")
    thread.start()
    thread.join()
    out = written(log_output)
    assert "<2>evse.threads: thread rfid-line died" in out
    assert "<2>ValueError: bad frame from the RFID reader" in out
