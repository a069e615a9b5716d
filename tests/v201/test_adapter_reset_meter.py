"""Reset (B11, B12), TriggerMessage BootNotification and clock-aligned meter values (J01)
through the 2.0.1 adapter, against the ``ocpp`` library's 2.0.1 central system."""

from __future__ import annotations

from typing import Any

from dev_csms import DevCsms
from ocpp.v201 import call

from .rig import events, sim_of, until


async def _charging(csms201: DevCsms, daemon: Any) -> None:
    sim = sim_of(daemon)
    sim.plug(1, 16.0, 3)
    sim.swipe("DEMO01")
    await csms201.wait_for(lambda: any(e["transactionInfo"].get("chargingState") == "Charging"
                                       for e in events(csms201)))


async def test_immediate_reset_ends_the_transaction_and_reboots_as_remote_reset(
        csms201: DevCsms, run201: Any) -> None:
    daemon = await run201()
    await _charging(csms201, daemon)
    cp = csms201.stations["CP-201"]
    assert (await cp.call(call.Reset(type="Immediate"))).status == "Accepted"
    await csms201.wait_for(lambda: events(csms201)[-1]["eventType"] == "Ended")
    ended = events(csms201)[-1]
    assert ended["triggerReason"] == "ResetCommand"
    assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
    await until(lambda: daemon.reset_kind == "Soft", timeout=5)
    await daemon.shutdown()
    await run201()
    assert [b["reason"] for b in csms201.actions("BootNotification")] == ["PowerUp",
                                                                          "RemoteReset"]


async def test_on_idle_reset_waits_for_the_transaction(csms201: DevCsms, run201: Any) -> None:
    daemon = await run201()
    await _charging(csms201, daemon)
    cp = csms201.stations["CP-201"]
    assert (await cp.call(call.Reset(type="OnIdle"))).status == "Scheduled"
    assert (await cp.call(call.Reset(type="Immediate", evse_id=7))).status == "Rejected"
    assert daemon.reset_kind is None
    sim_of(daemon).unplug(1)
    await until(lambda: daemon.reset_kind == "Soft", timeout=5)
    ended = [e for e in events(csms201) if e["eventType"] == "Ended"]
    assert ended[0]["transactionInfo"]["stoppedReason"] == "EVDisconnected"


async def test_evse_reset_ends_only_that_evse(csms201: DevCsms, run201: Any) -> None:
    daemon = await run201()
    await _charging(csms201, daemon)
    cp = csms201.stations["CP-201"]
    assert (await cp.call(call.Reset(type="Immediate", evse_id=1))).status == "Accepted"
    await csms201.wait_for(lambda: events(csms201)[-1]["eventType"] == "Ended")
    assert events(csms201)[-1]["transactionInfo"]["stoppedReason"] == "ImmediateReset"
    assert daemon.reset_kind is None


async def test_triggered_boot_notification(csms201: DevCsms, run201: Any) -> None:
    await run201()
    cp = csms201.stations["CP-201"]
    answer = await cp.call(call.TriggerMessage(requested_message="BootNotification"))
    assert answer.status == "Accepted"
    await csms201.wait_for(lambda: len(csms201.actions("BootNotification")) == 2)
    assert csms201.actions("BootNotification")[-1]["reason"] == "Triggered"


async def test_clock_aligned_values_idle_and_in_transaction(csms201: DevCsms,
                                                           run201: Any) -> None:
    daemon = await run201(variables='"AlignedDataCtrlr.Interval" = 1\n'
                                    '"AlignedDataCtrlr.SendDuringIdle" = true\n'
                                    '"SampledDataCtrlr.TxUpdatedInterval" = 0')
    idle = await csms201.wait_for(lambda: csms201.actions("MeterValues"))
    value = idle[0]["meterValue"][0]
    assert value["sampledValue"][0]["context"] == "Sample.Clock"
    assert value["sampledValue"][0]["measurand"] == "Energy.Active.Import.Register"
    assert value["timestamp"].endswith(".000Z")  # on the whole second (1 s interval)
    await _charging(csms201, daemon)
    clock = await csms201.wait_for(lambda: [e for e in events(csms201)
                                            if e["triggerReason"] == "MeterValueClock"])
    assert clock[0]["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"
    assert not any(e["triggerReason"] == "MeterValuePeriodic" for e in events(csms201))
