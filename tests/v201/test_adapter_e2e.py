"""Whole OCPP 2.0.1 sessions: the daemon with ``[ocpp] version = "2.0.1"`` and the simulator
against the ``ocpp`` library's 2.0.1 central system on loopback (schema validation on both
sides): BootNotification, StatusNotification, Authorize and TransactionEvents."""

from __future__ import annotations

from typing import Any

import pytest
from dev_csms import DevCsms
from ocpp.v201 import call

from .rig import energy_wh, event_types, events, sim_of, statuses


def register_wh(event: dict[str, Any], context: str) -> float:
    for mv in event.get("meterValue", []):
        for sv in mv["sampledValue"]:
            if sv["measurand"] == "Energy.Active.Import.Register" and sv["context"] == context:
                return float(sv["value"])
    raise AssertionError(f"no {context} energy in {event}")


async def test_card_session_as_transaction_events(csms201: DevCsms, run201: Any) -> None:
    daemon = await run201()
    sim = sim_of(daemon)
    boot = csms201.actions("BootNotification")
    assert boot[0]["reason"] == "PowerUp"
    assert boot[0]["chargingStation"]["vendorName"]
    await csms201.wait_for(lambda: "Available" in statuses(csms201))
    before = energy_wh(daemon)

    sim.plug(1, 16.0, 3)
    await csms201.wait_for(lambda: "Occupied" in statuses(csms201))
    sim.swipe("DEMO01")
    await csms201.wait_for(lambda: sum(e["triggerReason"] == "MeterValuePeriodic"
                                       for e in events(csms201)) >= 2)
    sim.unplug(1)
    await csms201.wait_for(lambda: any(e["eventType"] == "Ended" for e in events(csms201)))
    after = energy_wh(daemon)

    assert csms201.actions("Authorize")[0]["idToken"] == {"idToken": "DEMO01",
                                                           "type": "ISO14443"}
    evs = events(csms201)
    started, ended = evs[0], evs[-1]
    # Default TxStartPoint PowerPathClosed: Started when the contactor closes.
    assert (started["eventType"], started["triggerReason"]) == ("Started",
                                                                "ChargingStateChanged")
    assert started["idToken"]["idToken"] == "DEMO01"
    assert started["evse"] == {"id": 1, "connectorId": 1}
    assert (ended["eventType"], ended["triggerReason"]) == ("Ended", "EVCommunicationLost")
    assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    tx_ids = {e["transactionInfo"]["transactionId"] for e in evs}
    assert len(tx_ids) == 1
    assert [e["seqNo"] for e in evs] == list(range(len(evs)))
    assert not any(e.get("offline") for e in evs)
    assert {"Charging"} <= {e["transactionInfo"].get("chargingState") for e in evs}
    charged = register_wh(ended, "Transaction.End") - register_wh(started, "Transaction.Begin")
    assert charged > 0
    assert abs(charged - (after - before)) <= 1.0
    # connectorStatus on change only: charging, suspended, ... are all Occupied.
    assert statuses(csms201) == ["Available", "Occupied", "Available"]


async def test_remote_session_start_and_stop(csms201: DevCsms, run201: Any) -> None:
    daemon = await run201()
    sim = sim_of(daemon)
    sim.plug(1, 16.0, 3)
    await csms201.wait_for(lambda: "Occupied" in statuses(csms201))
    cp = csms201.stations["CP-201"]
    answer = await cp.call(call.RequestStartTransaction(
        id_token={"id_token": "TAG-A", "type": "Central"}, remote_start_id=77, evse_id=1))
    assert answer.status == "Accepted"
    started = await csms201.wait_for(
        lambda: [e for e in events(csms201) if e["eventType"] == "Started"])
    assert started[0]["transactionInfo"]["remoteStartId"] == 77
    assert started[0]["idToken"] == {"idToken": "TAG-A", "type": "Central"}
    tx_id = started[0]["transactionInfo"]["transactionId"]

    unknown = await cp.call(call.RequestStopTransaction(transaction_id="no-such-tx"))
    assert unknown.status == "Rejected"
    stop = await cp.call(call.RequestStopTransaction(transaction_id=tx_id))
    assert stop.status == "Accepted"
    ended = await csms201.wait_for(
        lambda: [e for e in events(csms201) if e["eventType"] == "Ended"])
    assert ended[0]["triggerReason"] == "RemoteStop"
    assert ended[0]["transactionInfo"]["stoppedReason"] == "Remote"
    assert ended[0]["transactionInfo"]["transactionId"] == tx_id
    # The EV is still plugged: the connector stays Occupied until it leaves.
    assert statuses(csms201)[-1] == "Occupied"
    sim.unplug(1)
    await csms201.wait_for(lambda: statuses(csms201)[-1] == "Available")
    assert [e["seqNo"] for e in events(csms201)] == list(range(len(events(csms201))))


