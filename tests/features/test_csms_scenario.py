"""The feature engines behind ``@on`` handlers of the ``ocpp`` library, against the library's
central-system side over real websockets on loopback (schema validation on, both ends).

The charge point class here is the shape the 1.6 adapter's handlers take when wired (see
the report of issue 12): each handler is one call into ``ocpp_client.v16.firmware`` /
``ocpp_client.v16.reservation``; notifications go out after the response, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, MessageTrigger, TriggerMessageStatus

from evse.diagnostics import Diagnostics, DiagnosticsStatus, LogSources
from evse.firmware_update import FirmwareStatus, FirmwareUpdate
from evse.reservations import EvseState, Reservations
from evse.state_db import open_state_db
from evse.system_actions import SystemActions
from evse.timers import LoopClock
from ocpp_client.v16 import firmware as v16fw
from ocpp_client.v16 import reservation as v16res
from tests.features.servers import HttpServer

IMAGE = b"firmware 2.0 " * 1000


class Csms(ChargePoint):
    """The CSMS's view of one station: records the notifications it receives."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.received: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    def _record(self, action: str, status: str) -> None:
        self.received.append((action, status))
        self.changed.set()

    async def until(self, action: str, status: str) -> None:
        async with asyncio.timeout(10):
            while (action, status) not in self.received:
                self.changed.clear()
                await self.changed.wait()

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, status: str) -> call_result.FirmwareStatusNotification:
        self._record("FirmwareStatusNotification", status)
        return call_result.FirmwareStatusNotification()

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status(self, status: str) -> call_result.DiagnosticsStatusNotification:
        self._record("DiagnosticsStatusNotification", status)
        return call_result.DiagnosticsStatusNotification()


class Station(ChargePoint):
    """A charge point whose Firmware Management / Reservation handlers are the v16
    conversion functions over the engines."""

    def __init__(self, cp_id: str, connection: Any, fw: FirmwareUpdate, diag: Diagnostics,
                 reservations: Reservations) -> None:
        super().__init__(cp_id, connection)
        self.fw, self.diag, self.reservations = fw, diag, reservations
        self.outbox: asyncio.Queue[Any] = asyncio.Queue()
        self._follow_up: Any = None

    async def sender(self) -> None:
        while True:
            await self.call(await self.outbox.get())

    def firmware_status(self, status: FirmwareStatus, request_id: int | None) -> None:
        if (message := v16fw.firmware_status_notification(status)) is not None:
            self.outbox.put_nowait(message)

    def diagnostics_status(self, status: DiagnosticsStatus, request_id: int | None) -> None:
        if (message := v16fw.diagnostics_status_notification(status)) is not None:
            self.outbox.put_nowait(message)

    @on(Action.update_firmware)
    def on_update_firmware(self, location: str, retrieve_date: str,
                           retries: int | None = None, retry_interval: int | None = None
                           ) -> call_result.UpdateFirmware:
        self._follow_up = v16fw.update_firmware(self.fw, location, retrieve_date, retries,
                                                retry_interval)
        return call_result.UpdateFirmware()

    @after(Action.update_firmware)
    def after_update_firmware(self, **_: Any) -> None:
        if self._follow_up is not None:
            self.outbox.put_nowait(self._follow_up)

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, location: str, **kw: Any) -> call_result.GetDiagnostics:
        return v16fw.get_diagnostics(self.diag, location, **kw)

    @on(Action.reserve_now)
    def on_reserve_now(self, **kw: Any) -> call_result.ReserveNow:
        return v16res.reserve_now(self.reservations, **kw)

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int) -> call_result.CancelReservation:
        return v16res.cancel_reservation(self.reservations, reservation_id)

    @on(Action.trigger_message)
    def on_trigger(self, requested_message: str, **_: Any) -> call_result.TriggerMessage:
        return call_result.TriggerMessage(TriggerMessageStatus.accepted)

    @after(Action.trigger_message)
    def after_trigger(self, requested_message: str, **_: Any) -> None:
        if requested_message == MessageTrigger.firmware_status_notification:
            self.outbox.put_nowait(v16fw.triggered_firmware_status_notification(self.fw.status))
        elif requested_message == MessageTrigger.diagnostics_status_notification:
            self.outbox.put_nowait(
                v16fw.triggered_diagnostics_status_notification(self.diag.status))


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.state_dir = tmp_path / "state"
        self.marker = tmp_path / "installed.bin"
        script = tmp_path / "install.sh"
        script.write_text(f'#!/bin/sh\ncp "$1" "{self.marker}"\n')
        self.actions = SystemActions(("true",), ("/bin/sh", str(script), "{file}"), 10, 10)
        self.rebooted = asyncio.Event()
        (tmp_path / "evse.log").write_text("2026-01-01 00:00:00,000 INFO evse: hello\n")

    async def reboot(self) -> None:
        self.rebooted.set()

    @contextlib.asynccontextmanager
    async def connected(self, version: str) -> AsyncIterator[tuple[Station, Csms]]:
        """Start the station (engines on a fresh DB connection) connected to a CSMS."""
        csms_side: asyncio.Future[Csms] = asyncio.get_running_loop().create_future()

        async def handler(connection: Any) -> None:
            csms = Csms("CP1", connection)
            csms_side.set_result(csms)
            with contextlib.suppress(websockets.exceptions.ConnectionClosed):
                await csms.start()

        clock = LoopClock()
        conn = open_state_db(self.state_dir)
        server = await websockets.serve(handler, "127.0.0.1", 0,
                                        subprotocols=[websockets.Subprotocol("ocpp1.6")])
        port = server.sockets[0].getsockname()[1]
        async with websockets.connect(f"ws://127.0.0.1:{port}/CP1",
                                      subprotocols=[websockets.Subprotocol("ocpp1.6")]) as ws:
            station = Station("CP1", ws, None, None, None)  # type: ignore[arg-type]
            station.fw = FirmwareUpdate(
                conn=conn, download_dir=self.state_dir / "firmware", clock=clock,
                wall=time.time, install=self.actions.install_firmware, reboot=self.reboot,
                transaction_running=lambda: False, on_status=station.firmware_status,
                running_version=version)
            station.diag = Diagnostics(
                work_dir=self.state_dir / "diagnostics", station_id="CP1", clock=clock,
                wall=time.time, on_status=station.diagnostics_status,
                sources=LogSources(files=(self.tmp_path / "evse.log",), journalctl=None))
            station.reservations = Reservations(
                conn=conn, clock=clock, wall=time.time, evse_ids=[1],
                evse_state=lambda e: EvseState.FREE, on_event=lambda e: None)
            tasks = [asyncio.create_task(station.start()), asyncio.create_task(station.sender())]
            csms = await csms_side
            try:
                yield station, csms
            finally:
                await station.fw.close()
                await station.diag.close()
                station.reservations.close()
                for task in tasks:
                    task.cancel()
        server.close()
        await server.wait_closed()
        conn.close()


