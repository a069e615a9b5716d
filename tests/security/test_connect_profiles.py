"""Security profiles 1–3 over real WebSockets on loopback (profiles 2/3 over real TLS):
the options ``connection_options`` builds connect, and the refusals a station must
notice are classified to the whitepaper's security events."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect

from ocpp_client.security.authorization_key import AuthorizationKeyStore
from ocpp_client.security.certificate_store import CertificateStore
from ocpp_client.security.charge_point_certificate import ChargePointCertificate, TlsFiles
from ocpp_client.security.connect_failures import classify_connect_failure
from ocpp_client.security.events import SecurityEventType
from ocpp_client.security.profiles import SecurityConfigError, connection_options
from ocpp_client.security.secret_files import InsecureFileError
from tests.security.conftest import STATION_ID, Pki
from tests.security.tls_csms import CONNECT_ERRORS, blocking_tls_server, csms, server_context

KEY = "s3cr3t-Authorization-Key-0042"


def key_file(tmp_path: Path, key: str = KEY) -> Path:
    path = tmp_path / "authorization_key"
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return path


def expected_header(key: str) -> str:
    # Written from RFC 7617, independently of the module: base64("<id>:<password>").
    return "Basic " + base64.b64encode(f"{STATION_ID}:{key}".encode()).decode()


@pytest.fixture
def store(tmp_path: Path, pki: Pki) -> CertificateStore:
    roots = tmp_path / "csms_roots.pem"
    roots.write_bytes(pki.root.cert_pem)
    return CertificateStore(tmp_path / "state", commissioning_csms_roots=roots)


async def open_link(url: str, ssl_ctx: ssl.SSLContext | None,
                    headers: dict[str, str]) -> dict[str, str]:
    async with connect(f"{url}/{STATION_ID}", ssl=ssl_ctx,
                       additional_headers=headers,
                       subprotocols=[websockets.Subprotocol("ocpp1.6")],
                       open_timeout=5) as ws:
        seen: dict[str, str] = json.loads(await ws.recv())
        return seen


async def test_profile_1_basic_auth_over_ws(tmp_path: Path) -> None:
    keys = AuthorizationKeyStore(tmp_path / "state", key_file(tmp_path))
    async with csms(expected_authorization=expected_header(KEY)) as port:
        url = f"ws://127.0.0.1:{port}"
        ssl_ctx, headers = connection_options(1, url, STATION_ID, None, keys)
        assert ssl_ctx is None
        assert (await open_link(url, ssl_ctx, headers))["subprotocol"] == "ocpp1.6"


async def test_profile_1_wrong_password_is_refused_and_classified(tmp_path: Path) -> None:
    keys = AuthorizationKeyStore(tmp_path / "state", key_file(tmp_path, "a-wrong-key-0000000"))
    async with csms(expected_authorization=expected_header(KEY)) as port:
        url = f"ws://127.0.0.1:{port}"
        ssl_ctx, headers = connection_options(1, url, STATION_ID, None, keys)
        with pytest.raises(websockets.InvalidStatus) as err:
            await open_link(url, ssl_ctx, headers)
    assert err.value.response.status_code == 401
    assert classify_connect_failure(err.value) is SecurityEventType.FAILED_TO_AUTHENTICATE_AT_CSMS
    assert SecurityEventType.FAILED_TO_AUTHENTICATE_AT_CSMS.v16_name == \
        "FailedToAuthenticateAtCentralSystem"


async def test_profile_2_tls_and_basic_auth(tmp_path: Path, pki: Pki,
                                            store: CertificateStore) -> None:
    keys = AuthorizationKeyStore(tmp_path / "state", key_file(tmp_path))
    sctx = server_context(pki.server, tmp_path)
    async with csms(sctx, expected_authorization=expected_header(KEY)) as port:
        url = f"wss://127.0.0.1:{port}"
        ssl_ctx, headers = connection_options(2, url, STATION_ID, store, keys)
        assert ssl_ctx is not None
        assert ssl_ctx.minimum_version == ssl.TLSVersion.TLSv1_2
        seen = await open_link(url, ssl_ctx, headers)
    assert seen == {"subprotocol": "ocpp1.6", "cn": "-", "serial": "-"}


async def test_profile_2_wrong_password_over_tls(tmp_path: Path, pki: Pki,
                                                 store: CertificateStore) -> None:
    keys = AuthorizationKeyStore(tmp_path / "state", key_file(tmp_path, "another-wrong-key-1"))
    async with csms(server_context(pki.server, tmp_path),
                    expected_authorization=expected_header(KEY)) as port:
        url = f"wss://127.0.0.1:{port}"
        ssl_ctx, headers = connection_options(2, url, STATION_ID, store, keys)
        with pytest.raises(websockets.InvalidStatus) as err:
            await open_link(url, ssl_ctx, headers)
    assert classify_connect_failure(err.value) is SecurityEventType.FAILED_TO_AUTHENTICATE_AT_CSMS


async def test_profile_3_client_certificate(tmp_path: Path, pki: Pki,
                                            store: CertificateStore) -> None:
    cert_path, key_path = pki.client.write(tmp_path, "client")
    assert key_path is not None
    cp_cert = ChargePointCertificate(tmp_path / "state",
                                     commissioning=TlsFiles(cert_path, key_path))
    sctx = server_context(pki.server, tmp_path, client_root=pki.root)
    async with csms(sctx) as port:
        url = f"wss://127.0.0.1:{port}"
        ssl_ctx, headers = connection_options(3, url, STATION_ID, store, None, cp_cert)
        assert headers == {}  # no Basic auth with a client certificate
        seen = await open_link(url, ssl_ctx, headers)
    assert seen["cn"] == STATION_ID
    assert seen["serial"] == format(pki.client.cert.serial_number, "x")


@pytest.mark.parametrize("tls_max", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_profile_3_certificate_of_another_root_is_refused_by_the_csms(
        tmp_path: Path, pki: Pki, store: CertificateStore, tls_max: ssl.TLSVersion) -> None:
    from tests.security.pki import CLIENT_AUTH, issue
    stranger = issue(pki.other_root, STATION_ID, eku=CLIENT_AUTH)
    cert_path, key_path = stranger.write(tmp_path, "stranger")
    assert key_path is not None
    cp_cert = ChargePointCertificate(tmp_path / "state",
                                     commissioning=TlsFiles(cert_path, key_path))
    sctx = server_context(pki.server, tmp_path, client_root=pki.root)
    sctx.maximum_version = tls_max
    # TLS 1.2: the server's alert arrives in the handshake (blocking server flushes it);
    # TLS 1.3: the server checks the certificate after the client's handshake is done,
    # and the websockets CSMS closes the connection before any HTTP response.
    async with contextlib.AsyncExitStack() as stack:
        if tls_max == ssl.TLSVersion.TLSv1_2:
            port = stack.enter_context(blocking_tls_server(sctx))
        else:
            port = await stack.enter_async_context(csms(sctx))
        url = f"wss://127.0.0.1:{port}"
        ssl_ctx, headers = connection_options(3, url, STATION_ID, store, None, cp_cert)
        with pytest.raises(CONNECT_ERRORS) as err:
            await open_link(url, ssl_ctx, headers)
    assert classify_connect_failure(err.value, client_certificate_sent=True) is \
        SecurityEventType.FAILED_TO_AUTHENTICATE_AT_CSMS


@pytest.mark.parametrize("which", ["untrusted_server", "expired_server"])
async def test_bad_server_certificate_is_refused(tmp_path: Path, pki: Pki,
                                                 store: CertificateStore, which: str) -> None:
    keys = AuthorizationKeyStore(tmp_path / "state", key_file(tmp_path))
    async with csms(server_context(getattr(pki, which), tmp_path)) as port:
        url = f"wss://127.0.0.1:{port}"
        ssl_ctx, headers = connection_options(2, url, STATION_ID, store, keys)
        with pytest.raises(ssl.SSLCertVerificationError) as err:
            await open_link(url, ssl_ctx, headers)
    # X509_V_ERR_CERT_HAS_EXPIRED = 10, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
    assert err.value.verify_code == {"untrusted_server": 20, "expired_server": 10}[which]
    event = classify_connect_failure(err.value)
    assert event is SecurityEventType.INVALID_CSMS_CERTIFICATE
    assert event.v16_name == "InvalidCentralSystemCertificate"


@pytest.fixture
def tls11_server(tmp_path: Path, pki: Pki) -> Iterator[int]:
    """A real TLS server that offers TLS 1.1 at most."""
    sctx = server_context(pki.server, tmp_path, max_version=ssl.TLSVersion.TLSv1_1)
    with blocking_tls_server(sctx) as port:
        yield port


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
def test_the_tls11_server_really_speaks_tls11(tls11_server: int) -> None:
    # Guards the next test: this OpenSSL build allows a TLS 1.1 server (at SECLEVEL 0).
    legacy = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    legacy.check_hostname = False
    legacy.verify_mode = ssl.CERT_NONE
    legacy.minimum_version = ssl.TLSVersion.TLSv1_1
    legacy.set_ciphers("DEFAULT:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", tls11_server)) as raw, \
            legacy.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.version() == "TLSv1.1"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
async def test_server_offering_only_tls11_is_refused(tmp_path: Path, tls11_server: int,
                                                     store: CertificateStore) -> None:
    keys = AuthorizationKeyStore(tmp_path / "state", key_file(tmp_path))
    url = f"wss://127.0.0.1:{tls11_server}"
    ssl_ctx, headers = connection_options(2, url, STATION_ID, store, keys)
    with pytest.raises(ssl.SSLError) as err:
        await open_link(url, ssl_ctx, headers)
    assert classify_connect_failure(err.value) is SecurityEventType.INVALID_TLS_VERSION


async def test_server_offering_only_a_cipher_suite_we_refuse(tmp_path: Path, pki: Pki,
                                                             store: CertificateStore) -> None:
    """A TLS 1.2 CSMS that offers only AES128-SHA256 (RSA key exchange, CBC): not in the
    whitepaper's list, so the handshake fails → InvalidTLSCipherSuite."""
    from tests.security.pki import SERVER_AUTH, issue, rsa_key
    rsa_server = issue(pki.root, "csms.example", ip="127.0.0.1", key=rsa_key(),
                       eku=SERVER_AUTH)
    sctx = server_context(rsa_server, tmp_path)
    sctx.maximum_version = ssl.TLSVersion.TLSv1_2
    sctx.set_ciphers("AES128-SHA256")
    keys = AuthorizationKeyStore(tmp_path / "state", key_file(tmp_path))
    with blocking_tls_server(sctx) as port:
        url = f"wss://127.0.0.1:{port}"
        ssl_ctx, headers = connection_options(2, url, STATION_ID, store, keys)
        with pytest.raises(ssl.SSLError) as err:
            await open_link(url, ssl_ctx, headers)
    assert classify_connect_failure(err.value) is SecurityEventType.INVALID_TLS_CIPHER_SUITE


