"""Provisioning, availability, authorization lists and malformed frames through the 2.0.1
adapter, against the ``ocpp`` library's 2.0.1 central system on loopback."""

from __future__ import annotations

import json
from typing import Any

from dev_csms import DevCsms
from ocpp.v201 import call

from tests.test_csms_commands import raw_exchange

from .rig import statuses, until


def _set(component: str, variable: str, value: str, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"component": {"name": component}, "variable": {"name": variable},
                             "attribute_value": value}
    entry.update(extra)
    return entry


async def test_set_variables_statuses_and_applied_at_once(csms201: DevCsms,
                                                         run201: Any) -> None:
    daemon = await run201()
    cp = csms201.stations["CP-201"]
    answer = await cp.call(call.SetVariables(set_variable_data=[
        _set("OCPPCommCtrlr", "HeartbeatInterval", "42"),
        _set("OCPPCommCtrlr", "HeartbeatInterval", "0"),
        _set("NoSuchCtrlr", "Enabled", "true"),
        _set("TxCtrlr", "NoSuchVariable", "1"),
        _set("TxCtrlr", "EVConnectionTimeOut", "45", attribute_type="Target"),
        _set("OCPPCommCtrlr", "NetworkConfigurationPriority", "2"),
        _set("SecurityCtrlr", "Identity", "other"),
        _set("TxCtrlr", "EVConnectionTimeOut", "45"),
    ]))
    results = [(r["component"]["name"], r["variable"]["name"], r["attribute_status"])
               for r in answer.set_variable_result]
    assert [s for _, _, s in results] == [
        "Accepted", "Rejected", "UnknownComponent", "UnknownVariable",
        "NotSupportedAttributeType", "RebootRequired", "Rejected", "Accepted"]
    adapter: Any = daemon.adapter
    # Applied at once: the link's heartbeat and the core's EV connection timeout.
    assert adapter.heartbeat_interval() == 42
    assert daemon.station is not None and daemon.station.connection_timeout_s == 45.0
    got = await cp.call(call.GetVariables(get_variable_data=[
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
        {"component": {"name": "ClockCtrlr"}, "variable": {"name": "DateTime"}},
    ]))
    assert got.get_variable_result[0]["attribute_value"] == "42"
    assert got.get_variable_result[1]["attribute_status"] == "Accepted"
    assert got.get_variable_result[1]["attribute_value"].startswith("20")


async def test_full_inventory_in_parts(csms201: DevCsms, run201: Any) -> None:
    await run201(connectors=2,
                 variables='"DeviceDataCtrlr.ItemsPerMessage[GetReport]" = 20')
    cp = csms201.stations["CP-201"]
    answer = await cp.call(call.GetBaseReport(request_id=5, report_base="FullInventory"))
    assert answer.status == "Accepted"
    parts = await csms201.wait_for(lambda: (lambda p: p if p and not p[-1].get("tbc")
                                            else None)(csms201.actions("NotifyReport")))
    # DeviceDataCtrlr.ItemsPerMessage[GetReport] = 20: the inventory needs several parts.
    assert len(parts) >= 4
    assert all(len(p["reportData"]) <= 20 for p in parts)
    assert [p["seqNo"] for p in parts] == list(range(len(parts)))
    assert all(p["requestId"] == 5 for p in parts)
    assert [bool(p.get("tbc")) for p in parts] == [True] * (len(parts) - 1) + [False]
    reported = {(d["component"]["name"], d["component"].get("evse", {}).get("id"),
                 d["variable"]["name"]) for p in parts for d in p["reportData"]}
    assert ("TxCtrlr", None, "TxStartPoint") in reported
    assert ("EVSE", 2, "AvailabilityState") in reported
    assert ("Connector", 1, "ConnectorType") in reported


