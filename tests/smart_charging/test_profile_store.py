"""Profiles persist in a real SQLite file across a restart; expired ones are dropped."""

from __future__ import annotations

from pathlib import Path

from evse.charging_profiles import ProfileKind, ProfilePurpose, RateUnit, Recurrency
from evse.profile_store import CREATE_CHARGING_PROFILES, ProfileStore, migrate
from evse.smart_charging import SmartChargingEngine
from evse.state_db import open_state_db

from .helpers import T0, profile, utc

DEFAULT = ProfilePurpose.TX_DEFAULT


def test_profiles_survive_a_restart_and_expired_ones_are_dropped(tmp_path: Path) -> None:
    now = [T0]
    db = open_state_db(tmp_path)
    engine = SmartChargingEngine(ProfileStore(db), lambda: now[0])
    lasting = profile(1, DEFAULT, [(0, 16.0), (3600, 8.5)], kind=ProfileKind.RECURRING,
                      recurrency=Recurrency.DAILY, start_at=utc(2026, 3, 1, 22),
                      valid_from=T0, unit=RateUnit.W, phases=1, duration_s=7200)
    short = profile(2, DEFAULT, [(0, 10.0)], stack_level=1, start_at=T0, duration_s=600)
    windowed = profile(3, DEFAULT, [(0, 12.0)], stack_level=2, valid_to=T0 + 300)
    for p in (lasting, short, windowed):
        engine.install(p)
    db.close()

    # Restart 10 minutes later: the absolute 600 s profile and the one valid until
    # T0 + 300 are over; the recurring one comes back identical.
    now[0] = T0 + 600
    db = open_state_db(tmp_path)
    engine = SmartChargingEngine(ProfileStore(db), lambda: now[0])
    assert engine.store.all() == [lasting]
    db.close()
    db = open_state_db(tmp_path)
    assert ProfileStore(db).all() == [lasting]  # the drop was persisted too
    db.close()


def test_same_id_or_same_stack_slot_replaces(tmp_path: Path) -> None:
    db = open_state_db(tmp_path)
    store = ProfileStore(db)
    store.install(profile(1, DEFAULT, [(0, 16.0)], stack_level=1))
    replaced = store.install(profile(1, DEFAULT, [(0, 10.0)], stack_level=4))
    assert [p.stack_level for p in replaced] == [1]
    replaced = store.install(profile(2, DEFAULT, [(0, 8.0)], stack_level=4))
    assert [p.profile_id for p in replaced] == [1]
    # Another EVSE's profile at the same level is not replaced.
    store.install(profile(3, DEFAULT, [(0, 8.0)], stack_level=4, evse_id=2))
    db.close()
    db = open_state_db(tmp_path)
    assert [(p.profile_id, p.schedule.periods[0].limit) for p in ProfileStore(db).all()] == [
        (2, 8.0), (3, 8.0)]
    db.close()


def test_transaction_profiles_end_with_their_transaction(tmp_path: Path) -> None:
    db = open_state_db(tmp_path)
    engine = SmartChargingEngine(ProfileStore(db), lambda: T0)
    engine.transaction_started(1, "42", T0)
    engine.install(profile(5, ProfilePurpose.TX, [(0, 13.0)], transaction_id="42"))
    engine.install(profile(6, DEFAULT, [(0, 20.0)]))
    assert engine.limit_now(1).limit_a == 13.0
    dropped = engine.transaction_ended(1)
    assert [p.profile_id for p in dropped] == [5]
    assert engine.limit_now(1).limit_a == 20.0
    db.close()
    db = open_state_db(tmp_path)
    assert [p.profile_id for p in ProfileStore(db).all()] == [6]
    db.close()


def test_migration_is_idempotent_and_the_statement_is_exposed(tmp_path: Path) -> None:
    db = open_state_db(tmp_path)
    migrate(db)
    migrate(db)
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'charging_profiles'"
                        ).fetchone()
    assert "charging_profiles" in CREATE_CHARGING_PROFILES and "profile_id" in sql
    db.close()
