"""The limit is re-evaluated at the period boundary by a timer (no polling)."""

from __future__ import annotations

from pathlib import Path

from evse.charging_profiles import ProfilePurpose
from evse.composite_schedule import ActiveLimit
from evse.profile_store import ProfileStore
from evse.smart_charging import LimitWatcher, SmartChargingEngine
from evse.state_db import open_state_db
from evse.timers import ManualClock

from .helpers import T0, profile


def test_a_period_starting_in_10_s_is_applied_at_10_s(tmp_path: Path) -> None:
    clock = ManualClock(start=500.0)

    def utc_now() -> float:
        return T0 + (clock.monotonic() - 500.0)

    db = open_state_db(tmp_path)
    engine = SmartChargingEngine(ProfileStore(db), utc_now)
    applied: list[tuple[float, float | None]] = []

    def apply(limit: ActiveLimit) -> None:
        applied.append((utc_now() - T0, limit.limit_a))

    watcher = LimitWatcher(engine, 1, clock, utc_now, apply)
    watcher.evaluate()
    assert applied == [(0.0, None)]
    engine.install(profile(1, ProfilePurpose.TX_DEFAULT, [(0, 16.0), (10, 8.0), (70, 20.0)],
                           start_at=T0))
    assert applied[-1] == (0.0, 16.0)
    clock.advance(9.9)
    assert applied[-1] == (0.0, 16.0)
    clock.advance(0.1)
    assert applied[-1] == (10.0, 8.0)
    # A station maximum on EVSE 0 also re-evaluates EVSE 1.
    engine.install(profile(2, ProfilePurpose.STATION_MAXIMUM, [(0, 6.0)], start_at=T0))
    assert applied[-1] == (10.0, 6.0)
    engine.clear(profile_id=2)
    assert applied[-1] == (10.0, 8.0)
    clock.advance(60.0)
    assert applied[-1] == (70.0, 20.0)
    assert clock.next_deadline() is None  # no further change: no timer armed
    watcher.stop()
    engine.install(profile(3, ProfilePurpose.TX_DEFAULT, [(0, 7.0)], start_at=T0))
    assert applied[-1] == (70.0, 20.0)  # stopped: no longer follows the engine
    db.close()
