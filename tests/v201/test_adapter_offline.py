"""Offline and back (E04): TransactionEvents queued while the link is down are delivered
after the reconnect with ``offline`` true, seqNo contiguous, none lost or duplicated — also
across a restart of the daemon with events still queued."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from dev_csms import DevCsms

from tests.offline.proxy import TcpProxy

from .rig import events, sim_of, until
from .tx_log import analyse_201


@pytest.fixture
async def proxy201(csms201: DevCsms) -> AsyncIterator[TcpProxy]:
    server = TcpProxy(csms201.port)
    await server.start()
    yield server
    await server.stop()



async def test_offline_events_delivered_once_in_order(csms201: DevCsms, run201: Any,
                                                      proxy201: TcpProxy) -> None:
    daemon = await run201(url=f"ws://127.0.0.1:{proxy201.port}/")
    adapter: Any = daemon.adapter
    sim = sim_of(daemon)
    sim.plug(1, 16.0, 3)
    sim.swipe("DEMO01")
    await csms201.wait_for(lambda: any(e["triggerReason"] == "MeterValuePeriodic"
                                       for e in events(csms201)))
    online_count = len(events(csms201))
    proxy201.cut()
    await until(lambda: not adapter.online)
    # Offline: periodic samples keep coming (TxUpdatedInterval 1 s), then the EV leaves.
    await until(lambda: len(adapter.outbox) >= 2, timeout=5)
    sim.unplug(1)
    await until(lambda: not adapter.store.open)  # Ended queued
    queued = len(adapter.outbox)
    assert queued >= 3
    proxy201.restore()
    await csms201.wait_for(lambda: events(csms201) and events(csms201)[-1]["eventType"]
                           == "Ended", timeout=15)
    await until(lambda: len(adapter.outbox) == 0)

    delivery = analyse_201(csms201.frames, "CP-201")
    assert not delivery.errors, delivery.errors
    assert len(delivery.events) == 1 and len(delivery.ended) == 1
    evs = next(iter(delivery.events.values()))
    offline = [e for e in evs if e.get("offline")]
    assert len(offline) >= queued - 1  # the one in flight at the cut may have gone online
    assert all(not e.get("offline") for e in evs[:online_count])
    assert evs[-1]["transactionInfo"]["stoppedReason"] == "EVDisconnected"


async def test_restart_with_open_transaction_keeps_seq_no(csms201: DevCsms, run201: Any,
                                                         proxy201: TcpProxy) -> None:
    """A daemon stopped while offline with a transaction running (the shutdown ends it)
    and started again: the queued events go out once, seqNo without gap."""
    daemon = await run201(url=f"ws://127.0.0.1:{proxy201.port}/")
    adapter: Any = daemon.adapter
    sim = sim_of(daemon)
    sim.plug(1, 16.0, 3)
    sim.swipe("DEMO01")
    await csms201.wait_for(lambda: any(e["eventType"] == "Started" for e in events(csms201)))
    proxy201.cut()
    await until(lambda: not adapter.online)
    await until(lambda: len(adapter.outbox) >= 2, timeout=5)
    await daemon.shutdown()
    proxy201.restore()
    await run201(url=f"ws://127.0.0.1:{proxy201.port}/")
    await csms201.wait_for(lambda: events(csms201)[-1]["eventType"] == "Ended", timeout=15)
    delivery = analyse_201(csms201.frames, "CP-201")
    assert not delivery.errors, delivery.errors
    assert len(delivery.events) == 1 and len(delivery.ended) == 1
    evs = next(iter(delivery.events.values()))
    assert evs[-1]["transactionInfo"]["stoppedReason"] == "Reboot"
    assert any(e.get("offline") for e in evs)
