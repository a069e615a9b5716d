"""SetVariables / GetVariables over the device model on a real SQLite file (OCPP 2.0.1 B05,
B06): every attributeStatus, the message limits, persistence across a restart, listeners."""

from __future__ import annotations

from typing import Any

import pytest
from ocpp.exceptions import FormatViolationError, OccurrenceConstraintViolationError

from ocpp_client.v201.device_model import AttributeType, ComponentRef, VariableRef
from ocpp_client.v201.variables_requests import get_variables, set_variables

from .conftest import ModelFactory, assert_valid


def _set(component: dict[str, Any], variable: dict[str, Any], value: str,
         attribute: str | None = None) -> dict[str, Any]:
    entry = {"component": component, "variable": variable, "attributeValue": value}
    if attribute is not None:
        entry["attributeType"] = attribute
    return entry


def _get(component: dict[str, Any], variable: dict[str, Any],
         attribute: str | None = None) -> dict[str, Any]:
    entry = {"component": component, "variable": variable}
    if attribute is not None:
        entry["attributeType"] = attribute
    return entry


COMM = {"name": "OCPPCommCtrlr"}
HEARTBEAT = {"name": "HeartbeatInterval"}


def _set_all(model: Any, *entries: dict[str, Any]) -> list[dict[str, Any]]:
    request = {"setVariableData": list(entries)}
    assert_valid("SetVariables", "Request", request)
    response = set_variables(model, request)
    assert_valid("SetVariables", "Response", response)
    return list(response["setVariableResult"])


def _get_all(model: Any, *entries: dict[str, Any]) -> list[dict[str, Any]]:
    request = {"getVariableData": list(entries)}
    assert_valid("GetVariables", "Request", request)
    response = get_variables(model, request)
    assert_valid("GetVariables", "Response", response)
    return list(response["getVariableResult"])


def test_every_set_variables_status_in_one_request(open_model: ModelFactory) -> None:
    model = open_model()
    results = _set_all(
        model,
        _set(COMM, HEARTBEAT, "120"),
        _set({"name": "DeviceDataCtrlr"}, {"name": "ItemsPerMessage", "instance": "GetReport"},
             "5"),
        _set({"name": "TxCtrlr"}, {"name": "TxStartPoint"}, "Plugged"),
        _set({"name": "NoSuchCtrlr"}, HEARTBEAT, "1"),
        _set(COMM, {"name": "NoSuchVariable"}, "1"),
        _set(COMM, HEARTBEAT, "60", "Target"),
        _set(COMM, {"name": "NetworkConfigurationPriority"}, "2,1"),
    )
    assert [r["attributeStatus"] for r in results] == [
        "Accepted", "Rejected", "Rejected", "UnknownComponent", "UnknownVariable",
        "NotSupportedAttributeType", "RebootRequired"]
    assert results[1]["attributeStatusInfo"]["reasonCode"] == "ReadOnly"
    assert results[2]["attributeStatusInfo"]["reasonCode"] == "InvalidValue"
    # Each result names what it answers, in request order; absent attributeType = Actual.
    assert results[0]["component"] == COMM and results[0]["variable"] == HEARTBEAT
    assert results[0]["attributeType"] == "Actual"
    # Only the accepted values changed.
    assert model.get("OCPPCommCtrlr", "HeartbeatInterval") == "120"
    assert model.get("TxCtrlr", "TxStartPoint") == "PowerPathClosed"
    assert model.get("DeviceDataCtrlr", VariableRef("ItemsPerMessage", "GetReport")) == "100"
    assert model.get("OCPPCommCtrlr", "NetworkConfigurationPriority") == "2,1"


