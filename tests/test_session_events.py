"""The session event stream the core emits, independent of any protocol adapter.

One scripted day on the simulator (a Station with the cable lock fitted, manual clock):
plug, card, charge, the EV pauses and resumes, unplug; a residual current trip in the middle
of a second session; a remote start before the EV arrives. The expected streams are written
here from IEC 61851-1 and the session's logic, not read from the code's tables:

* the contactor opens on the driver's thread as soon as the pilot leaves C, so "power path
  opened" comes before the EV's pause or disconnect is handled;
* a transaction starts only once authorized *and* connected (the OCPP 1.6 policy the
  adapter would set; the Station's default), with its begin reading, before power flows;
  PWM is offered only then, so the EV is "not asking" until it answers with state C;
* a fault stops the transaction with the fault's own cause (RCD trip), never a protocol code.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from evse.authorization import AuthorizationStatus, AuthResult
from evse.domain import (
    Authorized,
    AuthSource,
    Deauthorized,
    DomainEvent,
    FaultCleared,
    FaultRaised,
    IdToken,
    IdTokenType,
    MeterSample,
    SessionStateChanged,
    StopCause,
    TransactionStarted,
    TransactionStopped,
)
from evse.iec61851 import Iec61851Settings
from evse.station import Station
from evse.timers import ManualClock
from tests.iec.rig import AcceptAll, StationRig, sim_board, station_rig


def brief(event: DomainEvent) -> tuple[Any, ...]:
    """The event's kind and the fields a reader of the stream cares about."""
    name = type(event).__name__
    if isinstance(event, Authorized):
        return (name, event.id_token.value, event.id_token.type.value, event.source.value)
    if isinstance(event, Deauthorized):
        return (name, event.id_token.value)
    if isinstance(event, TransactionStarted):
        return (name, event.id_token.value)
    if isinstance(event, TransactionStopped):
        return (name, event.cause.value, event.fault and event.fault.value, event.id_tag)
    if isinstance(event, MeterSample):
        return (name, event.context.value)
    if isinstance(event, FaultRaised | FaultCleared):
        return (name, event.fault.value)
    return (name,)


def stream(rig: StationRig) -> list[tuple[Any, ...]]:
    """The fine-grained events so far (state snapshots left out), then forgotten."""
    out = [brief(e) for e in rig.events if not isinstance(e, SessionStateChanged)]
    rig.events.clear()
    return out


def states(events: list[DomainEvent]) -> list[str]:
    return [e.state for e in events if isinstance(e, SessionStateChanged)]


async def test_plug_card_charge_pause_resume_unplug() -> None:
    rig = await station_rig(lock=True)
    rig.events.clear()
    rig.sim.plug(1, 32.0, 3)
    await rig.settle()
    assert stream(rig) == [("EvConnected",)]

    await rig.station.present_card("CARD-1")
    await rig.settle()
    assert stream(rig) == [
        ("Authorized", "CARD-1", "iso14443", "csms"),
        ("TransactionStarted", "CARD-1"),
        ("MeterSample", "transaction_begin"),
        # PWM is offered only now; until the EV answers with state C it does not ask.
        ("EnergyTransferSuspendedByEV",),
        ("PowerPathClosed",),
        ("EnergyTransferStarted",),
    ]
    assert rig.sim.connector(1).cable_locked and rig.closed()

    rig.sim.ev_pause(1)
    await rig.settle()
    assert stream(rig) == [("PowerPathOpened",), ("EnergyTransferSuspendedByEV",)]

    rig.sim.ev_resume(1)
    await rig.settle()
    assert stream(rig) == [("PowerPathClosed",), ("EnergyTransferResumed",)]

    rig.sim.unplug(1)
    await rig.settle()
    assert stream(rig) == [
        ("PowerPathOpened",),
        ("EvDisconnected",),
        ("TransactionStopped", "ev_disconnected", None, None),
    ]
    assert not rig.sim.connector(1).cable_locked
    await rig.close()


