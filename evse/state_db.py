"""The state database: one SQLite file in the state directory (DESIGN.md, Persistence).

WAL journal, ``synchronous=FULL``: a committed row survives a power cut. Each module that
persists something owns its tables and creates them with ``CREATE TABLE IF NOT EXISTS``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

#: File name of the database inside the state directory.
DB_NAME = "evse.db"


def open_state_db(state_dir: Path) -> sqlite3.Connection:
    """Open (creating if needed) ``<state_dir>/evse.db`` in WAL mode with full fsync.

    The connection is in autocommit mode (``isolation_level=None``); use explicit
    ``with conn:`` blocks or BEGIN/COMMIT for multi-statement atomicity.

    Raises:
        sqlite3.Error / OSError: the directory or file cannot be created or opened.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        state_dir / DB_NAME, isolation_level=None, check_same_thread=False, timeout=10.0
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


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
