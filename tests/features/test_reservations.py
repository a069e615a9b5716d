"""The reservation engine on a real SQLite file with the manual clock (OCPP 1.6 §3.11, §5.13,
§5.3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evse.domain import IdToken as T
from evse.domain import IdTokenType
from evse.reservations import (
    STATION_WIDE,
    EvseState,
    Reservation,
    ReservationAnswer,
    ReservationEvent,
    ReservationEventKind,
    Reservations,
)
from evse.state_db import open_state_db
from evse.timers import ManualClock

A = ReservationAnswer
K = ReservationEventKind
EPOCH = 1_780_000_000.0


class Rig:
    def __init__(self, tmp_path: Path, evses: int = 2, zero: bool = False,
                 clock: ManualClock | None = None) -> None:
        self.tmp_path = tmp_path
        self.clock = clock or ManualClock(start=EPOCH)
        self.states = {e: EvseState.FREE for e in range(1, evses + 1)}
        self.events: list[tuple[K, int, int]] = []
        self.raw: list[ReservationEvent] = []
        self.conn = open_state_db(tmp_path / "state")
        self.r = Reservations(conn=self.conn, clock=self.clock, wall=self.clock.monotonic,
                              evse_ids=list(self.states), evse_state=self.states.__getitem__,
                              on_event=self._event, station_wide_supported=zero)

    def _event(self, event: ReservationEvent) -> None:
        self.raw.append(event)
        self.events.append((event.kind, event.reservation.reservation_id,
                            event.reservation.evse_id))

    def rows(self) -> list[tuple[int, int, str]]:
        return self.conn.execute(
            "SELECT reservation_id, evse_id, id_token FROM reservations ORDER BY 1").fetchall()


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def test_expires_exactly_at_expiry_date(rig: Rig) -> None:
    assert rig.r.reserve(1, 1, T("TAG1"), None, EPOCH + 600) is A.ACCEPTED
    assert rig.r.is_reserved(1) and not rig.r.is_reserved(2)
    rig.clock.advance(599.9)
    assert rig.r.is_reserved(1)
    assert rig.events == [(K.PLACED, 1, 1)]
    rig.clock.advance(0.1)
    assert not rig.r.is_reserved(1)
    assert rig.events == [(K.PLACED, 1, 1), (K.EXPIRED, 1, 1)]
    assert rig.rows() == []


def test_kept_across_restart_and_expires_on_time(tmp_path: Path) -> None:
    first = Rig(tmp_path)
    first.r.reserve(7, 2, T("TAG7", IdTokenType.CENTRAL), "GROUP", EPOCH + 3600)
    first.r.reserve(8, 1, T("TAG8"), None, EPOCH + 60)
    first.r.close()
    first.conn.close()

    # restarted 10 min later: reservation 8 expired meanwhile, 7 is still held
    clock = ManualClock(start=EPOCH + 600)
    second = Rig(tmp_path, clock=clock)
    second.r.restore()
    assert second.events == [(K.EXPIRED, 8, 1)]
    assert second.r.get(7) == Reservation(7, 2, T("TAG7", IdTokenType.CENTRAL), "GROUP",
                                          EPOCH + 3600)
    # the same card swiped at the reader (another presentation type, other case) may use it
    assert second.r.admit(2, T("tag7", IdTokenType.ISO14443), None).allowed
    assert second.r.is_reserved(2) and not second.r.is_reserved(1)
    clock.advance(3000)
    assert second.events[-1] == (K.EXPIRED, 7, 2)
    assert second.rows() == []


def test_only_the_reserving_token_or_its_group_may_charge(rig: Rig) -> None:
    rig.r.reserve(1, 1, T("CARD-A"), "FLEET", EPOCH + 600)
    assert rig.r.admit(1, T("CARD-A"), None).allowed
    assert rig.r.admit(1, T("card-a"), None).allowed  # idTag is a CiString
    assert rig.r.admit(1, T("CARD-B"), "FLEET").allowed  # same group (parentIdTag)
    assert not rig.r.admit(1, T("CARD-C"), None).allowed
    assert not rig.r.admit(1, T("CARD-C"), "OTHER").allowed
    assert rig.r.admit(2, T("CARD-C"), None).allowed  # the other EVSE is not held

    # a reservation of a parent id itself: cards of that group may use it
    rig.r.reserve(2, 2, T("FLEET2"), None, EPOCH + 600)
    assert rig.r.admit(2, T("CARD-D"), "FLEET2").allowed
    assert not rig.r.admit(2, T("CARD-D"), None).allowed


def test_used_by_a_transaction(rig: Rig) -> None:
    rig.r.reserve(5, 1, T("CARD-A"), None, EPOCH + 600)
    admission = rig.r.admit(1, T("CARD-A"), None)
    assert admission.reservation is not None
    assert rig.r.use(admission.reservation.reservation_id) == admission.reservation
    assert rig.events[-1] == (K.USED, 5, 1)
    assert not rig.r.is_reserved(1) and rig.rows() == []
    rig.clock.advance(601)
    assert rig.events[-1] == (K.USED, 5, 1)  # no expiry after use


def test_answers(rig: Rig) -> None:
    rig.states[2] = EvseState.FAULTED
    assert rig.r.reserve(1, 2, T("T"), None, EPOCH + 60) is A.FAULTED
    rig.states[2] = EvseState.UNAVAILABLE
    assert rig.r.reserve(1, 2, T("T"), None, EPOCH + 60) is A.UNAVAILABLE
    rig.states[2] = EvseState.OCCUPIED
    assert rig.r.reserve(1, 2, T("T"), None, EPOCH + 60) is A.OCCUPIED
    assert rig.r.reserve(1, 1, T("T"), None, EPOCH + 60) is A.ACCEPTED
    # reserved for the same or another idTag: Occupied
    assert rig.r.reserve(2, 1, T("U"), None, EPOCH + 60) is A.OCCUPIED
    assert rig.r.reserve(3, 1, T("T"), None, EPOCH + 60) is A.OCCUPIED
    assert rig.r.reserve(4, 9, T("T"), None, EPOCH + 60) is A.REJECTED  # no such EVSE
    assert rig.r.reserve(4, 1, T("T"), None, EPOCH - 1) is A.REJECTED  # already expired
    assert rig.r.reserve(4, STATION_WIDE, T("T"), None, EPOCH + 60) is A.REJECTED  # no flag
    rig.r.accept_reservations = False
    rig.states[2] = EvseState.FREE
    assert rig.r.reserve(4, 2, T("T"), None, EPOCH + 60) is A.REJECTED
    assert [r.reservation_id for r in rig.r.all()] == [1]


def test_same_id_replaces(rig: Rig) -> None:
    rig.r.reserve(1, 1, T("T"), None, EPOCH + 60)
    assert rig.r.reserve(1, 1, T("U"), None, EPOCH + 120) is A.ACCEPTED
    assert rig.rows() == [(1, 1, "U")]
    rig.clock.advance(61)
    assert rig.r.is_reserved(1)  # the old expiry is gone
    assert rig.r.reserve(1, 2, T("U"), None, EPOCH + 120) is A.ACCEPTED  # moves EVSE
    assert not rig.r.is_reserved(1) and rig.r.is_reserved(2)
    assert rig.events[-2:] == [(K.CANCELLED, 1, 1), (K.PLACED, 1, 2)]
    rig.clock.advance(60)
    assert rig.events[-1] == (K.EXPIRED, 1, 2)


def test_cancel(rig: Rig) -> None:
    rig.r.reserve(3, 1, T("T"), None, EPOCH + 60)
    assert rig.r.cancel(3) is True
    assert rig.events[-1] == (K.CANCELLED, 3, 1)
    assert rig.r.cancel(3) is False
    assert rig.rows() == []


def test_withdrawn_when_the_evse_faults(rig: Rig) -> None:
    rig.r.reserve(3, 1, T("T"), None, EPOCH + 60)
    rig.r.evse_state_changed(1)
    assert rig.r.is_reserved(1)
    rig.states[1] = EvseState.FAULTED
    rig.r.evse_state_changed(1)
    assert rig.events[-1] == (K.WITHDRAWN, 3, 1)
    assert rig.rows() == []


def test_station_wide_keeps_one_free_evse_per_reservation(tmp_path: Path) -> None:
    rig = Rig(tmp_path, evses=2, zero=True)
    assert rig.r.reserve(1, STATION_WIDE, T("A"), None, EPOCH + 600) is A.ACCEPTED
    assert not rig.r.is_reserved(1) and not rig.r.is_reserved(2)
    # another card may take one EVSE: one stays free for A
    assert rig.r.admit(1, T("X"), None).allowed
    rig.states[1] = EvseState.OCCUPIED
    assert not rig.r.admit(2, T("Y"), None).allowed  # the last free EVSE is A's
    assert rig.r.admit(2, T("A"), None).allowed
    # no EVSE can be held specifically, nor a second station-wide reservation
    assert rig.r.reserve(2, 2, T("B"), None, EPOCH + 600) is A.OCCUPIED
    assert rig.r.reserve(2, STATION_WIDE, T("B"), None, EPOCH + 600) is A.OCCUPIED
    rig.states[1] = EvseState.FREE
    assert rig.r.reserve(2, STATION_WIDE, T("B"), None, EPOCH + 600) is A.ACCEPTED
    assert not rig.r.admit(1, T("X"), None).allowed  # both free EVSEs are spoken for
    assert rig.r.reserve(3, STATION_WIDE, T("C"), None, EPOCH + 600) is A.OCCUPIED
    admission = rig.r.admit(2, T("B"), None)
    assert admission.allowed and admission.reservation == rig.r.get(2)


def test_station_wide_answers_when_nothing_can_serve(tmp_path: Path) -> None:
    rig = Rig(tmp_path, evses=2, zero=True)
    rig.states.update({1: EvseState.FAULTED, 2: EvseState.FAULTED})
    assert rig.r.reserve(1, STATION_WIDE, T("A"), None, EPOCH + 60) is A.FAULTED
    rig.states[2] = EvseState.UNAVAILABLE
    assert rig.r.reserve(1, STATION_WIDE, T("A"), None, EPOCH + 60) is A.UNAVAILABLE
    rig.states[2] = EvseState.FREE
    assert rig.r.reserve(1, STATION_WIDE, T("A"), None, EPOCH + 60) is A.ACCEPTED
    rig.states[2] = EvseState.UNAVAILABLE
    rig.r.evse_state_changed(2)
    assert rig.events[-1] == (K.WITHDRAWN, 1, STATION_WIDE)


def test_domain_events(rig: Rig) -> None:
    from evse.domain import ReservationExpired, ReservationPlaced, ReservationUsed
    from evse.reservations import domain_event

    rig.r.reserve(1, 1, T("A"), None, EPOCH + 60)
    rig.r.use(1)
    rig.r.reserve(2, 2, T("B"), None, EPOCH + 60)
    rig.r.cancel(2)
    assert [domain_event(e, rig.clock.monotonic()) for e in rig.raw] == [
        ReservationPlaced(1, 1, 1, T("A"), EPOCH + 60, EPOCH),
        ReservationUsed(1, 1, 1, EPOCH),
        ReservationPlaced(2, 2, 2, T("B"), EPOCH + 60, EPOCH),
        ReservationExpired(2, 2, 2, EPOCH, ended_by="cancelled"),
    ]
