"""The real ``evse`` commands: a daemon subprocess driven over its control socket."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from dev_csms import DevCsms

from tests.conftest import write_config


def evse(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evse", *args], capture_output=True,
                          text=True, check=False, timeout=30)


def test_help_documents_every_command() -> None:
    top = evse("--help")
    assert top.returncode == 0
    for command in ("run", "config", "status", "sim"):
        assert command in top.stdout
    sim = evse("sim", "--help").stdout
    for action in ("plug", "unplug", "swipe", "ev", "fault", "clear"):
        assert action in sim
    assert "--max-current" in evse("sim", "plug", "--help").stdout
    assert "--json" in evse("status", "--help").stdout


def test_commands_without_daemon_say_so(tmp_path: Path) -> None:
    path = write_config(tmp_path, "ws://127.0.0.1:9/")
    result = evse("status", "--config", str(path))
    assert result.returncode == 2
    assert "no daemon listening" in result.stderr


async def test_daemon_session_via_cli(tmp_path: Path, csms: DevCsms) -> None:
    path = write_config(tmp_path, f"ws://127.0.0.1:{csms.port}/")
    cfg = ["--config", str(path)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "evse", "run", *cfg,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        await csms.wait_for(lambda: csms.actions("StatusNotification"), timeout=20)

        async def run(*args: str) -> subprocess.CompletedProcess[str]:
            return await asyncio.to_thread(evse, *args)

        assert (await run("sim", "plug", "1", "--max-current", "10", "--phases", "1", *cfg)
                ).returncode == 0
        assert (await run("sim", "swipe", "DEMO01", *cfg)).returncode == 0
        await csms.wait_for(lambda: any(p["status"] == "Charging"
                                        for p in csms.actions("StatusNotification")))
        status = json.loads((await run("status", "--json", *cfg)).stdout)
        conn = status["connectors"][0]
        assert conn["state"] == "energy_transfer" and conn["contactor_closed"] is True
        assert conn["session"]["id_tag"] == "DEMO01"
        assert status["csms"]["state"] == "accepted"
        assert status["simulator"]["1"]["phases"] == 1
        text = (await run("status", *cfg)).stdout
        assert "energy_transfer" in text and "DEMO01" in text

        assert (await run("sim", "ev", "1", "pause", *cfg)).returncode == 0
        await csms.wait_for(lambda: csms.actions("StatusNotification")[-1]["status"]
                            == "SuspendedEV")
        assert (await run("sim", "ev", "1", "resume", *cfg)).returncode == 0
        await csms.wait_for(lambda: csms.actions("StatusNotification")[-1]["status"]
                            == "Charging")
        bad = await run("sim", "plug", "7", *cfg)
        assert bad.returncode == 2 and "no connector 7" in bad.stderr

        # SIGTERM while charging: contactor opened, StopTransaction delivered, clean exit.
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
        stops = csms.actions("StopTransaction")
        assert len(stops) == 1 and stops[0]["reason"] == "Reboot"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
