"""Power loss for real under OCPP 2.0.1: the kill -9 test of the 1.6 suite
(tests/offline/test_kill.py: its daemon process and random driver) with
``[ocpp] version = "2.0.1"``. Afterwards the CSMS's log must hold every transaction the
station opened exactly once, each Started once and Ended once, seqNo contiguous from 0, no
re-send differing from the original, and the state database intact and drained.

Fewer kills than the 1.6 run (``KILL_ITERATIONS_201``, default 6) keep the suite fast; the
queue and the kill paths are shared with 1.6.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import time
from pathlib import Path

from dev_csms import DevCsms

from tests.offline.proxy import TcpProxy
from tests.offline.test_kill import SEED, DaemonProcess, _drive

from .tx_log import analyse_201

ITERATIONS = int(os.environ.get("KILL_ITERATIONS_201", "6"))


def _config(directory: Path, port: int) -> Path:
    text = f"""
[station]
id = "CP-KILL"
state_dir = "state"

[ocpp]
url = "ws://127.0.0.1:{port}/"
version = "2.0.1"
call_timeout_s = 1.5
reconnect_min_s = 0.1
reconnect_max_s = 0.3

[hardware]
driver = "sim"

[ocpp201.variables]
"SampledDataCtrlr.TxUpdatedInterval" = 1
"AuthCtrlr.OfflineTxForUnknownIdEnabled" = true
"OCPPCommCtrlr.MessageAttempts[TransactionEvent]" = 1000
"OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]" = 0
"OCPPCommCtrlr.WebSocketPingInterval" = 0

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


async def test_sigkill_201_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    csms = DevCsms(port=0, accept_tags=("TAG-A", "TAG-B"), version="2.0.1")
    await csms.start()
    proxy = TcpProxy(csms.port)
    await proxy.start()
    daemon = DaemonProcess(_config(tmp_path, proxy.port), tmp_path / "daemon.log")
    try:
        for _ in range(ITERATIONS):
            daemon.start()
            await daemon.ready()
            driver = asyncio.ensure_future(_drive(daemon, proxy, rng))
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            daemon.kill()  # SIGKILL: no shutdown code runs
            driver.cancel()
            await asyncio.gather(driver, return_exceptions=True)
            if rng.random() < 0.6:
                proxy.restore()
        proxy.restore()
        daemon.start()
        await daemon.ready()
        deadline = time.monotonic() + 60
        while True:
            status = await daemon.request("status")
            if (status["csms"]["state"] == "accepted" and status["csms"]["queued"] == 0
                    and all(c["session"] is None for c in status["connectors"])):
                break
            assert time.monotonic() < deadline, status
            await asyncio.sleep(0.1)
        assert daemon.terminate() == 0
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
        await proxy.stop()
        await csms.stop()

    delivery = analyse_201(csms.frames, "CP-KILL")
    assert not delivery.errors, "\n".join(delivery.errors[:20])
    db = sqlite3.connect(tmp_path / "state" / "evse.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
        dropped = db.execute("SELECT COALESCE(SUM(count), 0) FROM outbox_stats"
                             " WHERE name = 'dropped'").fetchone()[0]
        assert dropped == 0
        opened = {r[0] for r in db.execute(
            "SELECT transaction_id FROM ocpp201_transactions")}
        still_open = db.execute(
            "SELECT COUNT(*) FROM ocpp201_transactions WHERE open = 1").fetchone()[0]
    finally:
        db.close()
    # Every transaction the station opened reached the CSMS, started and ended, once.
    assert opened == set(delivery.events)
    assert still_open == 0
    assert sorted(delivery.ended) == sorted(delivery.events)
    assert opened, "no transaction at all: the test drove nothing"
    reasons = sorted({evs[-1]["transactionInfo"]["stoppedReason"]
                      for evs in delivery.events.values()})
    print(f"\n2.0.1 kill test: {ITERATIONS} SIGKILLs, {len(opened)} transactions, "
          f"{delivery.resent} identical re-sends, stoppedReasons {reasons}")
