"""The whole station (daemon + simulator) on security profiles 1–3 against the ``ocpp``
library's central system (the dev CSMS) on loopback over real TLS: sessions, refused
connects and their security events, a failed SecurityProfile raise, the charge point
certificate life cycle, and no secret in any log line or status output."""

from __future__ import annotations

import base64
import json
import logging
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from dev_csms import DevCsms
from ocpp.v16 import call

from evse.daemon import Daemon, load_checked_config
from tests.conftest import write_config
from tests.security.conftest import Pki
from tests.security.pki import CLIENT_AUTH, DAY, NOW, issue, make_root
from tests.security.tls_csms import server_context

STATION = "CP-TEST"
KEY = "s3cr3t-Authorization-Key-0042"


def basic(key: str) -> str:
    # RFC 7617, written independently of the code under test.
    return "Basic " + base64.b64encode(f"{STATION}:{key}".encode()).decode()


def secret_file(path: Path, text: str) -> Path:
    path.touch(mode=0o600)
    path.write_text(text + "\n")
    return path


class Station:
    """Writes the config for one profile and starts / stops the daemon."""

    def __init__(self, tmp: Path, pki: Pki) -> None:
        self.tmp = tmp
        self.pki = pki
        self.daemons: list[Daemon] = []
        (tmp / "roots.pem").write_bytes(pki.root.cert_pem)
        secret_file(tmp / "authorization_key", KEY)
        client = issue(pki.root, STATION, eku=CLIENT_AUTH)
        client.write(tmp, "client")

    async def start(self, url: str, profile: int) -> Daemon:
        extra = ('\n[security]\nauthorization_key_file = "authorization_key"\n'
                 'csms_root_ca = "roots.pem"\nclient_cert = "client.pem"\n'
                 'client_key = "client.key"\n')
        path = write_config(self.tmp, url, ocpp_keys=f"SecurityProfile = {profile}")
        path.write_text(path.read_text() + extra)
        daemon = Daemon(load_checked_config(str(path)))
        await daemon.start()
        self.daemons.append(daemon)
        return daemon

    async def stop(self) -> None:
        for daemon in self.daemons:
            await daemon.shutdown()


@pytest.fixture
async def station(tmp_path: Path, pki: Pki) -> Any:
    s = Station(tmp_path, pki)
    yield s
    await s.stop()


async def start_csms(pki: Pki, tmp: Path, *, tls: bool, client_cert: bool = False,
                     authorization: str | None = None, port: int = 0,
                     server: Any = None) -> DevCsms:
    ctx = None
    if tls:
        ctx = server_context(server or pki.server, tmp,
                             client_root=pki.root if client_cert else None)
    csms = DevCsms(port=port, accept_tags=("DEMO01",), ssl_context=ctx,
                   authorization=authorization)
    await csms.start()
    return csms


def events(csms: DevCsms) -> list[str]:
    return [p["type"] for p in csms.actions("SecurityEventNotification")]


async def card_session(csms: DevCsms, daemon: Daemon) -> None:
    sim = daemon.board.simulator  # type: ignore[union-attr]
    assert sim is not None
    sim.plug(1, 16.0, 3)
    sim.swipe("DEMO01")
    await csms.wait_for(lambda: csms.actions("StartTransaction"))
    sim.unplug(1)
    stop = (await csms.wait_for(lambda: csms.actions("StopTransaction")))[0]
    assert stop["reason"] == "EVDisconnected"


def peer_certificate(csms: DevCsms) -> x509.Certificate:
    ws: Any = csms.stations[STATION]._connection
    der = ws.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der)


