"""The state database: one SQLite file in the state directory (DESIGN.md, Persistence).

WAL journal, ``synchronous=FULL``: a committed row survives a power cut. The schema is
versioned with ``PRAGMA user_version`` and brought up to date by :data:`MIGRATIONS` when the
file is opened: each migration runs in its own transaction together with the version bump, so
a power cut during an upgrade leaves the file at the previous version, never half-migrated.
A file written by a newer release (a higher version than this code knows) is refused.

Adding a table or a column is one line at the end of :data:`MIGRATIONS`, e.g.::

    Migration(2, "charging profiles", ("CREATE TABLE charging_profiles (...)",)),
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evse.firmware_update import migrate_firmware_update
from evse.profile_store import CREATE_CHARGING_PROFILES
from evse.reservations import migrate_reservations
from evse.sessions import CREATE_SESSIONS
from evse.sql_transaction import on_rollback, transaction

__all__ = ["DB_MODE", "DB_NAME", "MIGRATIONS", "SCHEMA_VERSION", "Migration",
           "SchemaVersionError", "migrate", "on_rollback", "open_state_db", "schema_version",
           "transaction"]

#: File name of the database inside the state directory.
DB_NAME = "evse.db"
#: Mode of the database files (holds idTags and the CSMS's settings): owner only, whatever
#: the umask. SQLite gives the -wal and -shm files the mode of the database file.
DB_MODE = 0o600


class SchemaVersionError(sqlite3.DatabaseError):
    """The database was written by a newer release than this code (its schema is unknown)."""


@dataclass(frozen=True)
class Migration:
    """One schema step: from ``version - 1`` to ``version``.

    ``apply`` is a sequence of SQL statements or a function given the connection (inside the
    migration's transaction; it must not commit).
    """

    version: int
    name: str
    apply: Sequence[str] | Callable[[sqlite3.Connection], None]


def _baseline(db: sqlite3.Connection) -> None:
    """Version 1: the tables of the first release, which created them itself and had no
    ``user_version`` (0). ``IF NOT EXISTS`` makes this the same step for a new file and for
    a release-0 file; columns the release-0 outbox added over time are added when missing."""
    for sql in (
        CREATE_SESSIONS,
        "CREATE TABLE IF NOT EXISTS connector_availability"
        " (connector_id INTEGER PRIMARY KEY, operative INTEGER NOT NULL)",
        """CREATE TABLE IF NOT EXISTS outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            action TEXT NOT NULL,
            payload TEXT NOT NULL,
            connector_id INTEGER NOT NULL,
            session_id INTEGER,
            unique_id TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created REAL NOT NULL
        )""",
        "CREATE TABLE IF NOT EXISTS outbox_stats (name TEXT PRIMARY KEY, count INTEGER)",
        "CREATE TABLE IF NOT EXISTS transaction_ids"
        " (session_id INTEGER PRIMARY KEY, transaction_id INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS local_list (id_tag TEXT PRIMARY KEY, status TEXT"
        " NOT NULL, parent_id_tag TEXT, expiry REAL)",
        "CREATE TABLE IF NOT EXISTS local_list_meta (key TEXT PRIMARY KEY,"
        " value INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS auth_cache (id_tag TEXT PRIMARY KEY, status TEXT,"
        " parent_id_tag TEXT, expiry REAL, last_used REAL)",
        "CREATE TABLE IF NOT EXISTS ocpp_configuration ("
        " key TEXT PRIMARY KEY, value TEXT NOT NULL, toml_default TEXT)",
    ):
        db.execute(sql)
    columns = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
    for name, decl in (("kind", "TEXT NOT NULL DEFAULT 'meter_other'"),
                       ("clock_run", "TEXT NOT NULL DEFAULT ''"),
                       ("clock_synced", "INTEGER NOT NULL DEFAULT 1")):
        if name not in columns:
            db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {decl}")
    db.execute("CREATE INDEX IF NOT EXISTS outbox_connector ON outbox (connector_id, id)")


#: The bounded local security log (OCPP 1.6 security whitepaper ed. 3, "Security events").
SECURITY_LOG_TABLE = (
    "CREATE TABLE IF NOT EXISTS security_log (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " timestamp REAL NOT NULL, type TEXT NOT NULL, tech_info TEXT)"
)

#: The OCPP 2.0.1 device model's table: a copy of
#: ``ocpp_client.v201.device_model.CREATE_TABLE_SQL`` (evse may not import ocpp_client; a test
#: keeps the two equal).
OCPP201_VARIABLES_SQL = (
    "CREATE TABLE IF NOT EXISTS ocpp201_variable_attributes ("
    " component TEXT NOT NULL, component_instance TEXT NOT NULL,"
    " evse_id INTEGER NOT NULL, connector_id INTEGER NOT NULL,"
    " variable TEXT NOT NULL, variable_instance TEXT NOT NULL,"
    " attribute TEXT NOT NULL, value TEXT, toml_default TEXT,"
    " PRIMARY KEY (component, component_instance, evse_id, connector_id, variable,"
    " variable_instance, attribute))"
)

#: The OCPP 2.0.1 transactions: a copy of
#: ``ocpp_client.v201.transactions.CREATE_TABLE_SQL`` (a test keeps the two equal).
OCPP201_TRANSACTIONS_SQL = (
    "CREATE TABLE IF NOT EXISTS ocpp201_transactions ("
    " transaction_id TEXT PRIMARY KEY, evse_id INTEGER NOT NULL,"
    " connector_id INTEGER NOT NULL, session_id INTEGER, next_seq_no INTEGER NOT NULL,"
    " open INTEGER NOT NULL, remote_start_id INTEGER, started REAL NOT NULL)"
)

#: The OCPP 2.0.1 boot reason after a reset: a copy of
#: ``ocpp_client.v201.adapter.BOOT_TABLE_SQL`` (a test keeps the two equal).
OCPP201_BOOT_SQL = "CREATE TABLE IF NOT EXISTS ocpp201_boot (key TEXT PRIMARY KEY, value TEXT)"

#: Every schema step, in order; ``MIGRATIONS[i].version == i + 1``. Append, never edit a
#: released step (a board in the field may already be past it).
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "baseline: the tables of the first release", _baseline),
    Migration(2, "charging profiles", (CREATE_CHARGING_PROFILES,)),
    # The same statement as ocpp_client.security.security_log.create_security_log_table
    # (evse may not import ocpp_client; a test checks the two agree). The certificate store
    # keeps its certificates as files in <state_dir>/certificates, not in tables.
    Migration(3, "security log (OCPP security events)", (SECURITY_LOG_TABLE,)),
    Migration(4, "the pending firmware update", migrate_firmware_update),
    Migration(5, "reservations", migrate_reservations),
    Migration(6, "ocpp 2.0.1 device model", (OCPP201_VARIABLES_SQL,)),
    Migration(7, "ocpp 2.0.1 transactions", (OCPP201_TRANSACTIONS_SQL, OCPP201_BOOT_SQL)),
)

#: The schema version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: sqlite3.Connection) -> int:
    """The file's ``PRAGMA user_version`` (0 = first release, before versioning)."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _check_not_newer(db: sqlite3.Connection, latest: int, name: str) -> int:
    found = schema_version(db)
    if found > latest:
        raise SchemaVersionError(
            f"{name}: schema version {found} was written by a newer release; this one knows "
            f"versions up to {latest}. Install that release again or move the file away "
            "(queued messages and sessions in it would be lost)."
        )
    return found


