"""The state database: one SQLite file in the state directory (DESIGN.md, Persistence).

WAL journal, ``synchronous=FULL``: a committed row survives a power cut. Each module that
persists something owns its tables and creates them with ``CREATE TABLE IF NOT EXISTS``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

#: File name of the database inside the state directory.
DB_NAME = "evse.db"


def open_state_db(state_dir: Path) -> sqlite3.Connection:
    """Open (creating if needed) ``<state_dir>/evse.db`` in WAL mode with full fsync.

    The connection is in autocommit mode (``isolation_level=None``); use explicit
    ``with conn:`` blocks or BEGIN/COMMIT for multi-statement atomicity.

    The directory is made mode 0700 and the database 0600 whatever the umask: the file holds
    the local authorization list and transactions (SQLite gives its -wal and -shm files the
    database file's mode).

    Raises:
        sqlite3.Error / OSError: the directory or file cannot be created or opened.
    """
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    path = state_dir / DB_NAME
    # Create the file ourselves so it never exists, even for an instant, with looser bits.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)
    for suffix in ("-wal", "-shm"):  # left by an older version or a crash
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", 0o600)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
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
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