async def test_availability_and_status(csms201: DevCsms, run201: Any) -> None:
    daemon = await run201()
    cp = csms201.stations["CP-201"]
    await csms201.wait_for(lambda: "Available" in statuses(csms201))
    answer = await cp.call(call.ChangeAvailability(operational_status="Inoperative",
                                                   evse={"id": 1}))
    assert answer.status == "Accepted"
    await csms201.wait_for(lambda: statuses(csms201)[-1] == "Unavailable")
    got = await cp.call(call.GetVariables(get_variable_data=[
        {"component": {"name": "EVSE", "evse": {"id": 1}},
         "variable": {"name": "AvailabilityState"}},
        {"component": {"name": "ChargingStation"}, "variable": {"name": "AvailabilityState"}},
    ]))
    # One EVSE, out of service: the station too.
    assert [r["attribute_value"] for r in got.get_variable_result] == ["Unavailable"] * 2
    unknown = await cp.call(call.ChangeAvailability(operational_status="Operative",
                                                    evse={"id": 9}))
    assert unknown.status == "Rejected"
    back = await cp.call(call.ChangeAvailability(operational_status="Operative"))
    assert back.status == "Accepted"
    await csms201.wait_for(lambda: statuses(csms201)[-1] == "Available")
    # Scheduled while a transaction runs, applied when it ends.
    sim: Any = daemon.board.simulator  # type: ignore[union-attr]
    sim.plug(1, 16.0, 3)
    sim.swipe("DEMO01")
    await csms201.wait_for(lambda: any(e["eventType"] == "Started"
                                       for e in csms201.actions("TransactionEvent")))
    scheduled = await cp.call(call.ChangeAvailability(operational_status="Inoperative"))
    assert scheduled.status == "Scheduled"
    sim.unplug(1)
    await csms201.wait_for(lambda: statuses(csms201)[-1] == "Unavailable")
    trig = await cp.call(call.TriggerMessage(requested_message="StatusNotification",
                                             evse={"id": 1}))
    assert trig.status == "Accepted"
    not_impl = await cp.call(call.TriggerMessage(
        requested_message="PublishFirmwareStatusNotification"))
    assert not_impl.status == "NotImplemented"
    data = await cp.call(call.DataTransfer(vendor_id="com.example"))
    assert data.status == "UnknownVendorId"


async def test_local_list_and_offline_authorization(csms201: DevCsms, run201: Any) -> None:
    await run201()
    cp = csms201.stations["CP-201"]
    assert (await cp.call(call.GetLocalListVersion())).version_number == 0
    answer = await cp.call(call.SendLocalList(version_number=3, update_type="Full",
                                              local_authorization_list=[{
                                                  "id_token": {"id_token": "LIST-1",
                                                               "type": "ISO14443"},
                                                  "id_token_info": {"status": "Accepted"}}]))
    assert answer.status == "Accepted"
    assert (await cp.call(call.GetLocalListVersion())).version_number == 3
    got = await cp.call(call.GetVariables(get_variable_data=[
        {"component": {"name": "LocalAuthListCtrlr"}, "variable": {"name": "Entries"}}]))
    assert got.get_variable_result[0]["attribute_value"] == "1"
    assert (await cp.call(call.ClearCache())).status == "Accepted"


async def test_malformed_frames_get_201_error_codes(csms201: DevCsms, run201: Any) -> None:
    await run201()
    csms201.stations["CP-TEST"] = csms201.stations["CP-201"]  # raw_exchange's station
    cases = [
        ("this is not json", "-1", "FormatViolation"),
        (json.dumps([2, "m1", "MakeCoffee", {}]), "m1", "NotImplemented"),
        (json.dumps([2, "m2", "Reset", {"type": "Sideways"}]), "m2",
         "PropertyConstraintViolation"),
        (json.dumps([2, "m3", "Reset", {}]), "m3", "ProtocolError"),
        (json.dumps([2, "m4", "ClearCache"]), "m4", "ProtocolError"),
        (json.dumps([2, "m5", "RequestStopTransaction", {"transactionId": 12}]), "m5",
         "TypeConstraintViolation"),
        (json.dumps([2, "m6", "ClearCache", []]), "m6", "FormatViolation"),
    ]
    for frame, uid, code in cases:
        answer = await raw_exchange(csms201, frame, uid)
        assert answer[0] == 4 and answer[2] == code, (frame, answer)
    # The link survived: a CALL still works.
    assert (await csms201.stations["CP-201"].call(call.ClearCache())).status == "Accepted"


async def test_boot_pending_then_accepted(csms201: DevCsms, run201: Any) -> None:
    csms201.boot_status = "Pending"  # type: ignore[assignment]
    csms201.heartbeat_s = 1
    daemon = await run201(wait=False)
    adapter: Any = daemon.adapter
    await until(lambda: adapter.link.state == "pending")  # the Pending answer arrived
    assert not adapter.online
    csms201.boot_status = "Accepted"  # type: ignore[assignment]
    await csms201.wait_for(lambda: csms201.actions("StatusNotification"), timeout=10)
    assert len(csms201.actions("BootNotification")) >= 2
