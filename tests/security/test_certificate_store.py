"""InstallCertificate / GetInstalledCertificateIds / DeleteCertificate on the certificate
store in a real state directory; CertificateHashData checked against OpenSSL's own OCSP
CertID; AdditionalRootCertificateCheck with a real TLS connect through the new root."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect

from ocpp_client.security.certificate_hash import CertificateHashData
from ocpp_client.security.certificate_store import (
    CertificateStore,
    CertificateUse,
    DeleteStatus,
    InstallStatus,
)
from ocpp_client.security.tls import csms_tls_context
from tests.security.conftest import Pki
from tests.security.pki import DAY, NOW, SERVER_AUTH, Issued, issue, make_root
from tests.security.tls_csms import csms, server_context

CSMS = CertificateUse.CSMS_ROOT
MANUFACTURER = CertificateUse.MANUFACTURER_ROOT


def openssl_cert_id(tmp: Path, issuer: Issued, cert: Issued) -> CertificateHashData:
    """The OCSP CertID OpenSSL computes for ``cert`` (RFC 6960), as CertificateHashData."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not installed")
    issuer_path, _ = issuer.write(tmp, "ocsp-issuer")
    cert_path, _ = cert.write(tmp, "ocsp-cert")
    req = tmp / "req.der"
    subprocess.run(["openssl", "ocsp", "-issuer", issuer_path, "-sha256", "-cert", cert_path,
                    "-no_nonce", "-reqout", req], check=True, capture_output=True)
    text = subprocess.run(["openssl", "ocsp", "-reqin", req, "-req_text"], check=True,
                          capture_output=True, text=True).stdout
    fields = dict(line.strip().split(": ", 1) for line in text.splitlines() if ": " in line)
    return CertificateHashData("SHA256", fields["Issuer Name Hash"],
                               fields["Issuer Key Hash"], fields["Serial Number"])


@pytest.fixture
def roots_file(tmp_path: Path, pki: Pki) -> Path:
    path = tmp_path / "csms_roots.pem"
    path.write_bytes(pki.root.cert_pem)
    return path


def test_commissioning_root_listed_with_openssls_cert_id(tmp_path: Path, pki: Pki,
                                                         roots_file: Path) -> None:
    store = CertificateStore(tmp_path / "state", commissioning_csms_roots=roots_file)
    ids = store.installed_ids(CSMS)
    assert len(ids) == 1
    assert ids[0].matches(openssl_cert_id(tmp_path, pki.root, pki.root))
    assert ids[0].serial_number == format(pki.root.cert.serial_number, "x")
    assert store.installed_ids(MANUFACTURER) == []