async def sign_station_certificate(csms: DevCsms, cp: Any, pki: Pki) -> x509.Certificate:
    """The CSMS side of SignCertificate → CertificateSigned (Accepted): its CA (the CPO
    root) signs the station's CSR."""
    from cryptography.hazmat.primitives import serialization

    csr_pem = (await csms.wait_for(lambda: csms.actions("SignCertificate")))[-1]["csr"]
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == f"CN={STATION}"
    assert pki.root.key is not None
    leaf = (x509.CertificateBuilder().subject_name(csr.subject)
            .issuer_name(pki.root.cert.subject).public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - DAY).not_valid_after(NOW + 30 * DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .sign(pki.root.key, hashes.SHA256()))
    pem = leaf.public_bytes(serialization.Encoding.PEM).decode()
    signed = await cp.call(call.CertificateSigned(certificate_chain=pem))
    assert signed.status == "Accepted"
    return leaf


@pytest.mark.parametrize("profile,scheme", [(0, "wss"), (1, "ws"), (2, "wss"), (3, "wss")])
async def test_profiles_boot_and_charge(profile: int, scheme: str, tmp_path: Path, pki: Pki,
                                        station: Station) -> None:
    csms = await start_csms(pki, tmp_path, tls=scheme == "wss", client_cert=profile == 3,
                            authorization=basic(KEY) if profile in (1, 2) else None)
    try:
        daemon = await station.start(f"{scheme}://127.0.0.1:{csms.port}/", profile)
        await csms.wait_for(lambda: csms.actions("BootNotification"))
        assert "StartupOfTheDevice" in await csms.wait_for(lambda: events(csms))
        await card_session(csms, daemon)
        if profile == 3:
            assert peer_certificate(csms).subject.rfc4514_string() == f"CN={STATION}"
        status = await daemon._handlers()["status"]({})
        assert status["csms"]["security_profile"] == profile
    finally:
        await csms.stop()


@pytest.mark.parametrize("failure,event", [
    ("password", "FailedToAuthenticateAtCentralSystem"),
    ("untrusted", "InvalidCentralSystemCertificate"),
    ("expired", "InvalidCentralSystemCertificate"),
])
async def test_refused_connects_are_reported_once_the_link_works(
        failure: str, event: str, tmp_path: Path, pki: Pki, station: Station) -> None:
    bad_server = {"untrusted": pki.untrusted_server, "expired": pki.expired_server}.get(failure)
    csms = await start_csms(pki, tmp_path, tls=True, server=bad_server,
                            authorization=basic("a-different-key-000001" if failure == "password"
                                                else KEY))
    port = csms.port
    daemon = await station.start(f"wss://127.0.0.1:{port}/", 2)
    adapter: Any = daemon.adapter
    log = adapter.security.events.log
    # Several refused attempts: each is logged locally, the station stays up.
    for _ in range(200):
        if len([e for e in log.entries() if e.type.v16_name == event]) >= 2:
            break
        await _sleep(0.05)
    assert len([e for e in log.entries() if e.type.v16_name == event]) >= 2
    assert not adapter.online and csms.actions("BootNotification") == []
    status = await daemon._handlers()["status"]({})  # the station is up and answers
    assert status["csms"]["state"] != "accepted" and len(status["connectors"]) == 1
    await csms.stop()
    good = await start_csms(pki, tmp_path, tls=True, authorization=basic(KEY), port=port)
    try:
        await good.wait_for(lambda: event in events(good))
        await good.wait_for(lambda: "StartupOfTheDevice" in events(good))
        # Queued once per failure streak, however many attempts failed.
        assert events(good).count(event) == 1
        assert adapter.online
    finally:
        await good.stop()


async def _sleep(s: float) -> None:
    import asyncio
    await asyncio.sleep(s)


