"""The persistent outgoing message queue for transaction-related messages.

Rows are committed (WAL, ``synchronous=FULL``) before the session proceeds, and leave the
queue only once the CSMS answered with a CALLRESULT, or when the retry policy of OCPP 1.6
§4.10 (TransactionMessageAttempts) gives up. Each row keeps the CALL's unique id, so a CALL
whose answer was lost is re-sent identical and the CSMS can recognise it.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QueuedMessage:
    """A queued CALL: ``payload`` holds the call's snake_case keyword arguments."""

    id: int
    action: str
    payload: dict[str, Any]
    connector_id: int
    session_id: int | None
    unique_id: str
    attempts: int


class Outbox:
    """FIFO of transaction messages, oldest first (so per-connector order holds)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.execute(
            """CREATE TABLE IF NOT EXISTS outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                action TEXT NOT NULL,
                payload TEXT NOT NULL,
                connector_id INTEGER NOT NULL,
                session_id INTEGER,
                unique_id TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                created REAL NOT NULL
            )"""
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS outbox_stats (name TEXT PRIMARY KEY, count INTEGER)"
        )
        self.changed = asyncio.Event()

    def put(self, action: str, payload: dict[str, Any], connector_id: int,
            session_id: int | None) -> int:
        """Append a message (durable when this returns); returns its row id."""
        cur = self._db.execute(
            "INSERT INTO outbox (action, payload, connector_id, session_id, unique_id, created)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (action, json.dumps(payload), connector_id, session_id, str(uuid.uuid4()),
             time.time()),
        )
        self.changed.set()
        assert cur.lastrowid is not None
        return cur.lastrowid

    def peek(self) -> QueuedMessage | None:
        """The oldest message, or None."""
        row = self._db.execute(
            "SELECT id, action, payload, connector_id, session_id, unique_id, attempts"
            " FROM outbox ORDER BY id LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return QueuedMessage(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5], row[6])

    def done(self, message_id: int) -> None:
        """Remove a message the CSMS answered."""
        self._db.execute("DELETE FROM outbox WHERE id = ?", (message_id,))

    def failed_attempt(self, message_id: int) -> int:
        """Count a failed delivery attempt (CALLERROR / timeout); returns attempts so far."""
        self._db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", (message_id,))
        row = self._db.execute("SELECT attempts FROM outbox WHERE id = ?", (message_id,))
        found = row.fetchone()
        return int(found[0]) if found else 0

    def drop(self, message_id: int, why: str) -> None:
        """Give up on a message (as the spec allows); counted in ``dropped``."""
        with self._db:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (message_id,))
            self._db.execute(
                "INSERT INTO outbox_stats VALUES ('dropped', 1)"
                " ON CONFLICT(name) DO UPDATE SET count = count + 1"
            )

    @property
    def dropped(self) -> int:
        """Messages given up on since the database was created."""
        row = self._db.execute("SELECT count FROM outbox_stats WHERE name = 'dropped'")
        found = row.fetchone()
        return int(found[0]) if found else 0

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


class TransactionIds:
    """Local session id ↔ CSMS transactionId (from StartTransaction.conf)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.execute(
            "CREATE TABLE IF NOT EXISTS transaction_ids"
            " (session_id INTEGER PRIMARY KEY, transaction_id INTEGER NOT NULL)"
        )

    def set(self, session_id: int, transaction_id: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO transaction_ids VALUES (?, ?)",
                         (session_id, transaction_id))

    def transaction_id(self, session_id: int) -> int | None:
        row = self._db.execute(
            "SELECT transaction_id FROM transaction_ids WHERE session_id = ?", (session_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def session_id(self, transaction_id: int) -> int | None:
        row = self._db.execute(
            "SELECT session_id FROM transaction_ids WHERE transaction_id = ?"
            " ORDER BY session_id DESC LIMIT 1", (transaction_id,)
        ).fetchone()
        return None if row is None else int(row[0])
