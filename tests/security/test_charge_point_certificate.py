"""The charge point certificate life cycle: CSR → signed by the test CA →
CertificateSigned validation → TLS connect with the new client certificate → commit;
rejections of certificates a station must not take."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect

from ocpp_client.security.certificate_store import CertificateStore, CertificateUse
from ocpp_client.security.charge_point_certificate import (
    CertificateSignedStatus,
    ChargePointCertificate,
    TlsFiles,
)
from ocpp_client.security.profiles import connection_options
from tests.security.conftest import CPO_NAME, STATION_ID, Pki
from tests.security.pki import CLIENT_AUTH, DAY, NOW, Issued, ec_key, issue
from tests.security.tls_csms import csms, server_context

ACCEPTED = CertificateSignedStatus.ACCEPTED
REJECTED = CertificateSignedStatus.REJECTED


def sign_csr(ca: Issued, csr_pem: str, *, not_after: dt.datetime = NOW + 90 * DAY,
             not_before: dt.datetime = NOW - DAY, subject: x509.Name | None = None) -> Issued:
    """What the CSMS's CA does with our CSR."""
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    return issue(ca, "", public_key=csr.public_key(),  # type: ignore[arg-type]
                 subject=subject or csr.subject, eku=CLIENT_AUTH,
                 not_before=not_before, not_after=not_after)


@pytest.fixture
def store(tmp_path: Path, pki: Pki) -> CertificateStore:
    roots = tmp_path / "roots.pem"
    roots.write_bytes(pki.root.cert_pem)
    return CertificateStore(tmp_path / "state", commissioning_csms_roots=roots)


@pytest.fixture
def cp_cert(tmp_path: Path, pki: Pki) -> ChargePointCertificate:
    cert_path, key_path = pki.client.write(tmp_path, "commissioning")
    assert key_path is not None
    return ChargePointCertificate(tmp_path / "state",
                                  commissioning=TlsFiles(cert_path, key_path))


def signed(cp: ChargePointCertificate, store: CertificateStore, chain: str,
           station_id: str = STATION_ID) -> CertificateSignedStatus:
    return cp.certificate_signed(chain, station_id=station_id, cpo_name=CPO_NAME,
                                 csms_roots=store.roots(CertificateUse.CSMS_ROOT)).status


async def peer_serial(tmp_path: Path, pki: Pki, store: CertificateStore,
                      cp: ChargePointCertificate, *, pending: bool) -> int:
    """Connect with profile 3 to a CSMS requiring client certificates of the CPO root;
    the serial number of the certificate the CSMS saw."""
    sctx = server_context(pki.server, tmp_path, client_root=pki.root)
    async with csms(sctx) as port:
        url = f"wss://127.0.0.1:{port}"
        ssl_ctx, headers = connection_options(3, url, STATION_ID, store, None, cp,
                                              try_pending_certificate=pending)
        async with connect(f"{url}/{STATION_ID}", ssl=ssl_ctx,
                           additional_headers=headers,
                           subprotocols=[websockets.Subprotocol("ocpp1.6")],
                           open_timeout=5) as ws:
            seen = json.loads(await ws.recv())
    assert seen["cn"] == STATION_ID
    return int(seen["serial"], 16)


def test_csr_subject_and_key_stay_on_the_station(tmp_path: Path,
                                                 cp_cert: ChargePointCertificate) -> None:
    csr_pem = cp_cert.create_csr(STATION_ID, CPO_NAME)
    assert "PRIVATE KEY" not in csr_pem
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == STATION_ID
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == CPO_NAME
    key_files = [p for p in (tmp_path / "state").rglob("*.key")]
    assert len(key_files) == 1
    assert stat.S_IMODE(os.stat(key_files[0]).st_mode) == 0o600


