"""The control socket against hostile or careless clients, over real Unix sockets.

A running daemon (`evse run`, simulator, unreachable CSMS) must answer an oversized request
with an error and go on serving; too many idle clients get "busy" instead of starving it.
The server on its own: idle clients are dropped after the timeout, and commands that change
the charge point are refused to a peer that is neither root, the daemon's user, nor in the
admin group (peer credentials via SO_PEERCRED; the non-root peer is a forked child that
drops to uid/gid 65534, so those tests need root).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from evse.control import MAX_CLIENTS, MAX_REQUEST_BYTES, ControlError, ControlServer, request

NOBODY = 65534


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raw_exchange(path: Path, payload: bytes, timeout_s: float = 10.0) -> dict[str, Any]:
    """Send ``payload`` as is and return the decoded answer (blocking client)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(path))
        # The server may answer and close before reading everything.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(payload)
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer: dict[str, Any] = json.loads(data)
    return answer


@pytest.fixture
async def daemon(short_tmp: Path) -> AsyncIterator[Path]:
    """`evse run` on the simulator; yields its control socket path."""
    sock = short_tmp / "control.sock"
    config = short_tmp / "evse.toml"
    config.write_text(f"""
[station]
id = "CP-CTL-1"
state_dir = "{short_tmp / 'state'}"
control_socket = "{sock}"

[ocpp]
url = "ws://127.0.0.1:{closed_port()}/"

[hardware]
driver = "sim"

[[connector]]
id = 1
""")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "evse", "run", "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    await asyncio.to_thread(request, sock, "status", timeout_s=1.0)
                    break
                except ControlError:
                    assert proc.returncode is None, "daemon exited at start"
                    await asyncio.sleep(0.1)
        yield sock
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)


async def test_oversized_request_is_refused_and_daemon_keeps_serving(daemon: Path) -> None:
    # The case from the field: a 60 000-character idTag hung the daemon.
    payload = json.dumps({"command": "sim.swipe", "params": {"id_tag": "X" * 60_000}})
    answer = await asyncio.to_thread(raw_exchange, daemon, payload.encode() + b"\n", 5.0)
    assert answer["ok"] is False and "too large" in answer["error"]
    # The client refuses to send it in the first place.
    with pytest.raises(ControlError, match="too large"):
        request(daemon, "sim.swipe", id_tag="X" * 60_000)
    status = await asyncio.to_thread(request, daemon, "status", timeout_s=5.0)
    assert status["station_id"] == "CP-CTL-1"
    # And the technician's command, --config before the subcommand.
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "evse", "--config", str(daemon.parent / "evse.toml"), "status",
        "--json", stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(cli.communicate(), 30)
    assert cli.returncode == 0 and json.loads(out)["station_id"] == "CP-CTL-1"


async def test_too_many_idle_clients_get_busy_not_a_hang(daemon: Path) -> None:
    idle = []
    try:
        for _ in range(MAX_CLIENTS):
            _, writer = await asyncio.open_unix_connection(str(daemon))
            idle.append(writer)
        # The listen backlog is FIFO: the daemon accepts the idle ones before this one.
        with pytest.raises(ControlError, match="busy"):
            await asyncio.to_thread(request, daemon, "status", timeout_s=5.0)
    finally:
        for writer in idle:
            writer.close()
    async with asyncio.timeout(10):  # slots come back as the idle clients go
        while True:
            try:
                await asyncio.to_thread(request, daemon, "status", timeout_s=5.0)
                break
            except ControlError:
                await asyncio.sleep(0.05)


async def status(params: dict[str, Any]) -> dict[str, Any]:
    return {"station_id": "X"}


def server(path: Path, **kwargs: Any) -> ControlServer:
    async def plug(params: dict[str, Any]) -> dict[str, Any]:
        return {"plugged": params["connector_id"]}

    return ControlServer(path, {"status": status, "sim.plug": plug}, **kwargs)


