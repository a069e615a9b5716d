"""The bounded local security log (1.6 security whitepaper ed. 3, "Security events":
every security event is stored locally; GetLog logType SecurityLog uploads it).

Kept in its own table of the state database. The oldest rows are dropped beyond
``max_entries``, so a flood of failed connects cannot fill the SD card.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evse.state_db import transaction
from ocpp_client.security.events import SecurityEventType

#: Default bound on the number of kept events.
DEFAULT_MAX_ENTRIES = 1000


def create_security_log_table(db: sqlite3.Connection) -> None:
    """Schema migration: create the ``security_log`` table (idempotent).

    Register it in the state database's migration list (``evse/state_db.py``).
    """
    db.execute(
        "CREATE TABLE IF NOT EXISTS security_log (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " timestamp REAL NOT NULL, type TEXT NOT NULL, tech_info TEXT)"
    )


@dataclass(frozen=True)
class SecurityLogEntry:
    """One logged event; ``timestamp`` in UTC epoch s."""

    id: int
    timestamp: float
    type: SecurityEventType
    tech_info: str | None


class SecurityLog:
    """Append-only, bounded log of security events in the ``security_log`` table."""

    def __init__(self, db: sqlite3.Connection,
                 max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        """Args: ``max_entries``: rows kept (≥ 1); older ones are dropped on append.

        Raises:
            ValueError: ``max_entries`` < 1.
        """
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self._db = db
        self._max = max_entries
        create_security_log_table(db)

    def append(self, event: SecurityEventType, timestamp: float,
               tech_info: str | None = None,
               on_critical: Callable[[SecurityLogEntry], object] | None = None,
               ) -> SecurityLogEntry:
        """Store ``event`` (at UTC epoch s ``timestamp``); returns the stored entry.

        ``tech_info`` is free text for the technician; callers must not put secrets in
        it (the 1.6 schema limits it to 255 characters; longer text is cut).

        ``on_critical`` runs for a critical event inside the same database transaction,
        so queueing its SecurityEventNotification in the outbox (same database) and the
        log row are durable together, or neither is (an exception in it rolls both back
        and propagates).
        """
        if tech_info is not None:
            tech_info = tech_info[:255]
        with transaction(self._db):
            cur = self._db.execute(
                "INSERT INTO security_log (timestamp, type, tech_info) VALUES (?, ?, ?)",
                (timestamp, event.value, tech_info))
            row_id = int(cur.lastrowid or 0)
            self._db.execute("DELETE FROM security_log WHERE id <= ?",
                             (row_id - self._max,))
            entry = SecurityLogEntry(row_id, timestamp, event, tech_info)
            if on_critical is not None and event.critical:
                on_critical(entry)
        return entry

    def export(self, path: Path, since: float | None = None,
               until: float | None = None, v201_names: bool = False) -> int:
        """Write the entries in [since, until] to ``path`` for GetLog (logType SecurityLog)
        upload: one line each, ``<ISO 8601 UTC>\t<type name>\t<techInfo>`` with the 1.6
        type names (the 2.0.1 ones when ``v201_names``). Returns the number of entries
        written.

        Raises:
            OSError: the file cannot be written.
        """
        entries = self.entries(since, until)
        with path.open("w", encoding="utf-8") as f:
            for e in entries:
                when = dt.datetime.fromtimestamp(e.timestamp, dt.UTC).isoformat()
                info = (e.tech_info or "").replace("\n", " ")
                name = e.type.v201_name if v201_names else e.type.v16_name
                f.write(f"{when}\t{name}\t{info}\n")
        return len(entries)

    def entries(self, since: float | None = None,
                until: float | None = None) -> list[SecurityLogEntry]:
        """Entries oldest first, optionally within [since, until] (UTC epoch s), the
        window of GetLog.req ``oldestTimestamp`` / ``latestTimestamp``."""
        rows = self._db.execute(
            "SELECT id, timestamp, type, tech_info FROM security_log"
            " WHERE timestamp >= ? AND timestamp <= ? ORDER BY id",
            (float("-inf") if since is None else since,
             float("inf") if until is None else until)).fetchall()
        return [SecurityLogEntry(r[0], r[1], SecurityEventType(r[2]), r[3]) for r in rows]

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM security_log").fetchone()[0])
