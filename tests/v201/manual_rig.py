"""A 2.0.1 daemon on a ManualClock (the core's timers: duty-change interval, profile period
boundaries, reservation expiry, sampling) with the UTC clock moving along once the CSMS
synchronized it; the dev CSMS in 2.0.1 mode (schema validation on) on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from dev_csms import DevCsms

from evse.clock import Clock
from evse.daemon import Daemon, load_checked_config
from evse.timers import ManualClock
from hal.sim.board import SimBoard
from tests.conftest import EventLog
from tests.v201.rig import write_config_201

#: The core's shortest interval between two pilot duty changes, s (ChargingLimits).
DUTY_INTERVAL_S = 5.0


def duty(amps: float) -> float:
    """IEC 61851-1 Table A.7 duty for ``amps`` (6-51 A), as driven (0.1 %)."""
    return round(amps / 0.6, 1)


class Rig201:
    """A started 2.0.1 daemon, its manual clock and the CSMS's side of the link."""

    def __init__(self, daemon: Daemon, clock: ManualClock, csms: DevCsms) -> None:
        assert daemon.station is not None and daemon.board is not None
        self.daemon = daemon
        self.clock = clock
        self.csms = csms
        self.station = daemon.station
        sim = daemon.board.simulator
        assert isinstance(sim, SimBoard)
        self.sim = sim
        self.events = EventLog(daemon.station)

    async def call(self, payload: Any) -> Any:
        return await self.csms.stations["CP-201"].call(payload)

    async def advance(self, seconds: float) -> None:
        await self.station.idle()
        self.clock.advance(seconds)
        await self.station.idle()

    def duty(self, evse_id: int) -> float:
        return float(self.station.evses[evse_id].hw.pilot.duty_percent)

    def actions(self, action: str) -> list[dict[str, Any]]:
        return self.csms.actions(action, "CP-201")

    async def started(self, evse_id: int) -> dict[str, Any]:
        """The TransactionEvent Started on ``evse_id`` (waits for it)."""
        found: list[dict[str, Any]] = await self.csms.wait_for(lambda: [
            e for e in self.actions("TransactionEvent")
            if e["eventType"] == "Started" and e.get("evse", {}).get("id") == evse_id])
        return found[-1]

    def statuses(self, evse_id: int) -> list[str]:
        return [p["connectorStatus"] for p in self.actions("StatusNotification")
                if p["evseId"] == evse_id]


@pytest.fixture
async def csms201m() -> AsyncIterator[DevCsms]:
    server = DevCsms(port=0, accept_tags=("DEMO01", "TAG-A"), version="2.0.1")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def start201(csms201m: DevCsms, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[Daemon] = []

    async def factory(**kwargs: Any) -> Rig201:
        path = write_config_201(tmp_path, f"ws://127.0.0.1:{csms201m.port}/", **kwargs)
        clock = ManualClock()
        daemon = Daemon(load_checked_config(str(path)), clock=clock,
                        utc_clock=Clock(monotonic=clock.monotonic))
        await daemon.start()
        started.append(daemon)
        await csms201m.wait_for(lambda: "CP-201" in csms201m.stations
                                and csms201m.actions("StatusNotification"))
        return Rig201(daemon, clock, csms201m)

    yield factory
    for daemon in started:
        await daemon.shutdown()