async def test_idle_client_is_dropped_after_the_timeout(short_tmp: Path) -> None:
    srv = server(short_tmp / "c.sock", request_timeout_s=0.3)
    await srv.start()
    try:
        reader, writer = await asyncio.open_unix_connection(str(short_tmp / "c.sock"))
        writer.write(b'{"command": "sta')  # starts, never finishes
        async with asyncio.timeout(5):
            answer = json.loads(await reader.read())
        assert answer["ok"] is False and "timeout" in answer["error"]
        writer.close()
    finally:
        await srv.close()


async def test_request_size_limit_is_enforced(short_tmp: Path) -> None:
    srv = server(short_tmp / "c.sock")
    await srv.start()
    try:
        padding = "p" * (MAX_REQUEST_BYTES - 60)
        fits = json.dumps({"command": "status", "params": {"x": padding}}).encode() + b"\n"
        assert len(fits) <= MAX_REQUEST_BYTES
        ok = await asyncio.to_thread(raw_exchange, short_tmp / "c.sock", fits)
        assert ok == {"ok": True, "result": {"station_id": "X"}}
        big = json.dumps({"command": "status", "params": {"x": "p" * 1_000_000}}).encode()
        answer = await asyncio.to_thread(raw_exchange, short_tmp / "c.sock", big + b"\n")
        assert answer["ok"] is False and "too large" in answer["error"]
        nested = b"[" * 2000 + b"]" * 2000 + b"\n"
        answer = await asyncio.to_thread(raw_exchange, short_tmp / "c.sock", nested)
        assert answer == {"ok": False, "error": "malformed request"}
    finally:
        await srv.close()


def exchange_as(path: Path, uid: int, gid: int, payload: bytes) -> dict[str, Any]:
    """Connect from a forked child running as ``uid``/``gid`` (no supplementary groups)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop privileges, talk, report through the pipe, never return
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            answer = json.dumps(raw_exchange(path, payload)).encode()
        except BaseException as exc:
            answer = json.dumps({"child_error": repr(exc)}).encode()
        os.write(wfd, answer)
        os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    result: dict[str, Any] = json.loads(data)
    assert "child_error" not in result, result
    return result


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")


@needs_root
@pytest.mark.parametrize("admin_group", ["evse-admin-missing", "nogroup"])
async def test_mutating_commands_need_root_or_the_admin_group(
    short_tmp: Path, admin_group: str
) -> None:
    """nobody (primary group nogroup) is in the evse group's place: may read the status;
    may change something only when nogroup is the admin group."""
    path = short_tmp / "c.sock"
    srv = server(path, admin_group=admin_group)
    await srv.start()
    try:
        os.chmod(short_tmp, 0o711)
        os.chown(path, 0, NOBODY)  # socket group: the technician's group
        plug = b'{"command": "sim.plug", "params": {"connector_id": 1}}\n'
        read = b'{"command": "status"}\n'
        status_answer = await asyncio.to_thread(exchange_as, path, NOBODY, NOBODY, read)
        assert status_answer == {"ok": True, "result": {"station_id": "X"}}
        plug_answer = await asyncio.to_thread(exchange_as, path, NOBODY, NOBODY, plug)
        if admin_group == "nogroup":
            assert plug_answer == {"ok": True, "result": {"plugged": 1}}
        else:
            assert plug_answer["ok"] is False
            assert "permission denied" in plug_answer["error"]
            assert admin_group in plug_answer["error"]
        # root always may.
        assert (await asyncio.to_thread(raw_exchange, path, plug))["ok"] is True
    finally:
        await srv.close()


@needs_root
async def test_socket_is_closed_to_others(short_tmp: Path) -> None:
    """Not the daemon's user, not in its group: cannot connect at all (mode 0660)."""
    path = short_tmp / "c.sock"
    srv = server(path)
    await srv.start()
    try:
        os.chmod(short_tmp, 0o711)
        assert path.stat().st_mode & 0o777 == 0o660
        with pytest.raises(AssertionError, match="PermissionError"):
            await asyncio.to_thread(exchange_as, path, NOBODY, NOBODY, b'{"command":"status"}\n')
    finally:
        await srv.close()
