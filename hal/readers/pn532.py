"""NXP PN532 NFC reader over its UART (HSU) interface, polling ISO 14443A cards.

Source: NXP PN532 User Manual (UM0701-02), §6.2 "Host controller communication protocol"
and §7 "Commands". Normal information frame::

    00 00 FF LEN LCS TFI PD0..PDn DCS 00
    LEN = bytes in TFI..PDn, LEN + LCS ≡ 0 (mod 256)
    TFI = D4 host → PN532, D5 PN532 → host;  TFI + ΣPD + DCS ≡ 0 (mod 256)
    ACK = 00 00 FF 00 FF 00

The driver wakes the chip (``55 55 00 00 00``), sends SAMConfiguration (normal mode) and
RFConfiguration MaxRetries (so InListPassiveTarget returns when no card is in the field),
then polls InListPassiveTarget (106 kbps type A) every ``poll_interval_s`` and reports the
NFCID1 of each new card as an idTag. Bytes that are not a valid frame are skipped and logged.
"""

from __future__ import annotations

import logging
import time

import serial

from hal.readers.normalise import Debouncer, UidFormat, uid_to_id_tag
from hal.readers.serial_reader import SerialReader

log = logging.getLogger(__name__)

HOST_TO_PN532 = 0xD4
PN532_TO_HOST = 0xD5
ACK_FRAME = bytes([0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00])
WAKEUP = bytes([0x55, 0x55, 0x00, 0x00, 0x00])

CMD_SAM_CONFIGURATION = 0x14
CMD_RF_CONFIGURATION = 0x32
CMD_IN_LIST_PASSIVE_TARGET = 0x4A


class Pn532Error(Exception):
    """No (valid) answer from the PN532."""


def build_frame(tfi: int, payload: bytes) -> bytes:
    """A normal information frame with LEN/LCS/DCS checksums (UM0701-02 §6.2.1.1)."""
    body = bytes([tfi]) + payload
    length = len(body)
    if length > 254:
        raise ValueError("PN532 normal frame payload too long")
    lcs = (-length) & 0xFF
    dcs = (-sum(body)) & 0xFF
    return bytes([0x00, 0x00, 0xFF, length, lcs]) + body + bytes([dcs, 0x00])


