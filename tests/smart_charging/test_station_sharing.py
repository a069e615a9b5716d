"""The Station with smart charging wired in: charging profiles and the shared station budget
reach the control pilot, and simulated EVs follow it.

A whole Station on the simulated board; every timer (duty-change interval, profile period
boundaries, the load balancer's under-draw review) runs on a ManualClock, and the UTC clock
of the profiles moves with it — no sleeping. Expected offers are computed by hand from the
rules of issue 11: fair share per phase, at least 6 A or 0 (waits SuspendedEVSE), duty =
A / 0.6 (IEC 61851-1 Table A.7).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from evse.authorization import AuthorizationStatus, AuthResult
from evse.charging_profiles import ProfileKind, ProfilePurpose
from evse.clock import Clock
from evse.domain import IdToken
from evse.profile_store import CREATE_CHARGING_PROFILES
from evse.session_machine import ENERGY_TRANSFER, SUSPENDED_BY_EV, SUSPENDED_BY_EVSE
from evse.state_db import open_state_db
from evse.station import Station
from evse.timers import ManualClock
from hal.settings import ConnectorSettings, HardwareSettings
from hal.sim.board import SimBoard, create_board

from .helpers import profile

#: The UTC instant the rig's clock starts at (2026-03-01 12:00:00 UTC).
WALL0 = 1_772_366_400.0
#: IEC 61851-1 A.5.2: the EV has this long to follow a duty change, s.
DUTY_INTERVAL_S = 5.0


class AcceptAll:
    async def authorize(self, id_token: IdToken | str) -> AuthResult:
        return AuthResult(AuthorizationStatus.ACCEPTED)


def duty(amps: float) -> float:
    """IEC 61851-1 Table A.7 duty for 6-51 A, rounded as the pilot is driven (0.1 %)."""
    return round(amps / 0.6, 1)


#: What a 0.1 % duty step is worth, A (0.6 A per %): the EV follows the rounded duty.
DUTY_STEP_A = 0.06


def amps(*values: float) -> object:
    """The EVs' currents, equal to ``values`` up to the duty's 0.1 % resolution."""
    return pytest.approx(list(values), abs=DUTY_STEP_A)


@dataclass
class Rig:
    station: Station
    sim: SimBoard
    clock: ManualClock
    budget_a: float

    async def settle(self) -> None:
        await self.station.idle()

    async def advance(self, seconds: float, step: float = 0.5,
                      check: Callable[[], None] | None = None) -> None:
        """Advance the manual clock in ``step``s, running what falls due and reading the
        meters once a second (as the Station's meter poll does), calling ``check`` after
        each step."""
        remaining = seconds
        since_poll = 0.0
        while remaining > 1e-9:
            dt = min(step, remaining)
            self.clock.advance(dt)
            remaining -= dt
            since_poll += dt
            await self.settle()
            if since_poll >= 1.0 - 1e-9:
                since_poll = 0.0
                await self.poll()
            if check is not None:
                check()

    async def poll(self) -> None:
        """One meter reading per connector (what the meter poll does every second)."""
        for conn in self.station.connectors.values():
            await self.station.poll_once(conn)
        await self.settle()

    async def start_ev(self, cid: int, ev_max_a: float = 32.0, phases: int = 3) -> None:
        self.sim.plug(cid, ev_max_a, phases)
        await self.settle()
        await self.station.present_card(f"CARD-{cid}")
        await self.settle()

    async def stop_ev(self, cid: int) -> None:
        await self.station.present_card(f"CARD-{cid}")
        await self.settle()
        self.sim.unplug(cid)
        await self.settle()

    def duty(self, cid: int) -> float:
        return self.station.connectors[cid].hw.pilot.duty_percent

    def ev_a(self, cid: int) -> float:
        """What the simulated EV on ``cid`` draws per phase now, A."""
        return self.sim.connector(cid).current_per_phase()

    def state(self, cid: int) -> str:
        return self.station.connectors[cid].state

    def total_a(self) -> float:
        return sum(self.ev_a(c) for c in self.station.connectors)

    def budget_watch(self) -> Callable[[], None]:
        """A check for :meth:`advance`: the EVs never draw more than the budget for longer
        than the duty-change interval."""
        over_since: list[float | None] = [None]

        def check() -> None:
            now = self.clock.monotonic()
            slack = DUTY_STEP_A * len(self.station.connectors)  # duty resolution
            if self.total_a() > self.budget_a + slack:
                if over_since[0] is None:
                    over_since[0] = now
                assert now - over_since[0] <= DUTY_INTERVAL_S, (
                    f"{self.total_a():.1f} A > {self.budget_a} A for {now - over_since[0]} s")
            else:
                over_since[0] = None
        return check


async def make_rig(connectors: int, budget_a: float, db: sqlite3.Connection | None = None
                   ) -> Rig:
    board = create_board(HardwareSettings(driver="sim"), [
        ConnectorSettings(id=i, max_current_a=32.0, phases=3)
        for i in range(1, connectors + 1)])
    clock = ManualClock()
    utc = Clock(wall=lambda: WALL0, monotonic=clock.monotonic)
    station = Station(board, {i: 32.0 for i in range(1, connectors + 1)}, budget_a,
                      db if db is not None else sqlite3.connect(":memory:",
                                                                 isolation_level=None),
                      clock=clock, utc_clock=utc)
    station.authorizer = AcceptAll()
    await station.start(poll=False)
    sim = board.simulator
    assert isinstance(sim, SimBoard)
    rig = Rig(station, sim, clock, budget_a)
    await rig.settle()
    return rig


@pytest.fixture
async def rigs() -> AsyncIterator[list[Rig]]:
    made: list[Rig] = []
    yield made
    for rig in made:
        await rig.station.close()


def test_the_migration_creates_the_table_the_store_expects(tmp_path: Path) -> None:
    db = open_state_db(tmp_path)
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'charging_profiles'"
                        ).fetchone()
    assert sql == CREATE_CHARGING_PROFILES.replace(" IF NOT EXISTS", "")
    db.close()


async def test_two_connectors_share_the_budget_as_evs_start_pause_under_draw_and_stop(
        rigs: list[Rig]) -> None:
    rig = await make_rig(2, 32.0)
    rigs.append(rig)
    watch = rig.budget_watch()
    await rig.start_ev(1)
    assert rig.state(1) == ENERGY_TRANSFER
    assert rig.duty(1) == duty(32) and [rig.ev_a(1)] == amps(32.0)  # alone: the whole budget
    await rig.advance(10, check=watch)

    await rig.start_ev(2)
    await rig.advance(DUTY_INTERVAL_S, check=watch)
    assert [rig.duty(1), rig.duty(2)] == [duty(16), duty(16)]
    assert [rig.ev_a(1), rig.ev_a(2)] == amps(16.0, 16.0)
    described = {c["id"]: c for c in rig.station.describe()["connectors"]}
    assert described[1]["offered_current_a"] == 16.0
    assert described[1]["limit_source"] == "load balancing"
    await rig.advance(10, check=watch)

    rig.sim.ev_pause(1)  # EV 1 stops asking: it keeps 6 A to resume, EV 2 gets the rest
    await rig.settle()
    await rig.advance(DUTY_INTERVAL_S, check=watch)
    assert rig.state(1) == SUSPENDED_BY_EV
    assert [rig.duty(1), rig.duty(2)] == [duty(6), duty(26)]
    assert [rig.ev_a(1), rig.ev_a(2)] == amps(0.0, 26.0)
    await rig.advance(10, check=watch)

    rig.sim.ev_resume(1)  # back to a fair share
    await rig.settle()
    await rig.advance(2 * DUTY_INTERVAL_S, check=watch)
    assert rig.state(1) == ENERGY_TRANSFER
    assert [rig.duty(1), rig.duty(2)] == [duty(16), duty(16)]

    # EV 2 draws only 10 A of its 16: after the balancer's settling time the unused part
    # goes to EV 1 (EV 2 keeps 2 A of headroom above its draw).
    await rig.stop_ev(2)
    await rig.advance(DUTY_INTERVAL_S, check=watch)
    await rig.start_ev(2, ev_max_a=10.0)
    await rig.advance(DUTY_INTERVAL_S, check=watch)
    assert [rig.ev_a(1), rig.ev_a(2)] == amps(16.0, 10.0)
    await rig.advance(36, check=watch)  # meters read every second meanwhile
    await rig.advance(DUTY_INTERVAL_S, check=watch)
    assert [rig.duty(1), rig.duty(2)] == [duty(20), duty(12)]
    assert [rig.ev_a(1), rig.ev_a(2)] == amps(20.0, 10.0)

    await rig.stop_ev(1)  # EV 1 leaves: EV 2 may take all it can
    await rig.advance(DUTY_INTERVAL_S, check=watch)
    assert rig.duty(2) == duty(32) and [rig.ev_a(2)] == amps(10.0)


async def test_four_connectors_one_waits_and_is_served_first_when_budget_frees(
        rigs: list[Rig]) -> None:
    rig = await make_rig(4, 20.0)
    rigs.append(rig)
    watch = rig.budget_watch()
    for cid in (1, 2, 3):
        await rig.start_ev(cid)
        await rig.advance(1.0, check=watch)
    await rig.advance(DUTY_INTERVAL_S, check=watch)
    assert [rig.duty(c) for c in (1, 2, 3)] == [duty(6.6)] * 3  # 20 / 3, down to 0.1 A

    await rig.start_ev(4)  # 20 - 3 × 6 = 2 A left: less than 6 A, so it waits
    await rig.advance(DUTY_INTERVAL_S, check=watch)
    assert rig.state(4) == SUSPENDED_BY_EVSE
    assert rig.duty(4) == 100.0 and rig.ev_a(4) == 0.0
    assert rig.station.describe()["load_balancing"]["waiting"] == [4]
    assert rig.total_a() <= 20.0 + 3 * DUTY_STEP_A

    await rig.stop_ev(2)  # budget frees: the waiting connector is served
    await rig.advance(3 * DUTY_INTERVAL_S, check=watch)
    assert rig.state(4) == ENERGY_TRANSFER
    assert [rig.duty(c) for c in (1, 3, 4)] == [duty(6.6)] * 3
    assert [rig.ev_a(c) for c in (1, 3, 4)] == amps(6.6, 6.6, 6.6)
    assert rig.station.describe()["load_balancing"]["waiting"] == []

    rig.sim.ev_pause(1)  # 6 A kept for EV 1; (20 - 6) / 2 = 7 A for the others
    await rig.settle()
    await rig.advance(2 * DUTY_INTERVAL_S, check=watch)
    assert [rig.duty(c) for c in (1, 3, 4)] == [duty(6), duty(7), duty(7)]
    assert [rig.ev_a(c) for c in (1, 3, 4)] == amps(0.0, 7.0, 7.0)


async def test_a_profile_period_starting_in_10_s_changes_the_duty_within_15_s(
        rigs: list[Rig]) -> None:
    rig = await make_rig(1, 32.0)
    rigs.append(rig)
    await rig.start_ev(1)
    assert rig.duty(1) == duty(32)
    now = rig.station.clock.now()
    rig.station.smart.install(profile(
        7, ProfilePurpose.TX_DEFAULT, [(0, 10.0)], evse_id=1, start_at=now + 10.0))
    await rig.settle()
    await rig.advance(9.5)
    assert rig.duty(1) == duty(32)  # not before its period starts
    await rig.advance(10 + DUTY_INTERVAL_S - 9.5)
    assert rig.duty(1) == duty(10) and [rig.ev_a(1)] == amps(10.0)
    (described,) = rig.station.describe()["connectors"]
    assert described["limit_source"] == "profile 7"
    assert (described["offered_current_a"], described["duty_percent"]) == (10.0, duty(10))


async def test_a_station_maximum_profile_caps_the_shared_budget(rigs: list[Rig]) -> None:
    rig = await make_rig(2, 32.0)
    rigs.append(rig)
    rig.station.smart.install(profile(
        1, ProfilePurpose.STATION_MAXIMUM, [(0, 20.0)], start_at=WALL0 - 60))
    await rig.start_ev(1)
    await rig.start_ev(2)
    await rig.advance(DUTY_INTERVAL_S)
    assert [rig.duty(1), rig.duty(2)] == [duty(10), duty(10)]
    assert rig.station.describe()["load_balancing"]["budget_source"] == "profile 1"


async def test_a_below_6_a_profile_suspends_and_a_tx_profile_ends_with_its_transaction(
        rigs: list[Rig]) -> None:
    rig = await make_rig(1, 32.0)
    rigs.append(rig)
    await rig.start_ev(1)
    session = rig.station.connectors[1].session
    assert session is not None
    rig.station.smart.install(profile(
        9, ProfilePurpose.TX, [(0, 4.0)], evse_id=1, kind=ProfileKind.RELATIVE,
        transaction_id=str(session.session_id)))
    await rig.advance(1.0)
    assert rig.state(1) == SUSPENDED_BY_EVSE and rig.ev_a(1) == 0.0
    await rig.stop_ev(1)
    assert rig.station.smart.store.all() == []


async def test_profiles_survive_a_restart_but_transaction_profiles_do_not(
        tmp_path: Path, rigs: list[Rig]) -> None:
    db = open_state_db(tmp_path)
    rig = await make_rig(1, 32.0, db)
    await rig.start_ev(1)
    session = rig.station.connectors[1].session
    assert session is not None
    rig.station.smart.install(profile(
        3, ProfilePurpose.TX_DEFAULT, [(0, 16.0)], evse_id=0, start_at=WALL0 - 60))
    rig.station.smart.install(profile(
        4, ProfilePurpose.TX, [(0, 8.0)], evse_id=1, kind=ProfileKind.RELATIVE,
        transaction_id=str(session.session_id)))
    await rig.station.close()  # a power cut: the transaction is left open
    db.close()

    db = open_state_db(tmp_path)
    again = await make_rig(1, 32.0, db)
    rigs.append(again)
    assert [p.profile_id for p in again.station.smart.store.all()] == [3]
    await again.start_ev(1)
    assert again.duty(1) == duty(16)