async def test_a_failed_profile_raise_falls_back(tmp_path: Path, pki: Pki,
                                                 station: Station) -> None:
    # A plain ws:// CSMS: the raise to 2 moves the link to wss:// on the same port, which
    # cannot work; the station goes back to profile 1 and says so.
    csms = await start_csms(pki, tmp_path, tls=False, authorization=basic(KEY))
    try:
        daemon = await station.start(f"ws://127.0.0.1:{csms.port}/", 1)
        await csms.wait_for(lambda: STATION in csms.stations and csms.actions("StatusNotification"))
        cp = csms.stations[STATION]
        lower = await cp.call(call.ChangeConfiguration(key="SecurityProfile", value="0"))
        assert lower.status == "Rejected"
        result = await cp.call(call.ChangeConfiguration(key="SecurityProfile", value="2"))
        assert result.status == "Accepted"
        await csms.wait_for(lambda: len(csms.actions("BootNotification")) >= 2)
        await csms.wait_for(lambda: "ReconfigurationOfSecurityParameters" in events(csms))
        cp = csms.stations[STATION]
        conf = await cp.call(call.GetConfiguration(key=["SecurityProfile"]))
        assert conf.configuration_key[0]["value"] == "1"
        status = await daemon._handlers()["status"]({})
        assert status["csms"]["security_profile"] == 1
    finally:
        await csms.stop()


async def test_certificate_life_cycle(tmp_path: Path, pki: Pki, station: Station) -> None:
    csms = await start_csms(pki, tmp_path, tls=True, client_cert=True)
    try:
        await station.start(f"wss://127.0.0.1:{csms.port}/", 3)
        await csms.wait_for(lambda: STATION in csms.stations and csms.actions("StatusNotification"))
        old_serial = peer_certificate(csms).serial_number
        cp = csms.stations[STATION]
        trigger = await cp.call(call.ExtendedTriggerMessage(
            requested_message="SignChargePointCertificate"))
        assert trigger.status == "Accepted"
        leaf = await sign_station_certificate(csms, cp, pki)
        # The station reconnects with the new certificate.
        await csms.wait_for(lambda: STATION in csms.stations
                            and csms.stations[STATION] is not cp
                            and peer_certificate(csms).serial_number == leaf.serial_number)
        assert leaf.serial_number != old_serial
        cp = csms.stations[STATION]
        ids = await cp.call(call.GetInstalledCertificateIds(
            certificate_type="CentralSystemRootCertificate"))
        assert ids.status == "Accepted" and len(ids.certificate_hash_data) == 1
        assert ids.certificate_hash_data[0]["serial_number"] == \
            format(pki.root.cert.serial_number, "x")
        # The last CSMS root is never deleted.
        last = await cp.call(call.DeleteCertificate(
            certificate_hash_data=ids.certificate_hash_data[0]))
        assert last.status == "Failed"
        manufacturer = await cp.call(call.InstallCertificate(
            certificate_type="ManufacturerRootCertificate",
            certificate=pki.manufacturer_root.cert_pem.decode()))
        assert manufacturer.status == "Accepted"
        m_ids = await cp.call(call.GetInstalledCertificateIds(
            certificate_type="ManufacturerRootCertificate"))
        assert m_ids.status == "Accepted"
        deleted = await cp.call(call.DeleteCertificate(
            certificate_hash_data=m_ids.certificate_hash_data[0]))
        assert deleted.status == "Accepted"
        gone = await cp.call(call.GetInstalledCertificateIds(
            certificate_type="ManufacturerRootCertificate"))
        assert gone.status == "NotFound"
        # A chain from another root is refused and is a security event (logged).
        stranger_root = make_root("Stranger")
        bad = issue(stranger_root, STATION, eku=CLIENT_AUTH)
        refused = await cp.call(call.CertificateSigned(certificate_chain=bad.cert_pem.decode()))
        assert refused.status == "Rejected"
    finally:
        await csms.stop()