@pytest.mark.parametrize(("start_point", "first_trigger", "first_state", "ev_first"), [
    ("EVConnected", "CablePluggedIn", "EVConnected", True),
    ("Authorized", "Authorized", "Idle", False),
    # The simulated EV asks for energy at once: the contactor closes in state C.
    ("PowerPathClosed", "ChargingStateChanged", "Charging", True),
    ("EnergyTransfer", "ChargingStateChanged", "Charging", True),
])
async def test_tx_start_points(csms201: DevCsms, run201: Any, start_point: str,
                               first_trigger: str, first_state: str, ev_first: bool) -> None:
    daemon = await run201(variables=f'"TxCtrlr.TxStartPoint" = "{start_point}"')
    sim = sim_of(daemon)
    if ev_first:
        sim.plug(1, 16.0, 3)
        await csms201.wait_for(lambda: "Occupied" in statuses(csms201))
        if start_point == "EVConnected":
            # The transaction exists before any authorization.
            first = await csms201.wait_for(lambda: events(csms201))
            assert "idToken" not in first[0]
        sim.swipe("DEMO01")
    else:
        sim.swipe("DEMO01")
        first = await csms201.wait_for(lambda: events(csms201))
        assert first[0]["transactionInfo"]["chargingState"] == "Idle"  # no EV yet
        sim.plug(1, 16.0, 3)
    await csms201.wait_for(lambda: any(e["transactionInfo"].get("chargingState") == "Charging"
                                       for e in events(csms201)))
    evs = events(csms201)
    assert (evs[0]["eventType"], evs[0]["triggerReason"]) == ("Started", first_trigger)
    assert evs[0]["transactionInfo"]["chargingState"] == first_state
    assert any(e.get("idToken", {}).get("idToken") == "DEMO01" for e in evs)
    sim.unplug(1)
    await csms201.wait_for(lambda: events(csms201)[-1]["eventType"] == "Ended")
    evs = events(csms201)
    assert [e["eventType"] for e in evs].count("Started") == 1
    assert [e["seqNo"] for e in evs] == list(range(len(evs)))


async def test_stop_point_ev_connected_outlives_a_card_stop(csms201: DevCsms,
                                                            run201: Any) -> None:
    """TxStopPoint EVConnected only: the card stops the energy; the transaction ends when
    the EV leaves (E06)."""
    daemon = await run201(variables='"TxCtrlr.TxStopPoint" = "EVConnected"')
    sim = sim_of(daemon)
    sim.plug(1, 16.0, 3)
    sim.swipe("DEMO01")
    await csms201.wait_for(lambda: any(e["transactionInfo"].get("chargingState") == "Charging"
                                       for e in events(csms201)))
    sim.swipe("DEMO01")
    await csms201.wait_for(lambda: events(csms201)[-1]["triggerReason"] == "StopAuthorized")
    assert events(csms201)[-1]["eventType"] == "Updated"
    assert events(csms201)[-1]["transactionInfo"]["chargingState"] == "EVConnected"
    sim.unplug(1)
    await csms201.wait_for(lambda: events(csms201)[-1]["eventType"] == "Ended")
    assert event_types(csms201)[-1] == ("Ended", "EVCommunicationLost")
    assert events(csms201)[-1]["transactionInfo"]["stoppedReason"] == "EVDisconnected"


