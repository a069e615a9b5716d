"""SecurityProfile: the URL scheme check, only-raise semantics, and a raise that fails at
the reconnect falls back to the previous profile (over a real WebSocket)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect

from ocpp_client.security.authorization_key import AuthorizationKeyStore
from ocpp_client.security.certificate_store import CertificateStore
from ocpp_client.security.profiles import (
    SecurityProfile,
    SecurityProfileSwitch,
    check_url_scheme,
    connection_options,
    url_for_profile,
)
from tests.security.conftest import STATION_ID, Pki
from tests.security.tls_csms import csms

KEY = "profile-switch-key-000001"


@pytest.mark.parametrize(("profile", "url", "ok"), [
    (0, "ws://csms.example/ocpp", True),
    (0, "wss://csms.example/ocpp", True),
    (1, "ws://csms.example/ocpp", True),
    (1, "wss://csms.example/ocpp", False),
    (2, "wss://csms.example/ocpp", True),
    (2, "ws://csms.example/ocpp", False),
    (3, "wss://csms.example:443/ocpp", True),
    (3, "ws://csms.example/ocpp", False),
    (1, "http://csms.example/ocpp", False),
])
def test_url_scheme_must_suit_the_profile(profile: int, url: str, ok: bool) -> None:
    problem = check_url_scheme(profile, url)
    assert (problem is None) is ok
    if problem:
        assert url in problem  # the technician sees the value found


def test_url_for_profile_switches_the_scheme_only() -> None:
    assert url_for_profile("ws://10.0.0.5:8180/steve/ocpp", 2) == \
        "wss://10.0.0.5:8180/steve/ocpp"
    assert url_for_profile("wss://csms.example/ocpp", 3) == "wss://csms.example/ocpp"
    assert url_for_profile("wss://csms.example/ocpp", 0) == "wss://csms.example/ocpp"


def test_profile_may_only_be_raised() -> None:
    switch = SecurityProfileSwitch(active=2)
    assert not switch.request(1)
    assert not switch.request(4)
    assert switch.request(2) and switch.pending is None
    assert switch.request(3) and switch.pending is SecurityProfile.TLS_CLIENT_CERTIFICATE
    assert switch.next_profile() == 3
    assert switch.active == 2  # until the reconnect worked
    assert switch.commit() == 3 and switch.pending is None


async def test_failed_raise_falls_back(tmp_path: Path, pki: Pki) -> None:
    key_file = tmp_path / "key"
    key_file.touch(mode=0o600)
    key_file.write_text(KEY)
    keys = AuthorizationKeyStore(tmp_path / "state", key_file)
    roots = tmp_path / "roots.pem"
    roots.write_bytes(pki.root.cert_pem)
    store = CertificateStore(tmp_path / "state", commissioning_csms_roots=roots)
    switch = SecurityProfileSwitch(active=1)
    async with csms(expected_authorization=keys.current().basic_auth_header(  # type: ignore[union-attr]
            STATION_ID)) as port:
        base = f"ws://127.0.0.1:{port}"
        assert switch.request(2)
        # this CSMS does not speak TLS: the reconnect with profile 2 fails ...
        url = url_for_profile(base, switch.next_profile())
        ssl_ctx, headers = connection_options(switch.next_profile(), url, STATION_ID,
                                              store, keys)
        assert url.startswith("wss://") and ssl_ctx is not None
        with pytest.raises(OSError):  # ssl.SSLError: not a TLS server
            await connect(f"{url}/{STATION_ID}", ssl=ssl_ctx,
                          additional_headers=headers, open_timeout=5)
        # ... so the station falls back and connects with profile 1 again
        assert switch.fall_back() == 1
        url = url_for_profile(base, switch.next_profile())
        ssl_ctx, headers = connection_options(switch.next_profile(), url, STATION_ID,
                                              store, keys)
        assert ssl_ctx is None
        async with connect(f"{url}/{STATION_ID}", additional_headers=headers,
                           subprotocols=[websockets.Subprotocol("ocpp1.6")]) as ws:
            assert json.loads(await ws.recv())["subprotocol"] == "ocpp1.6"
    assert switch.active == 1 and switch.pending is None
