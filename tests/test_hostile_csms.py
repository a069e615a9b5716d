"""A hostile or broken CSMS (issue 15): every bad frame gets the OCPP-J 1.6 CALLERROR
(OCPP-J 1.6 §4.2.3) or is ignored, the link stays up, and no value the CSMS sets can be
stored unless it is valid and in range."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from dev_csms import DevCsms
from ocpp.v16 import call

from evse.daemon import Daemon
from tests.conftest import DaemonFactory
from tests.test_csms_commands import raw_exchange

DEEP = 100_000


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# (frame text, unique id of the answer, expected error code)
FRAMES: dict[str, tuple[str, str, str]] = {
    "action is a list": ('[2,"h1",["Reset"],{"type":"Soft"}]', "h1", "FormationViolation"),
    "action is an object": ('[2,"h2",{"a":"Reset"},{}]', "h2", "FormationViolation"),
    "integer over 4300 digits": (
        '[2,"h3","RemoteStopTransaction",{"transactionId":' + "9" * 5000 + "}]", "h3",
        "TypeConstraintViolation"),
    "integer 2^63": (f'[2,"h4","RemoteStopTransaction",{{"transactionId":{2**63}}}]', "h4",
                     "TypeConstraintViolation"),
    "integer -2^63-1": (f'[2,"h5","ChangeAvailability",{{"connectorId":{-2**63 - 1},'
                        '"type":"Operative"}]', "h5", "TypeConstraintViolation"),
    "nesting 100000 deep": (f'[2,"h6","DataTransfer",{{"vendorId":"x","data":{_nested(DEEP)}}}]',
                            "h6", "FormationViolation"),
    "nesting 40 deep": (f'[2,"h7","DataTransfer",{{"vendorId":"x","data":{_nested(40)}}}]',
                        "h7", "FormationViolation"),
    "frame over 1 MiB": ('[2,"h8","ChangeConfiguration",{"key":"ConnectorPhaseRotation",'
                         '"value":"' + "x" * (1024 * 1024 + 10) + '"}]', "h8",
                         "FormationViolation"),
    "enum violation": ('[2,"h9","ChangeAvailability",{"connectorId":1,"type":"Sideways"}]',
                       "h9", "PropertyConstraintViolation"),
    "enum violation in Reset": ('[2,"h10","Reset",{"type":"Medium"}]', "h10",
                                "PropertyConstraintViolation"),
    "unique id of 37 characters": ('[2,"' + "u" * 37 + '","Heartbeat",{}]', "-1",
                                   "FormationViolation"),
    "unique id a number": ('[2,17,"ClearCache",{}]', "-1", "FormationViolation"),
    "NaN": ('[2,"h13","ChangeAvailability",{"connectorId":NaN,"type":"Operative"}]', "h13",
            "FormationViolation"),
    "payload is a list": ('[2,"h14","ClearCache",[]]', "h14", "FormationViolation"),
    "CALL of 3 elements": ('[2,"h15","ClearCache"]', "h15", "ProtocolError"),
    # Authorize goes charge point → CSMS only: known to OCPP 1.6, never handled here.
    "known action not supported": ('[2,"h16","Authorize",{}]', "h16", "NotSupported"),
    # Refused by the library's own schema check (decimal schema): the code is respelled.
    "library's FormatViolation": ('[2,"h17","RemoteStartTransaction",{"idTag":"A","x":1}]',
                                  "h17", "FormationViolation"),
}


async def _connected(csms: DevCsms, daemon_factory: DaemonFactory) -> Daemon:
    daemon: Daemon = await daemon_factory(f"ws://127.0.0.1:{csms.port}/")
    await csms.wait_for(lambda: "CP-TEST" in csms.stations
                        and csms.actions("StatusNotification"))
    return daemon


async def _link_unharmed(csms: DevCsms, cp: Any) -> None:
    assert csms.stations.get("CP-TEST") is cp, "the charge point reconnected"
    assert len(csms.actions("BootNotification")) == 1
    answer = await cp.call(call.GetConfiguration(key=["HeartbeatInterval"]))
    assert answer.configuration_key[0]["key"] == "HeartbeatInterval"


@pytest.mark.parametrize("case", list(FRAMES))
async def test_bad_frame_gets_its_callerror_and_the_link_stays(
        case: str, csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    frame, unique_id, code = FRAMES[case]
    await _connected(csms, daemon_factory)
    cp = csms.stations["CP-TEST"]
    answer = await raw_exchange(csms, frame, unique_id)
    assert answer[0] == 4 and answer[2] == code, answer
    await _link_unharmed(csms, cp)


async def test_thousands_of_stray_callresults_are_ignored(
        csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    await _connected(csms, daemon_factory)
    cp = csms.stations["CP-TEST"]
    seen = len(csms.frames)
    for i in range(5000):
        await cp._connection.send(json.dumps([3, f"stray-{i}", {"currentTime": "x"}]))
    await cp._connection.send(json.dumps([4, "stray-error", "InternalError", "", {}]))
    # The charge point's own CALLs still get their answers matched: a triggered Heartbeat
    # is sent and answered, twice (a stuck call would hold the second one back).
    for _ in range(2):
        before = len(csms.actions("Heartbeat"))
        assert (await cp.call(call.TriggerMessage(requested_message="Heartbeat"))
                ).status == "Accepted"
        await csms.wait_for(lambda b=before: len(csms.actions("Heartbeat")) > b)
    answered = [f.parsed for f in csms.frames[seen:] if f.direction == "in"
                and f.parsed[0] in (3, 4) and str(f.parsed[1]).startswith("stray")]
    assert answered == []
    await _link_unharmed(csms, cp)


OUT_OF_RANGE = [
    ("MeterValueSampleInterval", "9" * 400),
    ("MeterValueSampleInterval", str(2**63)),
    ("MeterValueSampleInterval", "-1"),
    ("HeartbeatInterval", "100000000"),
    ("WebSocketPingInterval", "86401"),
    ("WebSocketPingInterval", "-5"),
    ("TransactionMessageRetryInterval", "1e9"),
    ("ConnectionTimeOut", "0"),
]


@pytest.mark.parametrize(("key", "value"), OUT_OF_RANGE)
async def test_out_of_range_values_are_rejected_and_not_stored(
        key: str, value: str, csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    daemon = await _connected(csms, daemon_factory)
    cp = csms.stations["CP-TEST"]
    before = (await cp.call(call.GetConfiguration(key=[key]))).configuration_key[0]["value"]
    answer = await cp.call(call.ChangeConfiguration(key=key, value=value))
    assert answer.status == "Rejected"
    after = (await cp.call(call.GetConfiguration(key=[key]))).configuration_key[0]["value"]
    assert after == before
    # A restart with the same state DB neither crashes nor picks the value up.
    config = daemon.config
    await daemon.shutdown()
    again = Daemon(config)
    await again.start()
    try:
        assert again.station is not None and again.station.sample_interval_s == 1.0
    finally:
        await again.shutdown()


@pytest.mark.parametrize(("key", "value"), [("WebSocketPingInterval", "3600"),
                                            ("WebSocketPingInterval", "0"),
                                            ("MeterValueSampleInterval", "86400")])
async def test_values_at_the_range_ends_are_accepted(
        key: str, value: str, csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    await _connected(csms, daemon_factory)
    cp = csms.stations["CP-TEST"]
    assert (await cp.call(call.ChangeConfiguration(key=key, value=value))).status == "Accepted"
    got = (await cp.call(call.GetConfiguration(key=[key]))).configuration_key[0]["value"]
    assert got == value


async def test_a_stored_value_that_no_longer_validates_is_replaced_by_the_default(
        csms: DevCsms, daemon_factory: DaemonFactory, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """What an older release stored (a 400-digit MeterValueSampleInterval made every start
    fail with OverflowError) is reported and dropped; the daemon starts and charges."""
    daemon = await _connected(csms, daemon_factory)
    config = daemon.config
    await daemon.shutdown()
    db = sqlite3.connect(Path(config.state_dir) / "evse.db")
    with db:
        db.execute("INSERT OR REPLACE INTO ocpp_configuration VALUES (?, ?, ?)",
                   ("MeterValueSampleInterval", "9" * 400, "1"))
        db.execute("INSERT OR REPLACE INTO ocpp_configuration VALUES (?, ?, ?)",
                   ("WebSocketPingInterval", "99999999", None))
    db.close()
    again = Daemon(config)
    await again.start()
    try:
        assert again.station is not None and again.station.sample_interval_s == 1.0
        await csms.wait_for(lambda: len(csms.actions("BootNotification")) == 2)
        cp = csms.stations["CP-TEST"]
        got = await cp.call(call.GetConfiguration(key=["MeterValueSampleInterval",
                                                       "WebSocketPingInterval"]))
        assert {k["key"]: k["value"] for k in got.configuration_key} == {
            "MeterValueSampleInterval": "1", "WebSocketPingInterval": "60"}
    finally:
        await again.shutdown()
    reported = " ".join(r.getMessage() for r in caplog.records)
    assert "MeterValueSampleInterval" in reported and "WebSocketPingInterval" in reported