class FrameParser:
    """Incremental parser of PN532 frames from a byte stream.

    :meth:`feed` returns complete items: ``"ACK"``, ``"NACK"`` or the ``TFI+data`` bytes of
    an information frame. Garbage and frames with bad checksums are dropped and counted in
    :attr:`errors` (with a logged error).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.errors = 0

    def _error(self, text: str) -> None:
        self.errors += 1
        log.error("PN532: %s", text)

    def feed(self, data: bytes) -> list[bytes | str]:
        self._buf += data
        out: list[bytes | str] = []
        while True:
            start = self._buf.find(b"\x00\xff")
            if start < 0:
                junk = bytes(b for b in self._buf[:-1] if b not in (0x00, 0x55))
                if junk:
                    self._error(f"{len(junk)} garbage bytes skipped")
                del self._buf[:-1]
                return out
            junk = bytes(b for b in self._buf[:start] if b not in (0x00, 0x55))
            if junk:
                self._error(f"{len(junk)} garbage bytes skipped")
            del self._buf[:start]
            if len(self._buf) < 4:
                return out
            length, lcs = self._buf[2], self._buf[3]
            if length == 0x00 and lcs == 0xFF:
                out.append("ACK")
                del self._buf[:4]
                continue
            if length == 0xFF and lcs == 0x00:
                out.append("NACK")
                del self._buf[:4]
                continue
            if (length + lcs) & 0xFF:
                self._error(f"bad length checksum (LEN {length:#04x}, LCS {lcs:#04x})")
                del self._buf[:2]
                continue
            if len(self._buf) < 4 + length + 1:
                return out
            body = bytes(self._buf[4 : 4 + length])
            dcs = self._buf[4 + length]
            del self._buf[: 4 + length + 1]
            if (sum(body) + dcs) & 0xFF:
                self._error("bad data checksum, frame dropped")
                continue
            out.append(body)


def parse_in_list_passive_target(data: bytes) -> list[bytes]:
    """NFCID1s from an InListPassiveTarget response body (after ``D5 4B``), 106 kbps type A:
    ``NbTg {Tg SENS_RES(2) SEL_RES NFCIDLength NFCID1 [ATSLength ATS]}`` (UM0701-02 §7.3.5).

    Raises:
        ValueError: the body is truncated.
    """
    if not data:
        raise ValueError("empty InListPassiveTarget response")
    count, pos, uids = data[0], 1, []
    for _ in range(count):
        if len(data) < pos + 5:
            raise ValueError("truncated target data")
        sel_res, uid_len = data[pos + 3], data[pos + 4]
        uid = data[pos + 5 : pos + 5 + uid_len]
        if len(uid) != uid_len:
            raise ValueError("truncated NFCID1")
        uids.append(bytes(uid))
        pos += 5 + uid_len
        if sel_res & 0x20 and pos < len(data):  # ISO 14443-4 card: ATS follows
            pos += data[pos]
    return uids


class Pn532Reader(SerialReader):
    """PN532 on a UART.

    A PN532 that does not answer its configuration, a lost port or a driver bug is a
    reader failure: the read loop restarts with backoff
    (:class:`hal.readers.serial_reader.SerialReader`). One bad answer to a poll (line
    noise) is only logged, and the chip configured again.

    Args:
        device: serial device (e.g. "/dev/serial0" or "/dev/ttyUSB1").
        baudrate: HSU speed (PN532 default 115200).
        fmt: UID normalisation.
        poll_interval_s: time between InListPassiveTarget polls, s.
        timeout_s: answer timeout per command, s.
        debounce_s: a card kept on the reader is reported again only after it was absent
            this long, s.
        backoff_initial_s: first wait before reopening a failed reader, s.
        backoff_max_s: longest wait before reopening, s.
    """

    thread_name = "rfid-pn532"

    def __init__(
        self,
        device: str,
        baudrate: int = 115200,
        fmt: UidFormat | None = None,
        poll_interval_s: float = 0.2,
        timeout_s: float = 1.0,
        debounce_s: float = 2.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        super().__init__(device, baudrate, read_timeout_s=0.05,
                         backoff_initial_s=backoff_initial_s, backoff_max_s=backoff_max_s)
        self.fmt = fmt or UidFormat()
        self.poll_interval_s = poll_interval_s
        self.timeout_s = timeout_s
        self._debounce = Debouncer(debounce_s)
        self._parser = FrameParser()
        self._pending: list[bytes | str] = []
        self._configured = False

    def _next_item(self, deadline: float) -> bytes | str:
        assert self._port is not None
        while not self._pending:
            if time.monotonic() > deadline or self._stop.is_set():
                raise Pn532Error("no answer from PN532")
            self._pending.extend(self._parser.feed(self._port.read(64)))
        return self._pending.pop(0)

    def command(self, code: int, params: bytes = b"") -> bytes:
        """Send a command and return the response data after ``D5 <code+1>``.

        Raises:
            Pn532Error: no ACK, no response, NACK or an unexpected response.
            serial.SerialException: the port failed.
        """
        assert self._port is not None
        self._port.reset_input_buffer()
        self._parser = FrameParser()
        self._pending.clear()
        prefix = b"" if self._configured else WAKEUP
        self._port.write(prefix + build_frame(HOST_TO_PN532, bytes([code]) + params))
        deadline = time.monotonic() + self.timeout_s
        item = self._next_item(deadline)
        if item != "ACK":
            raise Pn532Error(f"expected ACK, got {item!r}")
        while True:
            item = self._next_item(deadline)
            if isinstance(item, bytes):
                break
            log.error("PN532: unexpected %s", item)
        if len(item) < 2 or item[0] != PN532_TO_HOST or item[1] != code + 1:
            raise Pn532Error(f"unexpected response {item.hex()} to command {code:#04x}")
        return item[2:]

    def _configure(self) -> None:
        self.command(CMD_SAM_CONFIGURATION, bytes([0x01, 0x14, 0x01]))
        self._configured = True
        # MaxRetries: ATR 0xFF, PSL 0x01, passive activation 0x02 (return when no card)
        self.command(CMD_RF_CONFIGURATION, bytes([0x05, 0xFF, 0x01, 0x02]))

    def poll_once(self) -> list[str]:
        """One InListPassiveTarget; idTags of the cards in the field."""
        data = self.command(CMD_IN_LIST_PASSIVE_TARGET, bytes([0x01, 0x00]))
        return [uid_to_id_tag(uid, self.fmt) for uid in parse_in_list_passive_target(data)]

    def _serve(self, port: serial.Serial) -> None:
        self._configured = False
        while not self._stop.is_set():
            if not self._configured:
                self._configure()  # no answer: a reader failure (backoff, reopen)
            try:
                tags = self.poll_once()
            except (Pn532Error, ValueError) as exc:
                log.error("PN532 on %s: %s", self.device, exc)
                self._configured = False
                tags = []
            else:
                self._report_working()  # configured and polled: the reader reads
            for id_tag in tags:
                if self._debounce.accept(id_tag, time.monotonic()):
                    self._emit(id_tag)
            self._stop.wait(self.poll_interval_s)
