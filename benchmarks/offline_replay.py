#!/usr/bin/env python3
"""Offline replay benchmark: how fast the durable queue drains after a reconnect, next to the
round-trip floor of a bare ``ocpp``-library client on the same loopback, in the same run.

1. A real CSMS (``scripts/dev_csms.py``: the ``ocpp`` library's central system, schema
   validation on) listens on 127.0.0.1.
2. *Bare*: an ``ocpp.v16.ChargePoint`` client sends N MeterValues CALLs, one at a time
   (OCPP-J allows one outstanding CALL), and the rate is measured — the floor. It runs
   before and after the replay; the mean is the reference.
3. *Replay*: the daemon (in-process, sim backend, wired as ``evse run`` wires it) runs with
   the CSMS refusing it, so one offline session queues N transaction messages through the
   real path (Station events → adapter → SQLite outbox, WAL + synchronous=FULL):
   StartTransaction, the Transaction.Begin meter value, N−3 periodic meter values,
   StopTransaction. Then the CSMS lets it in and the replay is timed from Boot accepted
   until the queue is empty.
4. *Live*: while the backlog drains, a new session starts on connector 2 (card →
   Authorize.req, StatusNotification, StartTransaction); the worst delay of its messages
   is reported (target ≤ 1 s).
5. *Loss*: the CSMS log must hold every queued message (deduplicated by message id).

Run:  python benchmarks/offline_replay.py [--messages 10000]
Last line: ``offline_replay msgs_per_s=… bare_msgs_per_s=… ratio=… lost=…``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import websockets  # noqa: E402
from dev_csms import DevCsms  # noqa: E402
from ocpp.v16 import ChargePoint, call  # noqa: E402

from evse.daemon import Daemon, load_checked_config  # noqa: E402
from evse.domain import MeterSample, ReadingContext  # noqa: E402
from evse.state_db import transaction  # noqa: E402
from hal.meter import MeterReading  # noqa: E402
from ocpp_client.v16.meter_values import meter_value  # noqa: E402

MEASURANDS = ["Energy.Active.Import.Register", "Power.Active.Import", "Current.Import",
              "Voltage"]


class GatedCsms(DevCsms):
    """DevCsms that refuses charge points in ``refused`` (closes the WebSocket at once)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refused: set[str] = set()

    async def _handle(self, connection: Any) -> None:
        station_id = connection.request.path.strip("/").split("/")[-1]
        if station_id in self.refused:
            await connection.close(1013, "try again later")
            return
        await super()._handle(connection)


def _payload(n: int) -> dict[str, Any]:
    reading = MeterReading(1000.0 + n, 11040.0, (230.0,) * 3, (16.0,) * 3, time.time())
    return {"connector_id": 1, "transaction_id": 1,
            "meter_value": [meter_value(reading, MEASURANDS, "Sample.Periodic")]}


async def bare_rate(port: int, n: int) -> float:
    """Messages/s of a bare ``ocpp`` client sending ``n`` MeterValues CALLs in sequence."""
    async with websockets.connect(f"ws://127.0.0.1:{port}/BARE",
                                  subprotocols=[websockets.Subprotocol("ocpp1.6")]) as ws:
        cp = ChargePoint("BARE", ws, response_timeout=30)
        reader = asyncio.ensure_future(cp.start())
        payloads = [call.MeterValues(**_payload(i)) for i in range(n)]
        started = time.perf_counter()
        for payload in payloads:
            await cp.call(payload, suppress=False)
        elapsed = time.perf_counter() - started
        reader.cancel()
    return n / elapsed


def _config(directory: Path, port: int, n: int) -> Path:
    path = directory / "evse.toml"
    path.write_text(f"""
[station]
id = "CP-BENCH"
state_dir = "state"

[ocpp]
url = "ws://127.0.0.1:{port}/"
call_timeout_s = 30.0
reconnect_min_s = 0.1
reconnect_max_s = 0.2
queue_max_messages = {max(n * 2, 1000)}

[hardware]
driver = "sim"

[ocpp.configuration]
AllowOfflineTxForUnknownId = true
MeterValueSampleInterval = 0
MeterValuesSampledData = "{",".join(MEASURANDS)}"

[[connector]]
id = 1
[[connector]]
id = 2

[logging]
level = "warning"
""")
    return path


async def _until(predicate: Any, timeout: float = 600.0, step: float = 0.002) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(step)


async def replay(csms: GatedCsms, n: int) -> dict[str, Any]:
    """Queue ``n`` transaction messages offline, reconnect, time the replay."""
    with tempfile.TemporaryDirectory() as tmp:
        csms.refused.add("CP-BENCH")
        daemon = Daemon(load_checked_config(str(_config(Path(tmp), csms.port, n))))
        await daemon.start()
        try:
            return await _replay(daemon, csms, n)
        finally:
            await daemon.shutdown()


