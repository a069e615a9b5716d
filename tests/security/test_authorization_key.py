"""The AuthorizationKey: file permissions, CSMS change kept 0600, write-only, never logged."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect

from ocpp_client.security.authorization_key import (
    AuthorizationKey,
    AuthorizationKeyStore,
    get_configuration_value,
)
from ocpp_client.security.log_redaction import (
    AuthorizationHeaderFilter,
    redact_websockets_logs,
)
from ocpp_client.security.profiles import connection_options
from ocpp_client.security.secret_files import InsecureFileError
from tests.security.conftest import STATION_ID
from tests.security.tls_csms import csms

KEY = "commissioning-key-0123456789"


def write_key(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_key_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    keys = AuthorizationKeyStore(tmp_path / "state", write_key(tmp_path / "k", KEY, mode))
    with pytest.raises(InsecureFileError, match="chmod 600"):
        keys.current()


def test_commissioning_key_then_csms_key_kept_0600(tmp_path: Path) -> None:
    state = tmp_path / "state"
    keys = AuthorizationKeyStore(state, write_key(tmp_path / "k", KEY))
    assert keys.current() == AuthorizationKey(KEY)
    keys.change("changed-by-the-CSMS-0042")
    stored = state / "authorization_key"
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
    # after a restart the CSMS's key still wins over the commissioning file
    assert AuthorizationKeyStore(state, tmp_path / "k").current() == \
        AuthorizationKey("changed-by-the-CSMS-0042")
    assert [p.name for p in state.iterdir()] == ["authorization_key"]  # no temp file left


@pytest.mark.parametrize("bad", ["short-key", "x" * 41, "sixteen chars ok but space", "é" * 20])
def test_malformed_key_is_rejected_and_nothing_stored(tmp_path: Path, bad: str) -> None:
    keys = AuthorizationKeyStore(tmp_path / "state")
    with pytest.raises(ValueError) as err:
        keys.change(bad)
    assert bad not in str(err.value)
    assert keys.current() is None


def test_hex_key_is_the_20_byte_key_of_the_ocpp_j_example() -> None:
    # OCPP-J 1.6 §7 example, taken from the specification text.
    key = AuthorizationKey("0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF")
    assert key.basic_auth_header("AL1000") == "Basic QUwxMDAwOgABAgMEBQYH////////////////"


def test_key_is_hidden_in_repr_str_format_and_get_configuration() -> None:
    key = AuthorizationKey(KEY)
    for text in (repr(key), str(key), f"{key}", repr([key])):
        assert KEY not in text
    assert get_configuration_value("AuthorizationKey", KEY) is None
    assert get_configuration_value("HeartbeatInterval", "300") == "300"


@pytest.mark.parametrize("redacted", [True, False])
async def test_no_secret_in_any_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                         redacted: bool) -> None:
    """Connect with Basic auth while every logger runs at DEBUG; grep the captured lines
    for the key and for its Authorization header. Without the redaction filter the
    websockets client logs the header (the ``redacted=False`` case proves the grep
    finds it), so the daemon must install it."""
    keys = AuthorizationKeyStore(tmp_path / "state", write_key(tmp_path / "k", KEY))
    header = keys.current().basic_auth_header(STATION_ID)  # type: ignore[union-attr]
    client_logger = logging.getLogger("websockets.client")
    saved = list(client_logger.filters)
    if redacted:
        redact_websockets_logs()
    else:  # an adapter built by an earlier test installed it, as the daemon does
        client_logger.filters[:] = [f for f in saved
                                    if not isinstance(f, AuthorizationHeaderFilter)]
    try:
        with caplog.at_level(logging.DEBUG):
            async with csms(expected_authorization=header) as port:
                url = f"ws://127.0.0.1:{port}"
                ssl_ctx, headers = connection_options(1, url, STATION_ID, None, keys)
                logging.getLogger("test").info("options %s %s", keys.current(), ssl_ctx)
                async with connect(
                        f"{url}/{STATION_ID}", additional_headers=headers,
                        subprotocols=[websockets.Subprotocol("ocpp1.6")]) as ws:
                    assert json.loads(await ws.recv())["cn"] == "-"
    finally:
        client_logger.filters[:] = saved
    # the station's lines: everything but the test CSMS's own server logger
    lines = [r.getMessage() for r in caplog.records
             if not r.name.startswith("websockets.server")]
    assert any("GET /CP001" in line for line in lines)  # the handshake was logged
    secrets = [KEY, header, header.split()[1]]
    leaked = [line for line in lines if any(s in line for s in secrets)]
    assert (leaked == []) is redacted
