"""One SQLite transaction on an autocommit connection (the state database's unit of
durability, DESIGN.md Persistence). Its own module so that the engines that keep tables in
the state database (firmware update, reservations) can use it while :mod:`evse.state_db`
lists their migrations, without an import circle."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block atomically: ``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error).

    The connection is in autocommit mode, where ``with conn:`` does *not* open a
    transaction; use this instead. Nested use joins the outer transaction, so a caller can
    make several modules' writes (e.g. a session row and its queued StartTransaction) one
    durable unit: after a power cut either all of them exist or none does.
    """
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
