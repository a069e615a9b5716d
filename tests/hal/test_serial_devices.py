"""Serial devices on pty pairs: a PN532 speaking its real HSU framing, a line reader, and
the pilot co-processor's line protocol."""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import serial

from hal.gpio.pilot_uart import UartPilot
from hal.pilot import PilotReading, PilotState
from hal.readers.line_reader import LineReader
from hal.readers.normalise import UidFormat, normalise_uid
from hal.readers.pn532 import Pn532Reader
from tests.hal.peers import CoProcessor, PtyDevice


class Pn532Chip:
    """A PN532 in HSU mode on the master side of a pty: checks every frame's LEN/LCS/DCS,
    ACKs it and answers SAMConfiguration, RFConfiguration and InListPassiveTarget."""

    def __init__(self, pty: PtyDevice) -> None:
        self.pty = pty
        self.uid: bytes | None = None
        self.garbage_before_answer = b""
        self.commands: list[int] = []
        self.bad_frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def frame(body: bytes) -> bytes:
        length = len(body)
        return (bytes([0, 0, 0xFF, length, (0x100 - length) & 0xFF]) + body
                + bytes([(0x100 - sum(body) & 0xFF) & 0xFF, 0]))

    def _answer(self, cmd: int) -> bytes:
        if cmd == 0x4A:
            if self.uid is None:
                return bytes([0xD5, 0x4B, 0x00])
            uid = self.uid
            # Tg=1, SENS_RES=00 04 (MIFARE Classic), SEL_RES=08, NFCIDLength, NFCID1
            return bytes([0xD5, 0x4B, 0x01, 0x01, 0x00, 0x04, 0x08, len(uid)]) + uid
        return bytes([0xD5, cmd + 1])

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.pty.master], [], [], 0.05)
            if not ready:
                continue
            try:
                buf += os.read(self.pty.master, 1024)
            except OSError:
                return
            while True:
                i = buf.find(b"\x00\x00\xff")
                if i < 0 or len(buf) < i + 5:
                    break
                length, lcs = buf[i + 3], buf[i + 4]
                if (length + lcs) & 0xFF:
                    self.bad_frames += 1
                    buf = buf[i + 3 :]
                    continue
                if len(buf) < i + 5 + length + 2:
                    break
                body = buf[i + 5 : i + 5 + length]
                dcs = buf[i + 5 + length]
                buf = buf[i + 5 + length + 2 :]
                if (sum(body) + dcs) & 0xFF or body[0] != 0xD4:
                    self.bad_frames += 1
                    continue
                cmd = body[1]
                self.commands.append(cmd)
                self.pty.write(bytes([0, 0, 0xFF, 0, 0xFF, 0]))
                self.pty.write(self.garbage_before_answer + self.frame(self._answer(cmd)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


class Cards:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.tags: list[str] = []

    def __call__(self, tag: str) -> None:
        with self.cond:
            self.tags.append(tag)
            self.cond.notify_all()

    def wait(self, count: int, timeout_s: float = 3.0) -> list[str]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.tags) >= count, timeout_s), self.tags
            return list(self.tags)


@pytest.fixture
def pty() -> Iterator[PtyDevice]:
    dev = PtyDevice()
    yield dev
    dev.close()


def test_normalisation() -> None:
    assert normalise_uid("04:a2:2b:1c") == "04A22B1C"
    assert normalise_uid(" 04-A2-2B-1C\r") == "04A22B1C"
    assert normalise_uid("04a22b1c", UidFormat(reverse_bytes=True)) == "1C2BA204"
    assert normalise_uid("0077736732", UidFormat(input_format="decimal")) == "04A22B1C"
    assert normalise_uid("04A22B1C", UidFormat(uppercase=False)) == "04a22b1c"
    for bad in ("zz", "123", "", "04A22B1C04A22B1C04A22B1C"):
        with pytest.raises(ValueError):
            normalise_uid(bad)


def test_pn532_card_events_and_debounce(pty: PtyDevice, caplog: pytest.LogCaptureFixture) -> None:
    chip = Pn532Chip(pty)
    reader = Pn532Reader(pty.path, poll_interval_s=0.01, timeout_s=0.5, debounce_s=0.3)
    cards = Cards()
    reader.add_listener(cards)
    reader.start()
    try:
        chip.uid = bytes.fromhex("04a22b1c")
        assert cards.wait(1) == ["04A22B1C"]
        # the card stays on the reader for many polls: still one event
        polls = len(chip.commands)
        with chip_polled(chip, polls + 5):
            pass
        assert cards.tags == ["04A22B1C"]
        assert chip.commands[:2] == [0x14, 0x32]  # SAMConfiguration, RFConfiguration
        # a 7-byte UID card, with line noise before the answer
        with caplog.at_level(logging.ERROR, logger="hal.readers.pn532"):
            chip.garbage_before_answer = b"\x13\x37\xfe"
            chip.uid = bytes.fromhex("04112233445566")
            assert cards.wait(2)[1] == "04112233445566"
        assert any("garbage" in r.message for r in caplog.records)
        assert chip.bad_frames == 0
    finally:
        reader.close()
        chip.stop()


