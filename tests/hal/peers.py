"""Real protocol peers for driver tests: a pymodbus meter server and pty pairs.

Nothing here imitates our own code: the Modbus server is pymodbus's, the serial lines are
kernel ptys, and register images are encoded independently of the drivers (``struct``).
"""

from __future__ import annotations

import asyncio
import os
import select
import struct
import threading
import tty
from collections.abc import Iterator
from contextlib import contextmanager

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice


def f32_be(value: float) -> list[int]:
    """IEEE-754 float32, high word first (Eastron)."""
    return list(struct.unpack(">2H", struct.pack(">f", value)))


def u32_be(value: int) -> list[int]:
    return list(struct.unpack(">2H", struct.pack(">I", value)))


def s32_be(value: int) -> list[int]:
    return list(struct.unpack(">2H", struct.pack(">i", value)))


def u64_be(value: int) -> list[int]:
    return list(struct.unpack(">4H", struct.pack(">Q", value)))


def s32_le_words(value: int) -> list[int]:
    """INT32 with the LOW word first (Carlo Gavazzi EM340)."""
    return list(reversed(struct.unpack(">2H", struct.pack(">i", value))))


class MeterServer:
    """A pymodbus server (TCP on 127.0.0.1 or RTU on a serial device) on its own loop thread.

    ``image`` maps register address → 16-bit word; set ``exception`` to answer every request
    with that exception code, ``silent`` to drop every answer (the meter stops answering).
    """

    def __init__(self, first: int, last: int, unit_id: int = 1) -> None:
        self.image: dict[int, int] = {}
        self.exception: ExcCodes | None = None
        self.silent = False
        self.requests = 0
        self._first = first
        self._device = SimDevice(
            id=unit_id,
            simdata=[
                SimData(first, count=last - first + 1, values=0, datatype=DataType.REGISTERS)
            ],
            action=self._action,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self.port = 0

    def set_words(self, address: int, words: list[int]) -> None:
        for i, word in enumerate(words):
            self.image[address + i] = word

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self.requests += 1
        if self.exception is not None:
            return self.exception
        for addr, word in self.image.items():
            registers[addr - start_address] = word
        return None

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if sending and self.silent:
            return b""
        return data

    def _run(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    def start_tcp(self) -> int:
        async def start() -> int:
            server = ModbusTcpServer(
                self._device, address=("127.0.0.1", 0), trace_packet=self._trace_packet
            )
            await server.serve_forever(background=True)
            self._server = server
            return int(server.transport.sockets[0].getsockname()[1])  # type: ignore[union-attr]

        self.port = int(self._run(start()))  # type: ignore[call-overload]
        return self.port

    def start_rtu(self, device: str, baudrate: int = 9600) -> None:
        async def start() -> None:
            server = ModbusSerialServer(
                self._device, port=device, baudrate=baudrate, trace_packet=self._trace_packet
            )
            await server.serve_forever(background=True)
            self._server = server

        self._run(start())

    def stop(self) -> None:
        if self._server is not None:
            self._run(self._server.shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


class PtyLink:
    """Two pty pairs joined back to back: a null-modem cable between ``a`` and ``b``.

    Each end is a slave device path that a program opens like a serial port.
    """

    def __init__(self) -> None:
        self._ma, self._sa = os.openpty()
        self._mb, self._sb = os.openpty()
        for fd in (self._sa, self._sb):
            tty.setraw(fd)
        self.a = os.ttyname(self._sa)
        self.b = os.ttyname(self._sb)
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        peer = {self._ma: self._mb, self._mb: self._ma}
        while True:
            ready, _, _ = select.select([self._ma, self._mb, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                if data:
                    os.write(peer[fd], data)

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(5)
        for fd in (self._ma, self._sa, self._mb, self._sb, self._stop_r, self._stop_w):
            os.close(fd)


@contextmanager
def pty_link() -> Iterator[PtyLink]:
    link = PtyLink()
    try:
        yield link
    finally:
        link.close()


class PtyDevice:
    """One pty pair: the driver opens ``path``; the test plays the device on the master."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def read(self, timeout_s: float) -> bytes:
        ready, _, _ = select.select([self.master], [], [], timeout_s)
        return os.read(self.master, 4096) if ready else b""

    def close(self) -> None:
        os.close(self.master)
        os.close(self._slave)


def _crc8_table() -> list[int]:
    table = []
    for value in range(256):
        crc = value
        for _ in range(8):
            crc = (crc << 1) ^ (0x07 if crc & 0x80 else 0)
        table.append(crc & 0xFF)
    return table


_CRC8 = _crc8_table()


def crc8_smbus(data: bytes) -> int:
    """CRC-8/SMBUS (poly 0x07, init 0, no reflection, no xorout), table-driven: written from
    the algorithm's catalogue entry, independently of the driver's bitwise version."""
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


class CoProcessor:
    """The pilot co-processor's side of the UART on a pty master: frames what it sends
    (``<seq> <payload>*<crc>``), checks and unwraps what the host sends."""

    def __init__(self, pty: PtyDevice) -> None:
        self.pty = pty
        self.seq = 0x40  # the host must accept whatever seq the MCU starts with
        self._rx = b""

    def frame(self, payload: str, seq: int | None = None, crc: int | None = None) -> bytes:
        """A frame with the next seq (or ``seq``), the right CRC (or ``crc``)."""
        if seq is None:
            seq = self.seq
            self.seq = (self.seq + 1) & 0xFF
        body = f"{seq:02X} {payload}".encode("ascii")
        return body + b"*%02X\n" % (crc8_smbus(body) if crc is None else crc)

    def send(self, *payloads: str) -> None:
        self.pty.write(b"".join(self.frame(p) for p in payloads))

    def receive(self, count: int, timeout_s: float = 2.0) -> list[tuple[int, str]]:
        """``count`` host frames as (seq, payload); asserts each CRC."""
        frames: list[tuple[int, str]] = []
        while len(frames) < count:
            while b"\n" not in self._rx:
                chunk = self.pty.read(timeout_s)
                assert chunk, f"host sent {frames}, then nothing"
                self._rx += chunk
            line, self._rx = self._rx.split(b"\n", 1)
            body, _, crc = line.partition(b"*")
            assert int(crc, 16) == crc8_smbus(body), line
            frames.append((int(body[:2], 16), body[3:].decode("ascii")))
        return frames