async def _replay(daemon: Daemon, csms: GatedCsms, n: int) -> dict[str, Any]:
    station, adapter = daemon.station, daemon.adapter
    sim = daemon.board.simulator if daemon.board else None
    assert station is not None and sim is not None and daemon.db is not None
    outbox: Any = adapter.outbox  # type: ignore[union-attr]
    # One offline session: StartTransaction + Transaction.Begin value ...
    sim.plug(1, 16.0, 3)
    await station.present_card("OFFLINE-1")
    await _until(lambda: station.connectors[1].session is not None, 10)
    session = station.connectors[1].session
    assert session is not None
    await _until(lambda: len(outbox) >= 2, 10)
    # ... N−3 periodic meter values through the real event path (one commit for speed) ...
    fill_started = time.perf_counter()
    with transaction(daemon.db):
        for i in range(n - 3):
            reading = MeterReading(1000.0 + i, 11040.0, (230.0,) * 3, (16.0,) * 3,
                                   station.clock.now())
            station._publish(MeterSample(1, session.session_id, reading,
                                         ReadingContext.PERIODIC))
    fill_s = time.perf_counter() - fill_started
    # ... and StopTransaction.
    sim.unplug(1)
    await _until(lambda: station.connectors[1].session is None and len(outbox) >= n, 10)
    queued = len(outbox)
    # The messages to find at the CSMS: exactly those queued now (a message queued later,
    # e.g. a security event of the reconnect, is not part of the backlog).
    backlog_ids = {row[0] for row in daemon.db.execute("SELECT unique_id FROM outbox")}

    before = len(csms.frames)
    csms.refused.discard("CP-BENCH")
    await _until(lambda: adapter.online, 30)  # type: ignore[union-attr]
    started = time.perf_counter()
    live: dict[str, float] = {}

    async def live_session() -> None:
        await _until(lambda: len(outbox) < queued * 0.7, 600)
        remaining = len(outbox)
        sim.plug(2, 16.0, 3)
        t0 = time.perf_counter()
        await station.present_card("TAG-A")  # Authorize.req while the backlog drains
        live["authorize_s"] = time.perf_counter() - t0

        scanned = [0]
        found: set[tuple[str, str]] = set()

        def arrived(action: str, status: str = "") -> bool:
            # Incremental scan of the CSMS log (a full scan every poll would slow the run).
            calls = csms.calls
            for sid, a, p, _ in calls[scanned[0]:]:
                if sid == "CP-BENCH" and p.get("connectorId") == 2:
                    found.add((a, str(p.get("status", ""))))
            scanned[0] = len(calls)
            return (action, status) in found

        await _until(lambda: arrived("StartTransaction"), 30)
        live["start_transaction_s"] = time.perf_counter() - t0
        await _until(lambda: arrived("StatusNotification", status="Charging"), 30)
        live["status_charging_s"] = time.perf_counter() - t0
        live["backlog_at_start"] = remaining
        live["backlog_left"] = len(outbox)

    live_task = asyncio.ensure_future(live_session())
    await _until(lambda: len(outbox) <= 1 and live_task.done(), 600)
    await _until(lambda: len(outbox) == 0, 600)
    elapsed = time.perf_counter() - started
    live_task.result()

    # Loss: every message of the backlog must be in the CSMS log (by message id: a
    # re-sent message keeps its id, so duplicates count once).
    seen: set[str] = set()
    for frame in csms.frames[before:]:
        msg = frame.parsed
        if frame.station_id == "CP-BENCH" and frame.direction == "in" and msg[0] == 2:
            seen.add(msg[1])
    lost = len(backlog_ids - seen)
    return {"queued": queued, "fill_s": fill_s, "replay_s": elapsed,
            "msgs_per_s": queued / elapsed, "lost": lost, "live": live,
            "dropped": outbox.dropped, "thinned": outbox.thinned}


async def main_async(n: int) -> int:
    # The refused connects before the replay log warnings; keep the output to the table.
    logging.basicConfig(level=logging.ERROR)
    csms = GatedCsms(port=0, accept_tags=("TAG-A",))
    await csms.start()
    try:
        # The bare floor is measured before and after the replay (the CSMS's log grows
        # during the run, the machine may be noisy) and averaged.
        bare_before = await bare_rate(csms.port, n)
        result = await replay(csms, n)
        bare_after = await bare_rate(csms.port, n)
        bare = (bare_before + bare_after) / 2
    finally:
        await csms.stop()
    live = result["live"]
    worst_live = max(live["authorize_s"], live["start_transaction_s"],
                     live["status_charging_s"])
    ratio = result["msgs_per_s"] / bare
    rows = [
        ("messages queued offline", f"{result['queued']}"),
        ("queue fill (one commit)", f"{result['fill_s']:.2f} s"),
        ("bare ocpp client (before/after)", f"{bare:.0f} msgs/s ({bare_before:.0f} / "
                                            f"{bare_after:.0f})"),
        ("replay after reconnect", f"{result['msgs_per_s']:.0f} msgs/s "
                                   f"({result['replay_s']:.2f} s)"),
        ("ratio (target ≥ 0.80)", f"{ratio:.2f}"),
        ("live Authorize.req round trip", f"{live['authorize_s'] * 1000:.1f} ms"),
        ("live StartTransaction (conn. 2)", f"{live['start_transaction_s'] * 1000:.1f} ms"),
        ("live StatusNotification Charging", f"{live['status_charging_s'] * 1000:.1f} ms"),
        ("live worst (target ≤ 1 s)", f"{worst_live * 1000:.1f} ms"),
        ("backlog when live session began", f"{live['backlog_at_start']} messages"),
        ("lost / dropped / thinned", f"{result['lost']} / {result['dropped']} / "
                                     f"{result['thinned']}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    sys.stderr.flush()
    print(f"offline_replay msgs_per_s={result['msgs_per_s']:.0f} bare_msgs_per_s={bare:.0f} "
          f"ratio={ratio:.2f} lost={result['lost']}", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000,
                        help="transaction messages to queue offline (default 10000)")
    args = parser.parse_args()
    if args.messages < 10:
        parser.error("--messages must be at least 10")
    return asyncio.run(main_async(args.messages))


if __name__ == "__main__":
    sys.exit(main())
