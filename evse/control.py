"""The daemon's local control socket: a small JSON protocol over a Unix domain socket.

Protocol (one request per connection, UTF-8, newline-terminated JSON):

    → {"command": "status", "params": {}}
    ← {"ok": true, "result": {...}}          or   {"ok": false, "error": "text"}

Commands: ``status``; ``fault.reset`` {connector_id}; ``sim.plug`` {connector_id,
max_current_a, phases}; ``sim.unplug`` {connector_id}; ``sim.swipe`` {id_tag}; ``sim.ev``
{connector_id, action: pause|resume}; ``sim.fault`` / ``sim.clear`` {connector_id, kind};
``sim.power_fail`` {lost}.

Who may do what (docs/deploy.md, "Who may use the control socket"):

- connecting at all: the socket is mode 0660 (owner: the daemon's user, group ``evse``), so
  the daemon's user and members of its group;
- read-only commands (``status``): anyone who can connect;
- every other command changes the charge point: only root, the daemon's own user, or a
  member of :data:`ADMIN_GROUP`, checked with the peer's credentials (``SO_PEERCRED``).

Bad clients cannot hurt the daemon: a request must arrive within
:data:`REQUEST_TIMEOUT_S`, at most :data:`MAX_REQUEST_BYTES` long, and at most
:data:`MAX_CLIENTS` connections are served at once (more are refused at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import logging
import os
import pwd
import socket
import struct
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[Any]]

#: Largest request accepted, bytes (newline included). A command is a few hundred bytes.
MAX_REQUEST_BYTES = 4096

#: A client must have sent its whole request this long after connecting, s.
REQUEST_TIMEOUT_S = 5.0

#: Connections served at the same time; a further one is answered "busy" and closed.
MAX_CLIENTS = 8

#: Group whose members may run commands that change the charge point.
ADMIN_GROUP = "evse-admin"

#: Commands anyone who can connect may run (they change nothing).
READ_ONLY_COMMANDS = frozenset({"status"})


class ControlError(Exception):
    """The daemon is not reachable, or it refused the command (message says why)."""


@dataclass(frozen=True)
class Peer:
    """The process at the other end of a connection (``SO_PEERCRED``)."""

    pid: int
    uid: int
    gid: int


def peer_credentials(sock: socket.socket) -> Peer:
    """The credentials of the process that connected ``sock`` (Linux ``SO_PEERCRED``).

    Raises:
        OSError: the socket is not a connected Unix socket.
    """
    fmt = "3i"  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(fmt))
    pid, uid, gid = struct.unpack(fmt, raw)
    return Peer(pid, uid, gid)


def is_admin(peer: Peer, admin_group: str = ADMIN_GROUP) -> bool:
    """True for root, the daemon's own user, or a member of ``admin_group``.

    Membership is read from the group database (primary group or supplementary member), as
    ``id USER`` shows it.
    """
    if peer.uid in (0, os.geteuid()):
        return True
    try:
        admin_gid = grp.getgrnam(admin_group).gr_gid
    except KeyError:
        return False
    if peer.gid == admin_gid:
        return True
    try:
        user = pwd.getpwuid(peer.uid).pw_name
    except KeyError:
        return False
    return admin_gid in os.getgrouplist(user, peer.gid)


def request(path: Path, command: str, timeout_s: float = 10.0, **params: Any) -> dict[str, Any]:
    """Send one command to the daemon at ``path`` and return its result.

    Raises:
        ControlError: no daemon listening, timeout, or the daemon answered with an error.
    """
    payload = json.dumps({"command": command, "params": params}).encode() + b"\n"
    if len(payload) > MAX_REQUEST_BYTES:
        raise ControlError(f"request too large ({len(payload)} bytes, at most "
                           f"{MAX_REQUEST_BYTES})")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(path))
            # A daemon that refuses at once (busy) answers and closes before reading.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(payload)
            chunks: list[bytes] = []
            # The answer is one line; stop there (a daemon that closed with our request
            # unread makes the next recv() fail with ECONNRESET instead of returning EOF).
            while not chunks or not chunks[-1].endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    except (FileNotFoundError, ConnectionRefusedError):
        raise ControlError(f"no daemon listening on {path} (is `evse run` running?)") from None
    except PermissionError:
        raise ControlError(
            f"control socket {path}: permission denied (join the evse group: "
            "docs/deploy.md)") from None
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
    """Serves commands from ``handlers`` (name → async handler(params) → JSON-able result).

    Commands not in ``read_only`` are refused to peers that are not admins (:func:`is_admin`).
    """

    def __init__(
        self,
        path: Path,
        handlers: dict[str, Handler],
        *,
        read_only: Collection[str] = READ_ONLY_COMMANDS,
        admin_group: str = ADMIN_GROUP,
        max_clients: int = MAX_CLIENTS,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self.path = path
        self._handlers = handlers
        self._read_only = frozenset(read_only)
        self._admin_group = admin_group
        self._max_clients = max_clients
        self._timeout_s = request_timeout_s
        self._max_bytes = max_request_bytes
        self._clients = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Bind the socket (replacing a stale one left by a killed daemon), mode 0660."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        # The StreamReader limit makes readline() stop at the size limit instead of
        # buffering whatever a client sends.
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=self._max_bytes)
        os.chmod(self.path, 0o660)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._clients >= self._max_clients:
            await self._answer(writer, {"ok": False, "error": "busy: too many clients"})
            return
        self._clients += 1
        try:
            answer = await self._handle(reader, writer)
            await self._answer(writer, answer)
        finally:
            self._clients -= 1

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._timeout_s):
                line = await reader.readline()
        except TimeoutError:
            return {"ok": False, "error": f"timeout: no request within {self._timeout_s:g} s"}
        except ValueError:  # LimitOverrunError: no newline within the limit
            return {"ok": False, "error": f"request too large (at most {self._max_bytes} bytes)"}
        except ConnectionError:
            return {"ok": False, "error": "connection lost"}
        if not line.endswith(b"\n"):
            return {"ok": False, "error": "malformed request (no newline)"}
        try:
            message = json.loads(line)
            command = str(message["command"])
            params = dict(message.get("params") or {})
        except (ValueError, KeyError, TypeError, RecursionError):
            return {"ok": False, "error": "malformed request"}
        handler = self._handlers.get(command)
        if handler is None:
            return {"ok": False, "error": f"unknown command {command!r}"}
        if command not in self._read_only:
            sock = writer.get_extra_info("socket")
            try:
                peer = peer_credentials(sock)
            except (OSError, AttributeError):
                return {"ok": False, "error": "permission denied: peer unknown"}
            if not is_admin(peer, self._admin_group):
                log.warning("control: %s refused to uid %d (pid %d): not root nor in %s",
                            command, peer.uid, peer.pid, self._admin_group)
                return {"ok": False, "error": f"permission denied: {command} needs root or "
                                              f"membership of group {self._admin_group}"}
        try:
            return {"ok": True, "result": await handler(params)}
        except (ValueError, KeyError, TypeError) as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:
            log.exception("control command %s failed", command)
            return {"ok": False, "error": f"internal error: {exc}"}

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, answer: dict[str, Any]) -> None:
        try:
            writer.write(json.dumps(answer).encode() + b"\n")
            # A client that never reads must not hold the task: the answer is small, so a
            # drain that does not finish at once means the peer is gone or stuck.
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                await writer.drain()
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()
