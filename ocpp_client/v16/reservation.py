"""OCPP 1.6 Reservation profile ↔ the protocol-neutral engine (:mod:`evse.reservations`).

ReserveNow.req (§5.13) → ``Reservations.reserve``, ReservationStatus back;
CancelReservation.req (§5.3) → ``Reservations.cancel``; the ``ReserveConnectorZeroSupported``
key (§9.4). In 1.6 a connector is an EVSE: connectorId n is EVSE n, connectorId 0 is
:data:`evse.reservations.STATION_WIDE`.

Conversion only: the ``@on`` handlers call these functions.
"""

from __future__ import annotations

import logging

from ocpp.v16 import call_result, enums

from evse.domain import IdToken, IdTokenType
from evse.reservations import ReservationAnswer, Reservations
from ocpp_client.configuration import KeyDef
from ocpp_client.v16.meter_values import parse_timestamp

log = logging.getLogger(__name__)

RESERVATION_STATUS: dict[ReservationAnswer, enums.ReservationStatus] = {
    ReservationAnswer.ACCEPTED: enums.ReservationStatus.accepted,
    ReservationAnswer.OCCUPIED: enums.ReservationStatus.occupied,
    ReservationAnswer.FAULTED: enums.ReservationStatus.faulted,
    ReservationAnswer.UNAVAILABLE: enums.ReservationStatus.unavailable,
    ReservationAnswer.REJECTED: enums.ReservationStatus.rejected,
}


def key_defs(connector_zero_supported: bool) -> tuple[KeyDef, ...]:
    """Configuration keys of the Reservation profile (OCPP 1.6 §9.4), for
    ``configuration.KEYS``; read-only, its value is what the engine honours."""
    return (KeyDef("ReserveConnectorZeroSupported", bool, connector_zero_supported,
                   readonly=True),)


def reserve_now(engine: Reservations, connector_id: int, expiry_date: str, id_tag: str,
                reservation_id: int, parent_id_tag: str | None = None
                ) -> call_result.ReserveNow:
    """Handle ReserveNow.req (OCPP 1.6 §5.13): ReserveNow.conf with the engine's answer;
    Rejected for an unreadable expiryDate or a negative connectorId."""
    try:
        expires_at = parse_timestamp(expiry_date)
    except ValueError:
        log.warning("ReserveNow %d: bad expiryDate %r", reservation_id, expiry_date)
        return call_result.ReserveNow(enums.ReservationStatus.rejected)
    if connector_id < 0:
        return call_result.ReserveNow(enums.ReservationStatus.rejected)
    # An idTag from the CSMS, like RemoteStartTransaction's (ocpp_client/v16/commands.py).
    token = IdToken(id_tag, IdTokenType.CENTRAL)
    answer = engine.reserve(reservation_id, connector_id, token, parent_id_tag, expires_at)
    return call_result.ReserveNow(RESERVATION_STATUS[answer])


def cancel_reservation(engine: Reservations, reservation_id: int
                       ) -> call_result.CancelReservation:
    """Handle CancelReservation.req (OCPP 1.6 §5.3): Accepted when the reservation existed
    (it is cancelled), else Rejected."""
    if engine.cancel(reservation_id):
        return call_result.CancelReservation(enums.CancelReservationStatus.accepted)
    return call_result.CancelReservation(enums.CancelReservationStatus.rejected)