@pytest.mark.parametrize(("component", "variable", "value", "reason"), [
    (COMM, HEARTBEAT, "0", "ValueTooLow"),
    (COMM, HEARTBEAT, "1.5", "InvalidValue"),
    ({"name": "SmartChargingCtrlr"}, {"name": "LimitChangeSignificance"}, "NaN",
     "InvalidValue"),
    ({"name": "SmartChargingCtrlr"}, {"name": "LimitChangeSignificance"}, "Infinity",
     "InvalidValue"),
    ({"name": "SmartChargingCtrlr"}, {"name": "LimitChangeSignificance"}, "101",
     "ValueTooHigh"),
    ({"name": "TxCtrlr"}, {"name": "StopTxOnInvalidId"}, "1", "InvalidValue"),
    ({"name": "TxCtrlr"}, {"name": "TxStopPoint"}, "", "ValueTooLow"),
    ({"name": "SecurityCtrlr"}, {"name": "BasicAuthPassword"}, "tooShort", "ValueTooLow"),
    ({"name": "ClockCtrlr"}, {"name": "DateTime"}, "2026-01-01T00:00:00Z", "ReadOnly"),
    ({"name": "EVSE", "evse": {"id": 1}}, {"name": "Power"}, "1000", "ReadOnly"),
])
def test_values_outside_the_characteristics_are_rejected(
        open_model: ModelFactory, component: dict[str, Any], variable: dict[str, Any],
        value: str, reason: str) -> None:
    model = open_model()
    before = _get_all(model, _get(component, variable))[0].get("attributeValue")
    [result] = _set_all(model, _set(component, variable, value))
    assert result["attributeStatus"] == "Rejected"
    assert result["attributeStatusInfo"]["reasonCode"] == reason
    assert _get_all(model, _get(component, variable))[0].get("attributeValue") == before


def test_names_are_case_insensitive_and_evse_components_addressed_by_id(
        open_model: ModelFactory) -> None:
    model = open_model()
    [result] = _set_all(model, _set({"name": "ocppcommctrlr"}, {"name": "heartbeatINTERVAL"},
                                    "45"))
    assert result["attributeStatus"] == "Accepted"
    results = _get_all(
        model,
        _get({"name": "EVSE", "evse": {"id": 1}}, {"name": "Power"}, "MaxSet"),
        _get({"name": "EVSE", "evse": {"id": 2}}, {"name": "SupplyPhases"}),
        _get({"name": "EVSE", "evse": {"id": 3}}, {"name": "SupplyPhases"}),
        _get({"name": "EVSE"}, {"name": "SupplyPhases"}),
        _get({"name": "Connector", "evse": {"id": 2, "connectorId": 1}},
             {"name": "ConnectorType"}),
        _get(COMM, HEARTBEAT),
    )
    assert [(r["attributeStatus"], r.get("attributeValue")) for r in results] == [
        ("Accepted", "22080"), ("Accepted", "1"), ("UnknownComponent", None),
        ("UnknownComponent", None), ("Accepted", "cType2"), ("Accepted", "45")]


def test_every_get_variables_status(open_model: ModelFactory) -> None:
    model = open_model()
    _set_all(model, _set({"name": "SecurityCtrlr"}, {"name": "BasicAuthPassword"},
                         "0123456789abcdefXYZ"))
    results = _get_all(
        model,
        _get({"name": "TxCtrlr"}, {"name": "EVConnectionTimeOut"}),
        _get({"name": "SecurityCtrlr"}, {"name": "BasicAuthPassword"}),
        _get({"name": "NoSuchCtrlr"}, {"name": "Enabled"}),
        _get({"name": "TxCtrlr"}, {"name": "NoSuchVariable"}),
        _get({"name": "TxCtrlr"}, {"name": "EVConnectionTimeOut"}, "MaxSet"),
    )
    assert [r["attributeStatus"] for r in results] == [
        "Accepted", "Rejected", "UnknownComponent", "UnknownVariable",
        "NotSupportedAttributeType"]
    assert results[0]["attributeValue"] == "120"
    assert "attributeValue" not in results[1]  # a WriteOnly value never leaves the station
    assert results[1]["attributeStatusInfo"]["reasonCode"] == "WriteOnly"


def test_items_per_message_limits_raise_occurrence_constraint_violation(
        open_model: ModelFactory) -> None:
    limits = {
        (ComponentRef("DeviceDataCtrlr"), VariableRef("ItemsPerMessage", "SetVariables"),
         AttributeType.ACTUAL): "2",
        (ComponentRef("DeviceDataCtrlr"), VariableRef("ItemsPerMessage", "GetVariables"),
         AttributeType.ACTUAL): "2",
    }
    model = open_model(limits)
    three_sets = {"setVariableData": [_set(COMM, HEARTBEAT, str(60 + i)) for i in range(3)]}
    with pytest.raises(OccurrenceConstraintViolationError):
        set_variables(model, three_sets)
    assert model.get("OCPPCommCtrlr", "HeartbeatInterval") == "300"  # nothing applied
    two_sets = {"setVariableData": three_sets["setVariableData"][:2]}
    assert len(set_variables(model, two_sets)["setVariableResult"]) == 2
    with pytest.raises(OccurrenceConstraintViolationError):
        get_variables(model, {"getVariableData": [_get(COMM, HEARTBEAT)] * 3})


