"""The daemon's local control socket: a small JSON protocol over a Unix domain socket.

Protocol (one request per connection, UTF-8, newline-terminated JSON):

    → {"command": "status", "params": {}}
    ← {"ok": true, "result": {...}}          or   {"ok": false, "error": "text"}

Commands: ``status``; ``sim.plug`` {connector_id, max_current_a, phases}; ``sim.unplug``
{connector_id}; ``sim.swipe`` {id_tag}; ``sim.ev`` {connector_id, action: pause|resume};
``sim.fault`` / ``sim.clear`` {connector_id, kind}. The socket is created mode 0660 in the
state (or runtime) directory, so only the daemon's user and group can drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[Any]]

#: Largest request accepted, bytes.
MAX_REQUEST_BYTES = 64 * 1024


class ControlError(Exception):
    """The daemon is not reachable, or it refused the command (message says why)."""


def request(path: Path, command: str, timeout_s: float = 10.0, **params: Any) -> dict[str, Any]:
    """Send one command to the daemon at ``path`` and return its result.

    Raises:
        ControlError: no daemon listening, timeout, or the daemon answered with an error.
    """
    payload = json.dumps({"command": command, "params": params}).encode() + b"\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(path))
            sock.sendall(payload)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except (FileNotFoundError, ConnectionRefusedError):
        raise ControlError(f"no daemon listening on {path} (is `evse run` running?)") from None
    except OSError as exc:
        raise ControlError(f"control socket {path}: {exc}") from None
    try:
        answer = json.loads(b"".join(chunks))
    except json.JSONDecodeError:
        raise ControlError(f"control socket {path}: malformed answer") from None
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error", "unknown error")))
    result: dict[str, Any] = answer.get("result") or {}
    return result


class ControlServer:
    """Serves commands from ``handlers`` (name → async handler(params) → JSON-able result)."""

    def __init__(self, path: Path, handlers: dict[str, Handler]) -> None:
        self.path = path
        self._handlers = handlers
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Bind the socket (replacing a stale one left by a killed daemon)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        os.chmod(self.path, 0o660)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            answer = await self._dispatch(line)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _dispatch(self, line: bytes) -> dict[str, Any]:
        if len(line) > MAX_REQUEST_BYTES:
            return {"ok": False, "error": "request too large"}
        try:
            message = json.loads(line)
            command = str(message["command"])
            params = dict(message.get("params") or {})
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "error": "malformed request"}
        handler = self._handlers.get(command)
        if handler is None:
            return {"ok": False, "error": f"unknown command {command!r}"}
        try:
            return {"ok": True, "result": await handler(params)}
        except (ValueError, KeyError, TypeError) as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:
            log.exception("control command %s failed", command)
            return {"ok": False, "error": f"internal error: {exc}"}
