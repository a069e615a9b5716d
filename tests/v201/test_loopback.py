"""The device model behind a real OCPP 2.0.1 link: the ``ocpp`` library's central system on a
websockets server (subprotocol ``ocpp2.0.1``, schema validation on both sides) sends
SetVariables / GetVariables / GetBaseReport to a minimal station built around the pure
functions, and receives the NotifyReport parts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import websockets
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.exceptions import OccurrenceConstraintViolationError
from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action

from ocpp_client.v201.device_model import AttributeType, ComponentRef, DeviceModel, VariableRef
from ocpp_client.v201.reports import ReportAnswer, get_base_report, get_report
from ocpp_client.v201.variables_requests import get_variables, set_variables

from .conftest import ModelFactory

SUBPROTOCOL = websockets.Subprotocol("ocpp2.0.1")


class Station(ChargePoint):
    """A 2.0.1 station that answers device model calls with the pure functions."""

    def __init__(self, ident: str, connection: Any, model: DeviceModel) -> None:
        super().__init__(ident, connection)
        self.model = model
        self._pending: dict[int, ReportAnswer] = {}

    @on(Action.set_variables)
    def on_set_variables(self, **payload: Any) -> call_result.SetVariables:
        answer = set_variables(self.model, snake_to_camel_case(payload))
        return call_result.SetVariables(set_variable_result=answer["setVariableResult"])

    @on(Action.get_variables)
    def on_get_variables(self, **payload: Any) -> call_result.GetVariables:
        answer = get_variables(self.model, snake_to_camel_case(payload))
        return call_result.GetVariables(get_variable_result=answer["getVariableResult"])

    @on(Action.get_base_report)
    def on_get_base_report(self, request_id: int, report_base: str,
                           **_: Any) -> call_result.GetBaseReport:
        answer = get_base_report(self.model, {"requestId": request_id,
                                              "reportBase": report_base},
                                 generated_at=datetime.now(UTC))
        self._pending[request_id] = answer
        return call_result.GetBaseReport(status=answer.response["status"])

    @on(Action.get_report)
    def on_get_report(self, **payload: Any) -> call_result.GetReport:
        answer = get_report(self.model, snake_to_camel_case(payload),
                            generated_at=datetime.now(UTC))
        self._pending[payload["request_id"]] = answer
        return call_result.GetReport(status=answer.response["status"])

    @after(Action.get_base_report)
    async def send_base_report(self, request_id: int, **_: Any) -> None:
        await self._send_parts(request_id)

    @after(Action.get_report)
    async def send_report(self, request_id: int, **_: Any) -> None:
        await self._send_parts(request_id)

    async def _send_parts(self, request_id: int) -> None:
        for part in self._pending.pop(request_id).notify_reports:
            await self.call(call.NotifyReport(**camel_to_snake_case(part)))


@dataclass
class Csms:
    """The central system's view: raw frames received and NotifyReport payloads."""

    frames: list[str] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    station: Any = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)


class CsmsSide(ChargePoint):
    def __init__(self, ident: str, connection: Any, csms: Csms) -> None:
        super().__init__(ident, connection)
        self.csms = csms

    async def route_message(self, raw_msg: str) -> None:
        self.csms.frames.append(raw_msg)
        await super().route_message(raw_msg)

    @on(Action.notify_report)
    def on_notify_report(self, **payload: Any) -> call_result.NotifyReport:
        part = snake_to_camel_case(payload)
        self.csms.reports.append(part)
        if not part.get("tbc", False):
            self.csms.done.set()
        return call_result.NotifyReport()


@pytest.fixture
async def link(open_model: ModelFactory) -> AsyncIterator[tuple[Csms, DeviceModel]]:
    ddc = ComponentRef("DeviceDataCtrlr")
    model = open_model({
        (ddc, VariableRef("ItemsPerMessage", "GetReport"), AttributeType.ACTUAL): "25",
        (ddc, VariableRef("BytesPerMessage", "GetReport"), AttributeType.ACTUAL): "4000",
        (ddc, VariableRef("ItemsPerMessage", "GetVariables"), AttributeType.ACTUAL): "4",
    })
    csms = Csms()

    async def handle(connection: Any) -> None:
        assert connection.subprotocol == "ocpp2.0.1"
        csms.station = CsmsSide("CP-TEST", connection, csms)
        csms.connected.set()
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            await csms.station.start()

    server = await websockets.serve(handle, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL])
    port = server.sockets[0].getsockname()[1]
    connection = await websockets.connect(f"ws://127.0.0.1:{port}/CP-TEST",
                                          subprotocols=[SUBPROTOCOL])
    station = Station("CP-TEST", connection, model)
    task = asyncio.create_task(station.start())
    await asyncio.wait_for(csms.connected.wait(), 5)
    try:
        yield csms, model
    finally:
        task.cancel()
        await connection.close()
        server.close()
        await server.wait_closed()