async def test_no_secret_in_logs_status_or_get_configuration(
        tmp_path: Path, pki: Pki, station: Station, caplog: pytest.LogCaptureFixture
        ) -> None:
    new_key = "brand-new-Key-from-the-CSMS-77"
    caplog.set_level(logging.DEBUG)
    # As the daemon configures it: the ocpp library's own frame lines (INFO) are dropped
    # (they would also hold the CSMS side's frames of this in-process test).
    ocpp_logger = logging.getLogger("ocpp")
    level = ocpp_logger.level
    ocpp_logger.setLevel(logging.WARNING)
    csms = await start_csms(pki, tmp_path, tls=True, authorization=basic(KEY))
    try:
        daemon = await station.start(f"wss://127.0.0.1:{csms.port}/", 2)
        await csms.wait_for(lambda: STATION in csms.stations and csms.actions("StatusNotification"))
        csms.authorization = basic(new_key)
        cp = csms.stations[STATION]
        result = await cp.call(call.ChangeConfiguration(key="AuthorizationKey", value=new_key))
        assert result.status == "Accepted"
        # The station reconnects with the new key (the CSMS accepts only that one now).
        await csms.wait_for(lambda: len(csms.actions("BootNotification")) >= 2)
        cp = csms.stations[STATION]
        conf = await cp.call(call.GetConfiguration(key=["AuthorizationKey"]))
        assert conf.configuration_key == [{"key": "AuthorizationKey", "readonly": False}]
        everything = await cp.call(call.GetConfiguration())
        status = await daemon._handlers()["status"]({})
        stored = tmp_path / "state" / "authorization_key"
        assert stored.stat().st_mode & 0o777 == 0o600
    finally:
        ocpp_logger.setLevel(level)
        await csms.stop()
    secrets = [KEY, new_key, basic(KEY).split()[1], basic(new_key).split()[1]]
    texts = {"status": json.dumps(status),
             "GetConfiguration": json.dumps(everything.configuration_key)}
    for record in caplog.records:
        if record.name.startswith(("dev_csms", "websockets.server")):
            continue  # the in-process CSMS's own log (the CSMS knows the key)
        texts[f"log {record.name}"] = texts.get(f"log {record.name}", "") + \
            record.getMessage() + "\n"
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"secret in {where}"
    assert ssl.TLSVersion  # the link was TLS throughout (profile 2)


async def test_get_log_uploads_the_security_log_over_http(tmp_path: Path, pki: Pki,
                                                          station: Station) -> None:
    import http.server
    import threading

    received: dict[str, bytes] = {}

    class Post(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received[self.path] = self.rfile.read(length)
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Post)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    csms = await start_csms(pki, tmp_path, tls=True, authorization=basic(KEY))
    try:
        await station.start(f"wss://127.0.0.1:{csms.port}/", 2)
        await csms.wait_for(lambda: STATION in csms.stations and csms.actions("StatusNotification"))
        cp = csms.stations[STATION]
        url = f"http://127.0.0.1:{server.server_address[1]}/logs/"
        diag = await cp.call(call.GetLog(log_type="DiagnosticsLog", request_id=1,
                                         log={"remote_location": url}))
        assert diag.status == "Rejected"
        answer = await cp.call(call.GetLog(log_type="SecurityLog", request_id=7,
                                           log={"remote_location": url}))
        assert answer.status == "Accepted" and answer.filename
        statuses = await csms.wait_for(lambda: [
            p["status"] for p in csms.actions("LogStatusNotification")
            if p.get("requestId") == 7 and p["status"] == "Uploaded"]
            and [p["status"] for p in csms.actions("LogStatusNotification")])
        assert statuses == ["Uploading", "Uploaded"]
        # multipart/form-data POST to the location, as for GetDiagnostics
        body = received["/logs/"].decode()
        assert f'filename="{answer.filename}"' in body
        assert "StartupOfTheDevice" in body
        trigger = await cp.call(call.ExtendedTriggerMessage(
            requested_message="LogStatusNotification"))
        assert trigger.status == "Accepted"
        await csms.wait_for(lambda: len(csms.actions("LogStatusNotification")) == 3)
        assert csms.actions("LogStatusNotification")[-1]["status"] == "Idle"
    finally:
        await csms.stop()
        server.shutdown()
        server.server_close()


