"""Fixtures of the offline tests: a CSMS behind a TCP proxy the test can cut, and the daemon
(in-process, as ``evse run`` wires it) connected through that proxy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from dev_csms import DevCsms

from evse.daemon import Daemon
from tests.conftest import DaemonFactory, EventLog
from tests.offline.proxy import TcpProxy


@pytest.fixture
async def proxy(csms: DevCsms) -> AsyncIterator[TcpProxy]:
    server = TcpProxy(csms.port)
    await server.start()
    yield server
    await server.stop()


async def until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``predicate`` every 10 ms until truthy; return its value (TimeoutError after
    ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.01)
    return value


class Rig:
    """Daemon + CSMS + proxy, with the moves the scenarios need."""

    def __init__(self, daemon: Daemon, csms: DevCsms, proxy: TcpProxy) -> None:
        self.daemon, self.csms, self.proxy = daemon, csms, proxy
        assert daemon.station is not None
        self.station = daemon.station
        self.adapter: Any = daemon.adapter
        self.sim: Any = daemon.board.simulator if daemon.board else None
        self.events = EventLog(self.station)

    async def online(self) -> None:
        self.proxy.restore()
        await until(lambda: self.adapter.online and "CP-TEST" in self.csms.stations)

    async def offline(self) -> None:
        self.proxy.cut()
        await until(lambda: not self.adapter.online)

    async def call(self, payload: Any) -> Any:
        """A CALL from the CSMS to the charge point."""
        return await self.csms.stations["CP-TEST"].call(payload)

    async def configure(self, key: str, value: str) -> None:
        from ocpp.v16 import call
        answer = await self.call(call.ChangeConfiguration(key=key, value=value))
        assert answer.status == "Accepted", (key, value, answer)


@pytest.fixture
async def rig_factory(csms: DevCsms, proxy: TcpProxy, daemon_factory: DaemonFactory
                      ) -> Any:
    async def make(**kwargs: Any) -> Rig:
        daemon = await daemon_factory(f"ws://127.0.0.1:{proxy.port}/", **kwargs)
        rig = Rig(daemon, csms, proxy)
        await rig.online()
        return rig
    return make