async def test_life_cycle_csr_signed_connect_commit(tmp_path: Path, pki: Pki,
                                                    store: CertificateStore,
                                                    cp_cert: ChargePointCertificate) -> None:
    assert await peer_serial(tmp_path, pki, store, cp_cert, pending=False) == \
        pki.client.cert.serial_number
    sub_ca = issue(pki.root, "Example CPO Sub CA", ca=True)
    new = sign_csr(sub_ca, cp_cert.create_csr(STATION_ID, CPO_NAME))
    chain = (new.cert_pem + sub_ca.cert_pem).decode()
    assert signed(cp_cert, store, chain) is ACCEPTED
    assert cp_cert.has_pending
    # the old certificate stays in use until the new one has worked
    assert await peer_serial(tmp_path, pki, store, cp_cert, pending=False) == \
        pki.client.cert.serial_number
    assert await peer_serial(tmp_path, pki, store, cp_cert, pending=True) == \
        new.cert.serial_number
    cp_cert.commit()
    restarted = ChargePointCertificate(tmp_path / "state")
    assert await peer_serial(tmp_path, pki, store, restarted, pending=False) == \
        new.cert.serial_number


def test_roll_back_keeps_the_old_certificate(tmp_path: Path, pki: Pki,
                                             store: CertificateStore,
                                             cp_cert: ChargePointCertificate) -> None:
    before = cp_cert.tls_files()
    new = sign_csr(pki.root, cp_cert.create_csr(STATION_ID, CPO_NAME))
    assert signed(cp_cert, store, new.cert_pem.decode()) is ACCEPTED
    assert cp_cert.tls_files(pending=True) != before
    cp_cert.roll_back()
    assert not cp_cert.has_pending
    assert cp_cert.tls_files(pending=True) == before


def test_interrupted_commit_is_finished_at_restart(tmp_path: Path, pki: Pki,
                                                   store: CertificateStore,
                                                   cp_cert: ChargePointCertificate) -> None:
    new = sign_csr(pki.root, cp_cert.create_csr(STATION_ID, CPO_NAME))
    assert signed(cp_cert, store, new.cert_pem.decode()) is ACCEPTED
    d = cp_cert.directory
    os.replace(d / "pending.key", d / "current.key")  # power cut after commit's 1st rename
    restarted = ChargePointCertificate(tmp_path / "state")
    files = restarted.tls_files(pending=True)
    assert files is not None
    cert = x509.load_pem_x509_certificate(files.certfile.read_bytes())
    assert cert.serial_number == new.cert.serial_number
    assert files.keyfile.name == "current.key"


def test_certificate_signed_rejections(tmp_path: Path, pki: Pki, store: CertificateStore,
                                       cp_cert: ChargePointCertificate) -> None:
    fresh = ChargePointCertificate(tmp_path / "other-state")
    assert signed(fresh, store, pki.client.cert_pem.decode()) is REJECTED  # no CSR made
    csr = cp_cert.create_csr(STATION_ID, CPO_NAME)
    cases = {
        "garbage": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "another root": sign_csr(pki.other_root, csr).cert_pem.decode(),
        "expired": sign_csr(pki.root, csr, not_before=NOW - 30 * DAY,
                            not_after=NOW - DAY).cert_pem.decode(),
        "not yet valid": sign_csr(pki.root, csr, not_before=NOW + DAY).cert_pem.decode(),
        "other CN": sign_csr(pki.root, csr, subject=x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, "CP999"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, CPO_NAME)])).cert_pem.decode(),
        "other O": sign_csr(pki.root, csr, subject=x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, STATION_ID),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Someone Else")])).cert_pem.decode(),
        "not our key": issue(pki.root, STATION_ID, o=CPO_NAME, key=ec_key(),
                             eku=CLIENT_AUTH).cert_pem.decode(),
    }
    for name, chain in cases.items():
        assert signed(cp_cert, store, chain) is REJECTED, name
    assert not cp_cert.has_pending
    # the same CSR still completes with a proper certificate
    assert signed(cp_cert, store, sign_csr(pki.root, csr).cert_pem.decode()) is ACCEPTED


def test_csr_signature_uses_sha256(cp_cert: ChargePointCertificate) -> None:
    csr = x509.load_pem_x509_csr(cp_cert.create_csr(STATION_ID, None).encode())
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA256)
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME) == []
