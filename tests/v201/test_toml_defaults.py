"""``[ocpp201.variables]``: key syntax, validation with errors naming key and expectation."""

from __future__ import annotations

import tomllib

import pytest

from ocpp_client.v201.device_model import AttributeType, ComponentRef, VariableRef
from ocpp_client.v201.toml_defaults import (
    VariableDefaultsError,
    parse_key,
    parse_variable_defaults,
)

from .conftest import ModelFactory, definitions

GOOD = """
[ocpp201.variables]
"OCPPCommCtrlr.HeartbeatInterval" = 120
"ocppcommctrlr.MessageAttempts[TransactionEvent]" = 5
"TxCtrlr.TxStartPoint" = ["EVConnected", "Authorized"]
"TxCtrlr.StopTxOnInvalidId" = false
"EVSE@1.Power:MaxSet" = 11040.0
"Connector@2/1.ConnectorType" = "sType2"
"SmartChargingCtrlr.LimitChangeSignificance" = 5
"SecurityCtrlr.OrganizationName" = "Example Charging Ltd"
"DeviceDataCtrlr.ItemsPerMessage[GetReport]" = 20
"""


def test_key_syntax() -> None:
    assert parse_key("Connector[Left]@1/2.AvailabilityState:MaxSet") == (
        ComponentRef("Connector", "Left", 1, 2), VariableRef("AvailabilityState"),
        AttributeType.MAX_SET)
    assert parse_key("OCPPCommCtrlr.FieldLength[Get15118EVCertificateResponse.exiResponse]"
                     ) == (ComponentRef("OCPPCommCtrlr"),
                           VariableRef("FieldLength", "Get15118EVCertificateResponse.exiResponse"),
                           AttributeType.ACTUAL)


def test_good_defaults_reach_the_model(open_model: ModelFactory) -> None:
    table = tomllib.loads(GOOD)["ocpp201"]["variables"]
    model = open_model(parse_variable_defaults(table, definitions()))
    assert model.get_int("OCPPCommCtrlr", "HeartbeatInterval") == 120
    assert model.get_int("OCPPCommCtrlr", VariableRef("MessageAttempts",
                                                      "TransactionEvent")) == 5
    assert model.get("TxCtrlr", "TxStartPoint") == "EVConnected,Authorized"
    assert model.get_bool("TxCtrlr", "StopTxOnInvalidId") is False
    assert model.get_decimal(ComponentRef("EVSE", evse_id=1), "Power",
                             AttributeType.MAX_SET) == 11040.0
    assert model.get(ComponentRef("Connector", evse_id=2, connector_id=1),
                     "ConnectorType") == "sType2"
    assert model.get("SecurityCtrlr", "OrganizationName") == "Example Charging Ltd"
    # Untouched variables keep the built-in default.
    assert model.get_int("TxCtrlr", "EVConnectionTimeOut") == 120


@pytest.mark.parametrize(("line", "expected"), [
    ('"OCPPCommCtrlr.HeartbeatInterval" = "120"',
     'ocpp201.variables."OCPPCommCtrlr.HeartbeatInterval": found \'120\', expected a TOML'
     ' integer: an integer ≥ 1 s'),
    ('"OCPPCommCtrlr.HeartbeatInterval" = 0',
     'ocpp201.variables."OCPPCommCtrlr.HeartbeatInterval": found 0, expected an integer'
     ' ≥ 1 s'),
    ('"OCPPCommCtrlr.HeartbeatIntervall" = 30',
     'ocpp201.variables."OCPPCommCtrlr.HeartbeatIntervall": unknown component, variable or'
     " attribute; did you mean 'OCPPCommCtrlr.HeartbeatInterval'?"),
    ('"TxCtrlr.TxStartPoint" = ["Plugged"]',
     'ocpp201.variables."TxCtrlr.TxStartPoint": found [\'Plugged\'], expected a'
     ' comma-separated set (may be empty) of EVConnected, Authorized, PowerPathClosed,'
     ' EnergyTransfer'),
    ('"SmartChargingCtrlr.LimitChangeSignificance" = nan',
     'ocpp201.variables."SmartChargingCtrlr.LimitChangeSignificance": found nan, expected'
     ' a finite number (nan and inf are not values): a finite decimal number in 0..100'
     ' Percent'),
    ('"SmartChargingCtrlr.LimitChangeSignificance" = inf',
     'ocpp201.variables."SmartChargingCtrlr.LimitChangeSignificance": found inf, expected'
     ' a finite number (nan and inf are not values): a finite decimal number in 0..100'
     ' Percent'),
    ('"ClockCtrlr.DateTime" = 2026-01-01T00:00:00Z',
     'ocpp201.variables."ClockCtrlr.DateTime": set by the station at run time, not'
     ' configurable'),
    ('"EVSE@3.Power" = 1000.0',
     'ocpp201.variables."EVSE@3.Power": unknown component, variable or attribute;'
     " did you mean 'EVSE@2.Power'?"),
    ('"OCPPCommCtrlr.HeartbeatInterval:Maximum" = 10',
     'ocpp201.variables."OCPPCommCtrlr.HeartbeatInterval:Maximum": unknown attribute'
     " 'Maximum'; expected Actual, Target, MinSet or MaxSet"),
    ('"HeartbeatInterval" = 10',
     'ocpp201.variables."HeartbeatInterval": expected Component[instance]@evse/connector'
     '.Variable[instance]:Attribute (only Component.Variable required)'),
    ('"EVSE@1.Power:MaxSet" = 30000.0',
     'ocpp201.variables."EVSE@1.Power:MaxSet": found 30000.0, expected a finite decimal'
     ' number in 0..22080 W'),
])
def test_each_bad_default_is_named_with_what_was_expected(line: str, expected: str) -> None:
    table = tomllib.loads(f"[ocpp201.variables]\n{line}\n")["ocpp201"]["variables"]
    with pytest.raises(VariableDefaultsError) as caught:
        parse_variable_defaults(table, definitions())
    assert caught.value.errors == [expected]


def test_all_errors_are_reported_at_once() -> None:
    table = tomllib.loads('[ocpp201.variables]\n"TxCtrlr.StopTxOnInvalidId" = "yes"\n'
                          '"AuthCtrlr.LocalPreAuthorize" = 1\n')["ocpp201"]["variables"]
    with pytest.raises(VariableDefaultsError) as caught:
        parse_variable_defaults(table, definitions())
    assert len(caught.value.errors) == 2
    assert "TxCtrlr.StopTxOnInvalidId" in caught.value.errors[0]
    assert "AuthCtrlr.LocalPreAuthorize" in caught.value.errors[1]
