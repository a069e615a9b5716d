"""Power loss for real: the daemon as a subprocess, SIGKILLed at random points (mid-session,
mid-write, mid-replay) over many iterations, between it and a real CSMS a TCP proxy that cuts,
stalls and restores the link. Afterwards the CSMS's log must hold every transaction message
exactly once (after the documented dedupe by message id), with real transactionIds and
ordered meter values, and the state database must be intact.

``KILL_ITERATIONS`` (default 50) and ``KILL_SEED`` tune it. Each kill's offset (seconds after
the daemon answered) is printed as it happens, with the seed, so a failing run's output says
where every kill fell (pytest shows it on failure) and ``KILL_SEED`` replays the same plan.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dev_csms import DevCsms

from evse.control import ControlError, request
from ocpp_client.v16.meter_values import parse_timestamp
from tests.conftest import ROOT
from tests.offline.csms_log import analyse
from tests.offline.proxy import TcpProxy

ITERATIONS = int(os.environ.get("KILL_ITERATIONS", "50"))
SEED = int(os.environ.get("KILL_SEED", "20261121"))


def _config(directory: Path, port: int) -> Path:
    text = f"""
[station]
id = "CP-KILL"
state_dir = "state"

[ocpp]
url = "ws://127.0.0.1:{port}/"
call_timeout_s = 1.5
reconnect_min_s = 0.1
reconnect_max_s = 0.3

[hardware]
driver = "sim"

[ocpp.configuration]
MeterValueSampleInterval = 1
AllowOfflineTxForUnknownId = true
TransactionMessageAttempts = 1000
TransactionMessageRetryInterval = 0
WebSocketPingInterval = 0
StopTxnSampledData = "Energy.Active.Import.Register"

[[connector]]
id = 1
max_current_a = 32.0

[[connector]]
id = 2
max_current_a = 32.0

[logging]
level = "info"
"""
    path = directory / "evse.toml"
    path.write_text(text)
    return path


class DaemonProcess:
    """``python -m evse run`` in a subprocess; logs appended to ``log``."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.socket = config.parent / "state" / "control.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "evse", "run", "--config", str(self.config)],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    async def ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None and self.proc.poll() is None, "daemon died"
            try:
                await self.request("status")
                return
            except ControlError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.02)

    async def request(self, command: str, **params: Any) -> dict[str, Any]:
        return await asyncio.to_thread(request, self.socket, command, 2.0, **params)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=15)


async def _drive(daemon: DaemonProcess, proxy: TcpProxy, rng: random.Random) -> None:
    """Random user and network activity, in random order, until cancelled (by the kill)."""
    async def network() -> None:
        net = rng.random()
        if net < 0.3:
            proxy.cut()
        elif net < 0.45:
            proxy.stall()
        elif net < 0.8:
            proxy.restore()

    async def session(cid: int, tag: str) -> None:
        if rng.random() < 0.8:
            await daemon.request("sim.plug", connector_id=cid, max_current_a=16.0, phases=3)
            await daemon.request("sim.swipe", id_tag=tag)

    tag2 = "TAG-B" if rng.random() < 0.8 else "TAG-X"  # TAG-X: Invalid
    steps = [network, lambda: session(1, "TAG-A"), lambda: session(2, tag2)]
    rng.shuffle(steps)
    for step in steps:
        await step()
        await asyncio.sleep(rng.uniform(0.0, 0.25))
    await asyncio.sleep(rng.uniform(0.0, 0.8))
    for cid in (1, 2):
        if rng.random() < 0.35:
            await daemon.request("sim.unplug", connector_id=cid)
    await asyncio.sleep(10)


async def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    # TAG-X is Invalid: offline-started sessions with it end DeAuthorized once online.
    csms = DevCsms(port=0, accept_tags=("TAG-A", "TAG-B"))
    await csms.start()
    proxy = TcpProxy(csms.port)
    await proxy.start()
    config = _config(tmp_path, proxy.port)
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    started = time.monotonic()
    kills: list[float] = []
    try:
        for _ in range(ITERATIONS):
            daemon.start()
            await daemon.ready()
            driver = asyncio.ensure_future(_drive(daemon, proxy, rng))
            offset = rng.uniform(0.05, 1.3)
            await asyncio.sleep(offset)
            daemon.kill()  # SIGKILL: no shutdown code runs
            kills.append(time.time())
            print(f"KILL_SEED={SEED} kill {len(kills)}/{ITERATIONS}: +{offset:.3f} s after "
                  f"ready, at {kills[-1]:.3f}", flush=True)
            driver.cancel()
            await asyncio.gather(driver, return_exceptions=True)
            if rng.random() < 0.6:
                proxy.restore()
        proxy.restore()
        daemon.start()
        await daemon.ready()
        # Everything queued is delivered once the link stays up.
        deadline = time.monotonic() + 60
        while True:
            status = await daemon.request("status")
            if (status["csms"]["state"] == "accepted" and status["csms"]["queued"] == 0
                    and all(c["session"] is None for c in status["connectors"])):
                # Connector state re-derived from the (fresh, unplugged) hardware.
                assert [c["state"] for c in status["connectors"]] == ["idle"] * 2
                break
            assert time.monotonic() < deadline, status
            await asyncio.sleep(0.1)
        assert daemon.terminate() == 0
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
        await proxy.stop()
        await csms.stop()
    elapsed = time.monotonic() - started

    delivery = analyse(csms.frames, "CP-KILL")
    assert not delivery.errors, "\n".join(delivery.errors[:20])
    db = sqlite3.connect(tmp_path / "state" / "evse.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        sessions = db.execute("SELECT session_id, stop_reason FROM sessions").fetchall()
        assert all(reason is not None for _, reason in sessions)
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
        dropped = db.execute(
            "SELECT COALESCE(SUM(count), 0) FROM outbox_stats WHERE name = 'dropped'"
        ).fetchone()[0]
        assert dropped == 0
        # Every local session reached the CSMS as exactly one StartTransaction.
        assert len(delivery.starts) == len(sessions)
        reasons = [r for _, r in sessions]
    finally:
        db.close()
    assert len(delivery.transaction_ids) == len(delivery.stops)
    # A PowerLoss stop is stamped with the session's last persisted reading: no later than
    # the kill, and not much earlier (a sample is committed every MeterValueSampleInterval,
    # 1 s here; the alive stamp every 60 s).
    for stop in delivery.stops.values():
        if stop["reason"] == "PowerLoss":
            at = parse_timestamp(stop["timestamp"])
            after = [k for k in kills if k >= at - 0.01]
            assert after and min(after) - at < 3.0, (stop, after[:1])
    assert "power_loss" in reasons
    print(f"\nkill test: {ITERATIONS} SIGKILLs in {elapsed:.1f} s, {len(sessions)} sessions, "
          f"{delivery.calls} transaction-related CALLs, {delivery.resent} identical re-sends, "
          f"stop reasons {sorted(set(reasons))}")