def test_security_log_migration_matches_the_security_package(tmp_path: Path) -> None:
    import sqlite3

    from evse.state_db import open_state_db
    from ocpp_client.security.security_log import create_security_log_table

    migrated = open_state_db(tmp_path / "a")
    created = sqlite3.connect(tmp_path / "b.db")
    create_security_log_table(created)

    def schema(db: sqlite3.Connection) -> list[Any]:
        return db.execute("PRAGMA table_info(security_log)").fetchall()

    assert schema(migrated) == schema(created) != []
    migrated.close()
    created.close()


def test_config_check_names_a_url_that_does_not_suit_the_profile(tmp_path: Path) -> None:
    from evse.config import ConfigError

    path = write_config(tmp_path, "ws://127.0.0.1:9/", ocpp_keys="SecurityProfile = 2")
    with pytest.raises(ConfigError) as err:
        load_checked_config(str(path))
    assert any("SecurityProfile 2 uses TLS; expected a wss:// URL" in e
               for e in err.value.errors)
    path = write_config(tmp_path, "ws://127.0.0.1:9/",
                        ocpp_keys='AuthorizationKey = "0123456789abcdefXYZ"')
    with pytest.raises(ConfigError) as err:
        load_checked_config(str(path))
    assert "0123456789abcdefXYZ" not in "\n".join(err.value.errors)
    assert any("authorization_key_file" in e for e in err.value.errors)


async def test_a_profile_raise_that_works_is_kept(tmp_path: Path, pki: Pki,
                                                  station: Station) -> None:
    # A CSMS that accepts either credential (client certificate optional, no Basic auth
    # check): the raise from 2 to 3 connects with the client certificate and is kept.
    ctx = server_context(pki.server, tmp_path, client_root=pki.root)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    csms = DevCsms(port=0, accept_tags=("DEMO01",), ssl_context=ctx)
    await csms.start()
    try:
        daemon = await station.start(f"wss://127.0.0.1:{csms.port}/", 2)
        await csms.wait_for(lambda: STATION in csms.stations and csms.actions("StatusNotification"))
        cp = csms.stations[STATION]
        assert cp._connection.transport.get_extra_info("peercert") is None  # type: ignore[attr-defined]
        # The usual way up: a certificate through SignCertificate at profile 2, then 3.
        trigger = await cp.call(call.ExtendedTriggerMessage(
            requested_message="SignChargePointCertificate"))
        assert trigger.status == "Accepted"
        leaf = await sign_station_certificate(csms, cp, pki)
        result = await cp.call(call.ChangeConfiguration(key="SecurityProfile", value="3"))
        assert result.status == "Accepted"
        await csms.wait_for(lambda: len(csms.actions("BootNotification")) >= 2)
        assert peer_certificate(csms).serial_number == leaf.serial_number
        await csms.wait_for(lambda: "ReconfigurationOfSecurityParameters" in events(csms))
        conf = await csms.stations[STATION].call(call.GetConfiguration(key=["SecurityProfile"]))
        assert conf.configuration_key[0]["value"] == "3"
        adapter: Any = daemon.adapter
        assert adapter.security.switch.active == 3
    finally:
        await csms.stop()


async def test_refused_frames_reset_and_clock_are_security_events(
        tmp_path: Path, pki: Pki, station: Station) -> None:
    csms = await start_csms(pki, tmp_path, tls=True, authorization=basic(KEY))
    try:
        daemon = await station.start(f"wss://127.0.0.1:{csms.port}/", 2)
        await csms.wait_for(lambda: STATION in csms.stations and csms.actions("StatusNotification"))
        adapter: Any = daemon.adapter
        log = adapter.security.events.log

        def logged(kind: str) -> int:
            return len([e for e in log.entries() if e.type.v16_name == kind])

        ws: Any = csms.stations[STATION]._connection
        for _ in range(3):
            await ws.send("this is not JSON")
        await csms.wait_for(lambda: len([f for f in csms.frames if f.direction == "in"
                                         and f.raw.startswith("[4,")]) >= 3)
        assert logged("InvalidMessages") == 1  # rate-limited: one for the burst
        # A large clock correction (a CSMS time two hours ahead).
        adapter.security.clock_synchronized(7200.0)
        adapter.security.clock_synchronized(5.0)  # drift, not an event
        await csms.wait_for(lambda: "SettingSystemTime" in events(csms))
        assert logged("SettingSystemTime") == 1
        reset = await csms.stations[STATION].call(call.Reset(type="Soft"))
        assert reset.status == "Accepted"
        await csms.wait_for(lambda: "ResetOrReboot" in events(csms))
    finally:
        await csms.stop()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
