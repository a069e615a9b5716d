"""The Station: every connector, the card reader, sessions, and the command API.

The Station is the core's face towards the protocol adapters. It emits domain events
(:mod:`evse.domain`) to subscribers and offers commands (remote start/stop, availability,
unlock, limits, reset). It never speaks OCPP.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from typing import Any

from evse.authorization import Authorizer, AuthResult, DenyAll
from evse.clock import Clock
from evse.connector import TRANSACTION_STATES, Connector
from evse.domain import (
    ConnectorStatus,
    DomainEvent,
    ErrorCode,
    MeterSample,
    ReadingContext,
    StatusChanged,
    StopReason,
    TransactionStarted,
    TransactionStopped,
)
from evse.faults import Fault
from evse.iec61851 import Iec61851Settings, MeterFailurePolicy, RcdSelfTest
from evse.sessions import Session, SessionStore
from evse.state_db import transaction
from evse.supervisor import Supervisor
from evse.timers import Clock as TimerClock
from evse.timers import LoopClock, Timer
from hal.board import Board
from hal.lock import ConnectorLockFailure
from hal.meter import MeterReading, PowerMeterFailure

log = logging.getLogger(__name__)

Subscriber = Callable[[DomainEvent], None]


class Station:
    """All connectors of one charge point.

    Args:
        board: the hardware.
        connector_limits_a: rated current per connector id, A.
        station_limit_a: station / grid limit per phase, A.
        db: the state database (sessions, availability).
        meter_poll_s: how often each meter (and temperature sensor) is read (and the
            reading persisted), seconds.
        settings: IEC 61851 timings and fault policy (``[iec61851]``).
        ventilation: connector ids whose state D may be energized.
        clock: the clock every timer runs on (default: the running loop's).
        utc_clock: the UTC clock that stamps sessions and readings (a fresh one if None).
    """

    def __init__(
        self,
        board: Board,
        connector_limits_a: dict[int, float],
        station_limit_a: float,
        db: sqlite3.Connection,
        meter_poll_s: float = 1.0,
        settings: Iec61851Settings | None = None,
        ventilation: frozenset[int] = frozenset(),
        clock: TimerClock | None = None,
        utc_clock: Clock | None = None,
    ) -> None:
        self.board = board
        #: UTC clock for timestamps (OCPP-facing; corrected by the CSMS time).
        self.clock = utc_clock if utc_clock is not None else Clock()
        self.station_limit_a = station_limit_a
        self.settings = settings or Iec61851Settings()
        #: The clock every IEC 61851 timer runs on.
        self.timer_clock: TimerClock = clock or LoopClock()
        self.authorizer: Authorizer = DenyAll()
        #: ConnectionTimeOut (OCPP 1.6 §9.1.6): seconds an authorization waits for a plug.
        self.connection_timeout_s = 60.0
        self.meter_poll_s = meter_poll_s
        #: Seconds between periodic MeterSample events of running transactions; 0 = none
        #: (the adapter sets it, e.g. from OCPP MeterValueSampleInterval).
        self.sample_interval_s = 0.0
        self._subscribers: list[Subscriber] = []
        self._sessions = SessionStore(db)
        self._db = db
        db.execute(
            "CREATE TABLE IF NOT EXISTS connector_availability"
            " (connector_id INTEGER PRIMARY KEY, operative INTEGER NOT NULL)"
        )
        self.connectors: dict[int, Connector] = {
            hw.connector_id: Connector(
                hw,
                connector_limits_a[hw.connector_id],
                lambda: self.station_limit_a,
                self._on_status,
                ventilation=hw.connector_id in ventilation,
                settings=self.settings,
                clock=self.timer_clock,
            )
            for hw in board.connectors
        }
        self._connection_timers: dict[int, Timer] = {}
        for conn in self.connectors.values():
            conn.on_plugged = self._on_plug_ready
            self._connection_timers[conn.id] = Timer(
                self.timer_clock, "connection_timeout",
                lambda c=conn: self._connection_timed_out(c))  # type: ignore[misc]
        self._scheduled_operative: dict[int, bool] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._busy: dict[int, asyncio.Lock] = {cid: asyncio.Lock() for cid in self.connectors}
        self._running = False
        self._station_fault: str | None = None
        #: Runs the meter poll, temperature, sampler and alive stamp (and the daemon's
        #: OCPP link): a crash is logged, faults, and the task restarts with backoff.
        self.supervisor = Supervisor()
        #: Seconds between temperature samples (own schedule, never behind a meter read).
        self.temperature_poll_s = meter_poll_s
        #: Seconds between alive stamps while a session runs (the PowerLoss stop time).
        self.alive_interval_s = 60.0
        #: Seconds between retries of writes that failed (disk full, I/O error).
        self.storage_retry_s = 5.0
        #: Why the state database cannot be written now (None: it can).
        self.storage_error: str | None = None
        #: Writes that failed, oldest first, kept in memory until they commit: (what, write).
        self._unsaved: deque[tuple[str, Callable[[], None]]] = deque()
        self.clock.on_first_sync(self._clock_corrected)

    # -- OCPP-side switches, pushed into every connector ---------------------------------
    @property
    def stop_on_ev_disconnect(self) -> bool:
        """StopTransactionOnEVSideDisconnect (OCPP 1.6 §9.1.29)."""
        return all(c.stop_on_ev_disconnect_flag for c in self.connectors.values())

    @stop_on_ev_disconnect.setter
    def stop_on_ev_disconnect(self, value: bool) -> None:
        for conn in self.connectors.values():
            conn.stop_on_ev_disconnect_flag = value

    @property
    def unlock_on_ev_disconnect(self) -> bool:
        """UnlockConnectorOnEVSideDisconnect (OCPP 1.6 §9.1.33)."""
        return all(c.unlock_on_ev_disconnect for c in self.connectors.values())

    @unlock_on_ev_disconnect.setter
    def unlock_on_ev_disconnect(self, value: bool) -> None:
        for conn in self.connectors.values():
            conn.unlock_on_ev_disconnect = value

    # -- events -------------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> None:
        """Call ``subscriber(event)`` on the loop for every domain event, in order."""
        self._subscribers.append(subscriber)

    def _publish(self, event: DomainEvent) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except sqlite3.Error:
                raise  # a subscriber's write failed: the enclosing commit must fail too
            except Exception:
                log.exception("event subscriber failed on %s", type(event).__name__)

    def _spawn(self, coro: Any, background: bool = False) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        tasks = self._background if background else self._tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _on_status(self, event: StatusChanged) -> None:
        conn = self.connectors.get(event.connector_id)
        self._publish(event)
        if conn is None:
            return
        # A transaction ends when its connector leaves the transaction states.
        if conn.session is not None and event.status.value not in TRANSACTION_STATES:
            reason = {
                ConnectorStatus.FAULTED: StopReason.OTHER,
                ConnectorStatus.AVAILABLE: StopReason.EV_DISCONNECTED,
            }.get(event.status, StopReason.LOCAL)
            if conn.error_code is ErrorCode.GROUND_FAILURE:
                reason = StopReason.EMERGENCY_STOP
            self._spawn(self._finish_session(conn, conn.session, reason, None))
        if conn.session is None and event.status in (ConnectorStatus.AVAILABLE,
                                                     ConnectorStatus.FINISHING):
            # Deferred: never trigger a transition from inside another one's callbacks.
            asyncio.get_running_loop().call_soon(self._apply_scheduled, conn)

    # -- start-up -----------------------------------------------------------------------
    async def start(self, poll: bool = True) -> None:
        """Attach hardware listeners, close interrupted sessions, start meter polling
        (``poll=False``: tests call :meth:`poll_once` themselves)."""
        loop = asyncio.get_running_loop()
        self._running = True
        # Without an RTC the system clock may be behind what was already persisted.
        self.clock.raise_floor(self._sessions.latest_ts())
        for row in self._db.execute("SELECT connector_id, operative FROM connector_availability"):
            conn = self.connectors.get(row[0])
            if conn is not None:
                conn.operative = bool(row[1])
        for conn in self.connectors.values():
            conn.hw.contactor.open()
            conn.attach(loop)
            conn.pilot = conn.hw.pilot.read()
            conn.hw.pilot.set_off()
            conn.pilot = conn.hw.pilot.read()
            if not conn.operative:
                conn.disable()
            elif conn.plugged():
                conn.plug()
            else:
                conn.publish()
        # The connector states above come from the hardware (pilot read now), never from
        # the DB; the DB only tells which sessions the last run left open.
        alive_ts = self._sessions.alive_ts()
        for session in self._sessions.interrupted():
            await self._close_interrupted(session, alive_ts)
        if not poll:
            return
        sup = self.supervisor
        for conn in self.connectors.values():
            sup.periodic(f"meter poll connector {conn.id}",
                         lambda c=conn: self.poll_meter_once(c),  # type: ignore[misc]
                         lambda: self.meter_poll_s,
                         on_failure=lambda exc, c=conn: c.on_meter_failure(  # type: ignore[misc]
                             f"meter driver error: {exc!r}"))
            if conn.hw.temperature is not None:
                # On a worker thread: a trip opens the contactor there, before the loop hears.
                sup.periodic(f"temperature connector {conn.id}",
                             lambda c=conn: asyncio.to_thread(  # type: ignore[misc]
                                 c.read_temperature_hw),
                             lambda: self.temperature_poll_s,
                             on_failure=lambda exc, c=conn: c.raise_fault(  # type: ignore[misc]
                                 Fault.OVERTEMP, f"temperature sensor lost: {exc!r}"))
        sup.periodic("periodic meter samples", self._sample_step,
                     lambda: self.sample_interval_s if self.sample_interval_s > 0 else 1.0)
        sup.periodic("session alive stamp", self._stamp_alive, lambda: self.alive_interval_s)
        sup.periodic("state storage retry", self._retry_unsaved, lambda: self.storage_retry_s)

    async def _close_interrupted(self, session: Session, alive_ts: float) -> None:
        """A session the last run left open (power cut, kill -9): close it with PowerLoss
        (OCPP 1.6 §4.10). meterStop: the meter's own energy register read now, when it
        reads at least the last committed sample (a real meter keeps its register through
        a power cut; a lower value means a reset or replaced meter), else that sample. Stop
        time: the later of that sample and the alive stamp — the last instant the session
        is known to have run. The session row and the event's subscribers' writes (the
        queued StopTransaction) are one commit, retried until it succeeds."""
        energy, source = session.last_meter_wh, "last committed sample"
        conn = self.connectors.get(session.connector_id)
        if conn is not None:
            try:
                register = (await asyncio.to_thread(conn.hw.meter.read)).energy_active_import_wh
            except Exception as exc:  # any driver failure: the committed sample stands
                log.warning("connector %d: meter register unreadable at restart (%r)",
                            conn.id, exc)
            else:
                if register >= session.last_meter_wh:
                    energy, source = register, "meter register"
                else:
                    log.warning("connector %d: meter register %.0f Wh below the last "
                                "committed sample %.0f Wh (meter reset or replaced?)",
                                conn.id, register, session.last_meter_wh)
        stop_ts = max(session.last_ts, alive_ts)
        log.warning("session %d on connector %d was interrupted: closing with PowerLoss "
                    "at %d Wh (%s)", session.session_id, session.connector_id,
                    round(energy), source)

        def write() -> None:
            self._sessions.record_meter(session, energy, stop_ts)
            self._sessions.finish(session, StopReason.POWER_LOSS.value)
            self._publish(TransactionStopped(
                connector_id=session.connector_id,
                session_id=session.session_id,
                id_tag=None,
                meter_stop_wh=round(energy),
                timestamp=stop_ts,
                reason=StopReason.POWER_LOSS,
            ))
        self._persist(f"StopTransaction (PowerLoss) of session {session.session_id}", write)

    # -- persistence that survives a failing disk -----------------------------------------
    def _persist(self, what: str, write: Callable[[], None]) -> bool:
        """Run ``write()`` as one commit. When the disk fails (full, I/O error) the write is
        kept in memory, retried in order every ``storage_retry_s`` until it commits, and
        the station stops offering power meanwhile. True when committed now."""
        if self._unsaved:  # behind an earlier unsaved write: keep their order
            self._unsaved.append((what, write))
            return False
        try:
            with transaction(self._db):
                write()
        except sqlite3.Error as exc:
            self._unsaved.append((what, write))
            self._storage_failed(exc)
            return False
        return True

    def _storage_failed(self, exc: BaseException) -> None:
        """The state cannot be written: every connector faults (no power is offered
        unmetered or unrecorded) until a write succeeds again."""
        first = self.storage_error is None
        self.storage_error = f"state database not writable: {exc}"
        if not first:
            return
        log.critical("%s; %d write(s) kept in memory, retried every %.0f s; no power is "
                     "offered until they are stored", self.storage_error, len(self._unsaved),
                     self.storage_retry_s)
        for conn in self.connectors.values():
            conn.raise_fault(Fault.STATION, self.storage_error)

    async def _retry_unsaved(self) -> None:
        """Supervised: commit the kept writes, oldest first; once all are stored (and a
        probe write works), the connectors recover."""
        if self.storage_error is None and not self._unsaved:
            return
        while self._unsaved:
            what, write = self._unsaved[0]
            try:
                with transaction(self._db):
                    write()
            except sqlite3.Error as exc:
                log.warning("still cannot store %s: %s", what, exc)
                self.storage_error = f"state database not writable: {exc}"
                return
            self._unsaved.popleft()
            log.warning("stored %s after the disk recovered", what)
        try:
            with transaction(self._db):
                self._sessions.stamp_alive(self.clock.now())
        except sqlite3.Error as exc:
            self.storage_error = f"state database not writable: {exc}"
            return
        log.warning("state database writable again: connectors recover")
        self.storage_error = None
        if self._station_fault is None:
            for conn in self.connectors.values():
                conn.clear_condition(Fault.STATION)

    async def _stamp_alive(self) -> None:
        """Supervised, every ``alive_interval_s`` while a session runs: the alive stamp."""
        if self.storage_error is not None or not any(
                c.session is not None for c in self.connectors.values()):
            return
        try:
            with transaction(self._db):
                self._sessions.stamp_alive(self.clock.now())
        except sqlite3.Error as exc:
            self._storage_failed(exc)

    def _clock_corrected(self, correction_s: float) -> None:
        """The first CSMS time arrived: shift the open sessions' timestamps stamped before."""
        for conn in self.connectors.values():
            if conn.session is not None:
                self._sessions.shift(conn.session, correction_s)

    async def poll_once(self, conn: Connector) -> None:
        """Read ``conn``'s meter and temperature sensor once (tests; the daemon runs
        :meth:`poll_meter_once` and the temperature on their own supervised schedules)."""
        await self.poll_meter_once(conn)
        if conn.hw.temperature is not None:
            await asyncio.to_thread(conn.read_temperature_hw)

    async def poll_meter_once(self, conn: Connector) -> None:
        """Read ``conn``'s meter once: meter faults, over-current and the live energy follow
        from the reading. Nothing is written to disk (samples are, :meth:`_sample_step`).

        Raises:
            Exception: an unexpected driver error (the supervisor faults and restarts).
        """
        try:
            await conn.read_meter()
        except PowerMeterFailure as exc:
            log.warning("connector %d: meter: %s", conn.id, exc.reason)

    async def _sample_step(self) -> None:
        """Supervised, every sample_interval_s: one MeterSample per running transaction,
        each one commit with the session's last reading; a failing meter gives no sample
        rather than a stale one."""
        if self.sample_interval_s <= 0:
            return
        for conn in list(self.connectors.values()):
            if conn.session is None:
                continue
            try:
                reading = await conn.read_meter()
            except PowerMeterFailure as exc:
                log.warning("connector %d: no periodic meter value: %s", conn.id, exc.reason)
                continue
            session = conn.session
            if session is None:
                continue
            now = self.clock.now()
            reading = dataclasses.replace(reading, timestamp=now)

            def write(session: Session = session, reading: MeterReading = reading,
                      cid: int = conn.id) -> None:
                # The sample and the session's last reading are one commit, so a PowerLoss
                # stop is never older or lower than a sample already queued.
                self._sessions.record_meter(session, reading.energy_active_import_wh,
                                            reading.timestamp)
                self._publish(MeterSample(cid, session.session_id, reading,
                                          ReadingContext.PERIODIC))
            self._persist(f"meter sample of session {session.session_id}", write)

    def _connection_timed_out(self, conn: Connector) -> None:
        """ConnectionTimeOut (OCPP 1.6 §9.1.6) expired without a plug: drop the
        authorization and go back to Available."""
        if conn.pending_id_tag is None:
            return
        log.info("connector %d: no EV plugged within ConnectionTimeOut", conn.id)
        conn.pending_id_tag = None
        if conn.state == ConnectorStatus.PREPARING.value and not conn.plugged():
            conn.timeout()

    # -- sessions -----------------------------------------------------------------------
    def _on_plug_ready(self, conn: Connector) -> None:
        if conn.pending_id_tag is not None and conn.plugged() and conn.session is None:
            tag, parent = conn.pending_id_tag, conn.pending_parent_id_tag
            self._clear_pending(tag)
            self._connection_timers[conn.id].cancel()
            self._spawn(self._begin_session(conn, tag, parent))

    def _clear_pending(self, id_tag: str) -> None:
        for other in self.connectors.values():
            if other.pending_id_tag == id_tag:
                other.pending_id_tag = None
                self._connection_timers[other.id].cancel()
                if other.state == ConnectorStatus.PREPARING.value and not other.plugged():
                    other.timeout()

    async def _begin_session(self, conn: Connector, id_tag: str, parent: str | None) -> None:
        async with self._busy[conn.id]:
            if conn.session is not None or conn.state != ConnectorStatus.PREPARING.value:
                return
            if self.settings.rcd_self_test is RcdSelfTest.EVERY_SESSION:
                passed = await asyncio.to_thread(conn.hw.rcd.self_test)
                if not passed:
                    conn.raise_fault(Fault.RCD_SELF_TEST, "RCD self-test failed before "
                                     "closing: technician reset required")
                    return
                if conn.session is not None or conn.state != ConnectorStatus.PREPARING.value:
                    return
            reading: MeterReading | None
            try:
                reading = await conn.read_meter()
            except PowerMeterFailure as exc:
                log.error("connector %d: meter at start: %s", conn.id, exc.reason)
                if self.settings.meter_failure is MeterFailurePolicy.STOP:
                    return  # the connector faulted (PowerMeterFailure)
                reading = None
            if conn.session is not None or conn.state != ConnectorStatus.PREPARING.value:
                return
            now = self.clock.now()
            if reading is not None:
                reading = dataclasses.replace(reading, timestamp=now)
            start_wh = (reading.energy_active_import_wh if reading is not None
                        else conn.last_reading.energy_active_import_wh
                        if conn.last_reading is not None else 0.0)
            if self.storage_error is not None:
                return  # Faulted: nothing can be recorded, so no power is offered
            # The session row and what subscribers persist for it (the queued
            # StartTransaction and its first meter value) are one commit, before power flows.
            try:
                with transaction(self._db):
                    session = self._sessions.begin(conn.id, id_tag, parent, round(start_wh),
                                                   now)
                    self._publish(TransactionStarted(conn.id, session.session_id, id_tag,
                                                     session.meter_start_wh, now))
                    if reading is not None:
                        self._publish(MeterSample(conn.id, session.session_id, reading,
                                                  ReadingContext.TRANSACTION_BEGIN))
            except sqlite3.Error as exc:
                self._storage_failed(exc)  # no session, no power
                return
            conn.session = session
            log.info("connector %d: transaction %d started for %s at %d Wh",
                     conn.id, session.session_id, id_tag, session.meter_start_wh)
            conn.start()

    async def _finish_session(
        self, conn: Connector, session: Session, reason: StopReason, id_tag: str | None
    ) -> None:
        async with self._busy[conn.id]:
            if conn.session is not session:
                return
            conn.session = None
            reading: MeterReading | None
            try:
                reading = await conn.read_meter()
                ts = self.clock.now()
                reading = dataclasses.replace(reading, timestamp=ts)
                energy = reading.energy_active_import_wh
            except PowerMeterFailure as exc:
                log.error("connector %d: meter at stop: %s; using the last good reading",
                          conn.id, exc.reason)
                # The last good poll (polls are not persisted) or the last committed sample.
                last = conn.last_reading
                energy = max(session.last_meter_wh,
                             last.energy_active_import_wh if last is not None else 0.0)
                reading, ts = None, self.clock.now()

            def write() -> None:
                self._sessions.record_meter(session, energy, ts)
                self._sessions.finish(session, reason.value)
                self._publish(TransactionStopped(conn.id, session.session_id, id_tag,
                                                 round(energy), ts, reason, reading))
            # Kept in memory and retried until stored when the disk fails: the session is
            # forgotten only once its stop is durably queued.
            self._persist(f"StopTransaction of session {session.session_id}", write)
            log.info("connector %d: transaction %d stopped (%s) at %d Wh, %.0f Wh charged",
                     conn.id, session.session_id, reason.value, round(energy),
                     energy - session.meter_start_wh)
            self._apply_scheduled(conn)

    async def stop_transaction(
        self, connector_id: int, reason: StopReason, id_tag: str | None = None
    ) -> bool:
        """Stop the transaction on ``connector_id``; False when none runs."""
        conn = self.connectors.get(connector_id)
        if conn is None or conn.session is None:
            return False
        session = conn.session
        if conn.state in TRANSACTION_STATES:
            # Outputs off first (the on_enter of Finishing/Available opens the contactor);
            # the StatusChanged handler must not finish it again with another reason.
            conn.session = None
            conn.stop()
            conn.session = session
        await self._finish_session(conn, session, reason, id_tag)
        return True

    async def stop_all(self, reason: StopReason) -> None:
        """Stop every running transaction (shutdown, reset)."""
        for cid, conn in self.connectors.items():
            if conn.session is not None:
                await self.stop_transaction(cid, reason)

    def session_by_id(self, session_id: int) -> Connector | None:
        """The connector running local session ``session_id``, if any."""
        for conn in self.connectors.values():
            if conn.session is not None and conn.session.session_id == session_id:
                return conn
        return None

    # -- identification -----------------------------------------------------------------
    def on_card_hw(self, loop: asyncio.AbstractEventLoop, id_tag: str) -> None:
        """Reader thread: hand a presented card to the loop."""
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._spawn, self.present_card(id_tag))

    async def present_card(self, id_tag: str) -> None:
        """A user presents ``id_tag``: stop their session, or authorize and start one.

        Same idTag (or same parentIdTag group) as a running session stops it (OCPP 1.6
        §3.5.3); otherwise the card is authorized and used on the plugged connector that
        waits for one, or held for ConnectionTimeOut until an EV is plugged in.
        """
        for conn in self.connectors.values():
            if conn.session is not None and conn.session.id_tag == id_tag:
                await self.stop_transaction(conn.id, StopReason.LOCAL, id_tag)
                conn.release_lock()
                return
        for conn in self.connectors.values():
            if conn.lock_held_for == id_tag:
                log.info("card %s: cable released on connector %d", id_tag, conn.id)
                conn.release_lock()
                return
        if any(c.pending_id_tag == id_tag for c in self.connectors.values()):
            log.info("card %s presented again: authorization withdrawn", id_tag)
            self._clear_pending(id_tag)
            return
        result = await self.authorizer.authorize(id_tag)
        if result.parent_id_tag is not None:
            for conn in self.connectors.values():
                if (conn.session is not None and result.accepted
                        and conn.session.parent_id_tag == result.parent_id_tag):
                    await self.stop_transaction(conn.id, StopReason.LOCAL, id_tag)
                    return
        if not result.accepted:
            log.info("card %s not authorized (%s)", id_tag, result.status.value)
            return
        self._hold_authorization(id_tag, result, None)

    def _hold_authorization(
        self, id_tag: str, result: AuthResult, connector_id: int | None
    ) -> bool:
        candidates = [
            c for c in self.connectors.values()
            if (connector_id is None or c.id == connector_id) and c.session is None
            and c.state in (ConnectorStatus.AVAILABLE.value, ConnectorStatus.PREPARING.value,
                            ConnectorStatus.FINISHING.value)
            and c.pending_id_tag is None
        ]
        plugged = [c for c in candidates if c.plugged()]
        target = plugged[:1] or candidates
        if not target:
            log.info("idTag %s authorized but no connector is free", id_tag)
            return False
        for conn in target:
            conn.pending_id_tag, conn.pending_parent_id_tag = id_tag, result.parent_id_tag
            self._connection_timers[conn.id].start(self.connection_timeout_s)
            if conn.state in (ConnectorStatus.AVAILABLE.value, ConnectorStatus.FINISHING.value):
                conn.authorize()
            self._on_plug_ready(conn)
        return True

    # -- commands from the CSMS side ----------------------------------------------------
    def remote_start(self, id_tag: str, connector_id: int | None, result: AuthResult) -> bool:
        """RemoteStartTransaction (OCPP 1.6 §5.11): hold an authorization for ``id_tag`` on
        ``connector_id`` (or any free connector). False = rejected (busy / unknown)."""
        if connector_id is not None and connector_id not in self.connectors:
            return False
        return self._hold_authorization(id_tag, result, connector_id)

    def change_availability(self, connector_id: int, operative: bool) -> str:
        """ChangeAvailability (OCPP 1.6 §5.2) for one connector or all (0).

        Returns "accepted", "scheduled" (a transaction runs: applied when it ends) or
        "rejected" (no such connector).
        """
        if connector_id != 0 and connector_id not in self.connectors:
            return "rejected"
        targets = list(self.connectors.values()) if connector_id == 0 else [
            self.connectors[connector_id]]
        answer = "accepted"
        for conn in targets:
            self._db.execute(
                "INSERT OR REPLACE INTO connector_availability VALUES (?, ?)",
                (conn.id, int(operative)),
            )
            if conn.session is not None:
                self._scheduled_operative[conn.id] = operative
                answer = "scheduled"
                continue
            self._set_operative(conn, operative)
        return answer

    def _set_operative(self, conn: Connector, operative: bool) -> None:
        conn.operative = operative
        if not operative and conn.state in (ConnectorStatus.AVAILABLE.value,
                                            ConnectorStatus.PREPARING.value,
                                            ConnectorStatus.FINISHING.value,
                                            ConnectorStatus.RESERVED.value):
            conn.pending_id_tag = None
            conn.disable()
        elif operative and conn.state == ConnectorStatus.UNAVAILABLE.value:
            conn.enable()

    def _apply_scheduled(self, conn: Connector) -> None:
        """Apply a ChangeAvailability that waited for the transaction to end."""
        if conn.session is not None or conn.id not in self._scheduled_operative:
            return
        self._set_operative(conn, self._scheduled_operative.pop(conn.id))

    async def unlock(self, connector_id: int) -> str:
        """UnlockConnector (OCPP 1.6 §5.18): stop a running transaction, then unlock.

        Returns "unlocked", "unlock_failed" or "not_supported" (no lock / no connector).
        """
        conn = self.connectors.get(connector_id)
        if conn is None:
            return "not_supported"
        if conn.session is not None:
            await self.stop_transaction(connector_id, StopReason.UNLOCK_COMMAND)
        conn.lock_held_for = None
        if conn.hw.lock is None:
            return "not_supported"
        try:
            await asyncio.to_thread(conn.hw.lock.unlock)
        except ConnectorLockFailure as exc:
            log.error("connector %d: unlock failed: %s", connector_id, exc)
            return "unlock_failed"
        return "unlocked"

    def set_charging_limit(self, connector_id: int, limit_a: float | None) -> None:
        """Apply a charging limit per phase (A) from the protocol side; None removes it.
        Below 6 A the connector pauses (SuspendedEVSE)."""
        conn = self.connectors[connector_id]
        conn.limit_a = limit_a
        conn.reevaluate()

    # -- faults -------------------------------------------------------------------------
    def technician_reset(self, connector_id: int) -> bool:
        """A technician clears latched faults locally (``evse fault reset``; 0 = all).
        Never reachable from the CSMS. False for an unknown connector."""
        if connector_id != 0 and connector_id not in self.connectors:
            return False
        for conn in self.connectors.values():
            if connector_id in (0, conn.id):
                log.warning("connector %d: technician reset of faults", conn.id)
                conn.technician_reset()
        return True

    def raise_station_fault(self, info: str) -> None:
        """A station-wide fault (shared RCD, supply, enclosure): every connector faults."""
        self._station_fault = info
        for conn in self.connectors.values():
            conn.raise_fault(Fault.STATION, info)

    def clear_station_fault(self) -> None:
        """The station-wide fault is gone: connectors recover (unless they hold others, or
        the state database is not writable)."""
        self._station_fault = None
        if self.storage_error is not None:
            return
        for conn in self.connectors.values():
            conn.clear_condition(Fault.STATION)

    async def idle(self) -> None:
        """Wait until no session work (card, start, stop) is in flight (tests, shutdown)."""
        for _ in range(3):  # callbacks posted by the hardware may spawn more work
            await asyncio.sleep(0)
            while busy := [t for t in self._tasks if not t.done()]:
                await asyncio.wait(busy)

    def publish_all_statuses(self) -> None:
        """Re-emit every connector's current status (after a reconnect)."""
        for conn in self.connectors.values():
            conn.publish()

    def describe(self) -> dict[str, Any]:
        """JSON-able state of every connector, the state storage and background tasks."""
        return {"connectors": [c.describe() for c in self.connectors.values()],
                "storage": {"writable": self.storage_error is None,
                            "error": self.storage_error,
                            "unsaved": [what for what, _ in self._unsaved]},
                "tasks": self.supervisor.describe()}

    async def close(self) -> None:
        """Stop polling, open every contactor."""
        self._running = False
        await self.supervisor.close()
        for task in [*self._tasks, *self._background]:
            task.cancel()
        for conn in self.connectors.values():
            conn.hw.contactor.open()
