"""The meter values a StopTransaction.req carries as ``transactionData`` (OCPP 1.6 §4.10,
§6.50): the StopTxnSampledData samples taken every MeterValueSampleInterval from the start of
the transaction and the StopTxnAlignedData samples at every ClockAlignedDataInterval
(§9.1.25, §9.1.26).

Kept in the state database, each row in the same commit as the sample it comes from, so a
transaction closed with PowerLoss after a restart still carries what it sampled.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

#: Most MeterValues kept per transaction (the first, the begin value, is always kept): a
#: long transaction at a short interval must not grow the StopTransaction beyond what a
#: CSMS accepts in one frame.
MAX_VALUES = 500


class TransactionData:
    """The ``v16_transaction_data`` table: MeterValue dicts per local session id.

    Args:
        db: the state database.
        run_id: this run's clock id (:attr:`evse.clock.Clock.run_id`): values this run
            stamped before the clock was synchronized are re-stamped by
            :meth:`correct_timestamps`, as the outbox's are.
    """

    def __init__(self, db: sqlite3.Connection, run_id: str = "") -> None:
        self._db = db
        self.run_id = run_id
        db.execute("CREATE TABLE IF NOT EXISTS v16_transaction_data ("
                   " id INTEGER PRIMARY KEY AUTOINCREMENT, session_id INTEGER NOT NULL,"
                   " meter_value TEXT NOT NULL, clock_run TEXT NOT NULL DEFAULT '',"
                   " clock_synced INTEGER NOT NULL DEFAULT 1)")
        db.execute("CREATE INDEX IF NOT EXISTS v16_transaction_data_session"
                   " ON v16_transaction_data (session_id, id)")

    def add(self, session_id: int, meter_value: dict[str, Any],
            clock_synced: bool = True) -> None:
        """Keep one MeterValue (camelCase dict) of ``session_id``; above :data:`MAX_VALUES`
        the oldest after the first is dropped. Joins an enclosing transaction."""
        self._db.execute("INSERT INTO v16_transaction_data (session_id, meter_value,"
                         " clock_run, clock_synced) VALUES (?, ?, ?, ?)",
                         (session_id, json.dumps(meter_value), self.run_id, int(clock_synced)))
        count = self._db.execute("SELECT COUNT(*) FROM v16_transaction_data"
                                 " WHERE session_id = ?", (session_id,)).fetchone()[0]
        if count > MAX_VALUES:
            self._db.execute(
                "DELETE FROM v16_transaction_data WHERE id = (SELECT id FROM"
                " v16_transaction_data WHERE session_id = ? ORDER BY id LIMIT 1 OFFSET 1)",
                (session_id,))

    def correct_timestamps(self, rewrite: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
        """Re-stamp the values this run kept before the clock was synchronized
        (``rewrite`` a MeterValue); returns how many."""
        rows = self._db.execute(
            "SELECT id, meter_value FROM v16_transaction_data WHERE clock_synced = 0"
            " AND clock_run = ?", (self.run_id,)).fetchall()
        for row_id, text in rows:
            self._db.execute("UPDATE v16_transaction_data SET meter_value = ?,"
                             " clock_synced = 1 WHERE id = ?",
                             (json.dumps(rewrite(json.loads(text))), row_id))
        return len(rows)

    def take(self, session_id: int) -> list[dict[str, Any]]:
        """The MeterValues of ``session_id`` in order, removed from the table (in the
        enclosing transaction, with the StopTransaction that carries them)."""
        rows = self._db.execute("SELECT meter_value FROM v16_transaction_data"
                                " WHERE session_id = ? ORDER BY id", (session_id,)).fetchall()
        self._db.execute("DELETE FROM v16_transaction_data WHERE session_id = ?",
                         (session_id,))
        return [json.loads(row[0]) for row in rows]
