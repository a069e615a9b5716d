"""Fixtures for the shipping tests: a real sd_notify socket standing in for systemd."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


class NotifyListener:
    """A bound AF_UNIX datagram socket, like systemd's ``$NOTIFY_SOCKET``.

    ``address`` is the value for ``NOTIFY_SOCKET``; :meth:`next` awaits the next datagram and
    :meth:`wait_for` awaits one satisfying a predicate (all received messages are kept in
    ``messages``).
    """

    def __init__(self, address: str, sock: socket.socket) -> None:
        self.address = address
        self.sock = sock
        self.messages: list[str] = []

    async def next(self, timeout_s: float = 5.0) -> str:
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout_s)
        text = data.decode()
        self.messages.append(text)
        return text

    async def wait_for(self, predicate: Callable[[str], bool], timeout_s: float = 5.0) -> str:
        """Await a datagram for which ``predicate(text)`` is true; raise TimeoutError if none."""
        async with asyncio.timeout(timeout_s):
            while True:
                text = await self.next(timeout_s)
                if predicate(text):
                    return text

    def drain(self) -> list[str]:
        """Return (and record) every datagram already queued, without waiting."""
        out = []
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return out
            out.append(data.decode())
            self.messages.append(out[-1])


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temp dir (AF_UNIX paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="evse-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def notify_socket(short_tmp: Path) -> Iterator[NotifyListener]:
    """A filesystem-path notify socket."""
    path = short_tmp / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    yield NotifyListener(str(path), sock)
    sock.close()


@pytest.fixture
def abstract_notify_socket() -> Iterator[NotifyListener]:
    """A notify socket in Linux's abstract namespace (``NOTIFY_SOCKET=@name``)."""
    name = f"evse-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.setblocking(False)
    yield NotifyListener("@" + name, sock)
    sock.close()


def _require_tool(name: str, install_hint: str) -> str:
    """Path of ``name``; skip the test with a clear reason when missing.

    Under CI (``$CI`` set) a missing tool is a failure: scripts/test installs it first, so a
    skip there would hide a broken check.
    """
    path = shutil.which(name)
    if path is None:
        message = f"{name} not installed ({install_hint}); scripts/test installs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def require_tool() -> Callable[[str, str], str]:
    """``require_tool(name, install_hint)`` → the tool's path, or skip (fail under CI)."""
    return _require_tool
