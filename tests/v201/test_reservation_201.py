"""OCPP 2.0.1 Reservation (H01–H04) end to end: the dev CSMS (the ``ocpp`` library's 2.0.1
central system, schema validation on) on loopback, the daemon on the simulated board and a
ManualClock (expiry without waiting). Checked by the CSMS's answers, the StatusNotifications
and ReservationStatusUpdates it receives, and who may charge on a reserved EVSE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ocpp.v201 import call

from ocpp_client.v16.meter_values import iso_timestamp
from tests.v201.manual_rig import Rig201


def reserve(rig: Rig201, reservation_id: int, token: str, evse_id: int | None = 1,
            in_s: float = 600.0, **extra: Any) -> call.ReserveNow:
    return call.ReserveNow(id=reservation_id,
                           expiry_date_time=iso_timestamp(rig.station.clock.now() + in_s),
                           id_token={"id_token": token, "type": "ISO14443"},
                           **({} if evse_id is None else {"evse_id": evse_id}), **extra)


def updates(rig: Rig201) -> list[tuple[int, str]]:
    return [(p["reservationId"], p["reservationUpdateStatus"])
            for p in rig.actions("ReservationStatusUpdate")]


async def test_reserved_evse_only_for_its_id_token(start201: Callable[..., Any]) -> None:
    rig: Rig201 = await start201(connectors=2)
    await rig.csms.wait_for(lambda: "Available" in rig.statuses(1))
    assert (await rig.call(reserve(rig, 9, "DEMO01", evse_id=5))).status == "Rejected"
    assert (await rig.call(reserve(rig, 9, "DEMO01", connector_type="cCCS2"))
            ).status == "Rejected"
    assert (await rig.call(reserve(rig, 1, "TAG-A"))).status == "Accepted"
    await rig.csms.wait_for(lambda: rig.statuses(1)[-1:] == ["Reserved"])
    # Another reservation on the same EVSE: Occupied.
    assert (await rig.call(reserve(rig, 2, "DEMO01"))).status == "Occupied"

    # DEMO01 (accepted by the CSMS) may not take the EVSE reserved for TAG-A.
    rig.sim.plug(1, 32.0, 3)
    rig.sim.swipe("DEMO01")
    await rig.csms.wait_for(lambda: rig.actions("Authorize"))
    await rig.station.idle()
    assert rig.station.evses[1].session is None
    assert rig.station.evses[1].pending_id_token is None
    assert not [e for e in rig.actions("TransactionEvent") if e["eventType"] == "Started"]

    # TAG-A uses it: a transaction, the reservation ends without a ReservationStatusUpdate.
    rig.sim.swipe("TAG-A")
    started = await rig.started(1)
    await rig.station.idle()
    # H03: the transaction names the reservation it used.
    assert started["reservationId"] == 1
    assert rig.station.reservations.all() == []
    assert updates(rig) == []


async def test_group_id_token_cancel_and_disabled(start201: Callable[..., Any]) -> None:
    rig: Rig201 = await start201(connectors=2)
    # DEMO01 belongs to group FLEET-7 (IdTokenInfo.groupIdToken from the CSMS).
    rig.csms.tag_info["DEMO01"] = {"status": "Accepted", "parentIdTag": "FLEET-7"}
    answer = await rig.call(reserve(rig, 3, "DRIVER-9", evse_id=2, group_id_token={
        "id_token": "FLEET-7", "type": "Central"}))
    assert answer.status == "Accepted"
    await rig.csms.wait_for(lambda: rig.statuses(2)[-1:] == ["Reserved"])
    rig.sim.plug(2, 32.0, 3)
    rig.sim.swipe("DEMO01")
    assert (await rig.started(2))["reservationId"] == 3  # same group: allowed
    assert rig.station.reservations.all() == []

    # CancelReservation: Rejected when unknown; Accepted frees the EVSE, no status update.
    assert (await rig.call(call.CancelReservation(reservation_id=42))).status == "Rejected"
    assert (await rig.call(reserve(rig, 4, "TAG-A", evse_id=1))).status == "Accepted"
    await rig.csms.wait_for(lambda: rig.statuses(1)[-1:] == ["Reserved"])
    assert (await rig.call(call.CancelReservation(reservation_id=4))).status == "Accepted"
    await rig.csms.wait_for(lambda: rig.statuses(1)[-1:] == ["Available"])
    assert updates(rig) == []

    # ReservationCtrlr.Enabled false: ReserveNow is Rejected.
    answer = await rig.call(call.SetVariables(set_variable_data=[
        {"component": {"name": "ReservationCtrlr"}, "variable": {"name": "Enabled"},
         "attribute_value": "false"}]))
    assert answer.set_variable_result[0]["attribute_status"] == "Accepted"
    assert (await rig.call(reserve(rig, 5, "TAG-A", evse_id=1))).status == "Rejected"


async def test_expiry_and_removal_are_reported(start201: Callable[..., Any]) -> None:
    rig: Rig201 = await start201(connectors=2)
    assert (await rig.call(reserve(rig, 11, "TAG-A", evse_id=1, in_s=30))).status == "Accepted"
    await rig.csms.wait_for(lambda: rig.statuses(1)[-1:] == ["Reserved"])
    await rig.advance(20)
    assert updates(rig) == []  # not yet
    await rig.advance(11)
    await rig.csms.wait_for(lambda: updates(rig))
    assert updates(rig) == [(11, "Expired")]
    await rig.csms.wait_for(lambda: rig.statuses(1)[-1:] == ["Available"])

    # Its EVSE made Inoperative: the reservation is removed (H04 Removed).
    assert (await rig.call(reserve(rig, 12, "TAG-A", evse_id=2))).status == "Accepted"
    answer = await rig.call(call.ChangeAvailability(operational_status="Inoperative",
                                                    evse={"id": 2}))
    assert answer.status == "Accepted"
    await rig.csms.wait_for(lambda: len(updates(rig)) == 2)
    assert updates(rig)[-1] == (12, "Removed")
    await rig.csms.wait_for(lambda: rig.statuses(2)[-1:] == ["Unavailable"])

    # Without evseId: any EVSE (ReservationCtrlr.NonEvseSpecific).
    assert (await rig.call(reserve(rig, 13, "TAG-A", evse_id=None))).status == "Accepted"
    assert [r.evse_id for r in rig.station.reservations.all()] == [0]
