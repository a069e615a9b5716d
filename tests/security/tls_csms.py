"""A WebSocket "CSMS" on loopback for the security tests: the ``websockets`` server with a
real ``ssl.SSLContext`` (server certificate; for profile 3 CERT_REQUIRED with the client
root) and, for profiles 1/2, a check of the HTTP Basic ``Authorization`` header in a
``process_request`` hook, as a CSMS does.

After the opening handshake it sends one text message naming what it saw: the
subprotocol and the client certificate's subject CN and serial number (or ``-``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from http import HTTPStatus
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import InvalidHandshake
from websockets.http11 import Request, Response

from tests.security.pki import Issued

#: What a failed connect raises: websockets 13.x raises the bare EOFError when the CSMS
#: closes the connection before its HTTP response (>= 14: InvalidMessage from EOFError).
CONNECT_ERRORS = (OSError, EOFError, InvalidHandshake)


def server_context(server: Issued, tmp: Path, *, client_root: Issued | None = None,
                   max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A server context presenting ``server``; requiring a client certificate issued by
    ``client_root`` when given; capped at ``max_version`` when given."""
    cert_path, key_path = server.write(tmp, f"server-{server.cert.serial_number}")
    assert key_path is not None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    if max_version is not None:
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = max_version
        if max_version < ssl.TLSVersion.TLSv1_2:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 only offers TLS 1.1 so
    if client_root is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=client_root.cert_pem.decode())
    return ctx


@contextlib.asynccontextmanager
async def csms(ssl_context: ssl.SSLContext | None = None,
               expected_authorization: str | None = None) -> AsyncIterator[int]:
    """Serve on 127.0.0.1; yields the port. With ``expected_authorization`` (the full
    header value) any other Authorization header is answered 401."""

    def check_auth(connection: ServerConnection, request: Request) -> Response | None:
        if expected_authorization is None:
            return None
        if request.headers.get("Authorization") != expected_authorization:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        return None

    async def handler(ws: ServerConnection) -> None:
        peer = ws.transport.get_extra_info("peercert")
        seen = {"subprotocol": ws.subprotocol, "cn": "-", "serial": "-"}
        if peer:
            seen["cn"] = dict(x[0] for x in peer["subject"])["commonName"]
            seen["serial"] = peer["serialNumber"].lower().lstrip("0")
        await ws.send(json.dumps(seen))
        with contextlib.suppress(Exception):
            await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, ssl=ssl_context,
                     process_request=check_auth,
                     subprotocols=["ocpp1.6"]) as server:  # type: ignore[list-item]
        port = next(iter(server.sockets)).getsockname()[1]
        yield port


@contextlib.contextmanager
def blocking_tls_server(ssl_context: ssl.SSLContext) -> Iterator[int]:
    """A plain TLS server on a thread (yields its port) that completes or fails the
    handshake and answers ``400``. Unlike the asyncio server, it flushes its TLS alert
    before closing, so the client sees *why* the handshake failed (as with a real CSMS
    front end)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if stop.is_set():
                conn.close()
                return
            try:
                with ssl_context.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        socket.create_connection(("127.0.0.1", port)).close()  # wakes accept()
        thread.join(timeout=5)
        listener.close()
