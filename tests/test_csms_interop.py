"""Interoperability defects of issue 12 (3, 7, 8), each against the dev CSMS on loopback."""

from __future__ import annotations

from typing import Any

from dev_csms import DevCsms
from ocpp.v16 import call

from tests.conftest import DaemonFactory
from tests.test_csms_commands import start_charging


async def test_configuration_key_names_are_case_insensitive(
        csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    """Defect 3: OCPP key names are CiString (OCPP 1.6 §9); answers use the spec's spelling."""
    daemon = await daemon_factory(f"ws://127.0.0.1:{csms.port}/")
    await csms.wait_for(lambda: "CP-TEST" in csms.stations)
    cp = csms.stations["CP-TEST"]
    answer = await cp.call(call.ChangeConfiguration(key="metervaluesampleinterval", value="30"))
    assert answer.status == "Accepted"
    assert daemon.station is not None and daemon.station.sample_interval_s == 30.0
    assert (await cp.call(call.ChangeConfiguration(key="ConnectionTimeout", value="45"))
            ).status == "Accepted"
    got = await cp.call(call.GetConfiguration(key=["HEARTBEATINTERVAL", "connectiontimeout",
                                                   "MeterValueSampleInterval"]))
    assert {k["key"]: k["value"] for k in got.configuration_key} == {
        "HeartbeatInterval": "300", "ConnectionTimeOut": "45", "MeterValueSampleInterval": "30"}
    assert not got.unknown_key
    assert daemon.station.connection_timeout_s == 45.0


async def test_callerror_with_an_unknown_code_is_a_failed_attempt_and_the_link_stays(
        csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    """Defect 8: a CALLERROR code the ``ocpp`` library does not know (a 2.0.1 stack's
    RpcFrameworkError) counts as one failed attempt (OCPP 1.6 §4.10), then the retry is
    delivered; no reconnect, no second BootNotification."""
    csms.reject["StartTransaction"] = 1
    csms.reject_code = "RpcFrameworkError"
    daemon, _ = await start_charging(csms, daemon_factory,
                                     ocpp_keys="TransactionMessageRetryInterval = 0")
    cp = csms.stations["CP-TEST"]
    await csms.wait_for(lambda: len(csms.actions("StartTransaction")) == 2)
    assert daemon.station is not None and daemon.adapter is not None
    session = daemon.station.connectors[1].session
    assert session is not None

    def delivered() -> Any:
        assert daemon.adapter is not None
        return daemon.adapter.transaction_ref(session.session_id)

    await csms.wait_for(lambda: delivered() is not None and csms.actions("MeterValues"))
    assert csms.stations.get("CP-TEST") is cp
    assert len(csms.actions("BootNotification")) == 1
    # One CALLERROR, then the retry was answered: both were the same CALL.
    starts = [uid for _, action, _, uid in csms.calls if action == "StartTransaction"]
    assert len(set(starts)) == 1, "the retry is the identical message (same unique id)"


def _order(csms: DevCsms, seen: int, action: str, status: str) -> tuple[int, list[int]]:
    """Index of the charge point's answer to the CSMS's ``action`` CALL and of its
    StatusNotifications with ``status``, in the frames since ``seen``."""
    frames = [f.parsed for f in csms.frames[seen:]]
    unique_id = next(f[1] for f in frames if f[0] == 2 and f[2] == action)
    answer, statuses = -1, []
    for i, (frame, parsed) in enumerate(zip(csms.frames[seen:], frames, strict=True)):
        if frame.direction != "in":
            continue
        if parsed[0] == 3 and parsed[1] == unique_id:
            answer = i
        elif (parsed[0] == 2 and parsed[2] == "StatusNotification"
              and parsed[3]["status"] == status):
            statuses.append(i)
    return answer, statuses


async def test_follow_up_status_goes_out_after_the_callresult(
        csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    """Defect 7: the StatusNotification a ChangeAvailability / RemoteStopTransaction causes
    never overtakes the CALLRESULT of that CALL (OCPP 1.6 §4.9, §5.2, §5.12)."""
    daemon, events = await start_charging(csms, daemon_factory)
    cp = csms.stations["CP-TEST"]
    await csms.wait_for(lambda: csms.actions("StatusNotification")[-1]["status"] == "Charging")

    async def exchange(payload: Any, expected_status: str) -> None:
        seen = len(csms.frames)
        await cp.call(payload)
        await csms.wait_for(lambda: any(
            f.direction == "in" and f.parsed[0] == 2 and f.parsed[2] == "StatusNotification"
            and f.parsed[3]["status"] == expected_status for f in csms.frames[seen:]))
        answer, statuses = _order(csms, seen, type(payload).__name__, expected_status)
        assert answer >= 0 and statuses and min(statuses) > answer, (payload, answer, statuses)

    sim = daemon.board.simulator if daemon.board is not None else None
    assert sim is not None
    # UnlockConnector stops the transaction while its handler runs: the Finishing status
    # is ready before the answer is.
    await exchange(call.UnlockConnector(connector_id=1), "Finishing")
    sim.unplug(1)
    await events.wait_for(lambda: events.statuses()[-1] == "idle")
    sim.plug(1, 16.0, 3)
    sim.swipe("DEMO01")
    await csms.wait_for(lambda: csms.actions("StatusNotification")[-1]["status"] == "Charging")
    transaction_id = max(csms.transaction_ids.values())
    await exchange(call.RemoteStopTransaction(transaction_id=transaction_id), "Finishing")
    sim.unplug(1)
    await events.wait_for(lambda: events.statuses()[-1] == "idle")
    for _ in range(5):
        await exchange(call.ChangeAvailability(connector_id=1, type="Inoperative"),
                       "Unavailable")
        await exchange(call.ChangeAvailability(connector_id=1, type="Operative"), "Available")