@pytest.fixture
def http():
    with HttpServer() as server:
        server.state.files["/fw/evse-2.0.raucb"] = IMAGE
        yield server


async def test_update_firmware_from_the_csms_through_reboot(http: HttpServer, tmp_path: Path
                                                            ) -> None:
    rig = Rig(tmp_path)
    async with rig.connected(version="1.0") as (station, csms):
        await csms.call(call.UpdateFirmware(location=http.url("/fw/evse-2.0.raucb"),
                                            retrieve_date="2020-01-01T00:00:00Z"))
        async with asyncio.timeout(10):
            await rig.rebooted.wait()
        await csms.until("FirmwareStatusNotification", "Installing")
        assert csms.received == [("FirmwareStatusNotification", s)
                                 for s in ("Downloading", "Downloaded", "Installing")]
        assert rig.marker.read_bytes() == IMAGE

    # the board rebooted into 2.0
    async with rig.connected(version="2.0") as (station, csms):
        await station.fw.resume()
        await csms.until("FirmwareStatusNotification", "Installed")
        await csms.call(call.TriggerMessage(MessageTrigger.firmware_status_notification))
        await csms.until("FirmwareStatusNotification", "Idle")
        assert csms.received == [("FirmwareStatusNotification", "Installed"),
                                 ("FirmwareStatusNotification", "Idle")]


async def test_update_firmware_with_an_unsupported_location(tmp_path: Path) -> None:
    async with Rig(tmp_path).connected(version="1.0") as (_, csms):
        await csms.call(call.UpdateFirmware(location="sftp://host/fw.bin",
                                            retrieve_date="2020-01-01T00:00:00Z"))
        await csms.until("FirmwareStatusNotification", "DownloadFailed")


async def test_get_diagnostics_from_the_csms(http: HttpServer, tmp_path: Path) -> None:
    async with Rig(tmp_path).connected(version="1.0") as (_, csms):
        await csms.call(call.TriggerMessage(MessageTrigger.diagnostics_status_notification))
        await csms.until("DiagnosticsStatusNotification", "Idle")
        conf = await csms.call(call.GetDiagnostics(location=http.url("/diag")))
        await csms.until("DiagnosticsStatusNotification", "Uploaded")
        assert [s for a, s in csms.received] == ["Idle", "Uploading", "Uploaded"]
    [upload] = http.state.uploads
    assert conf.file_name == upload.file_name
    assert conf.file_name.startswith("CP1-diagnostics-")


async def test_reserve_and_cancel_from_the_csms(tmp_path: Path) -> None:
    async with Rig(tmp_path).connected(version="1.0") as (station, csms):
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
        conf = await csms.call(call.ReserveNow(connector_id=1, expiry_date=expiry,
                                               id_tag="CARD1", reservation_id=7))
        assert conf.status == "Accepted"
        assert station.reservations.is_reserved(1)
        conf = await csms.call(call.ReserveNow(connector_id=0, expiry_date=expiry,
                                               id_tag="CARD1", reservation_id=8))
        assert conf.status == "Rejected"  # ReserveConnectorZeroSupported is false
        assert (await csms.call(call.CancelReservation(7))).status == "Accepted"
        assert (await csms.call(call.CancelReservation(7))).status == "Rejected"