def test_install_manufacturer_root_and_list_by_use(tmp_path: Path, pki: Pki,
                                                   roots_file: Path) -> None:
    store = CertificateStore(tmp_path / "state", commissioning_csms_roots=roots_file)
    assert store.install(MANUFACTURER, pki.manufacturer_root.cert_pem.decode()) \
        is InstallStatus.ACCEPTED
    [m] = store.installed_ids(MANUFACTURER)
    assert m.matches(openssl_cert_id(tmp_path, pki.manufacturer_root, pki.manufacturer_root))
    assert len(store.installed_ids()) == 2
    # kept across a restart, files owner-only
    again = CertificateStore(tmp_path / "state", commissioning_csms_roots=roots_file)
    assert [c.subject for c in again.roots(MANUFACTURER)] == [pki.manufacturer_root.cert.subject]
    for path in (tmp_path / "state" / "certificates").rglob("*.pem"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_install_rejections(tmp_path: Path, pki: Pki, roots_file: Path) -> None:
    store = CertificateStore(tmp_path / "state", commissioning_csms_roots=roots_file,
                             max_length=2)
    expired_root = make_root("Old Root", not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    assert store.install(CSMS, "not a certificate") is InstallStatus.REJECTED
    assert store.install(CSMS, pki.server.cert_pem.decode()) is InstallStatus.REJECTED  # no CA
    assert store.install(CSMS, expired_root.cert_pem.decode()) is InstallStatus.REJECTED
    assert store.install(CSMS, pki.root.cert_pem.decode()) is InstallStatus.ACCEPTED  # again
    assert len(store) == 1
    assert store.install(MANUFACTURER, pki.manufacturer_root.cert_pem.decode()) \
        is InstallStatus.ACCEPTED
    # CertificateStoreMaxLength = 2 reached: "more certificates than allowed" is Rejected
    assert store.install(CSMS, pki.other_root.cert_pem.decode()) is InstallStatus.REJECTED
    assert len(store) == 2


def test_delete(tmp_path: Path, pki: Pki, roots_file: Path) -> None:
    state = tmp_path / "state"
    store = CertificateStore(state, commissioning_csms_roots=roots_file)
    store.install(MANUFACTURER, pki.manufacturer_root.cert_pem.decode())
    unknown = openssl_cert_id(tmp_path, pki.other_root, pki.other_root)
    assert store.delete(unknown) is DeleteStatus.NOT_FOUND
    # the last CSMS root stays: the station could not verify its CSMS any more
    [csms_id] = store.installed_ids(CSMS)
    assert store.delete(csms_id) is DeleteStatus.FAILED
    assert len(store.roots(CSMS)) == 1
    # a CSMS sending upper-case hex and a zero-padded serial still names the certificate
    m = openssl_cert_id(tmp_path, pki.manufacturer_root, pki.manufacturer_root)
    shouted = CertificateHashData(m.hash_algorithm, m.issuer_name_hash.upper(),
                                  m.issuer_key_hash.upper(), "00" + m.serial_number.upper())
    assert store.delete(shouted) is DeleteStatus.ACCEPTED
    assert store.installed_ids(MANUFACTURER) == []
    # with a second CSMS root, the first may go; and it is not re-imported at restart
    store.install(CSMS, pki.other_root.cert_pem.decode())
    assert store.delete(csms_id) is DeleteStatus.ACCEPTED
    again = CertificateStore(state, commissioning_csms_roots=roots_file)
    assert [c.subject for c in again.roots(CSMS)] == [pki.other_root.cert.subject]


async def connects(tmp_path: Path, store: CertificateStore, server: Issued) -> bool:
    async with csms(server_context(server, tmp_path)) as port:
        ctx = csms_tls_context(store.csms_roots_pem())
        async with connect(f"wss://127.0.0.1:{port}/CP001", ssl=ctx,
                           subprotocols=[websockets.Subprotocol("ocpp1.6")],
                           open_timeout=5) as ws:
            return bool(json.loads(await ws.recv()))


async def test_additional_root_certificate_check(tmp_path: Path, pki: Pki,
                                                 roots_file: Path) -> None:
    store = CertificateStore(tmp_path / "state", commissioning_csms_roots=roots_file,
                             additional_root_check=True)
    # a root from elsewhere is not signed by the current one
    assert store.install(CSMS, pki.other_root.cert_pem.decode()) is InstallStatus.REJECTED
    # the CPO's next root, signed by the current root it replaces
    new_root = issue(pki.root, "Example CPO Root CA 2", ca=True)
    new_server = issue(new_root, "csms.example", ip="127.0.0.1", eku=SERVER_AUTH)
    assert store.install(CSMS, new_root.cert_pem.decode()) is InstallStatus.ACCEPTED
    assert store.has_fallback
    assert {c.subject for c in store.roots(CSMS)} == {pki.root.cert.subject,
                                                      new_root.cert.subject}
    [new_id] = [i for i in store.installed_ids(CSMS)
                if i.serial_number == format(new_root.cert.serial_number, "x")]
    assert new_id.matches(openssl_cert_id(tmp_path, pki.root, new_root))
    # the old server certificate still works (fallback) and so does the new CSMS's
    assert await connects(tmp_path, store, pki.server)
    assert await connects(tmp_path, store, new_server)
    # connected with the new root: the fallback goes; the new root alone is the anchor
    assert store.commit_csms_root()
    assert not store.has_fallback
    assert [c.subject for c in store.roots(CSMS)] == [new_root.cert.subject]
    assert await connects(tmp_path, store, new_server)
    with pytest.raises(OSError):  # ssl.SSLCertVerificationError
        await connects(tmp_path, store, pki.server)
    # the CSMS still names the new root with the hash data it was given before
    assert store.installed_ids(CSMS) == [new_id]
    assert store.install(CSMS, pki.other_root.cert_pem.decode()) is InstallStatus.REJECTED


def test_additional_root_check_after_deleting_the_new_root(tmp_path: Path, pki: Pki,
                                                           roots_file: Path) -> None:
    """Deleting the new root leaves the fallback as the one root: a foreign root still
    has to be signed by it."""
    store = CertificateStore(tmp_path / "state", commissioning_csms_roots=roots_file,
                             additional_root_check=True)
    new_root = issue(pki.root, "Example CPO Root CA 2", ca=True)
    assert store.install(CSMS, new_root.cert_pem.decode()) is InstallStatus.ACCEPTED
    [new_id] = [i for i in store.installed_ids(CSMS)
                if i.serial_number == format(new_root.cert.serial_number, "x")]
    assert store.delete(new_id) is DeleteStatus.ACCEPTED
    assert [c.subject for c in store.roots(CSMS)] == [pki.root.cert.subject]
    assert store.install(CSMS, pki.other_root.cert_pem.decode()) is InstallStatus.REJECTED
    newer = issue(pki.root, "Example CPO Root CA 3", ca=True)
    assert store.install(CSMS, newer.cert_pem.decode()) is InstallStatus.ACCEPTED


def test_install_that_cannot_be_written_is_failed(tmp_path: Path, pki: Pki,
                                                  roots_file: Path) -> None:
    store = CertificateStore(tmp_path / "state", commissioning_csms_roots=roots_file)
    target = store.directory / "manufacturer_root"
    target.rmdir()
    target.write_text("not a directory")  # the write fails with a real OSError
    assert store.install(MANUFACTURER, pki.manufacturer_root.cert_pem.decode()) \
        is InstallStatus.FAILED
    assert store.installed_ids(MANUFACTURER) == []
