"""End to end: `evse run` under a fake systemd (NOTIFY_SOCKET bound by the test).

READY=1 only after init, STATUS= lines, periodic WATCHDOG=1, STOPPING=1 and a clean exit on
SIGTERM, and no secret from the config in the log. Needs the daemon (evse/daemon.py, the
composition root); skipped with that reason until it is merged into this branch.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("evse.daemon") is None,
    reason="evse.daemon (the composition root) is not in this branch yet: "
    "un-skip by merging the daemon",
)

SECRET = "pw-Zq81-not-for-logs"


def closed_port() -> int:
    """A TCP port on 127.0.0.1 with nothing listening (the CSMS is unreachable)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(directory: Path) -> Path:
    config = directory / "evse.toml"
    config.write_text(
        f"""
[station]
id = "CP-SD-1"
state_dir = "{directory / 'state'}"
control_socket = "{directory / 'control.sock'}"

[ocpp]
url = "ws://CP-SD-1:{SECRET}@127.0.0.1:{closed_port()}/"
reconnect_min_s = 0.2
reconnect_max_s = 1.0

[hardware]
driver = "sim"

[[connector]]
id = 1

[logging]
level = "debug"
"""
    )
    return config


async def test_notify_lifecycle_under_fake_systemd(
    short_tmp: Path, notify_socket: Any
) -> None:
    config = write_config(short_tmp)
    env = {
        **os.environ,
        "NOTIFY_SOCKET": notify_socket.address,
        "WATCHDOG_USEC": "1000000",  # pings every 0.5 s
    }
    env.pop("WATCHDOG_PID", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "evse", "run", "--config", str(config),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output = b""
    try:
        await notify_socket.wait_for(lambda m: "READY=1" in m.split("\n"), timeout_s=30)
        before_ready = notify_socket.messages[:-1]
        assert not any("STOPPING=1" in m for m in before_ready)
        await notify_socket.wait_for(lambda m: m == "WATCHDOG=1", timeout_s=3)
        await notify_socket.wait_for(lambda m: m == "WATCHDOG=1", timeout_s=3)
        statuses = [m for m in notify_socket.messages if "STATUS=" in m]
        assert statuses, notify_socket.messages
        proc.send_signal(signal.SIGTERM)
        await notify_socket.wait_for(lambda m: "STOPPING=1" in m.split("\n"), timeout_s=10)
        output, _ = await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode == 0, output.decode(errors="replace")[-3000:]
    finally:
        if proc.returncode is None:
            proc.kill()
            output += (await proc.communicate())[0]
    assert SECRET.encode() not in output
