"""OCPP 2.0.1 transactions as the station keeps them (E01–E15): the transactionId the station
generates, the EVSE, the local session bound to it, and the next seqNo — persisted, so seqNo
stays contiguous across restarts and a power cut.

Every write happens inside the caller's :func:`evse.state_db.transaction` together with the
queued TransactionEvent it numbers: after a power cut either both exist or neither does.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass

TABLE = "ocpp201_transactions"

#: The table (schema step in :data:`evse.state_db.MIGRATIONS`, which holds an equal copy).
CREATE_TABLE_SQL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    " transaction_id TEXT PRIMARY KEY, evse_id INTEGER NOT NULL,"
    " connector_id INTEGER NOT NULL, session_id INTEGER, next_seq_no INTEGER NOT NULL,"
    " open INTEGER NOT NULL, remote_start_id INTEGER, started REAL NOT NULL)"
)


@dataclass
class Tx201:
    """One open 2.0.1 transaction of an EVSE."""

    transaction_id: str
    evse_id: int
    connector_id: int
    session_id: int | None
    next_seq_no: int
    remote_start_id: int | None
    started: float


class TransactionStore:
    """The open 2.0.1 transactions by EVSE, and their seqNo counters.

    Args:
        db: the state database (autocommit connection from :mod:`evse.state_db`).
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        #: The state database (callers wrap writes and their queued event in one commit).
        self.db = db
        self._db = db
        db.execute(CREATE_TABLE_SQL)
        self.open: dict[int, Tx201] = {}
        for row in db.execute(
                f"SELECT transaction_id, evse_id, connector_id, session_id, next_seq_no,"
                f" remote_start_id, started FROM {TABLE} WHERE open = 1"):
            self.open[row[1]] = Tx201(*row)

    def begin(self, evse_id: int, connector_id: int, session_id: int | None,
              remote_start_id: int | None, started: float) -> Tx201:
        """A new transaction (transactionId: a UUID4, at most 36 characters as the schema
        allows) with seqNo 0 reserved for its Started event."""
        tx = Tx201(str(uuid.uuid4()), evse_id, connector_id, session_id, 0, remote_start_id,
                   started)
        self._db.execute(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
                         (tx.transaction_id, evse_id, connector_id, session_id, 0,
                          remote_start_id, started))
        self.open[evse_id] = tx
        return tx

    def next_seq_no(self, tx: Tx201) -> int:
        """Take the next seqNo of ``tx`` (persisted with the caller's commit)."""
        seq = tx.next_seq_no
        tx.next_seq_no += 1
        self._db.execute(f"UPDATE {TABLE} SET next_seq_no = ? WHERE transaction_id = ?",
                         (tx.next_seq_no, tx.transaction_id))
        return seq

    def bind(self, tx: Tx201, session_id: int | None) -> None:
        """The core's session ``session_id`` delivers this transaction's energy (None: its
        session ended and the transaction stays open, TxStopPoint EVConnected)."""
        tx.session_id = session_id
        self._db.execute(f"UPDATE {TABLE} SET session_id = ? WHERE transaction_id = ?",
                         (session_id, tx.transaction_id))

    def end(self, tx: Tx201) -> None:
        """The transaction ended (its Ended event is queued in the same commit)."""
        self.open.pop(tx.evse_id, None)
        self._db.execute(f"UPDATE {TABLE} SET open = 0 WHERE transaction_id = ?",
                         (tx.transaction_id,))

    def by_id(self, transaction_id: str) -> Tx201 | None:
        """The open transaction ``transaction_id``, if any."""
        for tx in self.open.values():
            if tx.transaction_id == transaction_id:
                return tx
        return None

    def by_session(self, session_id: int) -> Tx201 | None:
        """The open transaction bound to local session ``session_id``, if any."""
        for tx in self.open.values():
            if tx.session_id == session_id:
                return tx
        return None

    def transaction_id_of(self, session_id: int) -> str | None:
        """The transactionId of local session ``session_id`` (open or ended)."""
        row = self._db.execute(f"SELECT transaction_id FROM {TABLE} WHERE session_id = ?"
                               " ORDER BY started DESC LIMIT 1", (session_id,)).fetchone()
        return None if row is None else str(row[0])


__all__ = ["CREATE_TABLE_SQL", "TransactionStore", "Tx201"]
