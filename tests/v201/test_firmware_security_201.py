"""Firmware (L01), Diagnostics (N01) and Security (A02–A04, M03–M05) over OCPP 2.0.1: the
daemon with ``[ocpp] version = "2.0.1"`` against the ``ocpp`` library's 2.0.1 central system
on loopback (schema validation on both ends), a real HTTP server for images and uploads, a
real install command writing a marker file, a real restart on the same state directory and
a test PKI made with ``cryptography``."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from dev_csms import DevCsms
from ocpp.v201 import call

from evse.daemon import Daemon, load_checked_config
from tests.features.servers import HttpServer
from tests.security.pki import CODE_SIGNING, DAY, NOW, Issued, issue, make_root, rsa_key
from tests.v201.rig import write_config_201

IMAGE = b"evse firmware 2.0.1 image " * 1500
STATION = "CP-201"

Starter = Callable[..., Any]


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


@pytest.fixture
def install(tmp_path: Path) -> tuple[Path, Path]:
    """An install command copying the image to a marker file: (script, marker)."""
    marker = tmp_path / "installed.img"
    script = tmp_path / "install-firmware"
    script.write_text(f'#!/bin/sh\ncp "$1" "{marker}"\n')
    script.chmod(0o755)
    return script, marker


@pytest.fixture
async def daemons(tmp_path: Path, csms201: DevCsms, install: tuple[Path, Path]
                  ) -> AsyncIterator[Starter]:
    """``await start()``: a daemon on ``tmp_path``'s state directory, booted; ``stop``
    with ``daemon.shutdown()`` (a restart is shutdown + start)."""
    running: list[Daemon] = []
    script, _ = install

    async def start() -> tuple[Daemon, Any]:
        path = write_config_201(tmp_path, f"ws://127.0.0.1:{csms201.port}/")
        path.write_text(path.read_text() + f'\n[system]\nfirmware_install_command = '
                        f'["{script}", "{{file}}"]\nreboot_command = ["true"]\n')
        seen = len(csms201.actions("BootNotification"))
        daemon = Daemon(load_checked_config(str(path)))
        await daemon.start()
        running.append(daemon)
        await csms201.wait_for(lambda: len(csms201.actions("BootNotification")) > seen
                               and STATION in csms201.stations)
        return daemon, csms201.stations[STATION]

    yield start
    for daemon in running:
        await daemon.shutdown()


def firmware_statuses(csms: DevCsms) -> list[tuple[str, int | None]]:
    return [(p["status"], p.get("requestId"))
            for p in csms.actions("FirmwareStatusNotification")]


def log_statuses(csms: DevCsms) -> list[tuple[str, int | None]]:
    return [(p["status"], p.get("requestId")) for p in csms.actions("LogStatusNotification")]


def security_events(csms: DevCsms) -> list[str]:
    return [p["type"] for p in csms.actions("SecurityEventNotification")]


def pem(issued: Issued) -> str:
    return issued.cert_pem.decode()


async def test_update_firmware_installs_and_reports_installed_after_the_restart(
        csms201: DevCsms, daemons: Starter, install: tuple[Path, Path]) -> None:
    _, marker = install
    daemon, cp = await daemons()
    with HttpServer() as http:
        http.state.files["/images/evse-2.bin"] = IMAGE
        answer = await cp.call(call.UpdateFirmware(
            request_id=17, retries=0, retry_interval=1,
            firmware={"location": http.url("/images/evse-2.bin"),
                      "retrieve_date_time": iso(time.time())}))
        assert answer.status == "Accepted"
        await daemon.wait()  # the install reboot ends the daemon's run
    assert daemon.reset_kind == "Hard"
    assert marker.read_bytes() == IMAGE  # the install command got the downloaded image
    await daemon.shutdown()

    await daemons()  # the same state directory after the reboot
    await csms201.wait_for(lambda: ("Installed", 17) in firmware_statuses(csms201))
    assert firmware_statuses(csms201) == [
        ("Downloading", 17), ("Downloaded", 17), ("Installing", 17),
        ("InstallRebooting", 17), ("Installed", 17)]
    await csms201.wait_for(lambda: "FirmwareUpdated" in security_events(csms201))
    # Afterwards a triggered notification says Idle.
    cp = csms201.stations[STATION]
    assert (await cp.call(call.TriggerMessage(requested_message="FirmwareStatusNotification"))
            ).status == "Accepted"
    await csms201.wait_for(lambda: firmware_statuses(csms201)[-1] == ("Idle", None))


async def test_signed_update_with_a_bad_signature_is_never_installed(
        csms201: DevCsms, daemons: Starter, install: tuple[Path, Path]) -> None:
    _, marker = install
    manufacturer = make_root("Example Manufacturer Root CA")
    signing = issue(manufacturer, "Firmware Signing", key=rsa_key(), eku=CODE_SIGNING)
    foreign = issue(make_root("Unrelated Root CA"), "Firmware Signing", key=rsa_key(),
                    eku=CODE_SIGNING)
    assert signing.key is not None
    other_bytes_signed = base64.b64encode(signing.key.sign(  # type: ignore[call-arg]
        b"not the image", padding.PKCS1v15(), hashes.SHA256())).decode()
    daemon, cp = await daemons()
    assert (await cp.call(call.InstallCertificate(
        certificate_type="ManufacturerRootCertificate", certificate=pem(manufacturer)))
            ).status == "Accepted"
    with HttpServer() as http:
        http.state.files["/signed.bin"] = IMAGE
        firmware = {"location": http.url("/signed.bin"), "retrieve_date_time": iso(time.time()),
                    "signing_certificate": pem(foreign), "signature": other_bytes_signed}
        # A signing certificate of another root: refused before anything is downloaded.
        refused = await cp.call(call.UpdateFirmware(request_id=3, firmware=firmware))
        assert refused.status == "InvalidCertificate"
        assert http.state.requests == []

        firmware["signing_certificate"] = pem(signing)
        answer = await cp.call(call.UpdateFirmware(request_id=4, firmware=firmware,
                                                   retries=0))
        assert answer.status == "Accepted"
        await csms201.wait_for(lambda: ("InvalidSignature", 4) in firmware_statuses(csms201))
    assert firmware_statuses(csms201) == [("Downloading", 4), ("Downloaded", 4),
                                          ("InvalidSignature", 4)]
    assert not marker.exists()
    assert daemon.reset_kind is None

    # Both refusals are in the security log the CSMS can fetch (GetLog SecurityLog, N01).
    with HttpServer() as http:
        answer = await cp.call(call.GetLog(log={"remote_location": http.url("/logs")},
                                           log_type="SecurityLog", request_id=8))
        assert answer.status == "Accepted" and answer.filename
        await csms201.wait_for(lambda: ("Uploaded", 8) in log_statuses(csms201))
        [upload] = http.state.uploads
    assert log_statuses(csms201) == [("Uploading", 8), ("Uploaded", 8)]
    assert upload.file_name == answer.filename
    text = upload.body.decode()
    assert "InvalidFirmwareSigningCertificate" in text
    assert "InvalidFirmwareSignature" in text
    assert "StartupOfTheDevice" in text


async def test_get_log_diagnostics_log_uploads_with_its_request_id(
        csms201: DevCsms, daemons: Starter) -> None:
    _, cp = await daemons()
    with HttpServer() as http:
        answer = await cp.call(call.GetLog(log={"remote_location": http.url("/diag")},
                                           log_type="DiagnosticsLog", request_id=21,
                                           retries=0))
        assert answer.status == "Accepted"
        assert answer.filename.endswith(".tar.gz")
        await csms201.wait_for(lambda: ("Uploaded", 21) in log_statuses(csms201))
        [upload] = http.state.uploads
    assert log_statuses(csms201) == [("Uploading", 21), ("Uploaded", 21)]
    assert upload.file_name == answer.filename
    assert upload.body[:2] == b"\x1f\x8b"  # gzip
    # An unusable location: Rejected, nothing sent.
    bad = await cp.call(call.GetLog(log={"remote_location": "gopher://127.0.0.1/x"},
                                    log_type="DiagnosticsLog", request_id=22))
    assert bad.status == "Rejected"


def serial_hex(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "x")


async def test_certificates_install_list_delete(csms201: DevCsms, daemons: Starter) -> None:
    csms_root = make_root("Example CPO Root CA")
    manufacturer = make_root("Example Manufacturer Root CA")
    _, cp = await daemons()
    assert (await cp.call(call.GetInstalledCertificateIds())).status == "NotFound"
    for kind, root in (("CSMSRootCertificate", csms_root),
                       ("ManufacturerRootCertificate", manufacturer)):
        answer = await cp.call(call.InstallCertificate(certificate_type=kind,
                                                       certificate=pem(root)))
        assert answer.status == "Accepted"
    # A leaf is not a root; ISO 15118 roots have no store here.
    leaf = issue(csms_root, "not a CA")
    assert (await cp.call(call.InstallCertificate(
        certificate_type="CSMSRootCertificate", certificate=pem(leaf)))).status == "Rejected"
    assert (await cp.call(call.InstallCertificate(
        certificate_type="V2GRootCertificate", certificate=pem(csms_root)))).status == "Rejected"

    listed = await cp.call(call.GetInstalledCertificateIds(
        certificate_type=["ManufacturerRootCertificate"]))
    assert listed.status == "Accepted"
    [entry] = listed.certificate_hash_data_chain
    assert entry["certificate_type"] == "ManufacturerRootCertificate"
    hash_data = entry["certificate_hash_data"]
    assert hash_data["serial_number"] == serial_hex(manufacturer.cert)
    # RFC 6960 issuerNameHash: SHA-256 of the issuer name's DER (a root is its own issuer).
    assert hash_data["issuer_name_hash"] == hashlib.sha256(
        manufacturer.cert.subject.public_bytes()).hexdigest()
    every = await cp.call(call.GetInstalledCertificateIds())
    assert sorted(e["certificate_type"] for e in every.certificate_hash_data_chain) == [
        "CSMSRootCertificate", "ManufacturerRootCertificate"]
    entries = await cp.call(call.GetVariables(get_variable_data=[{
        "component": {"name": "SecurityCtrlr"}, "variable": {"name": "CertificateEntries"}}]))
    assert entries.get_variable_result[0]["attribute_value"] == "2"

    assert (await cp.call(call.DeleteCertificate(certificate_hash_data=hash_data))
            ).status == "Accepted"
    assert (await cp.call(call.DeleteCertificate(certificate_hash_data=hash_data))
            ).status == "NotFound"
    [csms_entry] = (await cp.call(call.GetInstalledCertificateIds())).certificate_hash_data_chain
    # The last CSMS root is never deleted (the station could not verify its CSMS).
    assert (await cp.call(call.DeleteCertificate(
        certificate_hash_data=csms_entry["certificate_hash_data"]))).status == "Failed"
    # Every change is a ReconfigurationOfSecurityParameters event pushed to the CSMS.
    await csms201.wait_for(lambda: security_events(csms201).count(
        "ReconfigurationOfSecurityParameters") >= 3)
    assert security_events(csms201)[0] == "StartupOfTheDevice"


async def test_sign_certificate_then_certificate_signed(csms201: DevCsms,
                                                        daemons: Starter) -> None:
    cpo_root = make_root("Example CPO Root CA")
    assert cpo_root.key is not None
    daemon, cp = await daemons()
    assert (await cp.call(call.InstallCertificate(
        certificate_type="CSMSRootCertificate", certificate=pem(cpo_root)))).status == "Accepted"
    trigger = await cp.call(call.TriggerMessage(
        requested_message="SignChargingStationCertificate"))
    assert trigger.status == "Accepted"
    request = (await csms201.wait_for(lambda: csms201.actions("SignCertificate")))[-1]
    assert request["certificateType"] == "ChargingStationCertificate"
    csr = x509.load_pem_x509_csr(request["csr"].encode())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == f"CN={STATION}"

    # A chain for another key is refused (and logged as InvalidChargePointCertificate).
    stranger = issue(cpo_root, STATION)
    assert (await cp.call(call.CertificateSigned(certificate_chain=pem(stranger)))
            ).status == "Rejected"
    leaf = (x509.CertificateBuilder().subject_name(csr.subject)
            .issuer_name(cpo_root.cert.subject).public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - DAY).not_valid_after(NOW + 30 * DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .sign(cpo_root.key, hashes.SHA256()))
    signed = await cp.call(call.CertificateSigned(
        certificate_chain=leaf.public_bytes(serialization.Encoding.PEM).decode(),
        certificate_type="ChargingStationCertificate"))
    assert signed.status == "Accepted"
    adapter: Any = daemon.adapter
    await csms201.wait_for(lambda: security_events(csms201).count(
        "ReconfigurationOfSecurityParameters") >= 2)
    files = adapter.security.charge_point_certificate.tls_files()
    assert files is not None
    current = x509.load_pem_x509_certificate(Path(files.certfile).read_bytes())
    assert current.serial_number == leaf.serial_number


async def test_signed_update_with_a_good_signature_is_installed(
        csms201: DevCsms, daemons: Starter, install: tuple[Path, Path]) -> None:
    _, marker = install
    manufacturer = make_root("Example Manufacturer Root CA")
    signing = issue(manufacturer, "Firmware Signing", key=rsa_key(), eku=CODE_SIGNING)
    assert signing.key is not None
    # RSA PKCS#1 v1.5 over SHA-256 of the image, base64 (L01 "signature").
    signature = base64.b64encode(signing.key.sign(  # type: ignore[call-arg]
        IMAGE, padding.PKCS1v15(), hashes.SHA256())).decode()
    daemon, cp = await daemons()
    assert (await cp.call(call.InstallCertificate(
        certificate_type="ManufacturerRootCertificate", certificate=pem(manufacturer)))
            ).status == "Accepted"
    with HttpServer() as http:
        http.state.files["/signed.bin"] = IMAGE
        answer = await cp.call(call.UpdateFirmware(request_id=9, retries=0, firmware={
            "location": http.url("/signed.bin"), "retrieve_date_time": iso(time.time()),
            "signing_certificate": pem(signing), "signature": signature}))
        assert answer.status == "Accepted"
        await daemon.wait()  # installed, rebooting
    assert marker.read_bytes() == IMAGE
    # Queued before the reboot; the link is still up until the daemon shuts down.
    await csms201.wait_for(lambda: len(firmware_statuses(csms201)) >= 4)
    assert firmware_statuses(csms201)[:4] == [("Downloading", 9), ("Downloaded", 9),
                                              ("SignatureVerified", 9), ("Installing", 9)]
