"""The firmware update flow end to end: a real HTTP / FTP server, the real install command
runner (a script writing a marker file), a real SQLite file, and a second engine instance on
the same database standing in for the station after the reboot."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from evse.firmware_update import (
    FirmwareStatus as S,
)
from evse.firmware_update import (
    FirmwareUpdate,
    FirmwareUpdateRequest,
    image_file_name,
)
from evse.state_db import open_state_db
from evse.system_actions import SystemActions
from evse.timers import ManualClock
from tests.features.clockdrive import drive
from tests.features.recorder import Recorder
from tests.features.servers import FtpServer, HttpServer

IMAGE = b"\x7fELF firmware image " * 4096
EPOCH = 1_780_000_000.0


class Station:
    """The ports a station gives the engine, with real parts where there are any."""

    def __init__(self, tmp_path: Path, install_exit: int = 0) -> None:
        self.state_dir = tmp_path / "state"
        self.marker = tmp_path / "installed.bin"
        script = tmp_path / "install.sh"
        script.write_text(f'#!/bin/sh\ncp "$1" "{self.marker}"\nexit {install_exit}\n')
        self.actions = SystemActions(
            reboot_command=("true",), firmware_install_command=("/bin/sh", str(script), "{file}"),
            reboot_timeout_s=10, firmware_install_timeout_s=10)
        self.clock = ManualClock(start=EPOCH)
        self.statuses: Recorder[S] = Recorder()
        self.rebooted = asyncio.Event()
        self.running = False
        self.holds: list[bool] = []
        self.conn: sqlite3.Connection | None = None

    async def reboot(self) -> None:
        self.rebooted.set()

    def engine(self, version: str = "1.0", **kw: object) -> FirmwareUpdate:
        self.conn = open_state_db(self.state_dir)
        return FirmwareUpdate(
            conn=self.conn, download_dir=self.state_dir / "firmware", clock=self.clock,
            wall=self.clock.monotonic, install=self.actions.install_firmware,
            reboot=self.reboot, transaction_running=lambda: self.running,
            on_status=self.statuses, running_version=version,
            hold_transactions=self.holds.append, **kw)  # type: ignore[arg-type]

    def pending_rows(self) -> int:
        assert self.conn is not None
        return int(self.conn.execute("SELECT count(*) FROM firmware_update").fetchone()[0])


@pytest.fixture
def http():
    with HttpServer() as server:
        server.state.files["/fw/evse-2.0.raucb"] = IMAGE
        yield server


async def test_http_update_through_install_reboot_and_report(http: HttpServer,
                                                             tmp_path: Path) -> None:
    st = Station(tmp_path)
    fw = st.engine(version="1.0")
    fw.update(FirmwareUpdateRequest(http.url("/fw/evse-2.0.raucb"), EPOCH + 3600, 1, 60))
    assert fw.status is S.DOWNLOAD_SCHEDULED
    await drive(st.rebooted.wait(), st.clock)
    # nothing fetched before retrieveDate
    assert st.clock.monotonic() == EPOCH + 3600
    assert st.statuses.items == [S.DOWNLOAD_SCHEDULED, S.DOWNLOADING, S.DOWNLOADED,
                                 S.INSTALLING, S.INSTALL_REBOOTING]
    assert st.marker.read_bytes() == IMAGE
    assert st.pending_rows() == 1
    await fw.close()

    # after the reboot: a new process, the new version running
    after = Station(tmp_path)
    fw2 = after.engine(version="2.0")
    await fw2.resume()
    assert after.statuses.items == [S.INSTALLED]
    assert fw2.status is S.IDLE
    assert after.pending_rows() == 0
    assert list((after.state_dir / "firmware").iterdir()) == []


async def test_ftp_update_installs_the_served_image(tmp_path: Path) -> None:
    root = tmp_path / "ftproot"
    root.mkdir()
    (root / "image.swu").write_bytes(IMAGE)
    st = Station(tmp_path)
    fw = st.engine()
    with FtpServer(root) as ftp:
        fw.update(FirmwareUpdateRequest(ftp.url("/image.swu"), EPOCH - 10, 0, 0))
        await drive(st.rebooted.wait(), st.clock)
    assert st.marker.read_bytes() == IMAGE
    assert S.DOWNLOAD_SCHEDULED not in st.statuses.items  # retrieveDate already passed


async def test_install_waits_until_no_transaction_runs(http: HttpServer, tmp_path: Path
                                                       ) -> None:
    st = Station(tmp_path)
    st.running = True
    fw = st.engine()
    fw.update(FirmwareUpdateRequest(http.url("/fw/evse-2.0.raucb"), EPOCH, 0, 0))
    await drive(st.statuses.until(S.DOWNLOADED), st.clock)
    fw.transactions_changed()  # some other change; still a transaction running
    for _ in range(5):
        await asyncio.sleep(0)
    assert st.statuses.items[-1] is S.DOWNLOADED
    assert fw.status is S.DOWNLOADED
    assert not st.marker.exists()
    assert st.holds == [True]

    st.running = False
    fw.transactions_changed()
    await drive(st.rebooted.wait(), st.clock)
    assert st.marker.read_bytes() == IMAGE
    assert st.holds == [True]  # stays held: the board reboots
    await fw.close()


async def test_download_failed_after_retries(http: HttpServer, tmp_path: Path) -> None:
    st = Station(tmp_path)
    fw = st.engine()
    fw.update(FirmwareUpdateRequest(http.url("/fw/missing.raucb"), EPOCH, 2, 120))
    await drive(st.statuses.until(S.DOWNLOAD_FAILED), st.clock)
    assert http.state.requests == ["GET /fw/missing.raucb"] * 3
    assert st.clock.monotonic() == EPOCH + 240
    assert st.statuses.items == [S.DOWNLOADING, S.DOWNLOAD_FAILED]
    assert fw.status is S.IDLE
    assert st.pending_rows() == 0
    assert not st.rebooted.is_set()


async def test_download_retried_until_the_server_recovers(http: HttpServer, tmp_path: Path
                                                          ) -> None:
    http.state.fail_next = 2
    http.state.fail_status = 500
    st = Station(tmp_path)
    fw = st.engine()
    fw.update(FirmwareUpdateRequest(http.url("/fw/evse-2.0.raucb"), EPOCH, 3, 30))
    await drive(st.rebooted.wait(), st.clock)
    assert len(http.state.requests) == 3
    assert st.statuses.items.count(S.DOWNLOADING) == 1
    assert st.marker.read_bytes() == IMAGE
    await fw.close()


async def test_failing_install_command_reports_installation_failed(http: HttpServer,
                                                                   tmp_path: Path) -> None:
    st = Station(tmp_path, install_exit=3)
    fw = st.engine()
    fw.update(FirmwareUpdateRequest(http.url("/fw/evse-2.0.raucb"), EPOCH, 0, 0))
    await drive(st.statuses.until(S.INSTALLATION_FAILED), st.clock)
    assert st.statuses.items[-2:] == [S.INSTALLING, S.INSTALLATION_FAILED]
    assert not st.rebooted.is_set()
    assert st.pending_rows() == 0
    assert fw.status is S.IDLE


@pytest.mark.parametrize(("version_after", "expected"),
                         [("2.0", S.INSTALLED), ("1.0", S.INSTALLATION_FAILED)])
async def test_power_cut_during_install(http: HttpServer, tmp_path: Path, version_after: str,
                                        expected: S) -> None:
    st = Station(tmp_path)
    started = asyncio.Event()

    async def install_that_never_returns(path: Path) -> None:
        started.set()
        await asyncio.Event().wait()

    conn = open_state_db(st.state_dir)
    fw = FirmwareUpdate(conn=conn, download_dir=st.state_dir / "firmware", clock=st.clock,
                        wall=st.clock.monotonic, install=install_that_never_returns,
                        reboot=st.reboot, transaction_running=lambda: False,
                        on_status=st.statuses, running_version="1.0")
    fw.update(FirmwareUpdateRequest(http.url("/fw/evse-2.0.raucb"), EPOCH, 0, 0))
    await drive(started.wait(), st.clock)
    await fw.close()  # the power goes
    conn.close()

    after = Station(tmp_path)
    fw2 = after.engine(version=version_after)
    await fw2.resume()
    assert after.statuses.items == [expected]
    assert after.pending_rows() == 0


async def test_resume_after_restart_while_scheduled(http: HttpServer, tmp_path: Path) -> None:
    st = Station(tmp_path)
    fw = st.engine()
    fw.update(FirmwareUpdateRequest(http.url("/fw/evse-2.0.raucb"), EPOCH + 600, 0, 0))
    await fw.close()

    after = Station(tmp_path)
    fw2 = after.engine()
    await fw2.resume()
    await drive(after.rebooted.wait(), after.clock)
    assert after.clock.monotonic() == EPOCH + 600
    assert after.marker.read_bytes() == IMAGE


async def test_signed_update_checks_the_signature_before_install(http: HttpServer,
                                                                 tmp_path: Path) -> None:
    st = Station(tmp_path)
    checked: list[bytes] = []

    async def verify(path: Path, request: FirmwareUpdateRequest) -> bool:
        checked.append(path.read_bytes())
        return request.signature == "good"

    fw = st.engine(verify=verify)
    fw.update(FirmwareUpdateRequest(http.url("/fw/evse-2.0.raucb"), EPOCH, 0, 0,
                                    request_id=7, signature="bad", signing_certificate="pem"))
    await drive(st.statuses.until(S.INVALID_SIGNATURE), st.clock)
    assert checked == [IMAGE]
    assert S.INSTALLING not in st.statuses.items
    assert not st.marker.exists()
    assert {extra for extra in st.statuses.extra} == {(7,)}

    fw.update(FirmwareUpdateRequest(http.url("/fw/evse-2.0.raucb"), EPOCH, 0, 0,
                                    request_id=8, signature="good", signing_certificate="pem"))
    await drive(st.rebooted.wait(), st.clock)
    assert S.SIGNATURE_VERIFIED in st.statuses.items
    assert st.marker.read_bytes() == IMAGE
    await fw.close()


async def test_a_new_request_replaces_the_scheduled_one(http: HttpServer, tmp_path: Path
                                                        ) -> None:
    st = Station(tmp_path)
    fw = st.engine()
    assert fw.update(FirmwareUpdateRequest(http.url("/fw/old.raucb"), EPOCH + 900, 0, 0)) is False
    assert fw.update(FirmwareUpdateRequest(http.url("/fw/evse-2.0.raucb"), EPOCH + 60, 0, 0))
    await drive(st.rebooted.wait(), st.clock)
    assert http.state.requests == ["GET /fw/evse-2.0.raucb"]
    await fw.close()


def test_image_file_name_is_safe() -> None:
    assert image_file_name("http://h/a/b/evse-2.0.raucb?x=1") == "evse-2.0.raucb"
    assert image_file_name("ftp://h/..%2F..%2Fetc%2Fpasswd") == "passwd"
    assert image_file_name("http://h/") == "firmware.bin"
    assert image_file_name("http://h/x y;rm") == "x_y_rm"


async def test_signed_update_with_the_security_verifier(http: HttpServer, tmp_path: Path
                                                        ) -> None:
    """The seam as SignedUpdateFirmware will wire it: the security package's real
    ``verify_firmware`` with a manufacturer root made by ``cryptography``."""
    import base64
    import datetime as dt
    import hashlib

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    from ocpp_client.security.firmware_signature import FirmwareVerification, verify_firmware
    from tests.security.pki import CODE_SIGNING, issue, make_root

    root = make_root("Manufacturer Root")
    signer = issue(root, "Firmware Signing", eku=CODE_SIGNING)
    assert isinstance(signer.key, ec.EllipticCurvePrivateKey)
    signature = base64.b64encode(signer.key.sign(
        hashlib.sha256(IMAGE).digest(), ec.ECDSA(utils.Prehashed(hashes.SHA256())))).decode()

    async def verify(path: Path, request: FirmwareUpdateRequest) -> bool:
        assert request.signature is not None and request.signing_certificate is not None
        outcome = await asyncio.to_thread(
            verify_firmware, path, request.signing_certificate, request.signature,
            [root.cert], dt.datetime.now(dt.UTC))
        return outcome is FirmwareVerification.SIGNATURE_VERIFIED

    st = Station(tmp_path)
    fw = st.engine(verify=verify)
    fw.update(FirmwareUpdateRequest(http.url("/fw/evse-2.0.raucb"), EPOCH, 0, 0, request_id=1,
                                    signature=signature,
                                    signing_certificate=signer.cert_pem.decode()))
    await drive(st.rebooted.wait(), st.clock)
    assert st.statuses.items[:3] == [S.DOWNLOADING, S.DOWNLOADED, S.SIGNATURE_VERIFIED]
    assert st.marker.read_bytes() == IMAGE

    http.state.files["/fw/evse-2.0.raucb"] = IMAGE + b"tampered"
    fw.update(FirmwareUpdateRequest(http.url("/fw/evse-2.0.raucb"), EPOCH, 0, 0, request_id=2,
                                    signature=signature,
                                    signing_certificate=signer.cert_pem.decode()))
    await drive(st.statuses.until(S.INVALID_SIGNATURE), st.clock)
    await fw.close()


async def test_no_replacement_while_installing(http: HttpServer, tmp_path: Path) -> None:
    from evse.firmware_update import FirmwareUpdateBusy

    st = Station(tmp_path)
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow_install(path: Path) -> None:
        started.set()
        await release.wait()

    fw = FirmwareUpdate(conn=open_state_db(st.state_dir), download_dir=st.state_dir / "fw",
                        clock=st.clock, wall=st.clock.monotonic, install=slow_install,
                        reboot=st.reboot, transaction_running=lambda: False,
                        on_status=st.statuses)
    fw.update(FirmwareUpdateRequest(http.url("/fw/evse-2.0.raucb"), EPOCH, 0, 0))
    await drive(started.wait(), st.clock)
    with pytest.raises(FirmwareUpdateBusy):
        fw.update(FirmwareUpdateRequest(http.url("/fw/other.raucb"), EPOCH, 0, 0))
    release.set()
    await drive(st.rebooted.wait(), st.clock)
    assert http.state.requests == ["GET /fw/evse-2.0.raucb"]
    await fw.close()


async def test_cleanup_deletes_only_the_engines_downloads(http: HttpServer, tmp_path: Path
                                                          ) -> None:
    st = Station(tmp_path)
    conn = open_state_db(st.state_dir)
    (st.state_dir / "keep.txt").write_text("technician's note")
    # download_dir mistakenly the state directory itself
    fw = FirmwareUpdate(conn=conn, download_dir=st.state_dir, clock=st.clock,
                        wall=st.clock.monotonic, install=st.actions.install_firmware,
                        reboot=st.reboot, transaction_running=lambda: False,
                        on_status=st.statuses)
    fw.update(FirmwareUpdateRequest(http.url("/fw/evse-2.0.raucb"), EPOCH, 0, 0))
    await drive(st.rebooted.wait(), st.clock)
    await fw.close()
    fw2 = FirmwareUpdate(conn=conn, download_dir=st.state_dir, clock=st.clock,
                         wall=st.clock.monotonic, install=st.actions.install_firmware,
                         reboot=st.reboot, transaction_running=lambda: False,
                         on_status=st.statuses)
    await fw2.resume()
    assert st.statuses.items[-1] is S.INSTALLED
    assert sorted(p.name for p in st.state_dir.iterdir() if not p.name.startswith("evse.db")
                  ) == ["keep.txt"]
