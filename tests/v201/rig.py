"""The 2.0.1 daemon rig: the daemon as ``evse run`` wires it with ``[ocpp] version = "2.0.1"``,
the simulator board, and the dev CSMS in its 2.0.1 mode (the ``ocpp`` library's v201 central
system, schema validation on) on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from dev_csms import DevCsms

from evse.daemon import Daemon, load_checked_config


def write_config_201(directory: Path, url: str, variables: str = "", connectors: int = 1,
                     station_id: str = "CP-201") -> Path:
    """A sim-backend config speaking OCPP 2.0.1; ``variables``: ``[ocpp201.variables]``
    lines (overriding the rig's 1 s TxUpdatedInterval and no WebSocket pings)."""
    defaults = "\n".join(line for line in ('"SampledDataCtrlr.TxUpdatedInterval" = 1',
                                           '"OCPPCommCtrlr.WebSocketPingInterval" = 0')
                         if line.split(" = ")[0] not in variables)
    conns = "\n".join(f"[[connector]]\nid = {i}\nmax_current_a = 32.0\nphases = 3\n"
                      for i in range(1, connectors + 1))
    text = f"""
[station]
id = "{station_id}"
state_dir = "state"

[ocpp]
url = "{url}"
version = "2.0.1"
call_timeout_s = 5.0
reconnect_min_s = 0.1
reconnect_max_s = 0.3

[hardware]
driver = "sim"

[ocpp201.variables]
{defaults}
{variables}

{conns}
"""
    path = directory / "evse.toml"
    path.write_text(text)
    return path


def events(csms: DevCsms, station_id: str = "CP-201") -> list[dict[str, Any]]:
    """TransactionEvent payloads received, in order."""
    return csms.actions("TransactionEvent", station_id)


def event_types(csms: DevCsms) -> list[tuple[str, str]]:
    """(eventType, triggerReason) of every TransactionEvent received."""
    return [(e["eventType"], e["triggerReason"]) for e in events(csms)]


def statuses(csms: DevCsms, evse_id: int = 1) -> list[str]:
    return [p["connectorStatus"] for p in csms.actions("StatusNotification")
            if p["evseId"] == evse_id]


async def start_daemon(directory: Path, url: str, **kwargs: Any) -> Daemon:
    daemon = Daemon(load_checked_config(str(write_config_201(directory, url, **kwargs))))
    await daemon.start()
    return daemon


@pytest.fixture
async def csms201() -> AsyncIterator[DevCsms]:
    server = DevCsms(port=0, accept_tags=("DEMO01", "TAG-A"), version="2.0.1")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def run201(tmp_path: Path, csms201: DevCsms) -> AsyncIterator[Any]:
    started: list[Daemon] = []

    async def start(url: str | None = None, wait: bool = True, **kwargs: Any) -> Daemon:
        daemon = await start_daemon(tmp_path, url or f"ws://127.0.0.1:{csms201.port}/",
                                    **kwargs)
        started.append(daemon)
        if wait:
            await csms201.wait_for(lambda: "CP-201" in csms201.stations
                                   and csms201.actions("StatusNotification"))
        return daemon

    yield start
    for daemon in started:
        await daemon.shutdown()


def sim_of(daemon: Daemon) -> Any:
    assert daemon.board is not None and daemon.board.simulator is not None
    return daemon.board.simulator


def energy_wh(daemon: Daemon) -> float:
    return float(sim_of(daemon).describe()["1"]["energy_wh"])




async def until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``predicate`` every 10 ms until truthy (for state no CSMS frame announces)."""
    async def waiter() -> Any:
        while not (value := predicate()):
            await asyncio.sleep(0.01)
        return value
    return await asyncio.wait_for(waiter(), timeout)