async def test_card_stop_then_unplug_at_once_ends_once_with_local(csms201: DevCsms,
                                                                  run201: Any) -> None:
    """The EV leaves while the card stop is still reading the meter: one Ended, for the
    card (Local), with the end register."""
    daemon = await run201()
    sim = sim_of(daemon)
    sim.plug(1, 16.0, 3)
    sim.swipe("DEMO01")
    await csms201.wait_for(lambda: any(e["transactionInfo"].get("chargingState") == "Charging"
                                       for e in events(csms201)))
    sim.swipe("DEMO01")
    await csms201.wait_for(lambda: statuses(csms201)[-1] == "Occupied"
                           and daemon.station is not None
                           and daemon.station.connectors[1].state == "ended")
    sim.unplug(1)
    await csms201.wait_for(lambda: statuses(csms201)[-1] == "Available")
    assert daemon.station is not None
    await daemon.station.idle()
    await csms201.wait_for(lambda: events(csms201)[-1]["eventType"] == "Ended")
    ended = [e for e in events(csms201) if e["eventType"] == "Ended"]
    assert len(ended) == 1
    assert ended[0]["triggerReason"] == "StopAuthorized"
    assert ended[0]["transactionInfo"]["stoppedReason"] == "Local"
    assert register_wh(ended[0], "Transaction.End") > 0


async def test_stop_point_energy_transfer_ends_when_the_ev_stops_drawing(
        csms201: DevCsms, run201: Any) -> None:
    """TxStopPoint EnergyTransfer (E06): the EV suspends after charging → the transaction
    ends (StoppedByEV) and the station stops offering energy."""
    daemon = await run201(variables='"TxCtrlr.TxStopPoint" = "EnergyTransfer"')
    sim = sim_of(daemon)
    sim.plug(1, 16.0, 3)
    sim.swipe("DEMO01")
    await csms201.wait_for(lambda: any(e["transactionInfo"].get("chargingState") == "Charging"
                                       for e in events(csms201)))
    sim.ev_pause(1)
    await csms201.wait_for(lambda: events(csms201)[-1]["eventType"] == "Ended")
    ended = events(csms201)[-1]
    assert ended["triggerReason"] == "ChargingStateChanged"
    assert ended["transactionInfo"]["stoppedReason"] == "StoppedByEV"
    assert register_wh(ended, "Transaction.End") > 0
    assert daemon.station is not None
    await daemon.station.idle()
    assert daemon.station.connectors[1].session is None
    assert [e["eventType"] for e in events(csms201)].count("Ended") == 1


async def test_master_pass_stops_every_transaction(csms201: DevCsms, run201: Any) -> None:
    """C16: an IdToken of the MasterPassGroupId group stops the transactions and starts
    none."""
    csms201.tag_info["MASTER-1"] = {"status": "Accepted", "parentIdTag": "MASTERS"}
    daemon = await run201(variables='"AuthCtrlr.MasterPassGroupId" = "MASTERS"')
    sim = sim_of(daemon)
    sim.plug(1, 16.0, 3)
    sim.swipe("DEMO01")
    await csms201.wait_for(lambda: any(e["transactionInfo"].get("chargingState") == "Charging"
                                       for e in events(csms201)))
    sim.swipe("MASTER-1")
    await csms201.wait_for(lambda: events(csms201)[-1]["eventType"] == "Ended")
    ended = events(csms201)[-1]
    assert ended["transactionInfo"]["stoppedReason"] == "MasterPass"
    assert ended["idToken"]["idToken"] == "MASTER-1"
    assert daemon.station is not None
    await daemon.station.idle()
    assert daemon.station.connectors[1].session is None
    assert [e["eventType"] for e in events(csms201)].count("Started") == 1
