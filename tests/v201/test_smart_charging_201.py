"""OCPP 2.0.1 Smart Charging (K01–K10) end to end: the dev CSMS (the ``ocpp`` library's 2.0.1
central system, schema validation on) on loopback drives the daemon as ``evse run`` wires it
with ``[ocpp] version = "2.0.1"``, on the simulated board and a ManualClock. Checked by the
CSMS's answers, the ReportChargingProfiles it receives and the pilot duty the EV sees.

Expected figures come from the spec and IEC 61851-1 Table A.7 (duty = A / 0.6), not from the
code: a 10 A TxProfile on a 32 A connector gives 16.7 %.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ocpp.v201 import call

from tests.v201.manual_rig import DUTY_INTERVAL_S, Rig201, duty


def profile(profile_id: int, purpose: str, *periods: tuple[int, float],
            kind: str = "Relative", stack_level: int = 0, unit: str = "A",
            start: str | None = None, **extra: Any) -> dict[str, Any]:
    schedule: dict[str, Any] = {"id": 1, "chargingRateUnit": unit, "chargingSchedulePeriod": [
        {"startPeriod": s, "limit": lim} for s, lim in periods]}
    if start is not None:
        schedule["startSchedule"] = start
    return {"id": profile_id, "stackLevel": stack_level, "chargingProfilePurpose": purpose,
            "chargingProfileKind": kind, "chargingSchedule": [schedule], **extra}


def set_profile(evse_id: int, charging_profile: dict[str, Any]) -> call.SetChargingProfile:
    return call.SetChargingProfile(evse_id=evse_id, charging_profile=charging_profile)


async def get_variable(rig: Rig201, component: str, variable: str,
                       instance: str | None = None) -> str:
    var: dict[str, Any] = {"name": variable}
    if instance is not None:
        var["instance"] = instance
    answer = await rig.call(call.GetVariables(get_variable_data=[
        {"component": {"name": component}, "variable": var}]))
    (result,) = answer.get_variable_result
    assert result["attribute_status"] == "Accepted", result
    return str(result["attribute_value"])


async def test_controller_and_set_charging_profile_rules(start201: Callable[..., Any]
                                                         ) -> None:
    rig: Rig201 = await start201(connectors=2)
    assert await get_variable(rig, "SmartChargingCtrlr", "Enabled") == "true"
    assert await get_variable(rig, "SmartChargingCtrlr", "ProfileStackLevel") == "8"
    assert await get_variable(rig, "SmartChargingCtrlr", "PeriodsPerSchedule") == "24"
    assert set((await get_variable(rig, "SmartChargingCtrlr", "RateUnit")).split(",")) == {
        "A", "W"}
    assert await get_variable(rig, "SmartChargingCtrlr", "Entries", "ChargingProfiles") == "0"

    station_max = profile(1, "ChargingStationMaxProfile", (0, 20.0), kind="Absolute",
                          start="2020-01-01T00:00:00Z")
    assert (await rig.call(set_profile(1, station_max))).status == "Rejected"  # EVSE 0 only
    assert (await rig.call(set_profile(0, station_max))).status == "Accepted"
    # TxProfile: needs an EVSE and a transaction open there.
    tx = profile(2, "TxProfile", (0, 10.0), transactionId="no-such-transaction")
    assert (await rig.call(set_profile(1, tx))).status == "Rejected"
    assert (await rig.call(set_profile(0, tx))).status == "Rejected"
    # The SmartChargingCtrlr limits and the EVSEs that exist.
    high = profile(3, "TxDefaultProfile", (0, 16.0), stack_level=9)
    assert (await rig.call(set_profile(1, high))).status == "Rejected"
    long = profile(4, "TxDefaultProfile", *((60 * i, 16.0) for i in range(25)))
    assert (await rig.call(set_profile(1, long))).status == "Rejected"
    assert (await rig.call(set_profile(3, profile(5, "TxDefaultProfile", (0, 16.0))))
            ).status == "Rejected"
    # Several schedules (ISO 15118 alternatives) are not supported here.
    two = profile(6, "TxDefaultProfile", (0, 16.0))
    two["chargingSchedule"].append({**two["chargingSchedule"][0], "id": 2})
    answer = await rig.call(set_profile(1, two))
    assert answer.status == "Rejected" and answer.status_info["reason_code"]
    assert await get_variable(rig, "SmartChargingCtrlr", "Entries", "ChargingProfiles") == "1"
    # Same purpose and stack level under another id: Rejected (2.0.1 K01.FR.39); the same
    # id replaces.
    other = profile(8, "ChargingStationMaxProfile", (0, 16.0), kind="Absolute",
                    start="2020-01-01T00:00:00Z")
    assert (await rig.call(set_profile(0, other))).status == "Rejected"
    station_max["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] = 18.0
    assert (await rig.call(set_profile(0, station_max))).status == "Accepted"
    assert await get_variable(rig, "SmartChargingCtrlr", "Entries", "ChargingProfiles") == "1"

    # Switched off: nothing more is accepted.
    answer = await rig.call(call.SetVariables(set_variable_data=[
        {"component": {"name": "SmartChargingCtrlr"}, "variable": {"name": "Enabled"},
         "attribute_value": "false"}]))
    assert answer.set_variable_result[0]["attribute_status"] == "Accepted"
    assert (await rig.call(set_profile(1, profile(7, "TxDefaultProfile", (0, 16.0))))
            ).status == "Rejected"
    assert [p.profile_id for p in rig.station.smart.store.all()] == [1]


async def test_tx_profile_lowers_the_pilot_reports_and_clears(start201: Callable[..., Any]
                                                              ) -> None:
    rig: Rig201 = await start201(connectors=2)
    rig.sim.plug(1, 32.0, 3)
    rig.sim.swipe("DEMO01")
    tx_id = (await rig.started(1))["transactionInfo"]["transactionId"]
    await rig.advance(DUTY_INTERVAL_S)
    assert rig.duty(1) == duty(32)

    wrong = profile(2, "TxProfile", (0, 10.0), transactionId="another-transaction")
    assert (await rig.call(set_profile(1, wrong))).status == "Rejected"
    assert (await rig.call(set_profile(2, profile(2, "TxProfile", (0, 10.0),
                                                  transactionId=tx_id)))).status == "Rejected"
    ok = profile(2, "TxProfile", (0, 10.0), transactionId=tx_id)
    assert (await rig.call(set_profile(1, ok))).status == "Accepted"
    await rig.advance(DUTY_INTERVAL_S)
    assert rig.duty(1) == duty(10)

    composite = await rig.call(call.GetCompositeSchedule(duration=600, evse_id=1))
    assert composite.status == "Accepted"
    schedule = composite.schedule
    assert (schedule["evse_id"], schedule["duration"], schedule["charging_rate_unit"]) == (
        1, 600, "A")
    assert [(p["start_period"], float(p["limit"])) for p in
            schedule["charging_schedule_period"]] == [(0, 10.0)]
    watts = await rig.call(call.GetCompositeSchedule(duration=300, evse_id=0,
                                                     charging_rate_unit="W"))
    assert watts.status == "Accepted" and watts.schedule["charging_rate_unit"] == "W"
    assert (await rig.call(call.GetCompositeSchedule(duration=300, evse_id=7))
            ).status == "Rejected"

    # GetChargingProfiles → one ReportChargingProfiles per EVSE, the last without tbc.
    default = profile(3, "TxDefaultProfile", (0, 16.0), stack_level=1)
    assert (await rig.call(set_profile(0, default))).status == "Accepted"
    answer = await rig.call(call.GetChargingProfiles(request_id=5, charging_profile={}))
    assert answer.status == "Accepted"
    reports = await rig.csms.wait_for(
        lambda: (r := [p for p in rig.actions("ReportChargingProfiles")
                       if p["requestId"] == 5]) and not r[-1].get("tbc") and r)
    assert [(r["evseId"], r.get("tbc", False)) for r in reports] == [(0, True), (1, False)]
    assert all(r["chargingLimitSource"] == "CSO" for r in reports)
    (reported_tx,) = reports[1]["chargingProfile"]
    assert (reported_tx["id"], reported_tx["chargingProfilePurpose"],
            reported_tx["transactionId"]) == (2, "TxProfile", tx_id)
    assert reports[0]["chargingProfile"][0]["id"] == 3
    none = await rig.call(call.GetChargingProfiles(
        request_id=6, charging_profile={"charging_profile_purpose": "ChargingStationMaxProfile"}))
    assert none.status == "NoProfiles"
    by_id = await rig.call(call.GetChargingProfiles(
        request_id=7, evse_id=0, charging_profile={"charging_profile_id": [3]}))
    assert by_id.status == "Accepted"

    # ClearChargingProfile: by id, by criteria, Unknown when nothing matches.
    assert (await rig.call(call.ClearChargingProfile(charging_profile_id=99))
            ).status == "Unknown"
    assert (await rig.call(call.ClearChargingProfile(charging_profile_criteria={
        "evse_id": 1, "charging_profile_purpose": "TxProfile"}))).status == "Accepted"
    await rig.advance(DUTY_INTERVAL_S)
    assert rig.duty(1) == duty(16)  # the TxDefaultProfile of stack level 1 now
    assert (await rig.call(call.ClearChargingProfile(charging_profile_id=3))
            ).status == "Accepted"
    assert rig.station.smart.store.all() == []


async def test_request_start_with_a_tx_profile(start201: Callable[..., Any]) -> None:
    rig: Rig201 = await start201(connectors=2)
    default = profile(7, "TxDefaultProfile", (0, 8.0))
    answer = await rig.call(call.RequestStartTransaction(
        id_token={"id_token": "TAG-A", "type": "Central"}, remote_start_id=1, evse_id=2,
        charging_profile=default))
    assert answer.status == "Rejected"  # F01: must be a TxProfile
    assert rig.station.evses[2].pending_id_token is None

    answer = await rig.call(call.RequestStartTransaction(
        id_token={"id_token": "TAG-A", "type": "Central"}, remote_start_id=2, evse_id=2,
        charging_profile=profile(7, "TxProfile", (0, 8.0))))
    assert answer.status == "Accepted"
    rig.sim.plug(2, 32.0, 3)
    started = await rig.started(2)
    assert started["transactionInfo"]["remoteStartId"] == 2
    await rig.station.idle()
    assert rig.duty(2) == duty(8)  # from the first PWM on: the profile came with the start

    await rig.call(call.GetChargingProfiles(request_id=9, charging_profile={}))
    (report,) = await rig.csms.wait_for(lambda: [
        p for p in rig.actions("ReportChargingProfiles") if p["requestId"] == 9])
    assert report["evseId"] == 2
    assert report["chargingProfile"][0]["transactionId"] == (
        started["transactionInfo"]["transactionId"])

    rig.sim.unplug(2)  # the transaction ends: its TxProfile goes with it
    await rig.events.wait_for(lambda: rig.station.evses[2].session is None)
    await rig.station.idle()
    assert rig.station.smart.store.all() == []
