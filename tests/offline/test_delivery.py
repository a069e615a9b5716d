"""Delivery of transaction messages against a real CSMS: §4.10 retries and drops, identical
re-sends, status after reconnect, live messages next to a backlog, clock correction."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from dev_csms import DevCsms

from evse import clock as clock_module
from evse import station as station_module
from evse.domain import MeterSample, ReadingContext, TransactionStopped
from hal.meter import MeterReading
from ocpp_client.v16.meter_values import parse_timestamp
from tests.offline.conftest import Rig, until


def _frames(csms: DevCsms, action: str) -> list[tuple[float, str]]:
    """(arrival time, unique id) of every CALL ``action`` received, re-sends included."""
    out = []
    for frame in csms.frames:
        msg = frame.parsed
        if frame.direction == "in" and msg[0] == 2 and msg[2] == action:
            out.append((frame.at, msg[1]))
    return out


async def _session(rig: Rig, tag: str = "TAG-A", connector_id: int = 1) -> None:
    rig.sim.plug(connector_id, 16.0, 3)
    await rig.station.present_card(tag)
    await until(lambda: rig.station.connectors[connector_id].session is not None)


async def test_callerror_retried_at_growing_intervals_with_same_message(
        rig_factory: Any) -> None:
    rig: Rig = await rig_factory(ocpp_keys="TransactionMessageRetryInterval = 1\n"
                                           "TransactionMessageAttempts = 3")
    rig.csms.reject["StartTransaction"] = 2
    await _session(rig)
    await rig.csms.wait_for(lambda: rig.csms.transaction_ids, timeout=10)
    sent = _frames(rig.csms, "StartTransaction")
    assert len(sent) == 3 and len({uid for _, uid in sent}) == 1  # identical re-sends
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(sent)]
    # TransactionMessageRetryInterval × attempts so far: 1 s, then 2 s.
    assert 0.9 <= gaps[0] < 2.5 and 1.9 <= gaps[1] < 3.5, gaps
    assert rig.adapter.outbox.dropped == 0


async def test_message_dropped_after_attempts_is_logged_and_counted(
        rig_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    rig: Rig = await rig_factory(ocpp_keys="TransactionMessageRetryInterval = 0\n"
                                           "TransactionMessageAttempts = 2")
    rig.csms.reject["MeterValues"] = 2  # the Transaction.Begin value fails twice
    await _session(rig)
    await rig.csms.wait_for(lambda: len(rig.csms.actions("MeterValues")) >= 3, timeout=10)
    assert rig.adapter.outbox.dropped == 1
    assert "dropping MeterValues" in caplog.text
    # The transaction itself goes on: later meter values and the stop still arrive.
    rig.sim.unplug(1)
    await rig.csms.wait_for(lambda: rig.csms.actions("StopTransaction"))
    assert rig.adapter.describe()["dropped"] == 1


async def test_stalled_link_resends_identical_message(rig_factory: Any) -> None:
    """The CALLRESULT does not come (link stalled): the same CALL, same message id, goes
    again; the CSMS sees re-sends it can deduplicate and hands out one transactionId."""
    rig: Rig = await rig_factory(call_timeout_s=1.0,
                                 ocpp_keys="TransactionMessageRetryInterval = 0\n"
                                           "LocalPreAuthorize = true")
    await rig.adapter.authorize("TAG-A")  # cached: the card needs no Authorize.req later
    # StartupOfTheDevice (queued at start) delivered first: the stalled CALL is the session's.
    await rig.csms.wait_for(lambda: rig.csms.actions("SecurityEventNotification"))
    await until(lambda: len(rig.adapter.outbox) == 0)
    rig.proxy.stall()
    await _session(rig)
    await until(lambda: rig.adapter.outbox.next_message()[0] is not None
                and rig.adapter.outbox.next_message()[0].attempts >= 1, timeout=5)
    rig.proxy.restore()
    await rig.csms.wait_for(lambda: rig.csms.transaction_ids and
                            rig.station.connectors[1].session is not None and
                            rig.adapter.transactions.transaction_id(
                                rig.station.connectors[1].session.session_id))
    sent = _frames(rig.csms, "StartTransaction")
    assert len(sent) >= 2 and len({uid for _, uid in sent}) == 1
    assert len(set(rig.csms.transaction_ids.values())) == 1
    rig.sim.unplug(1)
    stop = (await rig.csms.wait_for(lambda: rig.csms.actions("StopTransaction")))[0]
    assert stop["transactionId"] == next(iter(rig.csms.transaction_ids.values()))


async def test_status_after_reconnect_is_current_and_sent_once(rig_factory: Any) -> None:
    rig: Rig = await rig_factory(connectors=2)
    await rig.offline()
    before = len(rig.csms.actions("StatusNotification"))
    for _ in range(3):  # status changes while offline are not queued
        rig.sim.plug(1, 16.0, 3)
        rig.sim.unplug(1)
    rig.sim.plug(2, 16.0, 3)
    await until(lambda: rig.station.connectors[2].state == "pending")
    await rig.online()
    await rig.csms.wait_for(
        lambda: len(rig.csms.actions("StatusNotification")) >= before + 3)
    after = rig.csms.actions("StatusNotification")[before:]
    assert sorted((p["connectorId"], p["status"]) for p in after) == [
        (0, "Available"), (1, "Available"), (2, "Preparing")]


async def test_live_session_not_starved_by_backlog(rig_factory: Any) -> None:
    rig: Rig = await rig_factory(connectors=2,
                                 ocpp_keys="AllowOfflineTxForUnknownId = true")
    await rig.offline()
    await _session(rig, "TAG-A", 1)
    session = rig.station.connectors[1].session
    assert session is not None
    reading = MeterReading(1000.0, 0.0, (230.0,) * 3, (0.0,) * 3, time.time())
    for _ in range(3000):
        rig.station._publish(MeterSample(1, session.session_id, reading,
                                         ReadingContext.PERIODIC))
    await rig.online()
    await rig.csms.wait_for(lambda: len(rig.csms.actions("MeterValues")) > 10)
    started = time.monotonic()
    await _session(rig, "TAG-B", 2)
    await rig.csms.wait_for(lambda: any(p["connectorId"] == 2
                                        for p in rig.csms.actions("StartTransaction")))
    latency = time.monotonic() - started
    assert len(rig.adapter.outbox) > 0, "backlog already gone: the test proves nothing"
    assert latency < 1.0


async def test_timestamps_before_clock_sync_are_corrected(
        rig_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A board without RTC boots in 1970: offline timestamps are kept monotonic from the
    earliest plausible instant and moved to real time once the CSMS says what time it is."""
    def rtc_less_clock(*args: Any, **kwargs: Any) -> clock_module.Clock:
        return clock_module.Clock(wall=lambda: 0.0)
    monkeypatch.setattr(station_module, "Clock", rtc_less_clock)
    rig: Rig = await rig_factory(ocpp_keys="AllowOfflineTxForUnknownId = true")
    # The first boot synchronized it: take the link down and restart a fresh clock run.
    assert rig.station.clock.synced
    # StartupOfTheDevice (queued at start) is delivered: the queue head is the session's.
    await rig.csms.wait_for(lambda: rig.csms.actions("SecurityEventNotification"))
    await until(lambda: len(rig.adapter.outbox) == 0)
    await rig.offline()
    clock = clock_module.Clock(wall=lambda: 0.0)
    rig.station.clock = clock
    rig.adapter.clock = clock
    rig.adapter.outbox.run_id = clock.run_id
    clock.on_first_sync(rig.station._clock_corrected)
    clock.on_first_sync(rig.adapter._clock_corrected)
    t0 = time.time()
    await _session(rig, "TAG-A", 1)
    await until(lambda: len(rig.adapter.outbox) >= 2)
    queued = rig.adapter.outbox.peek()
    assert queued is not None and parse_timestamp(queued.payload["timestamp"]) < t0 - 86400
    rig.sim.unplug(1)
    await rig.events.wait_for(lambda: any(isinstance(e, TransactionStopped)
                                          for e in rig.events.events))
    await rig.online()
    stop = (await rig.csms.wait_for(lambda: rig.csms.actions("StopTransaction")))[-1]
    start = rig.csms.actions("StartTransaction")[-1]
    t1 = time.time()
    for stamp in (start["timestamp"], stop["timestamp"]):
        assert t0 - 1.0 <= parse_timestamp(stamp) <= t1 + 1.0, stamp
    for mv in rig.csms.actions("MeterValues"):
        for value in mv["meterValue"]:
            assert parse_timestamp(value["timestamp"]) > t0 - 1.0
    assert not any(p["timestamp"].startswith("1970") for p in
                   rig.csms.actions("StatusNotification"))