async def test_residual_current_trip_mid_session() -> None:
    rig = await station_rig(settings=Iec61851Settings(rcd_max_trips=3))
    rig.sim.plug(1, 32.0, 3)
    await rig.station.present_card("CARD-2")
    await rig.settle()
    rig.events.clear()

    rig.sim.fault(1, "rcd")
    assert not rig.closed()  # opened on the simulator's thread, before the loop ran
    await rig.settle()
    assert stream(rig) == [
        ("PowerPathOpened",),
        ("FaultRaised", "rcd_trip"),
        ("TransactionStopped", "fault", "rcd_trip", None),
    ]
    # The residual current is gone; the retry resets the RCD and the EVSE recovers with
    # the EV still connected (a new authorization is needed for a new transaction).
    rig.sim.clear(1, "rcd")
    await rig.advance(rig.station.settings.rcd_retry_s + 1.0)
    events = list(rig.events)
    assert stream(rig) == [("FaultCleared", "rcd_trip")]
    assert states(events)[-1] == "ended"
    await rig.close()


async def test_remote_start_before_the_ev_arrives() -> None:
    rig = await station_rig(lock=True)
    rig.events.clear()
    token = IdToken("REMOTE-1", IdTokenType.CENTRAL)
    assert rig.station.remote_start(token, 1, AuthResult(
        AuthorizationStatus.ACCEPTED, id_token=token, source=AuthSource.REMOTE_START))
    await rig.settle()
    assert stream(rig) == [("Authorized", "REMOTE-1", "central", "remote_start")]

    rig.sim.plug(1, 32.0, 3)
    await rig.settle()
    assert stream(rig) == [
        ("EvConnected",),
        ("TransactionStarted", "REMOTE-1"),
        ("MeterSample", "transaction_begin"),
        # PWM is offered only now; until the EV answers with state C it does not ask.
        ("EnergyTransferSuspendedByEV",),
        ("PowerPathClosed",),
        ("EnergyTransferStarted",),
    ]

    assert await rig.station.stop_transaction(1, StopCause.REMOTE)
    await rig.settle()
    assert stream(rig) == [
        ("PowerPathOpened",),
        ("TransactionStopped", "remote", None, None),
    ]
    rig.sim.unplug(1)
    await rig.settle()
    assert stream(rig) == [("EvDisconnected",)]
    await rig.close()


async def test_authorization_waiting_for_an_ev_expires() -> None:
    rig = await station_rig()
    rig.events.clear()
    rig.station.connection_timeout_s = 30.0
    await rig.station.present_card("CARD-3")
    await rig.advance(30.5)
    assert stream(rig) == [("Authorized", "CARD-3", "iso14443", "csms"),
                           ("Deauthorized", "CARD-3")]
    await rig.close()


async def test_events_name_the_evse_and_its_connector() -> None:
    """EVSE id = connector id unless configured; one connector per EVSE."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    station = Station(sim_board(2), {1: 32.0, 2: 32.0}, 32.0, db, clock=ManualClock(),
                      evse_ids={2: 7})
    station.authorizer = AcceptAll()
    events: list[DomainEvent] = []
    station.subscribe(events.append)
    await station.start(poll=False)
    assert sorted(station.evses) == [1, 7] and station.evses[7] is station.connectors[2]
    station.board.simulator.plug(2, 32.0, 3)  # type: ignore[union-attr]
    await station.idle()
    await station.present_card("CARD-7")
    await station.idle()
    started = [e for e in events if isinstance(e, TransactionStarted)]
    assert [(e.evse_id, e.connector_id) for e in started] == [(7, 2)]
    assert {(e.evse_id, e.connector_id) for e in events
            if not isinstance(e, SessionStateChanged | MeterSample)} == {(7, 2)}
    await station.close()
    db.close()
    try:
        Station(sim_board(2), {1: 32.0, 2: 32.0}, 32.0, sqlite3.connect(":memory:"),
                evse_ids={2: 1})
    except ValueError as exc:
        assert "one connector per EVSE" in str(exc)
    else:
        raise AssertionError("two connectors on one EVSE accepted")


async def test_card_before_plug_on_two_evses_is_used_where_the_ev_arrives() -> None:
    rig = await station_rig(connectors=2)
    rig.events.clear()
    await rig.station.present_card("CARD-4")  # no EV yet: held on both free EVSEs
    await rig.settle()
    rig.sim.plug(2, 32.0, 3)
    await rig.settle()
    fine = [(brief(e), e.evse_id) for e in rig.events
            if isinstance(e, Authorized | Deauthorized | TransactionStarted)]
    assert fine == [
        (("Authorized", "CARD-4", "iso14443", "csms"), 1),
        (("Authorized", "CARD-4", "iso14443", "csms"), 2),
        (("Deauthorized", "CARD-4"), 1),  # used on EVSE 2
        (("TransactionStarted", "CARD-4"), 2),
    ]
    await rig.close()
