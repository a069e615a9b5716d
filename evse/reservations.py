"""Reservations, protocol-neutral (OCPP 1.6 §3.11, §5.13 ReserveNow, §5.3 CancelReservation;
OCPP 2.0.1 H01–H04).

A reservation holds one EVSE (or, with EVSE id 0, *any* EVSE of the station) for one
IdToken until it expires, is used by a transaction of that IdToken or its group, is
cancelled, or is withdrawn because its EVSE became faulted or unavailable.

Rules (OCPP 1.6 §5.13):

- the same reservation id again replaces the reservation (possibly on another EVSE);
- an EVSE that is occupied, or reserved by another reservation, answers *occupied*; a
  faulted one *faulted*; an unavailable one *unavailable*; a station that does not take
  reservations (or this kind of reservation) answers *rejected*;
- only the reserving IdToken, or one whose group id (1.6 parentIdTag) matches the
  reservation's IdToken or group id, may charge on a reserved EVSE;
- EVSE 0 (``ReserveConnectorZeroSupported``): no EVSE is picked; instead the station makes
  sure that for every station-wide reservation one EVSE stays free for its IdToken. So an
  EVSE-0 reservation is accepted while more EVSEs are free (and not reserved) than there
  are station-wide reservations, and another IdToken may take a free EVSE only while that
  still leaves one free EVSE per station-wide reservation. Without the flag an EVSE-0
  reservation is rejected.

Expiry is timer-driven on the injectable :class:`evse.timers.Clock`; reservations are rows
of the table ``reservations`` in the state database and survive a restart (call
:meth:`Reservations.restore` at start-up; what expired meanwhile is reported expired).
"""

from __future__ import annotations

import enum
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from evse.domain import (
    IdToken,
    IdTokenType,
    ReservationExpired,
    ReservationPlaced,
    ReservationUsed,
)
from evse.sql_transaction import transaction
from evse.timers import Clock, Timer

log = logging.getLogger(__name__)

#: The EVSE id meaning "any EVSE of the station" (OCPP 1.6 connectorId 0).
STATION_WIDE = 0

#: A timer firing this much earlier than the wall-clock expiry re-arms instead (the wall
#: clock was corrected by the CSMS meanwhile), s.
_EARLY_TOLERANCE_S = 0.5


class ReservationAnswer(enum.Enum):
    """The answer to a reservation request (OCPP 1.6 ReservationStatus, §7.44)."""

    ACCEPTED = "accepted"
    OCCUPIED = "occupied"
    FAULTED = "faulted"
    UNAVAILABLE = "unavailable"
    REJECTED = "rejected"


class EvseState(enum.Enum):
    """What the station says about an EVSE, for reservation decisions."""

    #: nothing plugged in, no transaction, no fault: can be reserved
    FREE = "free"
    #: an EV is connected or a transaction runs
    OCCUPIED = "occupied"
    FAULTED = "faulted"
    UNAVAILABLE = "unavailable"


class ReservationEventKind(enum.Enum):
    PLACED = "placed"          #: accepted (also a replacement of the same id)
    USED = "used"              #: a transaction of the reserving IdToken / group started
    EXPIRED = "expired"        #: its expiry time passed
    CANCELLED = "cancelled"    #: cancelled by the CSMS (1.6 CancelReservation)
    WITHDRAWN = "withdrawn"    #: its EVSE became faulted or unavailable (1.6 §3.11)


@dataclass(frozen=True)
class Reservation:
    """One reservation.

    Attributes:
        reservation_id: the CSMS's id.
        evse_id: the reserved EVSE, or :data:`STATION_WIDE`.
        id_token: the IdToken it is for (1.6 idTag).
        group_id: the IdToken's group id (1.6 parentIdTag, 2.0.1 groupIdToken value).
        expires_at_s: expiry, UTC epoch s.
    """

    reservation_id: int
    evse_id: int
    id_token: IdToken
    group_id: str | None
    expires_at_s: float

    def matches(self, id_token: IdToken, group_id: str | None) -> bool:
        """True when ``id_token`` or its ``group_id`` equals this reservation's IdToken or
        group id. Values compare case-insensitively (OCPP 1.6 idTag is a CiString20Type);
        the presentation type does not matter (a card reserved by the CSMS is the same card
        when it is swiped)."""
        ours = {t.casefold() for t in (self.id_token.value, self.group_id) if t}
        theirs = {t.casefold() for t in (id_token.value, group_id) if t}
        return bool(ours & theirs)


