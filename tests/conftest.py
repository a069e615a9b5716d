"""Shared fixtures: a real CSMS (the dev CSMS on the ``ocpp`` library) on loopback, configs
written to temp dirs, and the daemon wired exactly as ``evse run`` wires it."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from dev_csms import DevCsms  # noqa: E402

from evse.clock import Clock  # noqa: E402
from evse.daemon import Daemon, load_checked_config  # noqa: E402
from evse.domain import DomainEvent, SessionStateChanged  # noqa: E402
from evse.station import Station  # noqa: E402
from evse.timers import ManualClock  # noqa: E402


def free_port() -> int:
    """A TCP port nothing listens on right now (for 'CSMS unreachable' set-ups)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(directory: Path, url: str, extra: str = "", ocpp_keys: str = "",
                 connectors: int = 1, ocpp_extra: str = "", call_timeout_s: float = 5.0
                 ) -> Path:
    """Write a sim-backend config into ``directory`` and return its path."""
    conns = "\n".join(
        f"[[connector]]\nid = {i}\nmax_current_a = 32.0\nphases = 3\n"
        for i in range(1, connectors + 1)
    )
    text = f"""
[station]
id = "CP-TEST"
state_dir = "state"
{extra}
[ocpp]
url = "{url}"
call_timeout_s = {call_timeout_s}
reconnect_min_s = 0.1
reconnect_max_s = 0.5
{ocpp_extra}

[hardware]
driver = "sim"

[ocpp.configuration]
MeterValueSampleInterval = 1
{ocpp_keys}

{conns}
"""
    path = directory / "evse.toml"
    path.write_text(text)
    return path


@pytest.fixture
async def csms() -> AsyncIterator[DevCsms]:
    server = DevCsms(port=0, accept_tags=("DEMO01", "TAG-A", "TAG-B"))
    await server.start()
    yield server
    await server.stop()


DaemonFactory = Callable[..., Any]


class EventLog:
    """Records a Station's domain events; ``wait_for`` awaits a predicate over them."""

    def __init__(self, station: Station) -> None:
        self.events: list[DomainEvent] = []
        self._changed = asyncio.Event()
        station.subscribe(self._record)

    def _record(self, event: DomainEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def statuses(self, connector_id: int = 1) -> list[str]:
        """The session states published for ``connector_id``, in order."""
        return [e.state for e in self.events
                if isinstance(e, SessionStateChanged) and e.connector_id == connector_id]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        async def waiter() -> Any:
            while not (value := predicate()):
                self._changed.clear()
                await self._changed.wait()
            return value
        return await asyncio.wait_for(waiter(), timeout)


@pytest.fixture
async def daemon_factory(tmp_path: Path) -> AsyncIterator[DaemonFactory]:
    """``await start(url, clock=None, **write_config kwargs)`` → a started in-process Daemon
    on ``tmp_path``'s state directory (on ``clock``, a ManualClock, when given; a restart is
    ``daemon.shutdown()`` + start); every one started is shut down after the test."""
    started: list[Daemon] = []

    async def start(url: str, clock: ManualClock | None = None, **kwargs: Any) -> Daemon:
        config = load_checked_config(str(write_config(tmp_path, url, **kwargs)))
        daemon = (Daemon(config) if clock is None else
                  Daemon(config, clock=clock, utc_clock=Clock(monotonic=clock.monotonic)))
        await daemon.start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        await daemon.shutdown()
