"""Installed charging profiles, persisted in the state database (DESIGN.md, Persistence).

The ``charging_profiles`` table holds one row per installed profile; installing, clearing
and dropping expired profiles are single committed statements, so after a power cut the
station comes back with exactly the profiles the CSMS was told were accepted.

Replacement rule (OCPP 1.6 §5.16 / OCPP 2.0.1 K01.FR.05): a new profile replaces the one
with the same id, and the one with the same EVSE, purpose and stack level.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from evse.charging_profiles import (
    ChargingProfile,
    ChargingSchedule,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    Recurrency,
    SchedulePeriod,
    validate_profile,
)
from evse.sql_transaction import transaction

#: The table's schema; :func:`migrate` runs it (idempotent).
CREATE_CHARGING_PROFILES = (
    "CREATE TABLE IF NOT EXISTS charging_profiles ("
    " profile_id INTEGER PRIMARY KEY,"
    " evse_id INTEGER NOT NULL,"
    " purpose TEXT NOT NULL,"
    " stack_level INTEGER NOT NULL,"
    " transaction_id TEXT,"
    " profile TEXT NOT NULL)"
)


def migrate(db: sqlite3.Connection) -> None:
    """Create the ``charging_profiles`` table if missing (a step for the state DB's
    ``PRAGMA user_version`` migration list)."""
    db.execute(CREATE_CHARGING_PROFILES)


def profile_to_json(profile: ChargingProfile) -> str:
    """The profile as a JSON text (the stored form; stable field names)."""
    s = profile.schedule
    body: dict[str, Any] = {
        "profile_id": profile.profile_id,
        "evse_id": profile.evse_id,
        "purpose": profile.purpose.value,
        "stack_level": profile.stack_level,
        "kind": profile.kind.value,
        "recurrency": None if profile.recurrency is None else profile.recurrency.value,
        "valid_from": profile.valid_from,
        "valid_to": profile.valid_to,
        "transaction_id": profile.transaction_id,
        "schedule": {
            "unit": s.unit.value,
            "start_at": s.start_at,
            "duration_s": s.duration_s,
            "min_rate": s.min_rate,
            "periods": [[p.start_s, p.limit, p.phases] for p in s.periods],
        },
    }
    return json.dumps(body, separators=(",", ":"))


def profile_from_json(text: str) -> ChargingProfile:
    """Inverse of :func:`profile_to_json`.

    Raises:
        ValueError / KeyError: the text is not a stored profile.
    """
    body = json.loads(text)
    s = body["schedule"]
    return ChargingProfile(
        profile_id=int(body["profile_id"]),
        evse_id=int(body["evse_id"]),
        purpose=ProfilePurpose(body["purpose"]),
        stack_level=int(body["stack_level"]),
        kind=ProfileKind(body["kind"]),
        recurrency=None if body["recurrency"] is None else Recurrency(body["recurrency"]),
        valid_from=body["valid_from"],
        valid_to=body["valid_to"],
        transaction_id=body["transaction_id"],
        schedule=ChargingSchedule(
            unit=RateUnit(s["unit"]),
            start_at=s["start_at"],
            duration_s=s["duration_s"],
            min_rate=s["min_rate"],
            periods=tuple(SchedulePeriod(int(a), float(b), c) for a, b, c in s["periods"]),
        ),
    )


class ProfileStore:
    """The installed charging profiles: an in-memory list mirrored in SQLite.

    Args:
        db: the state database connection (autocommit mode, see ``evse.state_db``).

    Raises:
        sqlite3.Error: the table cannot be created or read.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        migrate(db)
        rows = db.execute("SELECT profile FROM charging_profiles ORDER BY profile_id")
        self._profiles: dict[int, ChargingProfile] = {
            p.profile_id: p for p in (profile_from_json(r[0]) for r in rows)}

    def all(self) -> list[ChargingProfile]:
        """Every installed profile, by id."""
        return [self._profiles[k] for k in sorted(self._profiles)]

    def __len__(self) -> int:
        return len(self._profiles)

    def replaced_by(self, profile: ChargingProfile) -> list[ChargingProfile]:
        """The installed profiles ``profile`` would replace (same id, or same EVSE,
        purpose and stack level)."""
        return [p for p in self._profiles.values()
                if p.profile_id == profile.profile_id
                or (p.evse_id, p.purpose, p.stack_level)
                == (profile.evse_id, profile.purpose, profile.stack_level)]

    def install(self, profile: ChargingProfile) -> list[ChargingProfile]:
        """Validate, persist (committed before returning) and install ``profile``.

        Returns:
            The profiles it replaced.

        Raises:
            ProfileError: the profile is invalid (nothing changed).
            sqlite3.Error: it could not be persisted (nothing changed).
        """
        validate_profile(profile)
        replaced = self.replaced_by(profile)
        with transaction(self._db):
            for old in replaced:
                self._db.execute("DELETE FROM charging_profiles WHERE profile_id = ?",
                                 (old.profile_id,))
            self._db.execute(
                "INSERT INTO charging_profiles (profile_id, evse_id, purpose, stack_level,"
                " transaction_id, profile) VALUES (?, ?, ?, ?, ?, ?)",
                (profile.profile_id, profile.evse_id, profile.purpose.value,
                 profile.stack_level, profile.transaction_id, profile_to_json(profile)))
        for old in replaced:
            del self._profiles[old.profile_id]
        self._profiles[profile.profile_id] = profile
        return replaced

    def matching(self, profile_id: int | None = None, evse_id: int | None = None,
                 purpose: ProfilePurpose | None = None, stack_level: int | None = None
                 ) -> list[ChargingProfile]:
        """The installed profiles matching every given criterion (None = any)."""
        return [p for p in self.all()
                if (profile_id is None or p.profile_id == profile_id)
                and (evse_id is None or p.evse_id == evse_id)
                and (purpose is None or p.purpose is purpose)
                and (stack_level is None or p.stack_level == stack_level)]

    def remove(self, profiles: Iterable[ChargingProfile]) -> list[ChargingProfile]:
        """Delete ``profiles`` (committed before returning); returns those that were installed.

        Raises:
            sqlite3.Error: the delete failed (nothing changed).
        """
        gone = [p for p in profiles if p.profile_id in self._profiles]
        if not gone:
            return []
        with transaction(self._db):
            self._db.executemany("DELETE FROM charging_profiles WHERE profile_id = ?",
                                 [(p.profile_id,) for p in gone])
        for p in gone:
            del self._profiles[p.profile_id]
        return gone

    def drop_expired(self, now: float) -> list[ChargingProfile]:
        """Delete the profiles that can never apply again at or after ``now`` (UTC epoch s)."""
        return self.remove([p for p in self._profiles.values() if p.expired(now)])

    def drop_transaction(self, evse_id: int, transaction_id: str | None = None
                         ) -> list[ChargingProfile]:
        """Delete the transaction profiles of ``evse_id`` (of ``transaction_id`` only, when
        given): a transaction profile ends with its transaction (OCPP 1.6 §3.13.2)."""
        return self.remove([p for p in self._profiles.values()
                            if p.purpose is ProfilePurpose.TX and p.evse_id == evse_id
                            and (transaction_id is None or p.transaction_id == transaction_id)])
