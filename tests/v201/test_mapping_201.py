"""The 2.0.1 tables cover the whole core vocabulary, with the spec's words (OCPP 2.0.1 Part 2
§3: ConnectorStatusEnumType, ChargingStateEnumType, ReasonEnumType, TriggerReasonEnumType)."""

from __future__ import annotations

from evse.domain import Fault, IdTokenType, StopCause
from evse.session_machine import SESSION_STATES
from evse.tx_policy import TxPoint
from ocpp_client.v201 import mapping


def test_every_core_value_has_a_201_word() -> None:
    assert set(mapping.CONNECTOR_STATUS) == set(SESSION_STATES)
    assert set(mapping.CHARGING_STATE) == set(SESSION_STATES)
    assert set(mapping.STOPPED_REASON) == set(StopCause)
    assert set(mapping.STOP_TRIGGER) == set(StopCause)
    assert set(mapping.ID_TOKEN_TYPE) == set(IdTokenType)


def test_words_as_the_spec_spells_them() -> None:
    assert mapping.CONNECTOR_STATUS["energy_transfer"] == "Occupied"
    assert mapping.CONNECTOR_STATUS["out_of_service"] == "Unavailable"
    assert mapping.CHARGING_STATE["suspended_by_ev"] == "SuspendedEV"
    assert mapping.stopped_reason(StopCause.FAULT, Fault.RCD_TRIP) == "GroundFault"
    assert mapping.stopped_reason(StopCause.FAULT, Fault.OVERCURRENT) == "OvercurrentFault"
    assert mapping.stopped_reason(StopCause.FAULT, Fault.WELDED) == "Other"
    assert mapping.stopped_reason(StopCause.EV_DISCONNECTED, None) == "EVDisconnected"
    assert mapping.stopped_reason(StopCause.DEAUTHORIZED, None) == "DeAuthorized"
    assert mapping.ID_TOKEN_TYPE[IdTokenType.EMAID] == "eMAID"
    assert mapping.tx_points(["EVConnected", "ParkingBayOccupancy", "PowerPathClosed"]) == {
        TxPoint.EV_CONNECTED, TxPoint.POWER_PATH_CLOSED}
    assert mapping.AUTH_STATUS.get("NotAtThisTime") is None  # refused as Invalid
