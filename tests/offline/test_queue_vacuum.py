"""Issue 12 defect 11: the state database gives back the space of a large offline queue once
it drained (a real SQLite file, created the way the release before this one created it)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from evse.state_db import DB_NAME, open_state_db, transaction
from ocpp_client.queue import Outbox


def _file_bytes(state_dir: Path) -> int:
    """What the database takes on the card: the file and its WAL."""
    return sum(p.stat().st_size for p in state_dir.glob(DB_NAME + "*") if p.is_file())


def test_state_db_shrinks_after_a_large_queue_drains(tmp_path: Path) -> None:
    # A file of an older release: WAL, no auto_vacuum mode.
    old = sqlite3.connect(tmp_path / DB_NAME)
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE outbox_stats (name TEXT PRIMARY KEY, count INTEGER)")
    old.close()
    db = open_state_db(tmp_path)
    box = Outbox(db)
    sample = {"connector_id": 1, "meter_value": [{
        "timestamp": "2026-12-02T06:00:00.000Z",
        "sampledValue": [{"value": str(1000 + n), "measurand": "Energy.Active.Import.Register",
                          "unit": "Wh", "context": "Sample.Periodic"} for n in range(4)]}]}
    with transaction(db):
        for n in range(5_000):
            box.put("MeterValues", {**sample, "n": n}, 1, 1)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    full = _file_bytes(tmp_path)
    assert full > 1_000_000  # the queue really took space (about 300 bytes a message)

    while True:
        message, _ = box.next_message()
        if message is None:
            break
        box.done(message)
    box.flush()
    assert len(box) == 0
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    drained = _file_bytes(tmp_path)
    assert drained < full / 10, (full, drained)
    db.close()
