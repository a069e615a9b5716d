"""LinkSecurity over real TLS: a profile raise and a new client certificate are committed
after a connect that worked and dropped after one that failed; the fallback CSMS root
goes once the CSMS shows a certificate of the new root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect

from ocpp_client.security.authorization_key import AuthorizationKeyStore
from ocpp_client.security.certificate_store import (
    CertificateStore,
    CertificateUse,
    InstallStatus,
)
from ocpp_client.security.charge_point_certificate import (
    CertificateSignedStatus,
    ChargePointCertificate,
    TlsFiles,
)
from ocpp_client.security.events import SecurityEventType
from ocpp_client.security.link_security import (
    ConnectAttempt,
    LinkSecurity,
    peer_certificate_der,
)
from ocpp_client.security.profiles import SecurityProfile, SecurityProfileSwitch
from tests.security.conftest import CPO_NAME, STATION_ID, Pki
from tests.security.pki import SERVER_AUTH, Issued, issue
from tests.security.test_charge_point_certificate import sign_csr
from tests.security.tls_csms import CONNECT_ERRORS, csms, server_context

KEY = "link-security-key-000001"


def make_security(tmp_path: Path, pki: Pki, active: int,
                  additional_root_check: bool = False) -> LinkSecurity:
    roots = tmp_path / "roots.pem"
    roots.write_bytes(pki.root.cert_pem)
    key_file = tmp_path / "key"
    key_file.touch(mode=0o600)
    key_file.write_text(KEY)
    cert_path, key_path = pki.client.write(tmp_path, "client")
    assert key_path is not None
    state = tmp_path / "state"
    return LinkSecurity(
        STATION_ID, SecurityProfileSwitch(active), AuthorizationKeyStore(state, key_file),
        CertificateStore(state, commissioning_csms_roots=roots,
                         additional_root_check=additional_root_check),
        ChargePointCertificate(state, commissioning=TlsFiles(cert_path, key_path)))


async def attempt_connect(security: LinkSecurity, url: str
                          ) -> tuple[ConnectAttempt, dict[str, str] | SecurityEventType | None]:
    """One connect as the link keeper does it: the CSMS's view, or the security event."""
    attempt = security.prepare(url)
    try:
        async with connect(f"{attempt.url}/{STATION_ID}", ssl=attempt.ssl,
                           additional_headers=attempt.headers,
                           subprotocols=[websockets.Subprotocol("ocpp1.6")],
                           open_timeout=5) as ws:
            seen: dict[str, str] = json.loads(await ws.recv())
            security.connected(attempt, peer_certificate_der(ws))
            return attempt, seen
    except CONNECT_ERRORS as exc:
        return attempt, security.failed(attempt, exc)


async def test_raise_to_3_then_renew_certificate(tmp_path: Path, pki: Pki) -> None:
    security = make_security(tmp_path, pki, active=2)
    mtls = server_context(pki.server, tmp_path, client_root=pki.root)
    async with csms(mtls) as port:
        url = f"wss://127.0.0.1:{port}"
        assert security.missing_for(3, url) is None
        assert security.profile.request(3)
        attempt, seen = await attempt_connect(security, url)
        assert attempt.tries_profile_raise and isinstance(seen, dict)
        assert seen["cn"] == STATION_ID and "Authorization" not in attempt.headers
        assert security.profile.active is SecurityProfile.TLS_CLIENT_CERTIFICATE

        # a renewed certificate the station accepts but this CSMS does not trust
        assert security.certificates.install(
            CertificateUse.CSMS_ROOT, pki.other_root.cert_pem.decode()) is InstallStatus.ACCEPTED
        cp = security.charge_point_certificate
        stranger = sign_csr(pki.other_root, cp.create_csr(STATION_ID, CPO_NAME))
        assert cp.certificate_signed(
            stranger.cert_pem.decode(), station_id=STATION_ID, cpo_name=CPO_NAME,
            csms_roots=security.certificates.roots(CertificateUse.CSMS_ROOT)
        ).status is CertificateSignedStatus.ACCEPTED
        attempt, event = await attempt_connect(security, url)
        assert attempt.tries_new_certificate
        assert event is SecurityEventType.FAILED_TO_AUTHENTICATE_AT_CSMS
        assert not cp.has_pending  # rolled back ...
        attempt, seen = await attempt_connect(security, url)  # ... and the old one works
        assert isinstance(seen, dict)
        assert int(seen["serial"], 16) == pki.client.cert.serial_number

        # a renewed certificate of the CPO root: tried, works, committed
        good = sign_csr(pki.root, cp.create_csr(STATION_ID, CPO_NAME))
        assert cp.certificate_signed(
            good.cert_pem.decode(), station_id=STATION_ID, cpo_name=CPO_NAME,
            csms_roots=security.certificates.roots(CertificateUse.CSMS_ROOT)
        ).status is CertificateSignedStatus.ACCEPTED
        attempt, seen = await attempt_connect(security, url)
        assert attempt.tries_new_certificate and isinstance(seen, dict)
        assert int(seen["serial"], 16) == good.cert.serial_number
        assert not cp.has_pending
        _, seen = await attempt_connect(security, url)
        assert isinstance(seen, dict) and int(seen["serial"], 16) == good.cert.serial_number


async def test_raise_without_a_certificate_is_refused_up_front(tmp_path: Path,
                                                               pki: Pki) -> None:
    security = make_security(tmp_path, pki, active=1)
    bare = LinkSecurity(STATION_ID, security.profile, security.keys, security.certificates,
                        ChargePointCertificate(tmp_path / "bare"))
    assert bare.missing_for(3, "ws://csms.example/ocpp") is not None
    assert bare.missing_for(2, "ws://csms.example/ocpp") is None


@pytest.mark.parametrize("new_server_first", [False, True])
async def test_fallback_root_dropped_once_the_csms_shows_the_new_root(
        tmp_path: Path, pki: Pki, new_server_first: bool) -> None:
    security = make_security(tmp_path, pki, active=2, additional_root_check=True)
    new_root = issue(pki.root, "Example CPO Root CA 2", ca=True)
    new_server: Issued = issue(new_root, "csms.example", ip="127.0.0.1", eku=SERVER_AUTH)
    store = security.certificates
    assert store.install(CertificateUse.CSMS_ROOT, new_root.cert_pem.decode()) \
        is InstallStatus.ACCEPTED
    if not new_server_first:  # the CSMS has not switched yet: the fallback stays
        async with csms(server_context(pki.server, tmp_path)) as port:
            _, seen = await attempt_connect(security, f"wss://127.0.0.1:{port}")
        assert isinstance(seen, dict) and store.has_fallback
    async with csms(server_context(new_server, tmp_path)) as port:
        _, seen = await attempt_connect(security, f"wss://127.0.0.1:{port}")
    assert isinstance(seen, dict) and not store.has_fallback
    async with csms(server_context(pki.server, tmp_path)) as port:
        _, event = await attempt_connect(security, f"wss://127.0.0.1:{port}")
    assert event is SecurityEventType.INVALID_CSMS_CERTIFICATE
