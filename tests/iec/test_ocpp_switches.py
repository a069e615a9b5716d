"""OCPP 1.6 configuration keys that steer the connector, changed by a real CSMS:
StopTransactionOnEVSideDisconnect, UnlockConnectorOnEVSideDisconnect, ConnectionTimeOut."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dev_csms import DevCsms
from ocpp.v16 import call

from evse.daemon import Daemon, load_checked_config
from tests.conftest import DaemonFactory, write_config


def statuses(csms: DevCsms) -> list[str]:
    return [p["status"] for p in csms.actions("StatusNotification") if p["connectorId"] == 1]


async def test_ev_side_disconnect_switches_from_the_csms(
    csms: DevCsms, daemon_factory: DaemonFactory
) -> None:
    daemon = await daemon_factory(f"ws://127.0.0.1:{csms.port}/")
    station, sim = daemon.station, daemon.board.simulator  # type: ignore[union-attr]
    assert station is not None and sim is not None
    await csms.wait_for(lambda: "CP-TEST" in csms.stations and "Available" in statuses(csms))
    cp = csms.stations["CP-TEST"]
    assert station.stop_on_ev_disconnect and station.unlock_on_ev_disconnect
    for key in ("StopTransactionOnEVSideDisconnect", "UnlockConnectorOnEVSideDisconnect"):
        answer = await cp.call(call.ChangeConfiguration(key=key, value="false"))
        assert answer.status == "Accepted"
    assert not station.stop_on_ev_disconnect and not station.unlock_on_ev_disconnect
    answer = await cp.call(call.ChangeConfiguration(key="ConnectionTimeOut", value="42"))
    assert station.connection_timeout_s == 42.0
    sim.plug(1, 32.0, 3)
    sim.swipe("DEMO01")
    await csms.wait_for(lambda: "Charging" in statuses(csms))
    sim.unplug(1)
    await csms.wait_for(lambda: statuses(csms)[-1] == "SuspendedEV")
    assert not csms.actions("StopTransaction")
    sim.plug(1, 32.0, 3)
    await csms.wait_for(lambda: statuses(csms)[-1] == "Charging")
    sim.swipe("DEMO01")
    await csms.wait_for(lambda: csms.actions("StopTransaction"))
    assert len(csms.actions("StartTransaction")) == 1


async def test_ventilation_per_connector_from_config(csms: DevCsms, tmp_path: Path) -> None:
    path = write_config(tmp_path, f"ws://127.0.0.1:{csms.port}/", connectors=1)
    path.write_text(path.read_text() + "\n[[connector]]\nid = 2\nventilation = true\n")
    daemon = Daemon(load_checked_config(str(path)))
    await daemon.start()
    try:
        assert daemon.station is not None and daemon.board is not None
        assert not daemon.station.connectors[1].ventilation
        assert daemon.station.connectors[2].ventilation
        sim: Any = daemon.board.simulator
        await csms.wait_for(lambda: len(csms.actions("StatusNotification")) >= 3)
        sim.connector(2).ev.ventilation_needed = True
        sim.plug(2, 32.0, 3)
        sim.swipe("DEMO01")
        await csms.wait_for(lambda: any(
            p["status"] == "Charging" and p["connectorId"] == 2
            for p in csms.actions("StatusNotification")))
        assert daemon.board.connectors[1].contactor.commanded_closed
    finally:
        await daemon.shutdown()
