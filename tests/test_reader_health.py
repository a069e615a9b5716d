"""A failing card reader is reported to the CSMS and never stops charging (issue 9):
a real serial line reader on a pty is unplugged while connector 1 charges; the dev CSMS
receives StatusNotification connectorId 0 ReaderFailure, the transaction and its meter
values go on; plugged back, connector 0 reports NoError and the reader's next card stops
the transaction (OCPP 1.6 §4.9, §7.6)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from evse.daemon import Daemon
from hal.readers.line_reader import LineReader
from scripts.dev_csms import DevCsms
from tests.conftest import DaemonFactory
from tests.hal.test_reader_supervision import PluggableDevice

CARD = "04A22B1C"


def station_statuses(csms: DevCsms, connector_id: int) -> list[tuple[str, str]]:
    return [(p["status"], p["errorCode"]) for p in csms.actions("StatusNotification")
            if p["connectorId"] == connector_id]


def periodic_values(csms: DevCsms) -> int:
    return len([m for m in csms.actions("MeterValues")
                if m["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Periodic"])


async def test_reader_failure_on_connector_0_while_charging_goes_on(
        csms: DevCsms, daemon_factory: DaemonFactory, tmp_path: Path) -> None:
    csms.accept_tags.add(CARD)
    daemon: Daemon = await daemon_factory(f"ws://127.0.0.1:{csms.port}/")
    assert daemon.station is not None and daemon.board is not None
    sim: Any = daemon.board.simulator
    device = PluggableDevice(tmp_path / "usb-RFID-if00")
    pty = device.plug()
    reader = LineReader(str(device.link), debounce_s=0.0, backoff_initial_s=0.02,
                        backoff_max_s=0.1)
    # As the daemon wires the board's readers (evse/daemon.py), closed with the board.
    daemon.station.attach_id_reader(reader)
    daemon.board.id_readers.append(reader)
    reader.start()
    try:
        await csms.wait_for(lambda: ("Available", "NoError") in station_statuses(csms, 1))
        sim.plug(1, 16.0, 3)
        pty.write(f"{CARD}\n".encode())
        await csms.wait_for(lambda: ("Charging", "NoError") in station_statuses(csms, 1))
        connector_1_before = len(station_statuses(csms, 1))

        device.unplug()
        await csms.wait_for(
            lambda: ("Available", "ReaderFailure") in station_statuses(csms, 0))
        values = periodic_values(csms)
        await csms.wait_for(lambda: periodic_values(csms) > values)
        # Charging went on: no status change of connector 1, no stop, contactor closed.
        assert len(station_statuses(csms, 1)) == connector_1_before
        assert csms.actions("StopTransaction") == []
        assert daemon.board.connectors[0].contactor.commanded_closed
        assert daemon.station.connectors[1].state == "energy_transfer"
        health = daemon.station.describe()["readers"]
        assert [r["healthy"] for r in health] == [True, False]  # the simulator's, ours
        assert health[1]["device"] == str(device.link) and health[1]["last_error"]
        # ``evse status`` (the real command, over the control socket) says so.
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "evse", "status", "--config", str(tmp_path / "evse.toml"),
            stdout=asyncio.subprocess.PIPE)
        text = (await asyncio.wait_for(cli.communicate(), 30))[0].decode()
        assert f"card reader {device.link} FAILING" in text, text

        # After a reconnect, connector 0's first status still says ReaderFailure.
        boots = len(csms.actions("BootNotification"))
        reported = len(station_statuses(csms, 0))
        assert daemon.adapter is not None
        daemon.adapter.link.reconnect()
        await csms.wait_for(lambda: len(csms.actions("BootNotification")) > boots
                            and len(station_statuses(csms, 0)) > reported)
        assert station_statuses(csms, 0)[reported] == ("Available", "ReaderFailure")

        pty = device.plug()
        await csms.wait_for(lambda: station_statuses(csms, 0)[-1] == ("Available", "NoError"))
        assert station_statuses(csms, 0)[-2:] == [("Available", "ReaderFailure"),
                                                  ("Available", "NoError")]
        pty.write(f"{CARD}\n".encode())  # the same card again stops its transaction
        stop = (await csms.wait_for(lambda: csms.actions("StopTransaction")))[0]
        assert stop["reason"] == "Local" and stop["idTag"] == CARD
        assert daemon.station.describe()["readers"][1]["healthy"] is True
    finally:
        device.unplug()
