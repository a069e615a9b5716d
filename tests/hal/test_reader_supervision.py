"""Card reader threads never die silently (issue 9): a reader whose serial port goes away
(USB reader unplugged) reports a fault, reopens its port by path with backoff and reads the
next card once the device is back; a driver bug is logged with its traceback, the thread
keeps running. The devices are real pty pairs behind a ``/dev/serial/by-id``-style link,
the PN532 peer speaks its real HSU framing."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import hal.readers.pn532 as pn532
from hal.readers.line_reader import LineReader
from hal.readers.pn532 import Pn532Reader
from tests.hal.peers import PtyDevice
from tests.hal.test_serial_devices import Cards, Pn532Chip


class PluggableDevice:
    """A serial device behind a stable link (as udev's ``/dev/serial/by-id/...``): unplugging
    closes the pty and removes the link; plugging it back makes a new pty behind the link."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.pty: PtyDevice | None = None
        self.chip: Pn532Chip | None = None

    def plug(self, pn532_chip: bool = False) -> PtyDevice:
        pty = self.pty = PtyDevice()
        tmp = self.link.with_suffix(".new")
        os.symlink(pty.path, tmp)
        os.replace(tmp, self.link)
        if pn532_chip:
            self.chip = Pn532Chip(pty)
        return pty

    def unplug(self) -> None:
        if self.chip is not None:
            self.chip.stop()
            self.chip = None
        self.link.unlink(missing_ok=True)
        if self.pty is not None:
            self.pty.close()
            self.pty = None


class FaultLog:
    """Records ``(active, reason)`` from a reader's fault listener."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.events: list[tuple[bool, str]] = []

    def __call__(self, active: bool, reason: str) -> None:
        with self.cond:
            self.events.append((active, reason))
            self.cond.notify_all()

    def wait(self, count: int, timeout_s: float = 3.0) -> list[tuple[bool, str]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.events) >= count, timeout_s), \
                self.events
            return list(self.events)


@pytest.fixture
def device(tmp_path: Path) -> Iterator[PluggableDevice]:
    dev = PluggableDevice(tmp_path / "usb-RFID-if00")
    yield dev
    dev.unplug()


def test_line_reader_reopens_its_port_after_an_unplug(device: PluggableDevice) -> None:
    pty = device.plug()
    reader = LineReader(str(device.link), debounce_s=0.0, backoff_initial_s=0.02,
                        backoff_max_s=0.1)
    cards, faults = Cards(), FaultLog()
    reader.add_listener(cards)
    reader.add_fault_listener(faults)
    reader.start()
    try:
        pty.write(b"04A22B1C\r\n")
        assert cards.wait(1) == ["04A22B1C"]
        assert reader.healthy and faults.events == []

        device.unplug()
        active, reason = faults.wait(1)[0]
        assert active and reason
        assert not reader.healthy
        # Still unplugged: it keeps retrying (the link is missing), one fault only.
        with reader_failures(reader, 3):
            pass
        assert faults.events == [(True, reason)]

        pty = device.plug()
        assert faults.wait(2)[1] == (False, "")
        assert reader.healthy and reader.running
        pty.write(b"DEADBEEF\n")
        assert cards.wait(2) == ["04A22B1C", "DEADBEEF"]
        status = reader.describe()
        assert status["healthy"] is True and status["restarts"] >= 3
        assert status["device"] == str(device.link)
        assert "could not open port" in status["last_error"]  # the last failure kept
    finally:
        reader.close()
    assert not reader.running


def test_pn532_reopens_its_port_after_an_unplug(device: PluggableDevice) -> None:
    device.plug(pn532_chip=True)
    reader = Pn532Reader(str(device.link), poll_interval_s=0.01, timeout_s=0.2,
                         debounce_s=0.0, backoff_initial_s=0.02, backoff_max_s=0.1)
    cards, faults = Cards(), FaultLog()
    reader.add_listener(cards)
    reader.add_fault_listener(faults)
    reader.start()
    try:
        assert device.chip is not None
        device.chip.uid = bytes.fromhex("04a22b1c")
        assert cards.wait(1)[0] == "04A22B1C"
        device.unplug()
        assert faults.wait(1)[0][0] is True
        assert not reader.healthy
        with reader_failures(reader, 3):
            pass

        device.plug(pn532_chip=True)
        assert device.chip is not None
        seen = len(cards.tags)
        device.chip.uid = bytes.fromhex("deadbeef")
        assert "DEADBEEF" in cards.wait(seen + 1)[seen:]
        # The new chip was configured again before it was polled (UM0701-02 §7.2.10).
        assert device.chip.commands[:2] == [0x14, 0x32]
        assert [active for active, _ in faults.events] == [True, False]
        assert reader.healthy
    finally:
        reader.close()


def test_a_reader_missing_at_start_is_a_fault_not_a_crash(
        device: PluggableDevice, caplog: pytest.LogCaptureFixture) -> None:
    """Missing at start: a fault, and reopen attempts backing off 20, 40, 80 ms, then every
    100 ms (the bound), each logged; the device appears: the reader reads."""
    reader = LineReader(str(device.link), backoff_initial_s=0.02, backoff_max_s=0.1)
    cards, faults = Cards(), FaultLog()
    reader.add_listener(cards)
    reader.add_fault_listener(faults)
    with caplog.at_level(logging.ERROR, logger="hal.readers"):
        reader.start()  # no device behind the link yet: no exception here
        with reader_failures(reader, 6):
            pass
    try:
        assert faults.wait(1)[0][0] is True
        assert faults.events[1:] == []
        assert "No such file" in (reader.last_error or "")
        waits = [r.args[2] for r in caplog.records
                 if "reopening in" in r.msg and isinstance(r.args, tuple)]
        assert waits[:6] == [0.02, 0.04, 0.08, 0.1, 0.1, 0.1]
        # The first failure has its traceback, repeats of the same error are one line.
        assert caplog.records[0].exc_info is not None
        assert all(r.exc_info is None for r in caplog.records[1:6])
        pty = device.plug()
        assert faults.wait(2)[1] == (False, "")
        pty.write(b"04A22B1C\n")
        assert cards.wait(1) == ["04A22B1C"]
    finally:
        reader.close()


def test_a_driver_bug_is_logged_with_its_traceback_and_the_thread_restarts(
        device: PluggableDevice, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The response parser raises TypeError (a bug, not a protocol error the driver expects):
    the reader faults, logs the traceback, restarts with backoff and reads again once the
    parser works."""
    device.plug(pn532_chip=True)
    broken = threading.Event()
    parse = pn532.parse_in_list_passive_target

    def buggy_parse(data: bytes) -> list[bytes]:
        if broken.is_set():
            raise TypeError("'NoneType' object is not subscriptable")
        return parse(data)

    monkeypatch.setattr(pn532, "parse_in_list_passive_target", buggy_parse)
    reader = Pn532Reader(str(device.link), poll_interval_s=0.01, timeout_s=0.2,
                         debounce_s=0.0, backoff_initial_s=0.02, backoff_max_s=0.1)
    cards, faults = Cards(), FaultLog()
    reader.add_listener(cards)
    reader.add_fault_listener(faults)
    with caplog.at_level(logging.ERROR, logger="hal.readers"):
        reader.start()
        try:
            assert device.chip is not None
            broken.set()
            assert faults.wait(1)[0] == (True, "TypeError: 'NoneType' object is not "
                                               "subscriptable")
            with reader_failures(reader, 3):
                pass
            assert reader.running
            assert faults.events == faults.events[:1]  # one fault while it keeps failing
            broken.clear()
            assert faults.wait(2)[1] == (False, "")
            device.chip.uid = bytes.fromhex("04a22b1c")
            assert cards.wait(1)[0] == "04A22B1C"
        finally:
            reader.close()
    tracebacks = [r for r in caplog.records
                  if r.exc_info is not None and isinstance(r.exc_info[1], TypeError)]
    assert tracebacks  # the same error again is one line, not a traceback each time


def test_a_failing_card_listener_is_logged_and_cards_keep_coming(
        device: PluggableDevice, caplog: pytest.LogCaptureFixture) -> None:
    pty = device.plug()
    reader = LineReader(str(device.link), debounce_s=0.0)
    cards = Cards()

    def failing_listener(id_tag: str) -> None:
        if id_tag == "0BAD0BAD":
            raise RuntimeError("the core refused the card")

    reader.add_listener(failing_listener)
    reader.add_listener(cards)
    faults = FaultLog()
    reader.add_fault_listener(faults)
    reader.start()
    try:
        with caplog.at_level(logging.ERROR, logger="hal"):
            pty.write(b"0BAD0BAD\n04A22B1C\n")
            # The listener after the failing one still got the card, and the next one.
            assert cards.wait(2) == ["0BAD0BAD", "04A22B1C"]
        assert any(r.exc_info is not None and isinstance(r.exc_info[1], RuntimeError)
                   for r in caplog.records)
        assert reader.running and reader.healthy and faults.events == []
    finally:
        reader.close()


class reader_failures:
    """Wait until the reader has failed ``count`` times in all (it keeps retrying)."""

    def __init__(self, reader: LineReader | Pn532Reader, count: int) -> None:
        self.reader, self.count = reader, count

    def __enter__(self) -> None:
        import time

        deadline = time.monotonic() + 3
        while self.reader.describe()["failures"] < self.count:
            assert time.monotonic() < deadline, self.reader.describe()
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        return None
