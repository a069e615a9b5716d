"""Reservation, Firmware Management (with diagnostics), Remote Trigger and the feature-profile
switches, end to end: the daemon as ``evse run`` wires it, the ``ocpp`` library's central
system on loopback (schema validation on, both ends), real HTTP / FTP peers, a real install
command and a real daemon restart on the same state directory (OCPP 1.6 §3.11, §3.12, §5.9,
§5.13, §5.17, §5.19, §9)."""

from __future__ import annotations

import io
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dev_csms import DevCsms
from ocpp.exceptions import NotSupportedError
from ocpp.v16 import call

from evse.config import ConfigError
from evse.daemon import Daemon, load_checked_config
from evse.timers import ManualClock
from tests.conftest import DaemonFactory, EventLog, write_config
from tests.features.servers import FtpServer, HttpServer

IMAGE = b"evse firmware 9.9 " * 2000

def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


async def stop(daemons_running: Daemon, csms: DevCsms) -> None:
    await daemons_running.shutdown()
    await csms.wait_for(lambda: "CP-TEST" not in csms.stations)


def statuses(csms: DevCsms, connector_id: int = 1) -> list[str]:
    return [p["status"] for p in csms.actions("StatusNotification")
            if p["connectorId"] == connector_id]


async def connected(csms: DevCsms, start: DaemonFactory, **kwargs: Any) -> tuple[Daemon, Any]:
    seen = len(csms.actions("BootNotification"))
    daemon = await start(f"ws://127.0.0.1:{csms.port}/", **kwargs)
    await csms.wait_for(lambda: len(csms.actions("BootNotification")) > seen
                        and "CP-TEST" in csms.stations)
    return daemon, csms.stations["CP-TEST"]


# --- Reservation ------------------------------------------------------------------------------