class chip_polled:
    """Wait until the chip has answered ``count`` commands."""

    def __init__(self, chip: Pn532Chip, count: int) -> None:
        self.chip, self.count = chip, count

    def __enter__(self) -> None:
        import time

        deadline = time.monotonic() + 3
        while len(self.chip.commands) < self.count:
            assert time.monotonic() < deadline
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        return None


def test_pn532_survives_pure_garbage(pty: PtyDevice, caplog: pytest.LogCaptureFixture) -> None:
    reader = Pn532Reader(pty.path, poll_interval_s=0.01, timeout_s=0.1,
                         backoff_initial_s=0.02, backoff_max_s=0.1)
    reader.start()
    try:
        with caplog.at_level(logging.ERROR, logger="hal.readers.pn532"):
            pty.write(b"\xde\xad\xbe\xef\x00\xff\x05\x00" * 8)  # noise and a bad LCS
            import time

            deadline = time.monotonic() + 3
            while not any("PN532" in r.message or "garbage" in r.message
                          for r in caplog.records):
                assert time.monotonic() < deadline
                time.sleep(0.01)
        assert reader._thread is not None and reader._thread.is_alive()
        # a chip appears afterwards and works
        chip = Pn532Chip(pty)
        cards = Cards()
        reader.add_listener(cards)
        chip.uid = bytes.fromhex("deadbeef")
        assert cards.wait(1) == ["DEADBEEF"]
        chip.stop()
    finally:
        reader.close()


def test_line_reader(pty: PtyDevice, caplog: pytest.LogCaptureFixture) -> None:
    reader = LineReader(pty.path, debounce_s=60.0)
    cards = Cards()
    reader.add_listener(cards)
    reader.start()
    try:
        with caplog.at_level(logging.ERROR, logger="hal.readers.line_reader"):
            pty.write(b"04:a2:2b:1c\r\n")
            pty.write(b"\xff\xfe garbage!\n")
            pty.write(b"04A22B1C\n")  # same card again: debounced
            pty.write(b"\x02DEADBEEF\x03\r\n")
            assert cards.wait(2) == ["04A22B1C", "DEADBEEF"]
        assert any("not a hex UID" in r.message for r in caplog.records)
    finally:
        reader.close()


# -- pilot co-processor ------------------------------------------------------------------
def test_uart_pilot_protocol(pty: PtyDevice) -> None:
    port = serial.Serial(pty.path, baudrate=115200, timeout=0.05)
    pilot = UartPilot(port=port)
    mcu = CoProcessor(pty)
    readings: list[PilotReading] = []
    faults: list[str] = []
    cond = threading.Condition()

    def on(reading: PilotReading) -> None:
        with cond:
            readings.append(reading)
            cond.notify_all()

    def on_fault(text: str) -> None:
        with cond:
            faults.append(text)
            cond.notify_all()

    pilot.add_listener(on)
    pilot.add_fault_listener(on_fault)
    try:
        pilot.set_current(16.0)
        pilot.set_state_f()
        # Host frames: consecutive sequence numbers from 00, CRC checked by the peer.
        assert mcu.receive(3) == [(0, "D 100.0"), (1, "D 26.7"), (2, "F")]
        mcu.send("K D 26.7", "S B 0", "S C 1")
        with cond:
            assert cond.wait_for(lambda: len(readings) >= 2, 2.0)
        assert readings == [PilotReading(PilotState.B), PilotReading(PilotState.C, True)]
        assert faults == [] and pilot.hardware_fault() is None
        assert pilot.sampler_age_s() < 1.0
    finally:
        pilot.close()


@pytest.mark.parametrize(("bad", "why"), [
    ("crc", "CRC mismatch"), ("gap", "sequence gap"), ("error", "reports 'overcurrent on CP'"),
    ("noise", "malformed"), ("unknown", "unknown frame"), ("state", "malformed state")])
def test_uart_pilot_bad_frame_is_a_fault(pty: PtyDevice, bad: str, why: str) -> None:
    """A corrupt frame, a lost frame, an E frame: a fault at once (not a log line), held
    until a good state frame follows; the bad frame never changes the reading."""
    port = serial.Serial(pty.path, baudrate=115200, timeout=0.05)
    pilot = UartPilot(port=port)
    mcu = CoProcessor(pty)
    faults: list[str] = []
    got = threading.Event()
    pilot.add_fault_listener(lambda text: (faults.append(text), got.set()))
    try:
        mcu.send("S B 0")
        assert wait_for(lambda: pilot.read().state is PilotState.B)
        make = {
            "crc": lambda: mcu.frame("S C 0", crc=0x00),
            "gap": lambda: mcu.frame("S C 0", seq=(mcu.seq + 5) & 0xFF),
            "error": lambda: mcu.frame("E overcurrent on CP"),
            "noise": lambda: b"\xde\xad noise\n",
            "unknown": lambda: mcu.frame("Z 1"),
            "state": lambda: mcu.frame("S Q 1"),
        }[bad]
        frame = make()
        if bad == "gap":
            mcu.seq = (mcu.seq + 6) & 0xFF
        pty.write(frame)
        assert got.wait(2.0)
        assert why in faults[0] and pilot.read().state is PilotState.B
        assert pilot.hardware_fault() is not None
        mcu.send("S B 0")  # a good frame again
        assert wait_for(lambda: pilot.hardware_fault() is None)
    finally:
        pilot.close()


def wait_for(predicate: Any, timeout_s: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