def migrate(db: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS,
            name: str = DB_NAME) -> int:
    """Bring the schema up to the last of ``migrations``; return the version reached.

    Each step and its ``user_version`` bump commit together (``BEGIN IMMEDIATE``, so two
    processes opening the file do not both migrate).

    Raises:
        SchemaVersionError: the file's version is above the last migration (a newer release
            wrote it; this code would misread it).
        ValueError: ``migrations`` is not numbered 1, 2, 3, ...
    """
    for index, step in enumerate(migrations):
        if step.version != index + 1:
            raise ValueError(f"migration {step.name!r} has version {step.version}, "
                             f"expected {index + 1}")
    found = _check_not_newer(db, len(migrations), name)
    for step in migrations[found:]:
        with transaction(db):
            if schema_version(db) >= step.version:  # another process was first
                continue
            if callable(step.apply):
                step.apply(db)
            else:
                for sql in step.apply:
                    db.execute(sql)
            db.execute(f"PRAGMA user_version = {int(step.version)}")
    return schema_version(db)


def open_state_db(state_dir: Path) -> sqlite3.Connection:
    """Open (creating if needed) ``<state_dir>/evse.db`` in WAL mode with full fsync and
    migrate its schema to :data:`SCHEMA_VERSION`.

    The directory is made mode 0700 and the database 0600 whatever the umask: the file holds
    the local authorization list and transactions (SQLite gives its -wal and -shm files the
    database file's mode).

    The connection is in autocommit mode (``isolation_level=None``); use
    :func:`transaction` for multi-statement atomicity.

    Raises:
        SchemaVersionError: the file was written by a newer release.
        sqlite3.Error / OSError: the directory or file cannot be created or opened.
    """
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    path = state_dir / DB_NAME
    # Create the file ourselves so it never exists, even for an instant, with looser bits.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, DB_MODE))
    os.chmod(path, DB_MODE)
    for suffix in ("-wal", "-shm"):  # left by an older version or a crash
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", DB_MODE)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    try:
        _check_not_newer(conn, SCHEMA_VERSION, str(path))  # before anything is written
        _incremental_vacuum(conn)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn, name=str(path))
    except BaseException:
        conn.close()
        raise
    return conn


def _incremental_vacuum(conn: sqlite3.Connection) -> None:
    """Put the file in ``auto_vacuum=INCREMENTAL`` mode, so free pages can be given back
    (the outbox does after a large queue drained). A new file takes the mode at once; a
    file of an older release is rebuilt once with ``VACUUM`` (outside any transaction,
    which is why this is not one of the :data:`MIGRATIONS`). A power cut during the
    ``VACUUM`` leaves the old file intact (SQLite's journal), and it runs again next time."""
    if int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2:  # INCREMENTAL
        return
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    if conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is not None:
        conn.execute("VACUUM")