@dataclass(frozen=True)
class ReservationEvent:
    kind: ReservationEventKind
    reservation: Reservation


@dataclass(frozen=True)
class Admission:
    """Whether an IdToken may start a transaction on an EVSE, and which reservation that
    transaction uses (pass it to :meth:`Reservations.use` when the transaction starts)."""

    allowed: bool
    reservation: Reservation | None = None


def domain_event(event: ReservationEvent, timestamp: float, connector_id: int | None = None
                 ) -> ReservationPlaced | ReservationUsed | ReservationExpired:
    """The core's domain event for an engine event (what the Station publishes): placed →
    :class:`~evse.domain.ReservationPlaced`, used → :class:`~evse.domain.ReservationUsed`,
    expired / cancelled / withdrawn → :class:`~evse.domain.ReservationExpired`.

    Args:
        timestamp: UTC epoch s (``evse.clock.Clock.now``).
        connector_id: the EVSE's connector (default: the EVSE id; 0 for station-wide).
    """
    r = event.reservation
    connector = r.evse_id if connector_id is None else connector_id
    if event.kind is ReservationEventKind.PLACED:
        return ReservationPlaced(r.evse_id, connector, r.reservation_id, r.id_token,
                                 r.expires_at_s, timestamp)
    if event.kind is ReservationEventKind.USED:
        return ReservationUsed(r.evse_id, connector, r.reservation_id, timestamp)
    return ReservationExpired(r.evse_id, connector, r.reservation_id, timestamp,
                              ended_by=event.kind.value)


_TABLE = "reservations"