def test_unreachable_csms_is_no_security_event() -> None:
    assert classify_connect_failure(ConnectionRefusedError()) is None


def closed_before_response_14() -> websockets.InvalidMessage:
    """What websockets >= 14 raises when the CSMS closes before its HTTP response."""
    try:
        try:
            raise EOFError("connection closed while reading HTTP status line")
        except EOFError as eof:
            raise websockets.InvalidMessage("did not receive a valid HTTP response") from eof
    except websockets.InvalidMessage as exc:
        return exc


@pytest.mark.parametrize("raised", [
    EOFError("connection closed while reading HTTP status line"),  # websockets 13.x
    closed_before_response_14(),
], ids=["websockets-13", "websockets-14+"])
def test_closed_before_response_counts_only_with_a_client_certificate(
        raised: BaseException) -> None:
    assert classify_connect_failure(raised, client_certificate_sent=True) is \
        SecurityEventType.FAILED_TO_AUTHENTICATE_AT_CSMS
    assert classify_connect_failure(raised, client_certificate_sent=False) is None


def test_missing_material_is_a_config_error(tmp_path: Path, store: CertificateStore) -> None:
    keys = AuthorizationKeyStore(tmp_path / "state")  # no key anywhere
    with pytest.raises(SecurityConfigError, match="authorization_key_file"):
        connection_options(2, "wss://csms.example/ocpp", STATION_ID, store, keys)
    with pytest.raises(SecurityConfigError, match="client_cert"):
        connection_options(3, "wss://csms.example/ocpp", STATION_ID, store, None,
                           ChargePointCertificate(tmp_path / "state"))
    with pytest.raises(SecurityConfigError, match="csms_root_ca"):
        connection_options(2, "wss://csms.example/ocpp", STATION_ID,
                           CertificateStore(tmp_path / "empty"),
                           AuthorizationKeyStore(tmp_path / "state", key_file(tmp_path)))
    with pytest.raises(SecurityConfigError, match="wss://"):
        connection_options(2, "ws://csms.example/ocpp", STATION_ID, store, keys)


def test_client_key_open_to_others_is_refused(tmp_path: Path, pki: Pki,
                                              store: CertificateStore) -> None:
    cert_path, key_path = pki.client.write(tmp_path, "client")
    assert key_path is not None
    key_path.chmod(0o644)
    cp_cert = ChargePointCertificate(tmp_path / "state",
                                     commissioning=TlsFiles(cert_path, key_path))
    with pytest.raises(InsecureFileError, match="chmod 600"):
        connection_options(3, "wss://127.0.0.1:1/ocpp", STATION_ID, store, None, cp_cert)
