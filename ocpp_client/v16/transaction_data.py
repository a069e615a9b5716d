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
from typing import Any

#: Most MeterValues kept per transaction (the first, the begin value, is always kept): a
#: long transaction at a short interval must not grow the StopTransaction beyond what a
#: CSMS accepts in one frame.
MAX_VALUES = 500


class TransactionData:
    """The ``v16_transaction_data`` table: MeterValue dicts per local session id."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.execute("CREATE TABLE IF NOT EXISTS v16_transaction_data ("
                   " id INTEGER PRIMARY KEY AUTOINCREMENT, session_id INTEGER NOT NULL,"
                   " meter_value TEXT NOT NULL)")
        db.execute("CREATE INDEX IF NOT EXISTS v16_transaction_data_session"
                   " ON v16_transaction_data (session_id, id)")

    def add(self, session_id: int, meter_value: dict[str, Any]) -> None:
        """Keep one MeterValue (camelCase dict) of ``session_id``; above :data:`MAX_VALUES`
        the oldest after the first is dropped. Joins an enclosing transaction."""
        self._db.execute("INSERT INTO v16_transaction_data (session_id, meter_value)"
                         " VALUES (?, ?)", (session_id, json.dumps(meter_value)))
        count = self._db.execute("SELECT COUNT(*) FROM v16_transaction_data"
                                 " WHERE session_id = ?", (session_id,)).fetchone()[0]
        if count > MAX_VALUES:
            self._db.execute(
                "DELETE FROM v16_transaction_data WHERE id = (SELECT id FROM"
                " v16_transaction_data WHERE session_id = ? ORDER BY id LIMIT 1 OFFSET 1)",
                (session_id,))

    def take(self, session_id: int) -> list[dict[str, Any]]:
        """The MeterValues of ``session_id`` in order, removed from the table (in the
        enclosing transaction, with the StopTransaction that carries them)."""
        rows = self._db.execute("SELECT meter_value FROM v16_transaction_data"
                                " WHERE session_id = ? ORDER BY id", (session_id,)).fetchall()
        self._db.execute("DELETE FROM v16_transaction_data WHERE session_id = ?",
                         (session_id,))
        return [json.loads(row[0]) for row in rows]
