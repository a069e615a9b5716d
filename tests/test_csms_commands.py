"""CSMS → charge point: malformed frames get the right CALLERROR, commands behave per
OCPP 1.6 §5, and neither harms the link or a running session."""

from __future__ import annotations

import json
from typing import Any

from dev_csms import DevCsms
from ocpp.v16 import call

from evse.daemon import Daemon
from tests.conftest import DaemonFactory, EventLog


async def start_charging(csms: DevCsms, daemon_factory: DaemonFactory, **kw: Any
                         ) -> tuple[Daemon, EventLog]:
    daemon = await daemon_factory(f"ws://127.0.0.1:{csms.port}/", **kw)
    assert daemon.station is not None and daemon.board is not None
    events = EventLog(daemon.station)
    await csms.wait_for(lambda: "CP-TEST" in csms.stations and csms.actions("StatusNotification"))
    sim = daemon.board.simulator
    assert sim is not None
    sim.plug(1, 16.0, 3)
    sim.swipe("DEMO01")
    await events.wait_for(lambda: "energy_transfer" in events.statuses())
    return daemon, events


async def raw_exchange(csms: DevCsms, frame: str, unique_id: str) -> list[Any]:
    """Send a raw frame to the charge point and return its answer with ``unique_id``."""
    cp = csms.stations["CP-TEST"]
    seen = len(csms.frames)
    await cp._connection.send(frame)

    def answer() -> list[Any] | None:
        for f in csms.frames[seen:]:
            if f.direction == "in":
                parsed = f.parsed
                if parsed[0] in (3, 4) and parsed[1] == unique_id:
                    return parsed
        return None

    result: list[Any] = await csms.wait_for(answer, timeout=5)
    return result


async def test_malformed_frames_get_callerror_and_session_survives(
    csms: DevCsms, daemon_factory: DaemonFactory
) -> None:
    daemon, events = await start_charging(csms, daemon_factory)

    not_json = await raw_exchange(csms, "this is not json", "-1")
    assert not_json[0] == 4 and not_json[2] == "FormationViolation"

    unknown = await raw_exchange(csms, json.dumps([2, "u1", "MakeCoffee", {}]), "u1")
    assert unknown[0] == 4 and unknown[2] == "NotImplemented"

    wrong_type = await raw_exchange(
        csms, json.dumps([2, "u2", "ChangeAvailability", {"connectorId": "one",
                                                          "type": "Inoperative"}]), "u2")
    assert wrong_type[0] == 4 and wrong_type[2] == "TypeConstraintViolation"

    missing = await raw_exchange(csms, json.dumps([2, "u3", "RemoteStopTransaction", {}]), "u3")
    assert missing[0] == 4 and missing[2] == "ProtocolError"

    extra = await raw_exchange(
        csms, json.dumps([2, "u4", "ClearCache", {"bogus": 1}]), "u4")
    assert extra[0] == 4 and extra[2] == "FormationViolation"

    bad_type_id = await raw_exchange(csms, json.dumps([7, "u5", "Heartbeat", {}]), "u5")
    assert bad_type_id[0] == 4 and bad_type_id[2] == "PropertyConstraintViolation"

    # The link is still up and the session unharmed.
    answer = await csms.stations["CP-TEST"].call(call.GetConfiguration(key=["HeartbeatInterval"]))
    assert answer.configuration_key[0]["key"] == "HeartbeatInterval"
    assert daemon.station is not None
    assert daemon.station.connectors[1].state == "energy_transfer"
    assert events.statuses()[-1] == "energy_transfer"
    assert len(csms.stations) == 1