async def test_reservation_is_for_its_id_tag_and_its_group_only(
        csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    csms.tag_info["TAG-C"] = {"status": "Accepted", "parentIdTag": "FLEET-7"}
    daemon, cp = await connected(csms, daemon_factory)
    assert daemon.station is not None and daemon.board is not None
    sim = daemon.board.simulator
    assert sim is not None
    events = EventLog(daemon.station)
    await csms.wait_for(lambda: statuses(csms))

    answer = await cp.call(call.ReserveNow(connector_id=1, expiry_date=iso(time.time() + 3600),
                                           id_tag="TAG-A", reservation_id=41,
                                           parent_id_tag="FLEET-7"))
    assert answer.status == "Accepted"
    await csms.wait_for(lambda: statuses(csms)[-1:] == ["Reserved"])

    # Another card of no matching group: authorized by the CSMS, but not on this connector.
    sim.plug(1, 16.0, 3)
    sim.swipe("TAG-B")
    await csms.wait_for(lambda: any(p["idTag"] == "TAG-B" for p in csms.actions("Authorize")))
    await daemon.station.idle()
    assert csms.actions("StartTransaction") == []
    # A second reservation of the occupied connector is refused.
    answer = await cp.call(call.ReserveNow(connector_id=1, expiry_date=iso(time.time() + 600),
                                           id_tag="TAG-B", reservation_id=42))
    assert answer.status == "Occupied"

    # A card of the reserving group (parentIdTag from Authorize.conf) uses the reservation.
    sim.swipe("TAG-C")
    start = (await csms.wait_for(lambda: csms.actions("StartTransaction")))[0]
    assert start["idTag"] == "TAG-C" and start["reservationId"] == 41
    await events.wait_for(lambda: "energy_transfer" in events.statuses())
    # Used: it is gone (cancelling it now is Rejected).
    assert (await cp.call(call.CancelReservation(reservation_id=41))).status == "Rejected"


async def test_reservation_survives_a_restart(csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    daemon, cp = await connected(csms, daemon_factory)
    answer = await cp.call(call.ReserveNow(connector_id=1, expiry_date=iso(time.time() + 3600),
                                           id_tag="TAG-A", reservation_id=7))
    assert answer.status == "Accepted"
    await csms.wait_for(lambda: statuses(csms)[-1:] == ["Reserved"])

    await stop(daemon, csms)  # a real restart on the same state directory
    sent = len(statuses(csms))
    daemon, cp = await connected(csms, daemon_factory)
    # After the restart the connector reports Reserved, never Available first.
    await csms.wait_for(lambda: len(statuses(csms)) > sent)
    assert statuses(csms)[sent:] == ["Reserved"]
    assert daemon.station is not None
    [held] = daemon.station.describe()["reservations"]  # what `evse status` shows
    assert (held["reservation_id"], held["evse_id"]) == (7, 1)
    assert daemon.board is not None and daemon.board.simulator is not None
    sim = daemon.board.simulator
    sim.plug(1, 16.0, 3)
    sim.swipe("TAG-B")  # not the reserving idTag: no transaction
    await csms.wait_for(lambda: any(p["idTag"] == "TAG-B" for p in csms.actions("Authorize")))
    assert daemon.station is not None
    await daemon.station.idle()
    assert csms.actions("StartTransaction") == []
    sim.swipe("TAG-A")
    start = (await csms.wait_for(lambda: csms.actions("StartTransaction")))[0]
    assert start["idTag"] == "TAG-A" and start["reservationId"] == 7


async def test_reservation_expires(csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    clock = ManualClock()  # the daemon's timers and UTC clock
    daemon, cp = await connected(csms, daemon_factory, clock=clock)
    station = daemon.station
    assert station is not None
    answer = await cp.call(call.ReserveNow(connector_id=1,
                                           expiry_date=iso(station.clock.now() + 600),
                                           id_tag="TAG-A", reservation_id=8))
    assert answer.status == "Accepted"
    await csms.wait_for(lambda: statuses(csms)[-1:] == ["Reserved"])
    await station.idle()
    clock.advance(599)
    await station.idle()
    assert station.reservations.get(8) is not None
    assert station.connectors[1].state == "reserved"
    clock.advance(2)  # expiryDate passed: Available again
    await csms.wait_for(lambda: statuses(csms)[-1:] == ["Available"])
    assert station.reservations.get(8) is None


async def test_reservation_cancelled(csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    _daemon, cp = await connected(csms, daemon_factory)
    assert (await cp.call(call.ReserveNow(connector_id=2, expiry_date=iso(time.time() + 600),
                                          id_tag="TAG-A", reservation_id=2))
            ).status == "Rejected"  # no connector 2
    assert (await cp.call(call.ReserveNow(connector_id=1, expiry_date=iso(time.time() + 600),
                                          id_tag="TAG-A", reservation_id=3))
            ).status == "Accepted"
    await csms.wait_for(lambda: statuses(csms)[-1:] == ["Reserved"])
    assert (await cp.call(call.CancelReservation(reservation_id=3))).status == "Accepted"
    await csms.wait_for(lambda: statuses(csms)[-1:] == ["Available"])

    # Out of service: Unavailable.
    assert (await cp.call(call.ChangeAvailability(connector_id=1, type="Inoperative"))
            ).status == "Accepted"
    await csms.wait_for(lambda: statuses(csms)[-1:] == ["Unavailable"])
    assert (await cp.call(call.ReserveNow(connector_id=1, expiry_date=iso(time.time() + 600),
                                          id_tag="TAG-A", reservation_id=4))
            ).status == "Unavailable"


# --- Firmware Management ------------------------------------------------------------------------


def install_script(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "installed.img"
    script = tmp_path / "install-firmware"
    script.write_text(f'#!/bin/sh\ncp "$1" "{marker}"\n')
    script.chmod(0o755)
    return script, marker


def system_table(script: Path) -> str:
    return (f'[system]\nfirmware_install_command = ["{script}", "{{file}}"]\n'
            'reboot_command = ["true"]\n')


def firmware_statuses(csms: DevCsms) -> list[str]:
    return [p["status"] for p in csms.actions("FirmwareStatusNotification")]


@pytest.mark.parametrize("transport", ["http", "ftp"])
async def test_firmware_update_through_install_and_reboot(
        csms: DevCsms, daemon_factory: DaemonFactory, tmp_path: Path, transport: str) -> None:
    script, marker = install_script(tmp_path)
    extra = system_table(script)
    daemon, cp = await connected(csms, daemon_factory, extra=extra)

    async def update(location: str) -> None:
        await cp.call(call.UpdateFirmware(location=location, retrieve_date=iso(time.time()),
                                          retries=0, retry_interval=1))
        await csms.wait_for(lambda: "Installing" in firmware_statuses(csms))
        await daemon.wait()  # the reboot: the daemon ends its run

    if transport == "http":
        with HttpServer() as http:
            http.state.files["/images/evse-9.9.bin"] = IMAGE
            await update(http.url("/images/evse-9.9.bin"))
    else:
        root = tmp_path / "ftp"
        root.mkdir()
        (root / "evse-9.9.bin").write_bytes(IMAGE)
        with FtpServer(root) as ftp:
            await update(ftp.url("/evse-9.9.bin"))
    assert daemon.reset_kind == "Hard"
    assert firmware_statuses(csms) == ["Downloading", "Downloaded", "Installing"]
    assert marker.read_bytes() == IMAGE  # the install command got the downloaded image

    await stop(daemon, csms)
    daemon, cp = await connected(csms, daemon_factory, extra=extra)
    await csms.wait_for(lambda: "Installed" in firmware_statuses(csms))
    assert firmware_statuses(csms) == ["Downloading", "Downloaded", "Installing", "Installed"]
    # Afterwards a triggered notification says Idle.
    assert (await cp.call(call.TriggerMessage(requested_message="FirmwareStatusNotification"))
            ).status == "Accepted"
    await csms.wait_for(lambda: firmware_statuses(csms)[-1] == "Idle")


async def test_firmware_install_waits_for_the_running_transaction(
        csms: DevCsms, daemon_factory: DaemonFactory, tmp_path: Path) -> None:
    script, marker = install_script(tmp_path)
    daemon, cp = await connected(csms, daemon_factory, extra=system_table(script), connectors=2)
    assert daemon.station is not None and daemon.board is not None
    sim = daemon.board.simulator
    assert sim is not None
    events = EventLog(daemon.station)
    await csms.wait_for(lambda: statuses(csms))  # online: the card is authorized by the CSMS
    sim.plug(1, 16.0, 3)
    sim.swipe("DEMO01")
    await events.wait_for(lambda: "energy_transfer" in events.statuses())

    with HttpServer() as http:
        http.state.files["/evse.bin"] = IMAGE
        await cp.call(call.UpdateFirmware(location=http.url("/evse.bin"),
                                          retrieve_date=iso(time.time()), retries=0))
        await csms.wait_for(lambda: "Downloaded" in firmware_statuses(csms))
    # Downloaded, but nothing is installed while the transaction runs; new ones are refused.
    await daemon.station.idle()
    assert firmware_statuses(csms) == ["Downloading", "Downloaded"]
    assert daemon.station.transactions_held and not marker.exists()
    assert daemon.station.connectors[1].state == "energy_transfer"
    assert (await cp.call(call.RemoteStartTransaction(id_tag="TAG-A", connector_id=2))
            ).status == "Rejected"  # the wait must end: no new transaction

    sim.swipe("DEMO01")  # the user ends the transaction: the install follows
    await csms.wait_for(lambda: "Installing" in firmware_statuses(csms))
    await daemon.wait()
    assert [p["reason"] for p in csms.actions("StopTransaction")] == ["Local"]
    assert marker.read_bytes() == IMAGE


async def test_firmware_download_failure_is_reported(csms: DevCsms, daemon_factory: DaemonFactory,
                                                     tmp_path: Path) -> None:
    script, marker = install_script(tmp_path)
    _daemon, cp = await connected(csms, daemon_factory, extra=system_table(script))
    with HttpServer() as http:
        await cp.call(call.UpdateFirmware(location=http.url("/missing.bin"),
                                          retrieve_date=iso(time.time()), retries=0))
        await csms.wait_for(lambda: "DownloadFailed" in firmware_statuses(csms))
    assert firmware_statuses(csms) == ["Downloading", "DownloadFailed"]
    assert not marker.exists()


async def test_diagnostics_upload_reaches_the_server(csms: DevCsms, daemon_factory: DaemonFactory,
                                                     tmp_path: Path) -> None:
    log_file = tmp_path / "evse.log"
    log_file.write_text("2026-01-01T10:00:00Z evse: started\n"
                        "2026-01-01T10:05:00Z evse: CSMS ws://cp:secret123@csms.example/ocpp\n")
    extra = ('[logging]\ndiagnostics_units = []\n'
             f'diagnostics_files = ["{log_file}"]\n')
    _daemon, cp = await connected(csms, daemon_factory, extra=extra)
    with HttpServer() as http:
        answer = await cp.call(call.GetDiagnostics(location=http.url("/upload")))
        assert answer.file_name.startswith("CP-TEST-diagnostics-")
        await csms.wait_for(lambda: [p["status"] for p in
                                     csms.actions("DiagnosticsStatusNotification")]
                            == ["Uploading", "Uploaded"])
        [upload] = http.state.uploads
    assert upload.file_name == answer.file_name
    with tarfile.open(fileobj=io.BytesIO(upload.body), mode="r:gz") as tar:
        member = tar.extractfile("logs/evse.log")
        assert member is not None
        text = member.read().decode()
    assert "evse: started" in text
    assert "secret123" not in text
    # Nothing uploads any more: a triggered notification says Idle.
    assert (await cp.call(call.TriggerMessage(requested_message="DiagnosticsStatusNotification"))
            ).status == "Accepted"
    await csms.wait_for(lambda: csms.actions("DiagnosticsStatusNotification")[-1]
                        == {"status": "Idle"})


# --- feature profiles as configuration ----------------------------------------------------------


async def test_switched_off_profiles_answer_not_supported_and_hide_their_keys(
        csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    _daemon, cp = await connected(
        csms, daemon_factory, ocpp_extra='feature_profiles = ["Core", "RemoteTrigger"]')
    keys = {k["key"]: k for k in (await cp.call(call.GetConfiguration())).configuration_key}
    assert keys["SupportedFeatureProfiles"] == {"key": "SupportedFeatureProfiles",
                                                "readonly": True, "value": "Core,RemoteTrigger"}
    for hidden in ("LocalAuthListEnabled", "LocalAuthListMaxLength", "SendLocalListMaxLength",
                   "ReserveConnectorZeroSupported", "SupportedFileTransferProtocols"):
        assert hidden not in keys
    asked = await cp.call(call.GetConfiguration(key=["LocalAuthListEnabled", "HeartbeatInterval"]))
    assert [k["key"] for k in asked.configuration_key] == ["HeartbeatInterval"]
    assert asked.unknown_key == ["LocalAuthListEnabled"]
    assert (await cp.call(call.ChangeConfiguration(key="LocalAuthListEnabled", value="true"))
            ).status == "NotSupported"

    for request in (
        call.ReserveNow(connector_id=1, expiry_date=iso(time.time() + 60), id_tag="TAG-A",
                        reservation_id=1),
        call.CancelReservation(reservation_id=1),
        call.UpdateFirmware(location="http://127.0.0.1:1/x.bin", retrieve_date=iso(time.time())),
        call.GetDiagnostics(location="http://127.0.0.1:1/up"),
        call.SendLocalList(list_version=1, update_type="Full", local_authorization_list=[]),
        call.GetLocalListVersion(),
    ):
        with pytest.raises(NotSupportedError):
            await cp.call(request, suppress=False)
    assert (await cp.call(call.TriggerMessage(requested_message="FirmwareStatusNotification"))
            ).status == "NotImplemented"
    assert csms.actions("FirmwareStatusNotification") == []


async def test_all_profiles_by_default(csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    _daemon, cp = await connected(csms, daemon_factory)
    answer = await cp.call(call.GetConfiguration(key=["SupportedFeatureProfiles",
                                                      "SupportedFileTransferProtocols",
                                                      "ReserveConnectorZeroSupported"]))
    values = {k["key"]: k["value"] for k in answer.configuration_key}
    assert values == {
        "SupportedFeatureProfiles": "Core,FirmwareManagement,LocalAuthListManagement,"
                                    "Reservation,SmartCharging,RemoteTrigger",
        "SupportedFileTransferProtocols": "FTP,HTTP,HTTPS",
        "ReserveConnectorZeroSupported": "true",
    }


def test_dictated_read_only_keys_cannot_be_set_in_the_toml(tmp_path: Path) -> None:
    path = write_config(tmp_path, "ws://127.0.0.1:1/",
                        ocpp_keys='SupportedFeatureProfiles = "Core,SmartCharging"')
    with pytest.raises(ConfigError) as error:
        load_checked_config(str(path))
    assert any("SupportedFeatureProfiles" in line and "feature_profiles" in line
               for line in error.value.errors)


def test_core_cannot_be_switched_off(tmp_path: Path) -> None:
    path = write_config(tmp_path, "ws://127.0.0.1:1/",
                        ocpp_extra='feature_profiles = ["RemoteTrigger"]')
    with pytest.raises(ConfigError) as error:
        load_checked_config(str(path))
    assert error.value.errors == [f'{path}: ocpp.feature_profiles: found [\'RemoteTrigger\'], '
                                  'expected a list that includes "Core"']
