"""The Local Authorization List (OCPP 1.6 §3.5.3, §5.15 SendLocalList, §5.9
GetLocalListVersion), persisted in the state database.

Version semantics:

- GetLocalListVersion answers ``0`` when the list holds no entries and ``-1`` when local
  lists are not supported — here: while ``LocalAuthListEnabled`` is false (§5.9).
- SendLocalList ``Full`` replaces the list (an empty list empties it);
  ``Differential`` adds / replaces entries with an IdTagInfo and removes entries without
  one, and only applies when its ``listVersion`` is greater than the installed version
  (else ``VersionMismatch``). A list that would exceed ``LocalAuthListMaxLength``, or a
  request with more than ``SendLocalListMaxLength`` entries, is ``Failed`` and changes
  nothing. ``NotSupported`` while ``LocalAuthListEnabled`` is false.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from evse.state_db import transaction
from ocpp_client.id_tag_info import StoredIdTag


class LocalList:
    """The ``local_list`` table and its version (``local_list_meta``)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.execute(
            "CREATE TABLE IF NOT EXISTS local_list (id_tag TEXT PRIMARY KEY, status TEXT"
            " NOT NULL, parent_id_tag TEXT, expiry REAL)"
        )
        db.execute("CREATE TABLE IF NOT EXISTS local_list_meta (key TEXT PRIMARY KEY,"
                   " value INTEGER NOT NULL)")

    @property
    def version(self) -> int:
        """Installed listVersion (0 when no list was ever installed)."""
        row = self._db.execute(
            "SELECT value FROM local_list_meta WHERE key = 'version'").fetchone()
        return int(row[0]) if row else 0

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM local_list").fetchone()[0])

    def reported_version(self) -> int:
        """GetLocalListVersion.conf listVersion (§5.9): 0 for an empty list."""
        return self.version if len(self) else 0

    def get(self, id_tag: str) -> StoredIdTag | None:
        """The entry for ``id_tag`` (idTags compare case-insensitively, §7.28), or None."""
        row = self._db.execute(
            "SELECT id_tag, status, parent_id_tag, expiry FROM local_list"
            " WHERE id_tag = ? COLLATE NOCASE", (id_tag,)).fetchone()
        return None if row is None else StoredIdTag(*row)

    def update(self, version: int, update_type: str, entries: list[dict[str, Any]],
               max_length: int, max_send: int,
               parse_expiry: Callable[[str | None], float | None]) -> str:
        """Apply a SendLocalList.req; returns the UpdateStatus value.

        Args:
            version: listVersion of the request.
            update_type: ``"Full"`` or ``"Differential"``.
            entries: localAuthorizationList entries (snake_case dicts: ``id_tag``,
                optional ``id_tag_info`` with ``status``, ``parent_id_tag``,
                ``expiry_date``).
            max_length: LocalAuthListMaxLength.
            max_send: SendLocalListMaxLength.
            parse_expiry: ISO 8601 text → UTC epoch s (or None).
        """
        if len(entries) > max_send:
            return "Failed"
        if update_type == "Differential" and version <= self.version:
            return "VersionMismatch"
        try:
            self._apply(version, update_type, entries, max_length, parse_expiry)
        except _Failed:
            return "Failed"
        return "Accepted"

    def _apply(self, version: int, update_type: str, entries: list[dict[str, Any]],
               max_length: int, parse_expiry: Callable[[str | None], float | None]) -> None:
        with transaction(self._db):
            if update_type == "Full":
                self._db.execute("DELETE FROM local_list")
            for entry in entries:
                info = entry.get("id_tag_info")
                tag = str(entry["id_tag"])
                self._db.execute("DELETE FROM local_list WHERE id_tag = ? COLLATE NOCASE",
                                 (tag,))
                if info is None:
                    if update_type == "Full":
                        raise _Failed
                    continue
                self._db.execute(
                    "INSERT INTO local_list VALUES (?, ?, ?, ?)",
                    (tag, str(info.get("status", "Invalid")), info.get("parent_id_tag"),
                     parse_expiry(info.get("expiry_date"))))
            if len(self) > max_length:
                raise _Failed
            self._db.execute(
                "INSERT OR REPLACE INTO local_list_meta VALUES ('version', ?)", (version,))



class _Failed(Exception):
    """Internal: roll the update back and answer Failed."""
