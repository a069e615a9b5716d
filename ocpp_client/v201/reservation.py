"""OCPP 2.0.1 Reservation (H01–H04) on the protocol-neutral engine (``station.reservations``).

ReserveNow (H01: an EVSE, or any EVSE without ``evseId`` when
ReservationCtrlr.NonEvseSpecific), CancelReservation (H02), the reservation used only by its
idToken or groupIdToken (H03, the core's admission rule), ReservationStatusUpdate Expired /
Removed (H04) and the Reserved connectorStatus (the core's RESERVED state, mapped in
:mod:`.mapping`). As in 1.6 (:mod:`ocpp_client.v16.reservation`), conversion only: the
rules are :mod:`evse.reservations`'.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

from ocpp.routing import on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

import ocpp_client.v201.mapping as mapping
from evse.domain import DomainEvent, ReservationExpired
from evse.reservations import STATION_WIDE, ReservationAnswer
from evse.station import Station
from ocpp_client.v16.meter_values import parse_timestamp
from ocpp_client.v201.commands import id_token_of
from ocpp_client.v201.device_model import DeviceModel

log = logging.getLogger(__name__)


class Reservation201:
    """The 2.0.1 reservation commands against the Station's reservations.

    Args:
        station: the core (``station.reservations``).
        model: the device model (ReservationCtrlr).
        connector_types: the ConnectorEnumType texts this station has (ReserveNow's
            connectorType must be one of them).
        send: hand a CALL to the link (ReservationStatusUpdate; dropped while offline).
    """

    def __init__(self, station: Station, model: DeviceModel, connector_types: Collection[str],
                 send: Callable[[Any], None]) -> None:
        self.station = station
        self.model = model
        self.connector_types = frozenset(connector_types)
        self._send = send
        station.subscribe(self.on_event)

    def _flag(self, name: str) -> bool:
        try:
            return self.model.get_bool("ReservationCtrlr", name)
        except KeyError:
            return False

    def apply_variables(self) -> None:
        """ReservationCtrlr.Enabled / NonEvseSpecific → the engine's switches."""
        engine = self.station.reservations
        engine.accept_reservations = self._flag("Enabled")
        engine.station_wide_supported = self._flag("NonEvseSpecific")

    def reserve_now(self, id: int, expiry_date_time: str, id_token: dict[str, Any],
                    evse_id: int | None = None, connector_type: str | None = None,
                    group_id_token: dict[str, Any] | None = None) -> str:
        """ReserveNowStatusEnumType of a ReserveNow (H01): Rejected for an unreadable expiry,
        an unknown EVSE or connectorType, or reservations switched off."""
        try:
            expires_at = parse_timestamp(expiry_date_time)
        except ValueError:
            log.warning("ReserveNow %d: bad expiryDateTime %r", id, expiry_date_time)
            return mapping.RESERVE_NOW_STATUS[ReservationAnswer.REJECTED].value
        target = STATION_WIDE if evse_id is None else evse_id
        if (target != STATION_WIDE and target not in self.station.evses) or (
                connector_type is not None and connector_type not in self.connector_types):
            return mapping.RESERVE_NOW_STATUS[ReservationAnswer.REJECTED].value
        group = None if group_id_token is None else str(group_id_token["id_token"])
        answer = self.station.reservations.reserve(id, target, id_token_of(id_token), group,
                                                   expires_at)
        return mapping.RESERVE_NOW_STATUS[answer].value

    def cancel_reservation(self, reservation_id: int) -> str:
        """"Accepted" when the reservation existed (cancelled, H02), else "Rejected"."""
        return "Accepted" if self.station.reservations.cancel(reservation_id) else "Rejected"

    def on_event(self, event: DomainEvent) -> None:
        """ReservationStatusUpdate when a reservation expired or was removed (H04)."""
        if not isinstance(event, ReservationExpired):
            return
        status = mapping.RESERVATION_UPDATE_STATUS.get(event.ended_by)
        if status is not None:
            self._send(call.ReservationStatusUpdate(reservation_id=event.reservation_id,
                                                    reservation_update_status=status.value))


class ReservationHandlers201:
    """The H-block's CSMS → station handlers, mixed into ``ChargePoint201`` (which sets
    :attr:`reservation`)."""

    reservation: Reservation201 | None

    def _reservation(self) -> Reservation201:
        if self.reservation is None:
            raise RuntimeError("no reservation port")
        return self.reservation

    @on(Action.reserve_now)
    def on_reserve_now(self, id: int, expiry_date_time: str, id_token: dict[str, Any],
                       evse_id: int | None = None, connector_type: str | None = None,
                       group_id_token: dict[str, Any] | None = None, **_: Any
                       ) -> call_result.ReserveNow:
        return call_result.ReserveNow(status=self._reservation().reserve_now(
            id, expiry_date_time, id_token, evse_id,
            None if connector_type is None else str(connector_type), group_id_token))

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int, **_: Any
                              ) -> call_result.CancelReservation:
        return call_result.CancelReservation(
            status=self._reservation().cancel_reservation(reservation_id))
