#!/usr/bin/env python3
"""Space given back by the state database after a large offline queue drained (issue 12
defect 11): file size (database + WAL) full, after the drain, and how long the reclaim
(``PRAGMA incremental_vacuum`` + WAL truncate) and the one-time ``VACUUM`` of a file from an
older release (no ``auto_vacuum``) take.

Run:  python benchmarks/queue_vacuum.py [MESSAGES]   (default 100000)
Lines: ``queue_vacuum messages=… full_mb=… drained_mb=… drain_s=… reclaim_ms=…
upgrade_vacuum_ms=…``
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evse.state_db import DB_NAME, open_state_db, transaction
from ocpp_client.queue import Outbox

SAMPLE = {"connector_id": 1, "meter_value": [{
    "timestamp": "2026-12-02T06:00:00.000Z",
    "sampledValue": [{"value": str(1000 + n), "measurand": "Energy.Active.Import.Register",
                      "unit": "Wh", "context": "Sample.Periodic"} for n in range(4)]}]}


def _mb(state_dir: Path) -> float:
    return sum(p.stat().st_size for p in state_dir.glob(DB_NAME + "*")) / 1e6


def _fill(db: sqlite3.Connection, box: Outbox, messages: int) -> None:
    with transaction(db):
        for n in range(messages):
            box.put("MeterValues", {**SAMPLE, "n": n}, 1, 1)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def main() -> None:
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        # A file of the release before: queue filled without auto_vacuum, then upgraded.
        old_dir = Path(tmp) / "old"
        old_dir.mkdir()
        old = sqlite3.connect(old_dir / DB_NAME, isolation_level=None)
        old.execute("PRAGMA journal_mode=WAL")
        _fill(old, Outbox(old, max_messages=10 * messages), messages)
        old.close()
        t0 = time.perf_counter()
        open_state_db(old_dir).close()
        upgrade_ms = (time.perf_counter() - t0) * 1000

        state_dir = Path(tmp) / "new"
        db = open_state_db(state_dir)
        box = Outbox(db, max_messages=10 * messages)
        _fill(db, box, messages)
        full = _mb(state_dir)
        drained_at = time.perf_counter()
        while True:  # the drain as the sender does it: batched acknowledgements
            message, _ = box.next_message()
            if message is None:
                break
            box.done(message)
        box.flush()
        drain_s = time.perf_counter() - drained_at
        drained = _mb(state_dir)
        # The reclaim alone: the same queue removed in one statement, then given back.
        _fill(db, box, messages)
        db.execute("DELETE FROM outbox")
        t0 = time.perf_counter()
        box.reclaim_space()
        reclaim_ms = (time.perf_counter() - t0) * 1000
        print(f"queue_vacuum messages={messages} full_mb={full:.1f} drained_mb={drained:.2f} "
              f"drain_s={drain_s:.1f} reclaim_ms={reclaim_ms:.0f} "
              f"upgrade_vacuum_ms={upgrade_ms:.0f}")
        db.close()


if __name__ == "__main__":
    main()
