"""SignedUpdateFirmware end to end (1.6 security whitepaper ed. 3, "Signed firmware update"):
the daemon as ``evse run`` wires it, the ``ocpp`` library's central system on loopback, a
real HTTP server with the image, a real install command writing a marker file, a real
restart on the same state directory, and a manufacturer PKI made with ``cryptography``.

A tampered image, a wrong signature or a signing certificate of another root never reaches
the install command (no marker file)."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from dev_csms import DevCsms
from ocpp.v16 import call

from evse.daemon import Daemon, load_checked_config
from tests.conftest import write_config
from tests.features.servers import HttpServer
from tests.features.test_wired_profiles import install_script, iso, system_table
from tests.security.conftest import Pki
from tests.security.pki import Issued

IMAGE = b"evse signed firmware 10.0 " * 4000
PATH = "/images/evse-10.0.swu"

def sign(signer: Issued, data: bytes) -> str:
    """The manufacturer's signing step: RSA PKCS#1 v1.5 or ECDSA over SHA-256, base64."""
    key = signer.key
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


class Daemons:
    """Daemons on one state directory with the install script; stop + start is a
    restart."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.script, _ = install_script(tmp_path)
        self.running: list[Daemon] = []

    async def start(self, csms: DevCsms) -> tuple[Daemon, Any]:
        """A started daemon connected to ``csms`` (after its BootNotification)."""
        seen = len(csms.actions("BootNotification"))
        config = load_checked_config(str(write_config(
            self.tmp_path, f"ws://127.0.0.1:{csms.port}/", extra=system_table(self.script))))
        daemon = Daemon(config)
        await daemon.start()
        self.running.append(daemon)
        await csms.wait_for(lambda: len(csms.actions("BootNotification")) > seen
                            and "CP-TEST" in csms.stations)
        return daemon, csms.stations["CP-TEST"]

    async def stop(self, daemon: Daemon, csms: DevCsms) -> None:
        self.running.remove(daemon)
        await daemon.shutdown()
        await csms.wait_for(lambda: "CP-TEST" not in csms.stations)


@pytest.fixture
async def daemons(tmp_path: Path) -> AsyncIterator[Daemons]:
    started = Daemons(tmp_path)
    yield started
    for daemon in started.running:
        await daemon.shutdown()


def signed_statuses(csms: DevCsms) -> list[tuple[str, int | None]]:
    return [(p["status"], p.get("requestId"))
            for p in csms.actions("SignedFirmwareStatusNotification")]


def security_events(csms: DevCsms) -> list[str]:
    """The security events sent to the CSMS (the whitepaper's critical ones)."""
    return [p["type"] for p in csms.actions("SecurityEventNotification")]


def security_log(daemon: Daemon) -> list[str]:
    """The station's local security log (every event, sent or not)."""
    adapter: Any = daemon.adapter
    return [entry.type.value for entry in adapter.security.events.log.entries()]


async def install_manufacturer_root(cp: Any, pki: Pki) -> None:
    answer = await cp.call(call.InstallCertificate(
        certificate_type="ManufacturerRootCertificate",
        certificate=pki.manufacturer_root.cert_pem.decode()))
    assert answer.status == "Accepted"


def signed_update(request_id: int, location: str, signer: Issued, signature: str,
                  retrieve_at_s: float | None = None) -> call.SignedUpdateFirmware:
    return call.SignedUpdateFirmware(
        request_id=request_id, retries=0, retry_interval=1,
        firmware={"location": location,
                  # "now" a second ago: the station's clock may lag the test's by ms
                  "retrieve_date_time": iso(time.time() - 1 if retrieve_at_s is None
                                            else retrieve_at_s),
                  "signing_certificate": signer.cert_pem.decode(),
                  "signature": signature})


async def test_valid_signed_image_installs_and_reports_every_step(
        csms: DevCsms, daemons: Daemons, tmp_path: Path, pki: Pki) -> None:
    marker = tmp_path / "installed.img"
    daemon, cp = await daemons.start(csms)
    await install_manufacturer_root(cp, pki)
    with HttpServer() as http:
        http.state.files[PATH] = IMAGE
        answer = await cp.call(signed_update(
            41, http.url(PATH), pki.signing_rsa, sign(pki.signing_rsa, IMAGE)))
        assert answer.status == "Accepted"
        await daemon.wait()  # the reboot after the install: the daemon ends its run
    assert daemon.reset_kind == "Hard"
    assert marker.read_bytes() == IMAGE  # the install command got the verified image
    assert "FirmwareUpdated" not in security_events(csms)  # only after the restart

    await daemons.stop(daemon, csms)
    daemon, cp = await daemons.start(csms)
    await csms.wait_for(lambda: ("Installed", 41) in signed_statuses(csms))
    assert signed_statuses(csms) == [
        ("Downloading", 41), ("Downloaded", 41), ("SignatureVerified", 41),
        ("Installing", 41), ("InstallRebooting", 41), ("Installed", 41)]
    assert csms.actions("FirmwareStatusNotification") == []  # a signed update is not plain
    await csms.wait_for(lambda: "FirmwareUpdated" in security_events(csms))
    assert security_events(csms).count("FirmwareUpdated") == 1

    # Afterwards ExtendedTriggerMessage(FirmwareStatusNotification) says Idle, no requestId.
    answer = await cp.call(call.ExtendedTriggerMessage(
        requested_message="FirmwareStatusNotification"))
    assert answer.status == "Accepted"
    await csms.wait_for(lambda: len(signed_statuses(csms)) == 7)
    assert signed_statuses(csms)[-1] == ("Idle", None)
    assert security_events(csms).count("FirmwareUpdated") == 1


@pytest.mark.parametrize("tamper", ["bit_flipped_image", "wrong_signature"])
async def test_tampered_image_or_wrong_signature_never_reaches_the_install_command(
        csms: DevCsms, daemons: Daemons, tmp_path: Path, pki: Pki, tamper: str) -> None:
    marker = tmp_path / "installed.img"
    daemon, cp = await daemons.start(csms)
    await install_manufacturer_root(cp, pki)
    served, signature = IMAGE, sign(pki.signing_rsa, IMAGE)
    if tamper == "bit_flipped_image":
        flipped = bytearray(IMAGE)
        flipped[len(IMAGE) // 2] ^= 0x01
        served = bytes(flipped)
    else:  # a valid signature, but by another key than the signing certificate's
        signature = sign(pki.signing_ec, IMAGE)
    with HttpServer() as http:
        http.state.files[PATH] = served
        answer = await cp.call(signed_update(7, http.url(PATH), pki.signing_rsa, signature))
        assert answer.status == "Accepted"
        await csms.wait_for(lambda: ("InvalidSignature", 7) in signed_statuses(csms))
    assert signed_statuses(csms) == [
        ("Downloading", 7), ("Downloaded", 7), ("InvalidSignature", 7)]
    assert "InvalidFirmwareSignature" in security_log(daemon)  # not critical: logged only
    assert not marker.exists()
    assert daemon.reset_kind is None  # no reboot either


async def test_signing_certificate_of_another_root_is_refused_before_any_download(
        csms: DevCsms, daemons: Daemons, tmp_path: Path, pki: Pki) -> None:
    marker = tmp_path / "installed.img"
    daemon, cp = await daemons.start(csms)
    await install_manufacturer_root(cp, pki)
    with HttpServer() as http:
        http.state.files[PATH] = IMAGE
        # A consistent certificate + signature pair, but not the manufacturer's.
        answer = await cp.call(signed_update(
            9, http.url(PATH), pki.foreign_signing, sign(pki.foreign_signing, IMAGE)))
        assert answer.status == "InvalidCertificate"
        assert "InvalidFirmwareSigningCertificate" in security_log(daemon)
        assert http.state.requests == []
    assert signed_statuses(csms) == []
    assert not marker.exists()
    assert daemon.firmware is not None and not daemon.firmware.busy


async def test_without_a_manufacturer_root_no_signing_certificate_is_accepted(
        csms: DevCsms, daemons: Daemons, pki: Pki) -> None:
    _, cp = await daemons.start(csms)
    answer = await cp.call(signed_update(
        3, "http://127.0.0.1:1/x.swu", pki.signing_rsa, sign(pki.signing_rsa, IMAGE)))
    assert answer.status == "InvalidCertificate"


async def test_scheduled_update_is_triggered_and_replaced(
        csms: DevCsms, daemons: Daemons, tmp_path: Path, pki: Pki) -> None:
    marker = tmp_path / "installed.img"
    daemon, cp = await daemons.start(csms)
    await install_manufacturer_root(cp, pki)
    signature = sign(pki.signing_ec, IMAGE)
    with HttpServer() as http:
        http.state.files[PATH] = IMAGE
        answer = await cp.call(signed_update(
            20, http.url(PATH), pki.signing_ec, signature, retrieve_at_s=time.time() + 3600))
        assert answer.status == "Accepted"
        await csms.wait_for(lambda: ("DownloadScheduled", 20) in signed_statuses(csms))

        # The current signed status, with its requestId, on ExtendedTriggerMessage.
        answer = await cp.call(call.ExtendedTriggerMessage(
            requested_message="FirmwareStatusNotification"))
        assert answer.status == "Accepted"
        await csms.wait_for(lambda: len(signed_statuses(csms)) == 2)
        assert signed_statuses(csms)[-1] == ("DownloadScheduled", 20)

        # A new request replaces the waiting one (AcceptedCanceled); its image is tampered.
        http.state.files["/tampered.swu"] = IMAGE + b"\x00"
        answer = await cp.call(signed_update(21, http.url("/tampered.swu"), pki.signing_ec,
                                             signature))
        assert answer.status == "AcceptedCanceled"
        await csms.wait_for(lambda: ("InvalidSignature", 21) in signed_statuses(csms))
        assert http.state.requests == ["GET /tampered.swu"]  # the replaced one never ran
    assert signed_statuses(csms)[2:] == [
        ("Downloading", 21), ("Downloaded", 21), ("InvalidSignature", 21)]
    assert not marker.exists()
    assert daemon.reset_kind is None


async def test_a_new_request_is_rejected_while_the_image_installs(
        csms: DevCsms, daemons: Daemons, tmp_path: Path, pki: Pki) -> None:
    marker, release = tmp_path / "installed.img", tmp_path / "release"
    # An install command that takes until the test releases it (a real process).
    daemons.script.write_text(f'#!/bin/sh\nwhile [ ! -e "{release}" ]; do sleep 0.02; done\n'
                              f'cp "$1" "{marker}"\n')
    daemon, cp = await daemons.start(csms)
    await install_manufacturer_root(cp, pki)
    with HttpServer() as http:
        http.state.files[PATH] = IMAGE
        signature = sign(pki.signing_rsa, IMAGE)
        answer = await cp.call(signed_update(30, http.url(PATH), pki.signing_rsa, signature))
        assert answer.status == "Accepted"
        await csms.wait_for(lambda: ("Installing", 30) in signed_statuses(csms))
        answer = await cp.call(signed_update(31, http.url(PATH), pki.signing_rsa, signature))
        assert answer.status == "Rejected"
        release.touch()
        await daemon.wait()  # the first update goes on: installed, reboot
    assert marker.read_bytes() == IMAGE
    assert [request_id for _, request_id in signed_statuses(csms)] == [30] * len(
        signed_statuses(csms))
