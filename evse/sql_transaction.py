"""One SQLite transaction on an autocommit connection (the state database's unit of
durability, DESIGN.md Persistence). Its own module so that the engines that keep tables in
the state database (firmware update, reservations, charging profiles) can use it while
:mod:`evse.state_db` lists their migrations, without an import circle."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator


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
        conn.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (disk full, I/O error) may have rolled back already.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        for hook in reversed(_ROLLBACK_HOOKS.pop(id(conn), [])):
            hook()
        raise
    _ROLLBACK_HOOKS.pop(id(conn), None)


#: Undo actions of in-memory state per connection (by id), for the open transaction.
_ROLLBACK_HOOKS: dict[int, list[Callable[[], None]]] = {}


def on_rollback(conn: sqlite3.Connection, hook: Callable[[], None]) -> None:
    """Call ``hook()`` if the :func:`transaction` open on ``conn`` rolls back (its COMMIT
    failing included), so a module can undo in-memory state it changed with its rows; the
    hook is forgotten when the transaction commits. Outside a transaction: no effect."""
    if conn.in_transaction:
        _ROLLBACK_HOOKS.setdefault(id(conn), []).append(hook)
