"""Real transfer peers for the feature tests: an HTTP server (``http.server`` on a thread)
and an FTP server (pyftpdlib on a thread), both on loopback."""

from __future__ import annotations

import email.parser
import email.policy
import http.server
import socket
import ssl
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Upload:
    method: str
    path: str
    file_name: str | None
    body: bytes


@dataclass
class HttpState:
    files: dict[str, bytes] = field(default_factory=dict)
    uploads: list[Upload] = field(default_factory=list)
    #: answer the next N requests with ``fail_status`` instead of serving them
    fail_next: int = 0
    fail_status: int = 503
    requests: list[str] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)


class _Handler(http.server.BaseHTTPRequestHandler):
    state: HttpState

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _failing(self) -> bool:
        self.state.requests.append(f"{self.command} {self.path}")
        if self.state.fail_next > 0:
            self.state.fail_next -= 1
            self.send_error(self.state.fail_status)
            return True
        return False

    def do_GET(self) -> None:
        if self._failing():
            return
        body = self.state.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers["Content-Length"]))

    def do_PUT(self) -> None:
        body = self._body()
        if self._failing():
            return
        self.state.uploads.append(Upload("PUT", self.path, None, body))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.state.received.set()

    def do_POST(self) -> None:
        body = self._body()
        if self._failing():
            return
        # Parse the multipart body with the standard library's MIME parser, independent
        # of the encoder under test.
        raw = (f"Content-Type: {self.headers['Content-Type']}\r\n\r\n").encode() + body
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "file":
                self.state.uploads.append(
                    Upload("POST", self.path, part.get_filename(),
                           part.get_payload(decode=True)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.state.received.set()


class HttpServer:
    """``http.server`` on a thread, bound to 127.0.0.1 on a free port."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.state = HttpState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> HttpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FtpServer:
    """pyftpdlib on a thread: user ``evse`` with password ``p@ss:word`` (URL-quoted in
    tests), home ``root``. ``start()`` / ``stop()`` may be called again on the same port
    (a server that goes away and comes back)."""

    USER = "evse"
    PASSWORD = "p@ss:word"

    def __init__(self, root: Path, port: int | None = None) -> None:
        # pyftpdlib is in the `test` extra; an image's ptest may not ship it (FTP tests skip
        # there, everything else runs).
        pytest.importorskip("pyftpdlib")
        self.root = root
        self.port = port or free_port()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()

    def url(self, path: str, password: str = "p%40ss%3Aword") -> str:
        return f"ftp://{self.USER}:{password}@127.0.0.1:{self.port}{path}"

    def start(self) -> FtpServer:
        self._stop.clear()
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def _run(self) -> None:
        with warnings.catch_warnings():
            # pyftpdlib runs on the standard library's asyncore / asynchat up to Python 3.11
            # (their backports from 3.12 on): deprecated, but this is the test peer.
            warnings.simplefilter("ignore", DeprecationWarning)
            from pyftpdlib.authorizers import DummyAuthorizer
            from pyftpdlib.handlers import FTPHandler
            from pyftpdlib.servers import FTPServer
        authorizer = DummyAuthorizer()
        authorizer.add_user(self.USER, self.PASSWORD, str(self.root), perm="elradfmw")
        handler = type("Handler", (FTPHandler,), {"authorizer": authorizer,
                                                   "passive_ports": None})
        server = FTPServer(("127.0.0.1", self.port), handler)
        self._ready.set()
        try:
            while not self._stop.is_set():
                server.serve_forever(timeout=0.02, blocking=False, handle_exit=False)
        finally:
            server.close_all()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> FtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
