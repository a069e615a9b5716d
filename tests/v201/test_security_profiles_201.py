"""Security profile 3 on the OCPP 2.0.1 link (A00, A02): the daemon with ``[ocpp] version =
"2.0.1"`` and SecurityCtrlr.SecurityProfile 3 against the ``ocpp`` library's 2.0.1 central
system over real TLS (server certificate, client certificate required) on loopback; the
charging station certificate renewed with SignCertificate → CertificateSigned and used at
the next connect."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from dev_csms import DevCsms
from ocpp.v201 import call

from evse.config import ConfigError
from evse.daemon import Daemon, load_checked_config
from tests.security.pki import CLIENT_AUTH, DAY, NOW, SERVER_AUTH, issue, make_root
from tests.security.tls_csms import server_context
from tests.v201.rig import write_config_201

STATION = "CP-201"


def peer_serial(csms: DevCsms) -> int:
    ws: Any = csms.stations[STATION]._connection
    der = ws.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).serial_number


@pytest.fixture
async def tls_csms(tmp_path: Path) -> AsyncIterator[tuple[DevCsms, Any]]:
    root = make_root("Example CPO Root CA")
    server = issue(root, "csms.example", ip="127.0.0.1", eku=SERVER_AUTH)
    csms = DevCsms(port=0, version="2.0.1",
                   ssl_context=server_context(server, tmp_path, client_root=root))
    await csms.start()
    yield csms, root
    await csms.stop()


async def test_profile_3_certificate_renewed_and_used_at_the_next_connect(
        tmp_path: Path, tls_csms: tuple[DevCsms, Any]) -> None:
    csms, root = tls_csms
    (tmp_path / "roots.pem").write_bytes(root.cert_pem)
    commissioning = issue(root, STATION, eku=CLIENT_AUTH)
    commissioning.write(tmp_path, "client")
    path = write_config_201(tmp_path, f"wss://127.0.0.1:{csms.port}/",
                            variables='"SecurityCtrlr.SecurityProfile" = 3')
    path.write_text(path.read_text() + '\n[security]\ncsms_root_ca = "roots.pem"\n'
                    'client_cert = "client.pem"\nclient_key = "client.key"\n')
    daemon = Daemon(load_checked_config(str(path)))
    await daemon.start()
    try:
        await csms.wait_for(lambda: STATION in csms.stations
                            and csms.actions("StatusNotification"))
        assert peer_serial(csms) == commissioning.cert.serial_number
        cp = csms.stations[STATION]
        got = await cp.call(call.GetVariables(get_variable_data=[{
            "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "SecurityProfile"}}]))
        assert got.get_variable_result[0]["attribute_value"] == "3"

        assert (await cp.call(call.TriggerMessage(
            requested_message="SignChargingStationCertificate"))).status == "Accepted"
        csr_pem = (await csms.wait_for(lambda: csms.actions("SignCertificate")))[-1]["csr"]
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        assert root.key is not None
        leaf = (x509.CertificateBuilder().subject_name(csr.subject)
                .issuer_name(root.cert.subject).public_key(csr.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(NOW - DAY).not_valid_after(NOW + 30 * DAY)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                .sign(root.key, hashes.SHA256()))
        boots = len(csms.actions("BootNotification"))
        signed = await cp.call(call.CertificateSigned(
            certificate_chain=leaf.public_bytes(serialization.Encoding.PEM).decode(),
            certificate_type="ChargingStationCertificate"))
        assert signed.status == "Accepted"
        # A reconnect right after the answer, presenting the new certificate.
        await csms.wait_for(lambda: len(csms.actions("BootNotification")) > boots
                            and STATION in csms.stations)
        assert peer_serial(csms) == leaf.serial_number
    finally:
        await daemon.shutdown()


def test_config_check_refuses_a_url_the_profile_cannot_use(tmp_path: Path) -> None:
    path = write_config_201(tmp_path, "ws://127.0.0.1:9/",
                            variables='"SecurityCtrlr.SecurityProfile" = 3')
    with pytest.raises(ConfigError, match="SecurityProfile 3 uses TLS"):
        load_checked_config(str(path))
    write_config_201(tmp_path, "ws://127.0.0.1:9/",
                     variables='"SecurityCtrlr.SecurityProfile" = 1')
    load_checked_config(str(path))  # Basic auth over ws:// is profile 1


def basic(key: str) -> str:
    # RFC 7617, written independently of the code under test.
    return "Basic " + base64.b64encode(f"{STATION}:{key}".encode()).decode()


async def test_profile_1_basic_auth_password_changed_by_set_variables(
        tmp_path: Path) -> None:
    old, new = "old-Password-0001-abcd", "new-Password-0002-wxyz"
    csms = DevCsms(port=0, version="2.0.1", authorization=basic(old))
    await csms.start()
    key_file = tmp_path / "authorization_key"
    key_file.touch(mode=0o600)
    key_file.write_text(old + "\n")
    path = write_config_201(tmp_path, f"ws://127.0.0.1:{csms.port}/",
                            variables='"SecurityCtrlr.SecurityProfile" = 1')
    path.write_text(path.read_text() + '\n[security]\nauthorization_key_file = '
                    '"authorization_key"\n')
    daemon = Daemon(load_checked_config(str(path)))
    await daemon.start()
    try:
        await csms.wait_for(lambda: STATION in csms.stations
                            and csms.actions("StatusNotification"))
        cp = csms.stations[STATION]
        boots = len(csms.actions("BootNotification"))
        csms.authorization = basic(new)  # the CSMS expects the new one from now on
        result = await cp.call(call.SetVariables(set_variable_data=[{
            "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "BasicAuthPassword"}, "attribute_value": new}]))
        assert result.set_variable_result[0]["attribute_status"] == "Accepted"
        await csms.wait_for(lambda: len(csms.actions("BootNotification")) > boots
                            and STATION in csms.stations)
        cp = csms.stations[STATION]
        got = await cp.call(call.GetVariables(get_variable_data=[{
            "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "BasicAuthPassword"}}]))
        assert got.get_variable_result[0]["attribute_status"] == "Rejected"  # WriteOnly
        # The password is in no state database row.
        db_files = list((tmp_path / "state").glob("evse.db*"))
        assert db_files
        for db_file in db_files:
            assert new.encode() not in db_file.read_bytes()
    finally:
        await daemon.shutdown()
        await csms.stop()