def test_bytes_per_message_limits_raise_format_violation(open_model: ModelFactory) -> None:
    limit = 256
    model = open_model({
        (ComponentRef("DeviceDataCtrlr"), VariableRef("BytesPerMessage", "SetVariables"),
         AttributeType.ACTUAL): str(limit),
        (ComponentRef("DeviceDataCtrlr"), VariableRef("BytesPerMessage", "GetVariables"),
         AttributeType.ACTUAL): str(limit),
    })
    # 341 bytes once framed as [2,"<36-char id>","SetVariables",{…}]; one entry: 210 bytes.
    big = {"setVariableData": [_set({"name": "AuthCtrlr"}, {"name": "MasterPassGroupId"},
                                    "G" * 36)] * 2}
    with pytest.raises(FormatViolationError):
        set_variables(model, big)
    small = {"setVariableData": big["setVariableData"][:1]}
    assert set_variables(model, small)["setVariableResult"][0]["attributeStatus"] == "Accepted"
    # The receiving link may pass the true frame length instead.
    with pytest.raises(FormatViolationError):
        get_variables(model, {"getVariableData": [_get(COMM, HEARTBEAT)]},
                      message_size=limit + 1)


def test_values_survive_a_restart_runtime_state_does_not(open_model: ModelFactory) -> None:
    model = open_model()
    _set_all(model, _set(COMM, HEARTBEAT, "120"),
             _set({"name": "TxCtrlr"}, {"name": "TxStartPoint"}, "EVConnected,Authorized"))
    model.set(ComponentRef("Connector", evse_id=1, connector_id=1), "AvailabilityState",
              "Occupied")
    restarted = open_model()
    assert restarted.get("OCPPCommCtrlr", "HeartbeatInterval") == "120"
    assert restarted.get_list("TxCtrlr", "TxStartPoint") == ["EVConnected", "Authorized"]
    assert restarted.get(ComponentRef("Connector", evse_id=1, connector_id=1),
                         "AvailabilityState") == "Available"


def test_a_changed_toml_default_wins_over_an_older_csms_value(
        open_model: ModelFactory) -> None:
    key = (ComponentRef("OCPPCommCtrlr"), VariableRef("HeartbeatInterval"),
           AttributeType.ACTUAL)
    model = open_model({key: "600"})
    assert model.get_int("OCPPCommCtrlr", "HeartbeatInterval") == 600
    _set_all(model, _set(COMM, HEARTBEAT, "120"))
    assert open_model({key: "600"}).get_int("OCPPCommCtrlr", "HeartbeatInterval") == 120
    # The technician edits the TOML: the edit is newer than the CSMS value.
    assert open_model({key: "900"}).get_int("OCPPCommCtrlr", "HeartbeatInterval") == 900
    assert open_model({key: "900"}).get_int("OCPPCommCtrlr", "HeartbeatInterval") == 900


def test_listeners_hear_accepted_changes_only(open_model: ModelFactory) -> None:
    model = open_model()
    heard: list[str | None] = []
    everything: list[str] = []
    model.on_variable_change("OCPPCommCtrlr", "HeartbeatInterval", heard.append)
    model.on_change(lambda d, a, v: everything.append(f"{d}:{a.value}={v}"))
    _set_all(model, _set(COMM, HEARTBEAT, "-3"), _set(COMM, HEARTBEAT, "90"),
             _set({"name": "TxCtrlr"}, {"name": "StopTxOnInvalidId"}, "false"))
    assert heard == ["90"]
    assert everything == ["OCPPCommCtrlr.HeartbeatInterval:Actual=90",
                          "TxCtrlr.StopTxOnInvalidId:Actual=false"]


def test_a_failing_listener_does_not_stop_the_others(open_model: ModelFactory) -> None:
    model = open_model()
    heard: list[str | None] = []

    def broken(value: str | None) -> None:
        raise RuntimeError("consumer bug")

    model.on_variable_change("OCPPCommCtrlr", "HeartbeatInterval", broken)
    model.on_variable_change("OCPPCommCtrlr", "HeartbeatInterval", heard.append)
    [result] = _set_all(model, _set(COMM, HEARTBEAT, "75"))
    assert result["attributeStatus"] == "Accepted" and heard == ["75"]


def test_live_values_come_from_their_source(open_model: ModelFactory) -> None:
    model = open_model()
    entries = [0]
    model.provide("LocalAuthListCtrlr", "Entries", lambda: str(entries[0]))
    entries[0] = 42
    [result] = _get_all(model, _get({"name": "LocalAuthListCtrlr"}, {"name": "Entries"}))
    assert result["attributeValue"] == "42"
