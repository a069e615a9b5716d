"""A whole OCPP 1.6J charging session, daemon + simulator against a real CSMS on loopback."""

from __future__ import annotations

from typing import Any

from dev_csms import DevCsms
from ocpp.v16 import call

from evse.daemon import Daemon
from evse.domain import MeterSample, ReadingContext, TransactionStopped
from tests.conftest import DaemonFactory, EventLog, free_port


def sim_energy_wh(daemon: Daemon, connector_id: int = 1) -> float:
    assert daemon.board is not None and daemon.board.simulator is not None
    state: Any = daemon.board.simulator.describe()[str(connector_id)]
    return float(state["energy_wh"])


def statuses(csms: DevCsms, connector_id: int = 1) -> list[str]:
    return [p["status"] for p in csms.actions("StatusNotification")
            if p["connectorId"] == connector_id]


async def charge_until(csms: DevCsms, periodic_values: int) -> None:
    """Wait until ``periodic_values`` periodic MeterValues reached the CSMS."""
    await csms.wait_for(lambda: len([
        m for m in csms.actions("MeterValues")
        if m["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Periodic"
    ]) >= periodic_values)


async def test_card_session_end_to_end(csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    daemon = await daemon_factory(f"ws://127.0.0.1:{csms.port}/")
    sim = daemon.board.simulator  # type: ignore[union-attr]
    assert sim is not None
    await csms.wait_for(lambda: "Available" in statuses(csms))
    energy_before = sim_energy_wh(daemon)

    sim.plug(1, 16.0, 3)
    await csms.wait_for(lambda: "Preparing" in statuses(csms))
    sim.swipe("DEMO01")
    await csms.wait_for(lambda: "Charging" in statuses(csms))
    await charge_until(csms, 2)
    sim.unplug(1)
    stop = (await csms.wait_for(lambda: csms.actions("StopTransaction")))[0]
    energy_after = sim_energy_wh(daemon)

    assert [p["idTag"] for p in csms.actions("Authorize")] == ["DEMO01"]
    start = csms.actions("StartTransaction")
    assert len(start) == 1 and start[0]["idTag"] == "DEMO01" and start[0]["connectorId"] == 1
    assert len(csms.actions("StopTransaction")) == 1
    transaction_id = next(iter(csms.transaction_ids.values()))
    assert stop["transactionId"] == transaction_id
    assert stop["reason"] == "EVDisconnected"
    assert all(m["transactionId"] == transaction_id for m in csms.actions("MeterValues"))
    charged = stop["meterStop"] - start[0]["meterStart"]
    assert charged > 0
    assert abs(charged - (energy_after - energy_before)) <= 1.0
    # 16 A on 3 phases at 230 V: the periodic sample reports what the EV draws.
    periodic = [m for m in csms.actions("MeterValues")
                if m["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Periodic"]
    sampled = {(v["measurand"], v.get("phase")): v for v in periodic[0]["meterValue"][0]
               ["sampledValue"]}
    assert sampled[("Power.Active.Import", None)]["unit"] == "W"
    assert float(sampled[("Power.Active.Import", None)]["value"]) == 16 * 230 * 3
    assert float(sampled[("Current.Import", "L2")]["value"]) == 16.0
    assert sampled[("Voltage", "L3-N")]["unit"] == "V"
    assert sampled[("Energy.Active.Import.Register", None)]["unit"] == "Wh"
    seq = statuses(csms)
    assert seq.index("Preparing") < seq.index("Charging") < len(seq) - 1
    assert seq[-1] == "Available"
    # The contactor is open again.
    assert not daemon.board.connectors[0].contactor.commanded_closed  # type: ignore[union-attr]


async def test_remote_start_before_plug_and_remote_stop(
    csms: DevCsms, daemon_factory: DaemonFactory
) -> None:
    daemon = await daemon_factory(f"ws://127.0.0.1:{csms.port}/")
    sim = daemon.board.simulator  # type: ignore[union-attr]
    assert sim is not None
    await csms.wait_for(lambda: "CP-TEST" in csms.stations and "Available" in statuses(csms))
    cp = csms.stations["CP-TEST"]
    answer = await cp.call(call.RemoteStartTransaction(id_tag="TAG-A", connector_id=1))
    assert answer.status == "Accepted"
    await csms.wait_for(lambda: "Preparing" in statuses(csms))
    sim.plug(1, 32.0, 3)
    await csms.wait_for(lambda: "Charging" in statuses(csms))
    start = (await csms.wait_for(lambda: csms.actions("StartTransaction")))[0]
    assert start["idTag"] == "TAG-A"
    transaction_id = await csms.wait_for(lambda: next(iter(csms.transaction_ids.values()), 0))
    answer = await cp.call(call.RemoteStopTransaction(transaction_id=transaction_id))
    assert answer.status == "Accepted"
    stop = (await csms.wait_for(lambda: csms.actions("StopTransaction")))[0]
    assert stop["reason"] == "Remote" and stop["transactionId"] == transaction_id
    await csms.wait_for(lambda: statuses(csms)[-1] == "Finishing")
    # A stop for a transaction that is not running is rejected.
    answer = await cp.call(call.RemoteStopTransaction(transaction_id=transaction_id))
    assert answer.status == "Rejected"


async def test_csms_unreachable_at_start_delivers_everything_once(
    daemon_factory: DaemonFactory,
) -> None:
    port = free_port()
    daemon = await daemon_factory(
        f"ws://127.0.0.1:{port}/", ocpp_keys="AllowOfflineTxForUnknownId = true")
    sim = daemon.board.simulator  # type: ignore[union-attr]
    assert sim is not None and daemon.station is not None
    events = EventLog(daemon.station)
    sim.plug(1, 16.0, 1)
    sim.swipe("OFFLINE1")
    # No CSMS: the offline authorization (AllowOfflineTxForUnknownId) lets the session run.
    await events.wait_for(lambda: "energy_transfer" in events.statuses())
    await events.wait_for(lambda: any(
        isinstance(e, MeterSample) and e.context is ReadingContext.PERIODIC
        for e in events.events))
    sim.unplug(1)
    await events.wait_for(lambda: any(isinstance(e, TransactionStopped) for e in events.events))

    csms = DevCsms(port=port, accept_tags=("OFFLINE1",))
    await csms.start()
    try:
        await csms.wait_for(lambda: csms.actions("StopTransaction"), timeout=20)
        assert len(csms.actions("StartTransaction")) == 1
        assert len(csms.actions("StopTransaction")) == 1
        begin = [m for m in csms.actions("MeterValues")
                 if m["meterValue"][0]["sampledValue"][0]["context"] == "Transaction.Begin"]
        assert len(begin) == 1
        transaction_id = next(iter(csms.transaction_ids.values()))
        stop = csms.actions("StopTransaction")[0]
        assert stop["transactionId"] == transaction_id
        assert all(m["transactionId"] == transaction_id for m in csms.actions("MeterValues"))
        assert csms.actions("StartTransaction")[0]["idTag"] == "OFFLINE1"
    finally:
        await csms.stop()


async def test_boot_pending_sends_nothing_else_until_accepted(
    csms: DevCsms, daemon_factory: DaemonFactory
) -> None:
    csms.boot_status = "Pending"  # type: ignore[assignment]
    csms.heartbeat_s = 1
    daemon = await daemon_factory(f"ws://127.0.0.1:{csms.port}/")
    await csms.wait_for(lambda: len(csms.actions("BootNotification")) >= 2, timeout=10)
    assert {a for _, a, _, _ in csms.calls} == {"BootNotification"}
    assert daemon.adapter is not None and daemon.adapter.describe()["state"] == "pending"
    csms.boot_status = "Accepted"  # type: ignore[assignment]
    await csms.wait_for(lambda: csms.actions("StatusNotification"), timeout=10)
    assert daemon.adapter.describe()["state"] == "accepted"


async def test_card_then_plug_and_same_card_stops(
    csms: DevCsms, daemon_factory: DaemonFactory
) -> None:
    daemon = await daemon_factory(f"ws://127.0.0.1:{csms.port}/")
    sim = daemon.board.simulator  # type: ignore[union-attr]
    assert sim is not None and daemon.station is not None
    events = EventLog(daemon.station)
    await csms.wait_for(lambda: "Available" in statuses(csms))
    sim.swipe("TAG-B")  # card first: the connector waits for a plug (ConnectionTimeOut)
    await events.wait_for(lambda: "pending" in events.statuses())
    sim.plug(1, 32.0, 3)
    await events.wait_for(lambda: "energy_transfer" in events.statuses())
    sim.swipe("TAG-B")  # the same card again ends the session
    stop = (await csms.wait_for(lambda: csms.actions("StopTransaction")))[0]
    assert stop["reason"] == "Local" and stop["idTag"] == "TAG-B"
    await events.wait_for(lambda: events.statuses()[-1] == "ended")
    sim.swipe("NOBODY")  # an unknown card starts nothing
    await csms.wait_for(lambda: any(p["idTag"] == "NOBODY" for p in csms.actions("Authorize")))
    sim.unplug(1)
    await events.wait_for(lambda: events.statuses()[-1] == "idle")
    assert len(csms.actions("StartTransaction")) == 1