def _cv(component: str, variable: str, instance: str | None = None) -> dict[str, Any]:
    var: dict[str, Any] = {"name": variable}
    if instance is not None:
        var["instance"] = instance
    return {"component": {"name": component}, "variable": var}


async def test_set_get_and_full_inventory_over_ocpp201(
        link: tuple[Csms, DeviceModel]) -> None:
    csms, model = link
    heard: list[str | None] = []
    model.on_variable_change("OCPPCommCtrlr", "HeartbeatInterval", heard.append)

    result = await csms.station.call(call.SetVariables(set_variable_data=[
        {**_cv("OCPPCommCtrlr", "HeartbeatInterval"), "attributeValue": "90"},
        {**_cv("TxCtrlr", "TxStartPoint"), "attributeValue": "Authorized,EVConnected"},
        {**_cv("DeviceDataCtrlr", "ItemsPerMessage", "GetReport"), "attributeValue": "1"},
        {**_cv("OCPPCommCtrlr", "NetworkConfigurationPriority"), "attributeValue": "2"},
    ]))
    assert [r["attribute_status"] for r in result.set_variable_result] == [
        "Accepted", "Accepted", "Rejected", "RebootRequired"]
    assert heard == ["90"]

    got = await csms.station.call(call.GetVariables(get_variable_data=[
        _cv("OCPPCommCtrlr", "HeartbeatInterval"), _cv("TxCtrlr", "TxStartPoint"),
        _cv("SecurityCtrlr", "BasicAuthPassword"), _cv("FanCtrlr", "Enabled")]))
    assert [(r["attribute_status"], r.get("attribute_value"))
            for r in got.get_variable_result] == [
        ("Accepted", "90"), ("Accepted", "Authorized,EVConnected"), ("Rejected", None),
        ("UnknownComponent", None)]

    # ItemsPerMessage[GetVariables] = 4: a fifth entry is refused with the 2.0.1 CALLERROR.
    with pytest.raises(OccurrenceConstraintViolationError):
        await csms.station.call(call.GetVariables(get_variable_data=[
            _cv("OCPPCommCtrlr", "HeartbeatInterval")] * 5), suppress=False)

    response = await csms.station.call(call.GetBaseReport(request_id=42,
                                                          report_base="FullInventory"))
    assert response.status == "Accepted"
    await asyncio.wait_for(csms.done.wait(), 10)
    parts = csms.reports
    assert [p["seqNo"] for p in parts] == list(range(len(parts)))
    assert [p["tbc"] for p in parts] == [True] * (len(parts) - 1) + [False]
    assert {p["requestId"] for p in parts} == {42}
    assert len({p["generatedAt"] for p in parts}) == 1
    reported = [e for p in parts for e in p["reportData"]]
    assert len(reported) == len(model.definitions())
    assert all(len(p["reportData"]) <= 25 for p in parts)
    # BytesPerMessage[GetReport] = 4000, measured on the frames the CSMS really received.
    notify_frames = [f for f in csms.frames if '"NotifyReport"' in f]
    assert len(notify_frames) == len(parts) > 1
    assert max(len(f.encode()) for f in notify_frames) <= 4000
    heartbeat = next(e for e in reported if e["variable"]["name"] == "HeartbeatInterval")
    assert heartbeat["variableAttribute"][0]["value"] == "90"


async def test_get_report_with_criteria_over_ocpp201(link: tuple[Csms, DeviceModel]) -> None:
    csms, model = link
    nothing = await csms.station.call(call.GetReport(request_id=5,
                                                     component_criteria=["Problem"]))
    assert nothing.status == "EmptyResultSet"

    model.set("ChargingStation", "Problem", "true")  # the station notices a problem
    found = await csms.station.call(call.GetReport(request_id=6,
                                                   component_criteria=["Problem"]))
    assert found.status == "Accepted"
    await asyncio.wait_for(csms.done.wait(), 10)
    assert {p["requestId"] for p in csms.reports} == {6}  # nothing was sent for request 5
    reported = [e for p in csms.reports for e in p["reportData"]]
    assert {e["component"]["name"] for e in reported} == {"ChargingStation"}
    problem = next(e for e in reported if e["variable"]["name"] == "Problem")
    assert problem["variableAttribute"][0]["value"] == "true"
