"""The authorization cache (OCPP 1.6 §3.5.2): idTagInfo remembered from every answer.

Updated from the IdTagInfo of every Authorize, StartTransaction and StopTransaction answer
(idTags on the Local Authorization List are not cached, §3.5.3). Bounded to
``max_entries``; the least recently used entry goes first. ``ClearCache`` empties it (§5.4).
Expired entries are kept (an expired idTag is answered ``Expired``, not treated as unknown).
"""

from __future__ import annotations

import sqlite3
import time

from evse.state_db import transaction
from ocpp_client.id_tag_info import StoredIdTag


class AuthCache:
    """The ``auth_cache`` table, at most ``max_entries`` rows."""

    def __init__(self, db: sqlite3.Connection, max_entries: int = 1000) -> None:
        self._db = db
        self.max_entries = max_entries
        db.execute(
            "CREATE TABLE IF NOT EXISTS auth_cache (id_tag TEXT PRIMARY KEY, status TEXT,"
            " parent_id_tag TEXT, expiry REAL, last_used REAL)"
        )

    def update(self, id_tag: str, status: str, parent_id_tag: str | None,
               expiry: float | None) -> None:
        """Store the IdTagInfo of an Authorize / Start / StopTransaction answer."""
        with transaction(self._db):
            self._db.execute(
                "INSERT OR REPLACE INTO auth_cache VALUES (?, ?, ?, ?, ?)",
                (id_tag, status, parent_id_tag, expiry, time.time()),
            )
            self._db.execute(
                "DELETE FROM auth_cache WHERE id_tag NOT IN (SELECT id_tag FROM auth_cache"
                " ORDER BY last_used DESC LIMIT ?)", (self.max_entries,)
            )

    def get(self, id_tag: str) -> StoredIdTag | None:
        """The cached entry for ``id_tag`` (marks it recently used), or None."""
        row = self._db.execute(
            "SELECT id_tag, status, parent_id_tag, expiry FROM auth_cache WHERE id_tag = ?",
            (id_tag,),
        ).fetchone()
        if row is None:
            return None
        self._db.execute("UPDATE auth_cache SET last_used = ? WHERE id_tag = ?",
                         (time.time(), id_tag))
        return StoredIdTag(*row)

    def clear(self) -> None:
        """Empty the cache (ClearCache)."""
        self._db.execute("DELETE FROM auth_cache")
