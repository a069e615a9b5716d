"""The engine and the load balancer together, as the station will wire them: a station
maximum profile lowers the shared budget at its period boundary (timer-driven), and a
connector's own profile limit frees budget for the other."""

from __future__ import annotations

from pathlib import Path

from evse.charging_profiles import ProfilePurpose
from evse.composite_schedule import ActiveLimit
from evse.load_balancing import LoadBalancer
from evse.profile_store import ProfileStore
from evse.smart_charging import LimitWatcher, SmartChargingEngine
from evse.state_db import open_state_db
from evse.timers import ManualClock

from .helpers import T0, profile

STATION_MAX_A = 32.0
CONNECTOR_MAX_A = 32.0


def test_station_maximum_and_connector_profile_reshape_the_split(tmp_path: Path) -> None:
    clock = ManualClock(start=0.0)

    def utc_now() -> float:
        return T0 + clock.monotonic()

    db = open_state_db(tmp_path)
    engine = SmartChargingEngine(ProfileStore(db), utc_now)
    balancer = LoadBalancer(clock.monotonic)
    offers: list[tuple[float, dict[int, float], str]] = []

    def resplit(_: ActiveLimit | None = None) -> None:
        budget, source = engine.station_budget(STATION_MAX_A)
        for cid in (1, 2):
            own = engine.limit_now(cid).limit_a
            balancer.update(cid, max_a=CONNECTOR_MAX_A if own is None
                            else min(own, CONNECTOR_MAX_A))
        offers.append((clock.monotonic(), balancer.split(budget).offers_a, source))

    watchers = [LimitWatcher(engine, evse, clock, utc_now, resplit) for evse in (0, 1, 2)]
    for w in watchers:
        w.evaluate()
    assert offers[-1] == (0.0, {1: 16.0, 2: 16.0}, "station")

    # From 60 s on the CSMS caps the station at 20 A.
    engine.install(profile(1, ProfilePurpose.STATION_MAXIMUM, [(0, 20.0)], start_at=T0 + 60))
    clock.advance(60.0)
    assert offers[-1] == (60.0, {1: 10.0, 2: 10.0}, "profile 1")

    # Connector 1's transaction default of 7 A leaves 13 A to connector 2.
    engine.install(profile(2, ProfilePurpose.TX_DEFAULT, [(0, 7.0)], evse_id=1))
    assert offers[-1] == (60.0, {1: 7.0, 2: 13.0}, "profile 1")
    # Cleared: fair share again.
    engine.clear(profile_id=2)
    assert offers[-1] == (60.0, {1: 10.0, 2: 10.0}, "profile 1")
    for w in watchers:
        w.stop()
    db.close()
