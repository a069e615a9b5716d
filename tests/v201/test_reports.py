"""GetBaseReport / GetReport answered by NotifyReport parts (OCPP 2.0.1 B07, B08)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.exceptions import OccurrenceConstraintViolationError

from ocpp_client.v201.device_model import AttributeType, ComponentRef, VariableRef
from ocpp_client.v201.reports import ReportAnswer, get_base_report, get_report

from .conftest import ModelFactory, assert_valid, definitions

NOW = datetime(2026, 12, 2, 6, 0, 0, tzinfo=UTC)


def _limits(items: int, size: int) -> dict[Any, str]:
    ddc = ComponentRef("DeviceDataCtrlr")
    return {(ddc, VariableRef("ItemsPerMessage", "GetReport"), AttributeType.ACTUAL): str(items),
            (ddc, VariableRef("BytesPerMessage", "GetReport"), AttributeType.ACTUAL): str(size)}


def _base(model: Any, base: str, request_id: int = 7) -> ReportAnswer:
    request = {"requestId": request_id, "reportBase": base}
    assert_valid("GetBaseReport", "Request", request)
    answer = get_base_report(model, request, generated_at=NOW)
    _check(answer, "GetBaseReport", request_id)
    return answer


def _custom(model: Any, request: dict[str, Any]) -> ReportAnswer:
    assert_valid("GetReport", "Request", request)
    answer = get_report(model, request, generated_at=NOW)
    _check(answer, "GetReport", request["requestId"])
    return answer


def _check(answer: ReportAnswer, action: str, request_id: int) -> None:
    """Every part schema-valid; seqNo 0.. without gaps; tbc false on the last part only."""
    assert_valid(action, "Response", answer.response)
    parts = answer.notify_reports
    for part in parts:
        assert_valid("NotifyReport", "Request", part)
        assert part["requestId"] == request_id
        assert part["generatedAt"] == "2026-12-02T06:00:00Z"
    assert [p["seqNo"] for p in parts] == list(range(len(parts)))
    assert [p["tbc"] for p in parts] == [True] * (len(parts) - 1) + [False] * bool(parts)


def _entries(answer: ReportAnswer) -> list[dict[str, Any]]:
    return [entry for part in answer.notify_reports for entry in part["reportData"]]


def _names(answer: ReportAnswer) -> list[str]:
    out = []
    for entry in _entries(answer):
        comp, var = entry["component"], entry["variable"]
        evse = comp.get("evse")
        where = f"@{evse['id']}" + (f"/{evse['connectorId']}" if "connectorId" in evse else "") \
            if evse else ""
        inst = f"[{var['instance']}]" if "instance" in var else ""
        out.append(f"{comp['name']}{where}.{var['name']}{inst}")
    return out


def test_full_inventory_in_parts_of_items_per_message(open_model: ModelFactory) -> None:
    model = open_model(_limits(items=10, size=65536))
    answer = _base(model, "FullInventory")
    assert answer.response == {"status": "Accepted"}
    expected = [str(d) for d in definitions()]  # every variable once, in declaration order
    assert _names(answer) == expected
    assert len(answer.notify_reports) == -(-len(expected) // 10)
    assert all(len(p["reportData"]) <= 10 for p in answer.notify_reports)
    assert len(answer.notify_reports) > 1
    start = next(e for e in _entries(answer) if e["variable"]["name"] == "TxStartPoint")
    assert start["variableAttribute"] == [{"type": "Actual", "value": "PowerPathClosed",
                                           "mutability": "ReadWrite", "persistent": True,
                                           "constant": False}]
    assert start["variableCharacteristics"]["dataType"] == "MemberList"


def test_full_inventory_honours_bytes_per_message(open_model: ModelFactory) -> None:
    limit = 1500
    model = open_model(_limits(items=1000, size=limit))
    answer = _base(model, "FullInventory", request_id=123456)
    sizes = []
    for part in answer.notify_reports:
        # Measured as it goes on the wire: the CALL frame the ocpp library serialises.
        frame = json.dumps([2, str(uuid.uuid4()), "NotifyReport", part], separators=(",", ":"))
        sizes.append(len(frame.encode()))
    assert max(sizes) <= limit
    assert len(sizes) >= 10
    assert len(_entries(answer)) == len(definitions())
    # Parts are filled: the next entry would not have fitted into the part before it.
    for part, following in zip(answer.notify_reports, answer.notify_reports[1:], strict=False):
        grown = {**part, "reportData": [*part["reportData"], following["reportData"][0]],
                 "tbc": False}
        assert len(json.dumps([2, str(uuid.uuid4()), "NotifyReport", grown],
                              separators=(",", ":"))) > limit


def test_write_only_values_never_reported(open_model: ModelFactory) -> None:
    model = open_model()
    model.set("SecurityCtrlr", "BasicAuthPassword", "0123456789abcdefSECRET")
    for base in ("FullInventory", "ConfigurationInventory"):
        answer = _base(model, base)
        assert "SECRET" not in json.dumps(answer.notify_reports)
        [entry] = [e for e in _entries(answer) if e["variable"]["name"] == "BasicAuthPassword"]
        assert entry["variableAttribute"][0]["mutability"] == "WriteOnly"
        assert "value" not in entry["variableAttribute"][0]


def test_configuration_inventory_lists_what_the_csms_may_write(
        open_model: ModelFactory) -> None:
    answer = _base(open_model(), "ConfigurationInventory")
    names = _names(answer)
    assert "OCPPCommCtrlr.HeartbeatInterval" in names
    assert "TxCtrlr.TxStopPoint" in names
    assert "DeviceDataCtrlr.ItemsPerMessage[GetReport]" not in names
    assert "EVSE@1.Power" not in names
    assert all(a["mutability"] in ("ReadWrite", "WriteOnly")
               for e in _entries(answer) for a in e["variableAttribute"])


def test_summary_inventory_availability_and_problems(open_model: ModelFactory) -> None:
    model = open_model()
    assert sorted(_names(_base(model, "SummaryInventory"))) == sorted([
        "ChargingStation.AvailabilityState", "EVSE@1.AvailabilityState",
        "EVSE@2.AvailabilityState", "Connector@1/1.AvailabilityState",
        "Connector@2/1.AvailabilityState"])
    model.set("ChargingStation", "Problem", "true")
    model.set(ComponentRef("EVSE", evse_id=2), "AvailabilityState", "Faulted")
    answer = _base(model, "SummaryInventory")
    assert "ChargingStation.Problem" in _names(answer)
    faulted = [e for e in _entries(answer) if e["component"] == {"name": "EVSE", "evse": {"id": 2}}]
    assert faulted[0]["variableAttribute"][0]["value"] == "Faulted"


def test_unknown_report_base_is_not_supported(open_model: ModelFactory) -> None:
    answer = get_base_report(open_model(), {"requestId": 1, "reportBase": "EverythingElse"},
                             generated_at=NOW)
    assert_valid("GetBaseReport", "Response", answer.response)
    assert answer.response == {"status": "NotSupported"} and answer.notify_reports == []


@pytest.mark.parametrize(("selection", "expected"), [
    ([{"component": {"name": "TxCtrlr"}}],
     ["TxCtrlr.EVConnectionTimeOut", "TxCtrlr.StopTxOnEVSideDisconnect",
      "TxCtrlr.StopTxOnInvalidId", "TxCtrlr.TxBeforeAcceptedEnabled", "TxCtrlr.TxStartPoint",
      "TxCtrlr.TxStopPoint"]),
    ([{"component": {"name": "EVSE"}, "variable": {"name": "Power"}}],
     ["EVSE@1.Power", "EVSE@2.Power"]),
    ([{"component": {"name": "EVSE", "evse": {"id": 2}}}],
     ["EVSE@2.AvailabilityState", "EVSE@2.Available", "EVSE@2.Power", "EVSE@2.SupplyPhases"]),
    ([{"component": {"name": "Connector", "evse": {"id": 1}},
       "variable": {"name": "ConnectorType"}}],
     ["Connector@1/1.ConnectorType"]),
    ([{"component": {"name": "DeviceDataCtrlr"}, "variable": {"name": "ItemsPerMessage"}}],
     ["DeviceDataCtrlr.ItemsPerMessage[GetReport]",
      "DeviceDataCtrlr.ItemsPerMessage[GetVariables]",
      "DeviceDataCtrlr.ItemsPerMessage[SetVariables]"]),
    ([{"component": {"name": "DeviceDataCtrlr"},
       "variable": {"name": "BytesPerMessage", "instance": "SetVariables"}},
      {"component": {"name": "ocppcommctrlr"}, "variable": {"name": "heartbeatinterval"}}],
     ["OCPPCommCtrlr.HeartbeatInterval", "DeviceDataCtrlr.BytesPerMessage[SetVariables]"]),
])
def test_get_report_by_component_variable(open_model: ModelFactory,
                                          selection: list[dict[str, Any]],
                                          expected: list[str]) -> None:
    answer = _custom(open_model(), {"requestId": 3, "componentVariable": selection})
    assert answer.response == {"status": "Accepted"}
    assert _names(answer) == expected


def test_get_report_nothing_matching_is_an_empty_result_set(open_model: ModelFactory) -> None:
    model = open_model()
    for request in (
        {"requestId": 4, "componentVariable": [{"component": {"name": "FanCtrlr"}}]},
        {"requestId": 5, "componentVariable": [{"component": {"name": "EVSE",
                                                              "evse": {"id": 9}}}]},
        {"requestId": 6, "componentCriteria": ["Problem"]},
    ):
        answer = _custom(model, request)
        assert answer.response == {"status": "EmptyResultSet"}
        assert answer.notify_reports == []


def test_get_report_component_criteria(open_model: ModelFactory) -> None:
    model = open_model()
    model.set("ChargingStation", "Problem", "true")
    problems = _custom(model, {"requestId": 8, "componentCriteria": ["Problem"]})
    assert _names(problems) == ["ChargingStation.AvailabilityState",
                                "ChargingStation.Available", "ChargingStation.SupplyPhases",
                                "ChargingStation.Problem"]
    model.set("AuthCacheCtrlr", "Enabled", "false")
    enabled = {name.split(".")[0] for name in _names(
        _custom(model, {"requestId": 9, "componentCriteria": ["Enabled"]}))}
    assert "AuthCacheCtrlr" not in enabled  # Enabled = false
    assert {"AuthCtrlr", "TxCtrlr", "EVSE@1"} <= enabled  # Enabled true, or no such variable
    both = _custom(model, {"requestId": 10, "componentCriteria": ["Enabled"],
                           "componentVariable": [{"component": {"name": "AuthCacheCtrlr"}}]})
    assert both.response == {"status": "EmptyResultSet"}
    either = _custom(model, {"requestId": 11, "componentCriteria": ["Enabled", "Available"],
                             "componentVariable": [{"component": {"name": "AuthCacheCtrlr"}}]})
    assert "AuthCacheCtrlr.LifeTime" in _names(either)  # Available = true still holds


def test_get_report_request_limit(open_model: ModelFactory) -> None:
    model = open_model(_limits(items=2, size=65536))
    request = {"requestId": 12, "componentVariable": [
        {"component": {"name": n}} for n in ("TxCtrlr", "AuthCtrlr", "ClockCtrlr")]}
    with pytest.raises(OccurrenceConstraintViolationError):
        get_report(model, request, generated_at=NOW)
