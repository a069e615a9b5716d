"""Domain events → OCPP 2.0.1 messages: TransactionEvent (E01–E15), StatusNotification (G01),
MeterValues (J01), with the tables of :mod:`.mapping`.

The 2.0.1 transaction is the adapter's: it opens at the first TxStartPoint reached and ends
at the loss of a TxStopPoint (``TxCtrlr``), judged with :meth:`TxPolicy.any_of` over the
core's facts. The core's session (power offered to an authorized EV) is bound to it when it
starts, so with TxStartPoint EVConnected or Authorized the transaction exists before the
energy, and with TxStopPoint EVConnected it outlives a card stop until the EV leaves.

TransactionEvents go into the durable outbox, numbered (seqNo) in the same commit as the
core's session row and as :class:`~ocpp_client.v201.transactions.TransactionStore`'s
counter; ``offline`` is true for an event queued while the link is down (E04).
StatusNotification and session-less MeterValues are live only, as in 1.6.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any

from ocpp.v201 import call

import ocpp_client.v201.mapping as mapping
from evse.clock import Clock
from evse.config import Config
from evse.domain import (
    Authorized,
    AuthSource,
    Deauthorized,
    DomainEvent,
    EnergyTransferResumed,
    EnergyTransferStarted,
    EnergyTransferSuspendedByEV,
    EnergyTransferSuspendedByEVSE,
    EvConnected,
    EvDisconnected,
    IdToken,
    MeterSample,
    PowerPathClosed,
    ReadingContext,
    SessionStateChanged,
    StopCause,
    TransactionStarted,
    TransactionStopped,
)
from evse.session_machine import SessionMachine
from evse.state_db import transaction
from evse.station import Station
from evse.tx_policy import TxPoint, TxPolicy
from hal.meter import MeterReading
from ocpp_client.queue import KIND_OTHER, KIND_PERIODIC, KIND_START, KIND_STOP, Outbox
from ocpp_client.v16.meter_values import iso_timestamp
from ocpp_client.v201.device_model import ComponentRef, DeviceModel
from ocpp_client.v201.meter_values import meter_value
from ocpp_client.v201.transactions import TransactionStore, Tx201

log = logging.getLogger(__name__)

_CTX_BEGIN = mapping.CONTEXT[ReadingContext.TRANSACTION_BEGIN].value
_CTX_PERIODIC = mapping.CONTEXT[ReadingContext.PERIODIC].value
_CTX_END = mapping.CONTEXT[ReadingContext.TRANSACTION_END].value
CTX_CLOCK = "Sample.Clock"


def id_token_payload(token: IdToken) -> dict[str, str]:
    """IdTokenType (snake_case for the ``ocpp`` library's call dataclasses)."""
    return {"id_token": token.value, "type": mapping.ID_TOKEN_TYPE[token.type].value}


class EventMapper201:
    """Subscribes to the Station and turns its domain events into 2.0.1 messages.

    Args:
        station: the core.
        config: connectors' phase counts.
        model: the device model (TxCtrlr, SampledDataCtrlr, AvailabilityState).
        outbox: the durable queue of TransactionEvents.
        store: the open 2.0.1 transactions and their seqNo counters.
        clock: the core's clock.
        online: the link is up and accepted.
        live: the queue of live CALLs the link's live sender empties.
    """

    def __init__(self, station: Station, config: Config, model: DeviceModel, outbox: Outbox,
                 store: TransactionStore, clock: Clock, online: Callable[[], bool],
                 live: asyncio.Queue[Any]) -> None:
        self.station = station
        self.config = config
        self.model = model
        self.outbox = outbox
        self.store = store
        self.clock = clock
        self._online = online
        self._live = live
        #: RequestStartTransaction remoteStartId waiting for its transaction, by EVSE id.
        self.remote_start_ids: dict[int, int] = {}
        #: The reservation a session used, by EVSE id, for the next TransactionEvent of its
        #: transaction (H03: reservationId).
        self._reservation_ids: dict[int, int] = {}
        #: The IdToken the open transaction was authorized with, by EVSE id (sent once).
        self._id_token_sent: dict[int, bool] = {}
        self._begin_readings: dict[int, MeterReading] = {}
        #: Sessions whose energy flowed (an EnergyTransfer stop point applies from then on).
        self._energy_flowed: set[int] = set()
        #: (triggerReason, stoppedReason) of a session the adapter stopped for a stop point.
        self._stop_reason: dict[int, tuple[str, str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        #: The connectorStatus last sent per EVSE on this connection (G01: on change only).
        self._sent_status: dict[int, str] = {}

    # -- policy ---------------------------------------------------------------------------
    def policy(self) -> TxPolicy:
        """TxStartPoint / TxStopPoint (TxCtrlr, E01) as a :class:`TxPolicy`."""
        start = mapping.tx_points(self.model.get_list("TxCtrlr", "TxStartPoint"))
        stop = mapping.tx_points(self.model.get_list("TxCtrlr", "TxStopPoint"))
        return TxPolicy.any_of(start, stop)

    def _conn(self, evse_id: int) -> SessionMachine | None:
        return self.station.evses.get(evse_id)

    def _phases(self, connector_id: int) -> int:
        for conn in self.config.connectors:
            if conn.id == connector_id:
                return conn.phases
        return 3

    # -- the subscriber -------------------------------------------------------------------
    def on_event(self, event: DomainEvent) -> None:
        """The Station's subscriber."""
        if isinstance(event, SessionStateChanged):
            self._status(event)
        elif isinstance(event, EvConnected):
            self._reached(event.evse_id, TxPoint.EV_CONNECTED, event.timestamp)
        elif isinstance(event, Authorized):
            self._authorized(event)
        elif isinstance(event, Deauthorized):
            self._deauthorized(event)
        elif isinstance(event, PowerPathClosed):
            self._reached(event.evse_id, TxPoint.POWER_PATH_CLOSED, event.timestamp)
        elif isinstance(event, EnergyTransferStarted):
            self._energy_flowed.add(event.session_id)
            self._reached(event.evse_id, TxPoint.ENERGY_TRANSFER, event.timestamp)
        elif isinstance(event, (EnergyTransferSuspendedByEV, EnergyTransferSuspendedByEVSE)):
            self._charging_state(event.evse_id, event.timestamp)
            self._energy_lost(event)
        elif isinstance(event, EnergyTransferResumed):
            self._charging_state(event.evse_id, event.timestamp)
        elif isinstance(event, TransactionStarted):
            if event.reservation_id is not None:
                self._reservation_ids[event.evse_id] = event.reservation_id
            self._session_started(event)
        elif isinstance(event, MeterSample):
            self._sample(event)
        elif isinstance(event, TransactionStopped):
            self._session_stopped(event)
        elif isinstance(event, EvDisconnected):
            self._ev_left(event.evse_id, event.timestamp)

    # -- StatusNotification (G01) -----------------------------------------------------------
    def _status(self, event: SessionStateChanged) -> None:
        status = mapping.CONNECTOR_STATUS[event.state].value
        self.model.set(ComponentRef("Connector", evse_id=event.evse_id, connector_id=1),
                       "AvailabilityState", status)
        self.model.set(ComponentRef("EVSE", evse_id=event.evse_id), "AvailabilityState",
                       status)
        every = {mapping.CONNECTOR_STATUS[c.state].value for c in self.station.evses.values()}
        # The station is unavailable / faulted only when every EVSE is.
        station = "Available"
        if every in ({"Unavailable"}, {"Faulted"}):
            station = next(iter(every))
        self.model.set("ChargingStation", "AvailabilityState", station)
        # Several session states are one connectorStatus (Occupied): sent when it changes.
        if self._online() and self._sent_status.get(event.evse_id) != status:
            self.send_status(event.evse_id, event.state)

    def send_status(self, evse_id: int, state: str) -> None:
        """Queue the StatusNotification of ``evse_id`` in ``state`` (live, online only)."""
        if self._online():
            self._sent_status[evse_id] = mapping.CONNECTOR_STATUS[state].value
            self._live.put_nowait(self.status_call(evse_id, state))

    def forget_statuses(self) -> None:
        """The link went down: every status goes again after the next boot."""
        self._sent_status.clear()

    def status_call(self, evse_id: int, state: str) -> call.StatusNotification:
        """StatusNotification of the EVSE's (only) connector for a session state."""
        return call.StatusNotification(
            timestamp=iso_timestamp(self.clock.now()),
            connector_status=mapping.CONNECTOR_STATUS[state].value,
            evse_id=evse_id, connector_id=1)

    # -- TransactionEvent (E01–E15) -------------------------------------------------------
    def _queue(self, tx: Tx201, event_type: str, trigger: str, timestamp: float,
               charging_state: str | None = None, *, kind: str = KIND_OTHER,
               meter_values: list[dict[str, Any]] | None = None,
               stopped_reason: str | None = None, id_token: IdToken | None = None) -> None:
        """Number and queue one TransactionEvent (inside the caller's commit, if any)."""
        with transaction(self.store.db):
            seq = self.store.next_seq_no(tx)
            info: dict[str, Any] = {"transaction_id": tx.transaction_id}
            if charging_state is not None:
                info["charging_state"] = charging_state
            if stopped_reason is not None:
                info["stopped_reason"] = stopped_reason
            if event_type == "Started" and tx.remote_start_id is not None:
                info["remote_start_id"] = tx.remote_start_id
            payload: dict[str, Any] = {
                "event_type": event_type,
                "timestamp": iso_timestamp(timestamp),
                "trigger_reason": trigger,
                "seq_no": seq,
                "transaction_info": info,
            }
            if event_type == "Started":
                payload["evse"] = {"id": tx.evse_id, "connector_id": 1}
            reservation_id = self._reservation_ids.pop(tx.evse_id, None)
            if reservation_id is not None:
                payload["reservation_id"] = reservation_id
            if id_token is not None:
                payload["id_token"] = id_token_payload(id_token)
            if meter_values:
                payload["meter_value"] = meter_values
            if not self._online():
                payload["offline"] = True
            if event_type == "Ended":
                self.store.end(tx)
            self.outbox.put("TransactionEvent", payload, tx.connector_id, tx.session_id, kind,
                            self.clock.synced)

    def _state_of(self, evse_id: int) -> str | None:
        conn = self._conn(evse_id)
        if conn is None:
            return None
        state = mapping.CHARGING_STATE[conn.state]
        if state is mapping.ChargingState.idle and conn.plugged():
            # EvConnected is published before the session machine leaves idle.
            state = mapping.ChargingState.ev_connected
        return state.value

    def _facts(self, evse_id: int, reached: TxPoint | None) -> set[TxPoint]:
        conn = self._conn(evse_id)
        facts = set() if conn is None else conn.facts()
        if reached is not None:
            facts.add(reached)
        return facts

    def _meter(self, evse_id: int, measurands_var: str, context: str,
               reading: MeterReading | None = None,
               at: float | None = None) -> list[dict[str, Any]] | None:
        conn = self._conn(evse_id)
        if conn is None:
            return None
        reading = reading or conn.last_reading
        if reading is None:
            return None
        value = meter_value(reading, self.model.get_list("SampledDataCtrlr", measurands_var),
                            context, self._phases(conn.id), conn.offered_current_a(), at)
        return None if value is None else [value]

    def _start(self, evse_id: int, trigger: str, timestamp: float,
               id_token: IdToken | None, session_id: int | None) -> Tx201 | None:
        conn = self._conn(evse_id)
        if conn is None or evse_id in self.store.open:
            return None
        remote_start_id = self.remote_start_ids.pop(evse_id, None)
        if remote_start_id is not None and trigger == mapping.Trigger.authorized.value:
            trigger = mapping.Trigger.remote_start.value
        with transaction(self.store.db):
            tx = self.store.begin(evse_id, conn.id, session_id, remote_start_id, timestamp)
            token = id_token or (conn.session.id_token if conn.session is not None
                                 else conn.pending_id_token)
            self._id_token_sent[evse_id] = token is not None
            self._queue(tx, "Started", trigger, timestamp, self._state_of(evse_id),
                        kind=KIND_START, id_token=token,
                        meter_values=self._meter(evse_id, "TxStartedMeasurands", _CTX_BEGIN,
                                                 self._begin_readings.pop(evse_id, None),
                                                 timestamp))
        log.info("EVSE %d: transaction %s started (%s)", evse_id, tx.transaction_id, trigger)
        return tx

    def _reached(self, evse_id: int, point: TxPoint, timestamp: float) -> None:
        """A start point may have been reached; else the charging state changed."""
        tx = self.store.open.get(evse_id)
        if tx is None:
            # Power path and energy transfer are start points of an energy session only.
            needs_session = point in (TxPoint.POWER_PATH_CLOSED, TxPoint.ENERGY_TRANSFER)
            if self.policy().should_start(self._facts(evse_id, point)) and (
                    not needs_session or self._session_of(evse_id) is not None):
                self._start(evse_id, mapping.START_TRIGGER[point].value, timestamp, None,
                            self._session_of(evse_id))
            return
        if point is TxPoint.EV_CONNECTED:
            self._queue(tx, "Updated", mapping.Trigger.cable_plugged_in.value, timestamp,
                        mapping.ChargingState.ev_connected.value)
        elif point is TxPoint.ENERGY_TRANSFER:
            self._charging_state(evse_id, timestamp)

    def _session_of(self, evse_id: int) -> int | None:
        conn = self._conn(evse_id)
        return None if conn is None or conn.session is None else conn.session.session_id

    def _authorized(self, event: Authorized) -> None:
        tx = self.store.open.get(event.evse_id)
        if tx is None:
            if self.policy().should_start(self._facts(event.evse_id, TxPoint.AUTHORIZED)):
                trigger = (mapping.Trigger.remote_start if event.source is AuthSource.REMOTE_START
                           else mapping.Trigger.authorized)
                self._start(event.evse_id, trigger.value, event.timestamp, event.id_token, None)
            return
        if not self._id_token_sent.get(event.evse_id):
            self._id_token_sent[event.evse_id] = True
            trigger = (mapping.Trigger.remote_start if event.source is AuthSource.REMOTE_START
                       else mapping.Trigger.authorized)
            self._queue(tx, "Updated", trigger.value, event.timestamp,
                        self._state_of(event.evse_id), id_token=event.id_token)

    def _deauthorized(self, event: Deauthorized) -> None:
        """A waiting authorization was dropped: a transaction opened by it (TxStartPoint
        Authorized, no energy yet) ends when Authorized is a stop point."""
        tx = self.store.open.get(event.evse_id)
        if tx is None:
            self.remote_start_ids.pop(event.evse_id, None)  # that start will not come
            return
        if tx.session_id is not None or self._session_of(event.evse_id):
            return
        if not self.policy().stops_on_loss_of(TxPoint.AUTHORIZED):
            return
        timeout = "in time" in event.why
        trigger = (mapping.Trigger.ev_connect_timeout if timeout
                   else mapping.Trigger.stop_authorized)
        reason = mapping.Reason.timeout if timeout else mapping.Reason.local
        self._queue(tx, "Ended", trigger.value, event.timestamp, self._state_of(event.evse_id),
                    kind=KIND_STOP, stopped_reason=reason.value)

    def _charging_state(self, evse_id: int, timestamp: float) -> None:
        tx = self.store.open.get(evse_id)
        if tx is not None and tx.session_id is not None:
            self._queue(tx, "Updated", mapping.Trigger.charging_state_changed.value, timestamp,
                        self._state_of(evse_id))

    def _energy_lost(self, event: EnergyTransferSuspendedByEV | EnergyTransferSuspendedByEVSE
                     ) -> None:
        """TxStopPoint EnergyTransfer (E06): energy that flowed stops → the transaction
        ends, StoppedByEV when the EV suspended. The core's session is stopped for it."""
        tx = self.store.open.get(event.evse_id)
        conn = self._conn(event.evse_id)
        if (tx is None or conn is None or conn.session is None
                or tx.session_id != event.session_id
                or event.session_id not in self._energy_flowed
                or not self.policy().stops_on_loss_of(TxPoint.ENERGY_TRANSFER)):
            return
        by_ev = isinstance(event, EnergyTransferSuspendedByEV)
        self._stop_reason[event.session_id] = (
            mapping.Trigger.charging_state_changed.value,
            (mapping.Reason.stopped_by_ev if by_ev else mapping.Reason.other).value)
        task = asyncio.get_running_loop().create_task(
            self.station.stop_transaction(conn.id, StopCause.LOCAL))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stop_all_for_master_pass(self, token: IdToken) -> None:
        """C16: stop every running transaction, stoppedReason MasterPass."""
        for conn in self.station.evses.values():
            session = conn.session
            if session is None:
                continue
            self._stop_reason[session.session_id] = (
                mapping.Trigger.stop_authorized.value, mapping.Reason.master_pass.value)
            task = asyncio.get_running_loop().create_task(
                self.station.stop_transaction(conn.id, StopCause.LOCAL_ID_TOKEN, token))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _session_started(self, event: TransactionStarted) -> None:
        """The core's session began (power offered): bind it to the open transaction, or
        keep its first reading for the Started event a later start point sends."""
        tx = self.store.open.get(event.evse_id)
        if tx is None:
            facts = self._facts(event.evse_id, TxPoint.AUTHORIZED)
            facts.add(TxPoint.EV_CONNECTED)
            if self.policy().should_start(facts & {TxPoint.AUTHORIZED, TxPoint.EV_CONNECTED}):
                self._start(event.evse_id, mapping.Trigger.authorized.value, event.timestamp,
                            event.id_token, event.session_id)
            return
        with transaction(self.store.db):
            self.store.bind(tx, event.session_id)

    def _sample(self, event: MeterSample) -> None:
        tx = self.store.open.get(event.evse_id)
        if event.context is ReadingContext.TRANSACTION_BEGIN:
            if tx is None:
                self._begin_readings[event.evse_id] = event.reading
            return
        if event.context is ReadingContext.PERIODIC:
            if tx is not None and tx.session_id == event.session_id:
                values = self._meter(event.evse_id, "TxUpdatedMeasurands", _CTX_PERIODIC,
                                     event.reading)
                if values:
                    self._queue(tx, "Updated", mapping.Trigger.meter_value_periodic.value,
                                event.reading.timestamp, self._state_of(event.evse_id),
                                kind=KIND_PERIODIC, meter_values=values)
            return
        # Trigger: a MeterValues (J01 / F06), live.
        conn = self._conn(event.evse_id)
        value = meter_value(event.reading,
                            self.model.get_list("AlignedDataCtrlr", "Measurands"),
                            mapping.CONTEXT[event.context].value,
                            self._phases(event.connector_id),
                            conn.offered_current_a() if conn else None)
        if value is not None and self._online():
            self._live.put_nowait(call.MeterValues(evse_id=event.evse_id, meter_value=[value]))

    def clock_aligned(self, at: float) -> None:
        """AlignedDataCtrlr (J01): a clock-aligned reading of every EVSE: in the
        transaction as Updated MeterValueClock, else (SendDuringIdle) a live MeterValues."""
        idle = self.model.get_bool("AlignedDataCtrlr", "SendDuringIdle")
        for evse_id, conn in self.station.evses.items():
            reading = conn.last_reading
            if reading is None:
                continue
            value = meter_value(reading, self.model.get_list("AlignedDataCtrlr", "Measurands"),
                                CTX_CLOCK, self._phases(conn.id), conn.offered_current_a(), at)
            if value is None:
                continue
            tx = self.store.open.get(evse_id)
            if tx is not None:
                self._queue(tx, "Updated", mapping.Trigger.meter_value_clock.value, at,
                            self._state_of(evse_id), kind=KIND_PERIODIC, meter_values=[value])
            elif idle and self._online():
                self._live.put_nowait(call.MeterValues(evse_id=evse_id, meter_value=[value]))

    def _session_stopped(self, event: TransactionStopped) -> None:
        """The core's session ended (power off): the transaction ends unless its stop
        points say it outlives the energy (TxStopPoint EVConnected without Authorized: a
        card or deauthorization stop keeps it until the EV leaves)."""
        tx = self.store.by_session(event.session_id)
        if tx is None:
            return
        policy = self.policy()
        conn = self._conn(tx.evse_id)
        plugged = conn is not None and conn.plugged()
        keep = (event.cause in (StopCause.LOCAL_ID_TOKEN, StopCause.DEAUTHORIZED)
                and plugged and not policy.stop & {TxPoint.AUTHORIZED,
                                                   TxPoint.POWER_PATH_CLOSED,
                                                   TxPoint.ENERGY_TRANSFER})
        self._energy_flowed.discard(event.session_id)
        trigger = mapping.STOP_TRIGGER[event.cause].value
        reason = mapping.stopped_reason(event.cause, event.fault).value
        if event.session_id in self._stop_reason:
            trigger, reason = self._stop_reason.pop(event.session_id)
            keep = False
        if keep:
            with transaction(self.store.db):
                self.store.bind(tx, None)
                self._queue(tx, "Updated", trigger, event.timestamp,
                            mapping.ChargingState.ev_connected.value, id_token=event.id_token)
            return
        values = None
        if event.reading is not None:
            values = self._meter(tx.evse_id, "TxEndedMeasurands", _CTX_END, event.reading,
                                 event.timestamp)
        else:
            values = [{"timestamp": iso_timestamp(event.timestamp), "sampledValue": [{
                "value": event.meter_stop_wh, "context": _CTX_END,
                "measurand": "Energy.Active.Import.Register", "location": "Outlet",
                "unitOfMeasure": {"unit": "Wh"}}]}]
        state = (mapping.ChargingState.ev_connected if plugged
                 and event.cause is not StopCause.POWER_LOSS else mapping.ChargingState.idle)
        self._queue(tx, "Ended", trigger, event.timestamp, state.value, kind=KIND_STOP,
                    meter_values=values, stopped_reason=reason, id_token=event.id_token)
        log.info("EVSE %d: transaction %s ended (%s)", tx.evse_id, tx.transaction_id,
                 event.cause.value)

    def _ev_left(self, evse_id: int, timestamp: float) -> None:
        tx = self.store.open.get(evse_id)
        if tx is None:
            return
        if tx.session_id is not None:
            if self._session_of(evse_id) is not None:
                # The core's session runs on (StopTxOnEVSideDisconnect false): suspended.
                self._queue(tx, "Updated", mapping.Trigger.ev_communication_lost.value,
                            timestamp, mapping.ChargingState.idle.value)
            # Else the session is being closed: its TransactionStopped ends the transaction.
            return
        self._queue(tx, "Ended", mapping.Trigger.ev_communication_lost.value, timestamp,
                    mapping.ChargingState.idle.value, kind=KIND_STOP,
                    stopped_reason=mapping.Reason.ev_disconnected.value)

    def triggered_update(self, tx: Tx201) -> None:
        """TriggerMessage TransactionEvent (F06): an Updated with the current state."""
        self._queue(tx, "Updated", mapping.Trigger.trigger.value, self.clock.now(),
                    self._state_of(tx.evse_id),
                    meter_values=self._meter(tx.evse_id, "TxUpdatedMeasurands", "Trigger",
                                             at=self.clock.now()))

    def end_without_session(self, tx: Tx201, trigger: str, reason: str) -> None:
        """End ``tx``, which has no energy session (RequestStopTransaction, restart)."""
        self._queue(tx, "Ended", trigger, self.clock.now(), self._state_of(tx.evse_id),
                    kind=KIND_STOP, stopped_reason=reason)


def aligned_delay(now: float, interval_s: int) -> float:
    """Seconds until the next multiple of ``interval_s`` since midnight UTC (J01)."""
    return interval_s - math.fmod(now, interval_s) if interval_s > 0 else math.inf