async def test_a_csms_offering_only_tls11_is_refused_and_reported(
        tmp_path: Path, pki: Pki, station: Station) -> None:
    from tests.security.tls_csms import blocking_tls_server

    old = server_context(pki.server, tmp_path, max_version=ssl.TLSVersion.TLSv1_1)
    with blocking_tls_server(old) as port:
        daemon = await station.start(f"wss://127.0.0.1:{port}/", 2)
        adapter: Any = daemon.adapter
        for _ in range(200):
            if any(e.type.v16_name == "InvalidTLSVersion"
                   for e in adapter.security.events.log.entries()):
                break
            await _sleep(0.05)
        assert any(e.type.v16_name == "InvalidTLSVersion"
                   for e in adapter.security.events.log.entries())
        assert not adapter.online
    csms = await start_csms(pki, tmp_path, tls=True, authorization=basic(KEY), port=port)
    try:
        await csms.wait_for(lambda: "InvalidTLSVersion" in events(csms))
        assert events(csms).count("InvalidTLSVersion") == 1
    finally:
        await csms.stop()


async def test_the_firmware_verifier_port_uses_the_installed_manufacturer_root(
        tmp_path: Path, pki: Pki, station: Station) -> None:
    """``Security16.verify_firmware`` is the firmware engine's ``verify`` port: the
    ManufacturerRootCertificate the CSMS installed decides; refusals are security events."""
    from evse.firmware_update import FirmwareUpdateRequest
    from tests.security.test_firmware_signature import sign

    image = tmp_path / "evse-2.0.swu"
    image.write_bytes(b"firmware image " * 1000)
    csms = await start_csms(pki, tmp_path, tls=True, authorization=basic(KEY))
    try:
        daemon = await station.start(f"wss://127.0.0.1:{csms.port}/", 2)
        await csms.wait_for(lambda: STATION in csms.stations and csms.actions("StatusNotification"))
        security: Any = daemon.adapter.security  # type: ignore[union-attr]

        def request(signer: Any, signature: str) -> FirmwareUpdateRequest:
            return FirmwareUpdateRequest("http://127.0.0.1/fw.swu", 0.0, 0, 0.0, request_id=1,
                                         signature=signature,
                                         signing_certificate=signer.cert_pem.decode())

        good = request(pki.signing_rsa, sign(pki.signing_rsa, image.read_bytes()))
        # No ManufacturerRootCertificate installed yet: nothing is trusted.
        assert not await security.verify_firmware(image, good)
        installed = await csms.stations[STATION].call(call.InstallCertificate(
            certificate_type="ManufacturerRootCertificate",
            certificate=pki.manufacturer_root.cert_pem.decode()))
        assert installed.status == "Accepted"
        assert await security.verify_firmware(image, good)
        ec_good = request(pki.signing_ec, sign(pki.signing_ec, image.read_bytes()))
        assert await security.verify_firmware(image, ec_good)
        foreign = request(pki.foreign_signing, sign(pki.foreign_signing, image.read_bytes()))
        assert not await security.verify_firmware(image, foreign)
        tampered = tmp_path / "tampered.swu"
        data = bytearray(image.read_bytes())
        data[100] ^= 0x01
        tampered.write_bytes(bytes(data))
        assert not await security.verify_firmware(tampered, good)
        kinds = [e.type.v16_name for e in security.events.log.entries()]
        assert kinds.count("InvalidFirmwareSigningCertificate") == 2
        assert kinds.count("InvalidFirmwareSignature") == 1
    finally:
        await csms.stop()