async def test_configuration_keys(csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    daemon = await daemon_factory(f"ws://127.0.0.1:{csms.port}/")
    await csms.wait_for(lambda: "CP-TEST" in csms.stations)
    cp = csms.stations["CP-TEST"]
    everything = await cp.call(call.GetConfiguration())
    keys = {k["key"]: k for k in everything.configuration_key}
    assert keys["MeterValueSampleInterval"]["value"] == "1"  # the TOML default
    assert keys["NumberOfConnectors"] == {"key": "NumberOfConnectors", "readonly": True,
                                          "value": "1"}
    some = await cp.call(call.GetConfiguration(key=["HeartbeatInterval", "NoSuchKey"]))
    assert some.unknown_key == ["NoSuchKey"]

    assert (await cp.call(call.ChangeConfiguration(key="MeterValueSampleInterval",
                                                   value="30"))).status == "Accepted"
    assert (await cp.call(call.ChangeConfiguration(key="NumberOfConnectors",
                                                   value="4"))).status == "Rejected"
    assert (await cp.call(call.ChangeConfiguration(key="HeartbeatInterval",
                                                   value="soon"))).status == "Rejected"
    assert (await cp.call(call.ChangeConfiguration(key="MeterValuesSampledData",
                                                   value="Temperature.Bogus"))).status == "Rejected"
    assert (await cp.call(call.ChangeConfiguration(key="NoSuchKey",
                                                   value="1"))).status == "NotSupported"
    assert daemon.station is not None and daemon.station.sample_interval_s == 30.0

    # Persisted: a restarted daemon (same state dir) keeps the CSMS's value.
    config = daemon.config
    await daemon.shutdown()
    again = Daemon(config)
    await again.start()
    try:
        assert again.station is not None and again.station.sample_interval_s == 30.0
    finally:
        await again.shutdown()


async def test_change_availability_scheduled_while_charging(
    csms: DevCsms, daemon_factory: DaemonFactory
) -> None:
    daemon, events = await start_charging(csms, daemon_factory)
    cp = csms.stations["CP-TEST"]
    answer = await cp.call(call.ChangeAvailability(connector_id=1, type="Inoperative"))
    assert answer.status == "Scheduled"
    assert events.statuses()[-1] == "energy_transfer"
    assert daemon.board is not None and daemon.board.simulator is not None
    daemon.board.simulator.unplug(1)
    await events.wait_for(lambda: events.statuses()[-1] == "out_of_service")
    await csms.wait_for(lambda: csms.actions("StatusNotification")[-1]["status"] == "Unavailable")
    # Back to operative: Accepted at once when idle.
    answer = await cp.call(call.ChangeAvailability(connector_id=0, type="Operative"))
    assert answer.status == "Accepted"
    await events.wait_for(lambda: events.statuses()[-1] == "idle")
    # Unknown connector is rejected.
    answer = await cp.call(call.ChangeAvailability(connector_id=9, type="Operative"))
    assert answer.status == "Rejected"


async def test_misc_commands(csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    await daemon_factory(f"ws://127.0.0.1:{csms.port}/")
    await csms.wait_for(lambda: "CP-TEST" in csms.stations)
    cp = csms.stations["CP-TEST"]
    assert (await cp.call(call.UnlockConnector(connector_id=1))).status == "NotSupported"
    assert (await cp.call(call.ClearCache())).status == "Accepted"
    assert (await cp.call(call.DataTransfer(vendor_id="acme"))).status == "UnknownVendorId"
    before = len(csms.actions("Heartbeat"))
    assert (await cp.call(call.TriggerMessage(requested_message="Heartbeat"))).status == "Accepted"
    await csms.wait_for(lambda: len(csms.actions("Heartbeat")) > before)
    # Remote Trigger is complete (issue 12): nothing uploads, so the triggered status is Idle.
    answer = await cp.call(call.TriggerMessage(requested_message="DiagnosticsStatusNotification"))
    assert answer.status == "Accepted"
    await csms.wait_for(lambda: csms.actions("DiagnosticsStatusNotification"))
    assert csms.actions("DiagnosticsStatusNotification") == [{"status": "Idle"}]
    before = len(csms.actions("StatusNotification"))
    answer = await cp.call(call.TriggerMessage(requested_message="StatusNotification",
                                               connector_id=1))
    assert answer.status == "Accepted"
    await csms.wait_for(lambda: len(csms.actions("StatusNotification")) > before)
    assert (await cp.call(call.RemoteStartTransaction(id_tag="X", connector_id=5))
            ).status == "Rejected"


async def test_reset_stops_the_transaction(csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    daemon, _ = await start_charging(csms, daemon_factory)
    cp = csms.stations["CP-TEST"]
    assert (await cp.call(call.Reset(type="Soft"))).status == "Accepted"
    stop = (await csms.wait_for(lambda: csms.actions("StopTransaction")))[0]
    assert stop["reason"] == "SoftReset"
    await daemon.wait()  # the daemon ends its run to restart
    assert daemon.reset_kind == "Soft"
