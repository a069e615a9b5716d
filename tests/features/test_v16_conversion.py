"""OCPP 1.6 conversion of the feature engines; every produced payload is validated against
the ``ocpp`` library's OCPP 1.6 JSON schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.messages import MessageType, get_validator

from evse.diagnostics import Diagnostics, DiagnosticsStatus, LogSources
from evse.firmware_update import FirmwareStatus, FirmwareUpdate
from evse.reservations import EvseState, Reservations
from evse.state_db import open_state_db
from evse.timers import ManualClock
from ocpp_client.v16 import firmware as v16fw
from ocpp_client.v16 import reservation as v16res
from tests.features.clockdrive import drive
from tests.features.recorder import Recorder
from tests.features.servers import HttpServer

EPOCH = 1_780_000_000.0  # 2026-05-28T20:26:40Z


def payload(message: Any) -> dict[str, Any]:
    """The JSON payload the ``ocpp`` library would put on the wire."""
    return remove_nones(snake_to_camel_case(serialize_as_dict(message)))  # type: ignore[return-value]


def valid_call(action: str, message: Any) -> dict[str, Any]:
    data = payload(message)
    get_validator(MessageType.Call, action, "1.6").validate(data)
    return data


def valid_result(action: str, message: Any) -> dict[str, Any]:
    data = payload(message)
    get_validator(MessageType.CallResult, action, "1.6").validate(data)
    return data


@pytest.fixture
def reservations(tmp_path: Path) -> Reservations:
    clock = ManualClock(start=EPOCH)
    states = {1: EvseState.FREE, 2: EvseState.FAULTED}
    return Reservations(conn=open_state_db(tmp_path), clock=clock, wall=clock.monotonic,
                        evse_ids=[1, 2], evse_state=states.__getitem__,
                        on_event=lambda e: None, station_wide_supported=False)


def test_reserve_now_answers(reservations: Reservations) -> None:
    request = {"connectorId": 1, "expiryDate": "2026-05-28T21:00:00Z", "idTag": "CARD1",
               "reservationId": 42, "parentIdTag": "FLEET"}
    get_validator(MessageType.Call, "ReserveNow", "1.6").validate(request)
    conf = v16res.reserve_now(reservations, 1, "2026-05-28T21:00:00Z", "CARD1", 42, "FLEET")
    assert valid_result("ReserveNow", conf) == {"status": "Accepted"}
    held = reservations.get(42)
    assert held is not None and held.expires_at_s == EPOCH + 33 * 60 + 20
    assert held.group_id == "FLEET"
    assert valid_result("ReserveNow", v16res.reserve_now(
        reservations, 1, "2026-05-28T21:00:00Z", "CARD2", 43)) == {"status": "Occupied"}
    assert valid_result("ReserveNow", v16res.reserve_now(
        reservations, 2, "2026-05-28T21:00:00Z", "CARD2", 43)) == {"status": "Faulted"}
    assert valid_result("ReserveNow", v16res.reserve_now(
        reservations, 0, "2026-05-28T21:00:00Z", "CARD2", 43)) == {"status": "Rejected"}
    assert valid_result("ReserveNow", v16res.reserve_now(
        reservations, 1, "tomorrow", "CARD2", 43)) == {"status": "Rejected"}


def test_cancel_reservation(reservations: Reservations) -> None:
    v16res.reserve_now(reservations, 1, "2026-05-28T21:00:00Z", "CARD1", 42)
    assert valid_result("CancelReservation",
                        v16res.cancel_reservation(reservations, 42)) == {"status": "Accepted"}
    assert valid_result("CancelReservation",
                        v16res.cancel_reservation(reservations, 42)) == {"status": "Rejected"}


def test_reserve_connector_zero_key() -> None:
    [key] = v16res.key_defs(True)
    assert (key.name, key.default, key.readonly) == ("ReserveConnectorZeroSupported", True, True)


@pytest.mark.parametrize("status", list(FirmwareStatus))
def test_every_firmware_status_maps_to_a_valid_payload(status: FirmwareStatus) -> None:
    notification = v16fw.firmware_status_notification(status)
    if status in (FirmwareStatus.IDLE, FirmwareStatus.DOWNLOAD_SCHEDULED,
                  FirmwareStatus.SIGNATURE_VERIFIED, FirmwareStatus.INSTALL_REBOOTING):
        assert notification is None
    else:
        assert notification is not None
        valid_call("FirmwareStatusNotification", notification)
    valid_call("FirmwareStatusNotification",
               v16fw.triggered_firmware_status_notification(status))
    valid_call("SignedFirmwareStatusNotification",
               v16fw.signed_firmware_status_notification(status, 5))


def test_firmware_statuses_in_1_6_words() -> None:
    words = {s: payload(n)["status"] for s in FirmwareStatus
             if (n := v16fw.firmware_status_notification(s)) is not None}
    assert words == {
        FirmwareStatus.DOWNLOADING: "Downloading", FirmwareStatus.DOWNLOADED: "Downloaded",
        FirmwareStatus.DOWNLOAD_FAILED: "DownloadFailed",
        FirmwareStatus.INSTALLING: "Installing", FirmwareStatus.INSTALLED: "Installed",
        FirmwareStatus.INSTALLATION_FAILED: "InstallationFailed",
        FirmwareStatus.INVALID_SIGNATURE: "InstallationFailed",
    }


@pytest.mark.parametrize("status", list(DiagnosticsStatus))
def test_every_diagnostics_status_maps_to_a_valid_payload(status: DiagnosticsStatus) -> None:
    notification = v16fw.diagnostics_status_notification(status)
    if status is DiagnosticsStatus.IDLE:
        assert notification is None
    else:
        assert notification is not None
        valid_call("DiagnosticsStatusNotification", notification)
    triggered = valid_call("DiagnosticsStatusNotification",
                           v16fw.triggered_diagnostics_status_notification(status))
    assert triggered["status"] == ("Uploading" if status is DiagnosticsStatus.UPLOADING
                                   else "Idle")


def firmware_engine(tmp_path: Path, running: list[bool]
                    ) -> tuple[FirmwareUpdate, ManualClock, Recorder[FirmwareStatus]]:
    clock = ManualClock(start=EPOCH)
    statuses: Recorder[FirmwareStatus] = Recorder()

    async def install(path: Path) -> None:
        raise AssertionError("no install in this test")

    async def reboot() -> None:
        pass

    fw = FirmwareUpdate(conn=open_state_db(tmp_path / "state"), download_dir=tmp_path / "fw",
                        clock=clock, wall=clock.monotonic, install=install, reboot=reboot,
                        transaction_running=lambda: running[0], on_status=statuses)
    return fw, clock, statuses


async def test_update_firmware_and_triggered_status(tmp_path: Path) -> None:
    running = [True]
    fw, clock, statuses = firmware_engine(tmp_path, running)
    idle = valid_call("FirmwareStatusNotification",
                      v16fw.triggered_firmware_status_notification(fw.status))
    assert idle == {"status": "Idle"}
    with HttpServer() as http:
        http.state.files["/fw.bin"] = b"image"
        request = {"location": http.url("/fw.bin"), "retrieveDate": "2026-05-28T20:30:00Z",
                   "retries": 2, "retryInterval": 30}
        get_validator(MessageType.Call, "UpdateFirmware", "1.6").validate(request)
        assert v16fw.update_firmware(fw, request["location"], request["retrieveDate"], 2,
                                     30) is None
        # scheduled: 1.6 has no word, a trigger says Idle
        assert payload(v16fw.triggered_firmware_status_notification(fw.status)) == {
            "status": "Idle"}
        await drive(statuses.until(FirmwareStatus.DOWNLOADED), clock)
    assert clock.monotonic() == EPOCH + 200
    assert payload(v16fw.triggered_firmware_status_notification(fw.status)) == {
        "status": "Downloaded"}
    await fw.close()


async def test_update_firmware_refused_location(tmp_path: Path) -> None:
    fw, _, _ = firmware_engine(tmp_path, [False])
    follow_up = v16fw.update_firmware(fw, "sftp://host/fw.bin", "2026-05-28T20:30:00Z")
    assert follow_up is not None
    assert valid_call("FirmwareStatusNotification", follow_up) == {"status": "DownloadFailed"}
    assert not fw.busy


def test_firmware_request_defaults() -> None:
    request = v16fw.firmware_update_request("http://h/f", "2026-05-28T20:26:40Z")
    assert (request.retrieve_at_s, request.retries, request.retry_interval_s) == (
        EPOCH, v16fw.DEFAULT_RETRIES, v16fw.DEFAULT_RETRY_INTERVAL_S)


async def test_get_diagnostics_returns_the_uploaded_file_name(tmp_path: Path) -> None:
    (tmp_path / "evse.log").write_text("2026-05-28 20:00:00,000 INFO x: hello\n")
    clock = ManualClock(start=EPOCH)
    statuses: Recorder[DiagnosticsStatus] = Recorder()
    diag = Diagnostics(work_dir=tmp_path / "work",
                       sources=LogSources(files=(tmp_path / "evse.log",), journalctl=None),
                       station_id="CP1", clock=clock, wall=clock.monotonic,
                       on_status=statuses)
    with HttpServer() as http:
        request = {"location": http.url("/up"), "startTime": "2026-05-28T19:00:00Z",
                   "stopTime": "2026-05-28T20:10:00Z", "retries": 1, "retryInterval": 5}
        get_validator(MessageType.Call, "GetDiagnostics", "1.6").validate(request)
        conf = valid_result("GetDiagnostics", v16fw.get_diagnostics(
            diag, request["location"], 1, 5, request["startTime"], request["stopTime"]))
        await drive(statuses.until(DiagnosticsStatus.UPLOADED), clock)
        [upload] = http.state.uploads
    assert conf == {"fileName": upload.file_name}
    sent = [payload(n) for s in statuses.items
            if (n := v16fw.diagnostics_status_notification(s)) is not None]
    assert sent == [{"status": "Uploading"}, {"status": "Uploaded"}]
    refused = valid_result("GetDiagnostics", v16fw.get_diagnostics(diag, "gopher://x/"))
    assert refused == {}


def test_supported_file_transfer_protocols() -> None:
    [key] = v16fw.KEY_DEFS
    assert key.name == "SupportedFileTransferProtocols" and key.readonly
    assert key.default == v16fw.SUPPORTED_FILE_TRANSFER_PROTOCOLS == "FTP,HTTP,HTTPS"