def migrate_reservations(conn: sqlite3.Connection) -> None:
    """Create the reservations table if missing (for the state DB's migration list;
    idempotent)."""
    conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {_TABLE} (
            reservation_id INTEGER PRIMARY KEY,
            evse_id INTEGER NOT NULL,
            id_token TEXT NOT NULL,
            id_token_type TEXT NOT NULL,
            group_id TEXT,
            expires_at REAL NOT NULL
        )"""
    )


class Reservations:
    """The station's reservations.

    Args:
        conn: the state database (``evse.state_db``).
        clock: timer clock for expiry (``evse.timers``).
        wall: UTC epoch seconds now (``evse.clock.Clock.now``).
        evse_ids: the station's EVSE ids (1..n).
        evse_state: the current :class:`EvseState` of an EVSE (ignoring reservations).
        on_event: told about each :class:`ReservationEvent` (status Reserved / Available).
        station_wide_supported: OCPP 1.6 ReserveConnectorZeroSupported.
        accept_reservations: False: every request is rejected (reservations switched off).
    """

    def __init__(self, *, conn: sqlite3.Connection, clock: Clock, wall: Callable[[], float],
                 evse_ids: Sequence[int], evse_state: Callable[[int], EvseState],
                 on_event: Callable[[ReservationEvent], None],
                 station_wide_supported: bool = False,
                 accept_reservations: bool = True) -> None:
        self._conn = conn
        self._clock = clock
        self._wall = wall
        self._evse_ids = tuple(evse_ids)
        self._evse_state = evse_state
        self._on_event = on_event
        self.station_wide_supported = station_wide_supported
        self.accept_reservations = accept_reservations
        self._by_id: dict[int, Reservation] = {}
        self._timers: dict[int, Timer] = {}
        migrate_reservations(conn)

    # --- queries -------------------------------------------------------------------------

    def get(self, reservation_id: int) -> Reservation | None:
        return self._by_id.get(reservation_id)

    def all(self) -> list[Reservation]:
        """Every live reservation, by id."""
        return [self._by_id[k] for k in sorted(self._by_id)]

    def for_evse(self, evse_id: int) -> Reservation | None:
        """The reservation holding EVSE ``evse_id`` specifically (its status is Reserved)."""
        return next((r for r in self._by_id.values() if r.evse_id == evse_id), None)

    def is_reserved(self, evse_id: int) -> bool:
        """True while EVSE ``evse_id`` is held by a reservation of its own (status
        Reserved, OCPP 1.6 §4.9)."""
        return self.for_evse(evse_id) is not None

    # --- requests ------------------------------------------------------------------------

    def reserve(self, reservation_id: int, evse_id: int, id_token: IdToken,
                group_id: str | None, expires_at_s: float) -> ReservationAnswer:
        """Place (or replace, same id) a reservation (OCPP 1.6 ReserveNow.req, §5.13).

        Args:
            evse_id: the EVSE, or :data:`STATION_WIDE` (0) for any.
            expires_at_s: expiry, UTC epoch s (must be in the future).
        """
        answer = self._decide(reservation_id, evse_id, expires_at_s)
        if answer is not ReservationAnswer.ACCEPTED:
            log.info("reservation %d on EVSE %d: %s", reservation_id, evse_id, answer.value)
            return answer
        reservation = Reservation(reservation_id, evse_id, id_token, group_id, expires_at_s)
        with transaction(self._conn):
            self._conn.execute(
                f"INSERT OR REPLACE INTO {_TABLE} (reservation_id, evse_id, id_token, "
                "id_token_type, group_id, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (reservation_id, evse_id, id_token.value, id_token.type.value, group_id,
                 expires_at_s))
        old = self._by_id.get(reservation_id)
        if old is not None and old.evse_id != evse_id:
            # The old EVSE is free again; tell the station like any other ending.
            self._forget(reservation_id)
            self._emit(ReservationEventKind.CANCELLED, old)
        self._add(reservation)
        self._emit(ReservationEventKind.PLACED, reservation)
        return ReservationAnswer.ACCEPTED

    def cancel(self, reservation_id: int) -> bool:
        """Cancel (OCPP 1.6 CancelReservation.req, §5.3); False when there is no such
        reservation (answer Rejected)."""
        reservation = self._end(reservation_id)
        if reservation is None:
            return False
        self._emit(ReservationEventKind.CANCELLED, reservation)
        return True

    def admit(self, evse_id: int, id_token: IdToken, group_id: str | None) -> Admission:
        """May ``id_token`` (of group ``group_id``, e.g. its 1.6 parentIdTag from Authorize /
        the local list) start a transaction on EVSE ``evse_id``?

        Allowed when the EVSE is not reserved for someone else and, for station-wide
        reservations, when taking it leaves one free EVSE per station-wide reservation. A
        matching reservation comes back in :attr:`Admission.reservation`.
        """
        own = self.for_evse(evse_id)
        if own is not None:
            return Admission(own.matches(id_token, group_id), own)
        station_wide = [r for r in self._by_id.values() if r.evse_id == STATION_WIDE]
        match = min((r for r in station_wide if r.matches(id_token, group_id)),
                    key=lambda r: r.expires_at_s, default=None)
        if match is not None:
            return Admission(True, match)
        others_free = len([e for e in self._free_evses() if e != evse_id])
        return Admission(others_free >= len(station_wide))

    def use(self, reservation_id: int) -> Reservation | None:
        """A transaction started with this reservation (1.6: its reservationId goes into
        StartTransaction.req): it ends, reported USED."""
        reservation = self._end(reservation_id)
        if reservation is not None:
            self._emit(ReservationEventKind.USED, reservation)
        return reservation

    def evse_state_changed(self, evse_id: int) -> None:
        """Call when an EVSE's :class:`EvseState` changes: a reservation of an EVSE that
        turned faulted or unavailable is withdrawn (OCPP 1.6 §3.11), and station-wide ones
        when no EVSE could serve them any more."""
        blocked = (EvseState.FAULTED, EvseState.UNAVAILABLE)
        own = self.for_evse(evse_id)
        if own is not None and self._evse_state(evse_id) in blocked:
            self._withdraw(own)
        if all(self._evse_state(e) in blocked for e in self._evse_ids):
            for r in [r for r in self._by_id.values() if r.evse_id == STATION_WIDE]:
                self._withdraw(r)

    # --- life cycle ----------------------------------------------------------------------

    def restore(self) -> None:
        """Load the persisted reservations (start-up); those that expired while the station
        was off are removed and reported EXPIRED, the others get their expiry timers."""
        rows = self._conn.execute(
            f"SELECT reservation_id, evse_id, id_token, id_token_type, group_id, expires_at "
            f"FROM {_TABLE}").fetchall()
        for row in rows:
            reservation = Reservation(row[0], row[1], IdToken(row[2], IdTokenType(row[3])),
                                      row[4], row[5])
            if reservation.expires_at_s <= self._wall():
                self._conn.execute(f"DELETE FROM {_TABLE} WHERE reservation_id = ?", (row[0],))
                self._emit(ReservationEventKind.EXPIRED, reservation)
            else:
                self._add(reservation)

    def close(self) -> None:
        """Stop the expiry timers (the reservations stay persisted)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    # --- internals -----------------------------------------------------------------------

    def _free_evses(self) -> list[int]:
        return [e for e in self._evse_ids
                if self._evse_state(e) is EvseState.FREE and not self.is_reserved(e)]

    def _decide(self, reservation_id: int, evse_id: int, expires_at_s: float
                ) -> ReservationAnswer:
        if not self.accept_reservations or expires_at_s <= self._wall():
            return ReservationAnswer.REJECTED
        # A replacement is decided as if the old reservation were gone.
        others = [r for r in self._by_id.values() if r.reservation_id != reservation_id]
        station_wide = len([r for r in others if r.evse_id == STATION_WIDE])
        held = {r.evse_id for r in others if r.evse_id != STATION_WIDE}
        free = [e for e in self._evse_ids
                if self._evse_state(e) is EvseState.FREE and e not in held]
        if evse_id == STATION_WIDE:
            if not self.station_wide_supported:
                return ReservationAnswer.REJECTED
            if len(free) > station_wide:
                return ReservationAnswer.ACCEPTED
            states = {self._evse_state(e) for e in self._evse_ids}
            if states == {EvseState.FAULTED}:
                return ReservationAnswer.FAULTED
            if states <= {EvseState.FAULTED, EvseState.UNAVAILABLE}:
                return ReservationAnswer.UNAVAILABLE
            return ReservationAnswer.OCCUPIED
        if evse_id not in self._evse_ids:
            return ReservationAnswer.REJECTED
        state = self._evse_state(evse_id)
        if state is EvseState.FAULTED:
            return ReservationAnswer.FAULTED
        if state is EvseState.UNAVAILABLE:
            return ReservationAnswer.UNAVAILABLE
        if state is EvseState.OCCUPIED or evse_id in held:
            return ReservationAnswer.OCCUPIED
        # Holding this EVSE must still leave one free EVSE per station-wide reservation.
        if len(free) - 1 < station_wide:
            return ReservationAnswer.OCCUPIED
        return ReservationAnswer.ACCEPTED

    def _add(self, reservation: Reservation) -> None:
        rid = reservation.reservation_id
        self._by_id[rid] = reservation
        timer = self._timers.get(rid)
        if timer is None:
            timer = self._timers[rid] = Timer(self._clock, f"reservation {rid} expiry",
                                              lambda: self._expire(rid))
        timer.start(max(0.0, reservation.expires_at_s - self._wall()))

    def _forget(self, reservation_id: int) -> Reservation | None:
        timer = self._timers.pop(reservation_id, None)
        if timer is not None:
            timer.cancel()
        return self._by_id.pop(reservation_id, None)

    def _end(self, reservation_id: int) -> Reservation | None:
        if reservation_id not in self._by_id:
            return None
        self._conn.execute(f"DELETE FROM {_TABLE} WHERE reservation_id = ?", (reservation_id,))
        return self._forget(reservation_id)

    def _withdraw(self, reservation: Reservation) -> None:
        if self._end(reservation.reservation_id) is not None:
            self._emit(ReservationEventKind.WITHDRAWN, reservation)

    def _expire(self, reservation_id: int) -> None:
        reservation = self._by_id.get(reservation_id)
        if reservation is None:
            return
        remaining = reservation.expires_at_s - self._wall()
        if remaining > _EARLY_TOLERANCE_S:
            self._timers[reservation_id].start(remaining)
            return
        self._end(reservation_id)
        self._emit(ReservationEventKind.EXPIRED, reservation)

    def _emit(self, kind: ReservationEventKind, reservation: Reservation) -> None:
        log.info("reservation %d (EVSE %d): %s", reservation.reservation_id,
                 reservation.evse_id, kind.value)
        try:
            self._on_event(ReservationEvent(kind, reservation))
        except Exception:
            log.exception("reservation event callback failed")
