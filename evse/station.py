"""The Station: every EVSE, the card reader, sessions, and the command API.

The Station is the core's face towards the protocol adapters. It publishes session events
(:mod:`evse.domain`) to subscribers and offers commands (remote start/stop, availability,
unlock, limits, reset). It never speaks OCPP: when a transaction starts and stops is the
:class:`~evse.tx_policy.TxPolicy` the adapter sets.

Per EVSE it runs an IEC 61851 machine (:mod:`evse.iec_machine`) under a session machine
(:mod:`evse.session_machine`); with one connector per EVSE (the AC case), ``connectors``
and ``evses`` hold the same machines, keyed by connector id and EVSE id.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from typing import Any

from evse.authorization import Authorizer, AuthResult, DenyAll
from evse.charging_limits import ChargingLimits, GridSupply
from evse.clock import Clock
from evse.diagnostics import Diagnostics, DiagnosticsStatus
from evse.domain import (
    Authorized,
    AvailabilityChanged,
    Deauthorized,
    DiagnosticsStatusChanged,
    DomainEvent,
    Fault,
    FirmwareStatusChanged,
    IdToken,
    IdTokenType,
    MeterSample,
    PowerSupplyChanged,
    ReadingContext,
    SessionStateChanged,
    StopCause,
    TransactionStarted,
    TransactionStopped,
)
from evse.firmware_update import FirmwareStatus, FirmwareUpdate
from evse.iec61851 import Iec61851Settings, MeterFailurePolicy, RcdSelfTest
from evse.iec_machine import IecMachine
from evse.profile_store import ProfileStore
from evse.reader_health import ReaderHealth
from evse.reservations import (
    EvseState,
    ReservationEvent,
    ReservationEventKind,
    Reservations,
    domain_event,
)
from evse.session_machine import (
    ENDED,
    FAULTED,
    IDLE,
    OUT_OF_SERVICE,
    PENDING,
    RESERVED,
    TRANSACTION_STATES,
    SessionMachine,
)
from evse.sessions import Session, SessionStore
from evse.smart_charging import SmartChargingEngine
from evse.state_db import transaction
from evse.supervisor import Supervisor
from evse.timers import Clock as TimerClock
from evse.timers import LoopClock, Timer
from evse.tx_policy import TxPoint, TxPolicy
from hal.board import Board
from hal.id_reader import IdReader
from hal.meter import MeterReading, PowerMeterFailure

log = logging.getLogger(__name__)

Subscriber = Callable[[DomainEvent], None]


def _id_token(value: str | IdToken, default: IdTokenType) -> IdToken:
    return value if isinstance(value, IdToken) else IdToken(value, default)


class Station:
    """All EVSEs of one charge point.

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
        evse_ids: EVSE id per connector id (default: the connector's id).
        nominal_voltage_v: nominal phase voltage for W ↔ A of charging profiles, V.
        grid: a grid-side meter and the grid limit for dynamic load balancing, or None.

    Raises:
        ValueError: two connectors given one EVSE id (one connector per EVSE is supported).
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
        evse_ids: dict[int, int] | None = None,
        nominal_voltage_v: float = 230.0,
        grid: GridSupply | None = None,
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
        self._sample_interval_s = 0.0
        self._aligned_interval_s = 0.0
        #: Per connector: when its running transaction started (timer clock, s).
        self._sample_origin: dict[int, float] = {}
        self._sample_timers: dict[int, Timer] = {}
        self._aligned_timer = Timer(self.timer_clock, "clock_aligned_sample",
                                    self._aligned_due)
        self._subscribers: list[Subscriber] = []
        self._sessions = SessionStore(db)
        self._db = db
        db.execute(
            "CREATE TABLE IF NOT EXISTS connector_availability"
            " (connector_id INTEGER PRIMARY KEY, operative INTEGER NOT NULL)"
        )
        evse_ids = evse_ids or {}
        self.connectors: dict[int, SessionMachine] = {}
        for hw in board.connectors:
            iec = IecMachine(
                hw,
                connector_limits_a[hw.connector_id],
                lambda: self.station_limit_a,
                ventilation=hw.connector_id in ventilation,
                settings=self.settings,
                clock=self.timer_clock,
            )
            self.connectors[hw.connector_id] = SessionMachine(
                iec, self._on_session_event, self.clock.now,
                evse_id=evse_ids.get(hw.connector_id))
        #: The EVSEs by EVSE id (one connector each).
        self.evses: dict[int, SessionMachine] = {
            c.evse_id: c for c in self.connectors.values()}
        if len(self.evses) != len(self.connectors):
            raise ValueError("two connectors with one evse_id: one connector per EVSE is "
                             "supported")
        self._tx_policy = TxPolicy.ocpp16()
        self._connection_timers: dict[int, Timer] = {}
        #: The stop cause (and who stopped it) of a transaction being stopped on command.
        self._stopping: dict[int, tuple[StopCause, IdToken | None]] = {}
        self._finishing: dict[int, asyncio.Task[None]] = {}
        for conn in self.connectors.values():
            conn.on_ev_connected = self._on_plug_ready
            self._connection_timers[conn.id] = Timer(
                self.timer_clock, "connection_timeout",
                lambda c=conn: self._connection_timed_out(c))  # type: ignore[misc]
            self._sample_timers[conn.id] = Timer(
                self.timer_clock, "meter_sample",
                lambda c=conn: self._sample_due(c))  # type: ignore[misc]
        self._scheduled_operative: dict[int, bool] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._busy: dict[int, asyncio.Lock] = {cid: asyncio.Lock() for cid in self.connectors}
        self._running = False
        self._station_fault: str | None = None
        #: Runs the meter poll, temperature, sampler and alive stamp (and the daemon's
        #: OCPP link): a crash is logged, faults, and the task restarts with backoff.
        self.supervisor = Supervisor()
        #: Card readers' health: ReaderFailure on connector 0, never a stop (issue 9).
        self.reader_health = ReaderHealth(self._publish, self.clock.now,
                                          lambda: self.operative)
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
        # -- smart charging + load balancing (issue 11) --
        #: The charging profiles and running transactions (OCPP 1.6 §3.13, protocol-neutral).
        self.smart = SmartChargingEngine(ProfileStore(db), self.clock.now, nominal_voltage_v)
        #: Profile limits and the shared station budget → each EVSE's offer.
        self.limits = ChargingLimits(self.connectors, self.smart, lambda: self.station_limit_a,
                                     self.timer_clock, self.clock.now, grid)
        #: The reservations (OCPP 1.6 §3.11, 2.0.1 H01-H04); the adapter sets
        #: ``accept_reservations`` / ``station_wide_supported`` per its configuration.
        self.reservations = Reservations(
            conn=db, clock=self.timer_clock, wall=self.clock.now, evse_ids=list(self.evses),
            evse_state=self.evse_state, on_event=self._on_reservation_event)
        #: The reservation id an admitted, waiting authorization will use, by connector id.
        self._admitted: dict[int, int | None] = {}
        #: True while new transactions are refused (a firmware install waits for the
        #: station to be idle).
        self.transactions_held = False
        #: The firmware update flow and the diagnostics upload (set by the daemon; None
        #: where the station has none, e.g. in core tests).
        self.firmware: FirmwareUpdate | None = None
        self.diagnostics: Diagnostics | None = None

    # -- policies the adapter sets, pushed into every EVSE -----------------------------------
    @property
    def tx_policy(self) -> TxPolicy:
        """When transactions start and stop (the adapter sets it; default: OCPP 1.6's)."""
        return self._tx_policy

    @tx_policy.setter
    def tx_policy(self, policy: TxPolicy) -> None:
        self._tx_policy = policy
        for conn in self.connectors.values():
            conn.tx_policy = policy

    @property
    def sample_interval_s(self) -> float:
        """Seconds between periodic MeterSample events of a running transaction, counted
        from its start; 0 = none (the adapter sets it, e.g. from OCPP 1.6
        MeterValueSampleInterval, §9.1.19). A change applies at once: the next sample comes
        at the next multiple of the new interval since the start."""
        return self._sample_interval_s

    @sample_interval_s.setter
    def sample_interval_s(self, seconds: float) -> None:
        if seconds == self._sample_interval_s:
            return
        self._sample_interval_s = seconds
        for conn in self.connectors.values():
            self._schedule_sample(conn)

    @property
    def aligned_interval_s(self) -> float:
        """Seconds between clock-aligned MeterSample events of every connector (context
        :attr:`ReadingContext.CLOCK_ALIGNED`), aligned to UTC midnight; 0 = none (e.g. OCPP
        1.6 ClockAlignedDataInterval, §9.1.7). A change applies at once."""
        return self._aligned_interval_s

    @aligned_interval_s.setter
    def aligned_interval_s(self, seconds: float) -> None:
        if seconds == self._aligned_interval_s:
            return
        self._aligned_interval_s = seconds
        self._schedule_aligned()

    @property
    def operative(self) -> bool:
        """False while the station as a whole (connector 0) was put out of service and
        none of its connectors was put back in since (OCPP 1.6 §5.2 connectorId 0)."""
        row = self._db.execute(
            "SELECT operative FROM connector_availability WHERE connector_id = 0").fetchone()
        return row is None or bool(row[0])

    @property
    def stop_on_ev_disconnect(self) -> bool:
        """Whether the transaction policy stops on an EV-side disconnect."""
        return self._tx_policy.stops_on_loss_of(TxPoint.EV_CONNECTED)

    @property
    def unlock_on_ev_disconnect(self) -> bool:
        """Release the cable when the EV side disconnects (e.g. OCPP 1.6
        UnlockConnectorOnEVSideDisconnect, §9.1.33)."""
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

    def _on_session_event(self, event: DomainEvent) -> None:
        conn = (self.connectors.get(event.connector_id)
                if isinstance(event, SessionStateChanged) else None)
        # An EVSE scheduled to go out of service goes straight from its transaction to
        # out of service: the idle state in between is not shown (no "Available" flash).
        if not (conn is not None and event.state == IDLE  # type: ignore[union-attr]
                and self._scheduled_operative.get(conn.id) is False):
            self._publish(event)
        if not isinstance(event, SessionStateChanged):
            return
        if self._running:  # EV started / paused / resumed / waits: re-split the budget
            self.limits.rebalance()
        if conn is None:
            return
        self._reservation_follows(conn)
        # A transaction ends when its EVSE leaves the transaction states.
        session = conn.session
        if (session is not None and event.state not in TRANSACTION_STATES
                and conn.id not in self._finishing):
            cause, by = self._stopping.pop(conn.id, (None, None))
            fault: Fault | None = None
            if cause is None:
                if event.state == FAULTED:
                    cause, fault = StopCause.FAULT, event.fault
                elif event.state == IDLE:
                    cause = StopCause.EV_DISCONNECTED
                else:
                    cause = StopCause.LOCAL
            task = asyncio.get_running_loop().create_task(
                self._finish_session(conn, session, cause, by, fault))
            self._finishing[conn.id] = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(functools.partial(self._finished, conn.id))
        if conn.session is None and event.state in (IDLE, ENDED):
            # Queued by the machine when it comes from inside a transition.
            self._apply_scheduled(conn)

    # -- reservations (OCPP 1.6 §3.11, §5.13; 2.0.1 H01-H04) ------------------------------
    def evse_state(self, evse_id: int) -> EvseState:
        """What an EVSE is, for reservation decisions (its reservation left aside)."""
        conn = self.evses[evse_id]
        if conn.state == FAULTED:
            return EvseState.FAULTED
        if conn.state == OUT_OF_SERVICE or not conn.operative:
            return EvseState.UNAVAILABLE
        if conn.state in (IDLE, RESERVED) and not conn.plugged():
            return EvseState.FREE
        return EvseState.OCCUPIED

    def _on_reservation_event(self, event: ReservationEvent) -> None:
        conn = self.evses.get(event.reservation.evse_id)
        self._publish(domain_event(event, self.clock.now(),
                                   None if conn is None else conn.id))
        if conn is None:
            return
        if event.kind is ReservationEventKind.PLACED:
            self._reservation_follows(conn)
        elif conn.state == RESERVED and not self.reservations.is_reserved(conn.evse_id):
            conn.unreserve()

    def _reservation_follows(self, conn: SessionMachine) -> None:
        """Keep the session state in step with the reservations: an idle EVSE held by a
        reservation is Reserved (again, e.g. after another user's EV left); a reservation
        of an EVSE that turned faulted or unavailable is withdrawn."""
        self.reservations.evse_state_changed(conn.evse_id)
        if (conn.state == IDLE and conn.pending_id_token is None
                and self.reservations.is_reserved(conn.evse_id)):
            conn.reserve()

    # -- firmware update / diagnostics (the engines' ports) ------------------------------
    def transaction_running(self) -> bool:
        """True while any EVSE runs a transaction (a firmware install waits for none)."""
        return any(c.session is not None for c in self.connectors.values())

    def hold_transactions(self, held: bool) -> None:
        """Refuse new transactions while ``held`` (a firmware install waits for the station
        to be idle, OCPP 1.6 §3.12); running ones go on."""
        if held != self.transactions_held:
            log.warning("new transactions %s", "refused until the firmware is installed"
                        if held else "allowed again")
        self.transactions_held = held

    def publish_firmware_status(self, status: FirmwareStatus, request_id: int | None) -> None:
        """The firmware update flow's status port: published as FirmwareStatusChanged."""
        self._publish(FirmwareStatusChanged(status, request_id, self.clock.now()))

    def publish_diagnostics_status(self, status: DiagnosticsStatus,
                                   request_id: int | None) -> None:
        """The diagnostics upload's status port: published as DiagnosticsStatusChanged."""
        self._publish(DiagnosticsStatusChanged(status, request_id, self.clock.now()))

    def _finished(self, connector_id: int, _task: asyncio.Task[None]) -> None:
        self._finishing.pop(connector_id, None)

    # -- start-up -----------------------------------------------------------------------
    async def start(self, poll: bool = True) -> None:
        """Attach hardware listeners, close interrupted sessions, start meter polling
        (``poll=False``: tests call :meth:`poll_once` themselves)."""
        loop = asyncio.get_running_loop()
        self._running = True
        self._schedule_aligned()
        # Without an RTC the system clock may be behind what was already persisted.
        self.clock.raise_floor(self._sessions.latest_ts())
        for row in self._db.execute("SELECT connector_id, operative FROM connector_availability"):
            conn = self.connectors.get(row[0])
            if conn is not None:
                conn.operative = bool(row[1])
        for conn in self.connectors.values():
            conn.hw.contactor.open()
            conn.iec.attach(loop)
            conn.hw.pilot.set_off()
            conn.iec.pilot = conn.hw.pilot.read()
            conn.sync_ev_connection()
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
        self.limits.start()
        # Reservations survive a restart (those that expired meanwhile are reported).
        self.reservations.restore()
        for conn in self.connectors.values():
            self._reservation_follows(conn)
        if not poll:
            return
        sup = self.supervisor
        if self.limits.grid is not None:
            sup.periodic("grid meter poll", self.limits.poll_grid, lambda: self.meter_poll_s)
        for conn in self.connectors.values():
            iec = conn.iec
            sup.periodic(f"meter poll connector {conn.id}",
                         lambda c=conn: self.poll_meter_once(c),  # type: ignore[misc]
                         lambda: self.meter_poll_s,
                         on_failure=lambda exc, m=iec: m.on_meter_failure(  # type: ignore[misc]
                             f"meter driver error: {exc!r}"))
            if conn.hw.temperature is not None:
                # On a worker thread: a trip opens the contactor there, before the loop hears.
                sup.periodic(f"temperature connector {conn.id}",
                             lambda m=iec: asyncio.to_thread(  # type: ignore[misc]
                                 m.read_temperature_hw),
                             lambda: self.temperature_poll_s,
                             on_failure=lambda exc, m=iec: m.raise_fault(  # type: ignore[misc]
                                 Fault.OVERTEMP, f"temperature sensor lost: {exc!r}"))
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
            self._sessions.finish(session, StopCause.POWER_LOSS.value)
            self._publish(TransactionStopped(
                connector_id=session.connector_id,
                session_id=session.session_id,
                id_token=None,
                meter_stop_wh=round(energy),
                timestamp=stop_ts,
                cause=StopCause.POWER_LOSS,
                evse_id=conn.evse_id if conn is not None else session.connector_id,
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
        """The state cannot be written: every EVSE faults (no power is offered unmetered
        or unrecorded) until a write succeeds again."""
        first = self.storage_error is None
        self.storage_error = f"state database not writable: {exc}"
        if not first:
            return
        log.critical("%s; %d write(s) kept in memory, retried every %.0f s; no power is "
                     "offered until they are stored", self.storage_error, len(self._unsaved),
                     self.storage_retry_s)
        for conn in self.connectors.values():
            conn.iec.raise_fault(Fault.STATION, self.storage_error)

    async def _retry_unsaved(self) -> None:
        """Supervised: commit the kept writes, oldest first; once all are stored (and a
        probe write works), the EVSEs recover."""
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
        log.warning("state database writable again: EVSEs recover")
        self.storage_error = None
        if self._station_fault is None:
            for conn in self.connectors.values():
                conn.iec.clear_condition(Fault.STATION)

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
        if self._running:  # profile period boundaries are UTC instants: re-arm
            self.limits.clock_corrected()

    async def poll_once(self, conn: SessionMachine) -> None:
        """Read ``conn``'s meter and temperature sensor once (tests; the daemon runs
        :meth:`poll_meter_once` and the temperature on their own supervised schedules)."""
        await self.poll_meter_once(conn)
        if conn.hw.temperature is not None:
            await asyncio.to_thread(conn.iec.read_temperature_hw)

    async def poll_meter_once(self, conn: SessionMachine) -> None:
        """Read ``conn``'s meter once: meter faults, over-current and the live energy follow
        from the reading. Nothing is written to disk (samples are, :meth:`_sample_step`).

        Raises:
            Exception: an unexpected driver error (the supervisor faults and restarts).
        """
        try:
            await conn.iec.read_meter()
        except PowerMeterFailure as exc:
            log.warning("connector %d: meter: %s", conn.id, exc.reason)
        else:
            self.limits.rebalance()  # an EV drawing less than offered frees budget

    # -- periodic and clock-aligned samples (timers on the timer clock) ------------------
    def _schedule_sample(self, conn: SessionMachine) -> None:
        """Arm ``conn``'s sample timer for the next multiple of the sample interval since
        its transaction started (disarm without a transaction or an interval)."""
        timer = self._sample_timers[conn.id]
        interval = self._sample_interval_s
        origin = self._sample_origin.get(conn.id)
        if interval <= 0 or origin is None or conn.session is None:
            timer.cancel()
            return
        delay = interval - (self.timer_clock.monotonic() - origin) % interval
        timer.start(delay if delay > 1e-6 else interval)  # float residue: not "now" again

    def _sample_due(self, conn: SessionMachine) -> None:
        session = conn.session
        self._schedule_sample(conn)
        if session is not None:
            self._spawn(self._take_sample(conn, session, ReadingContext.PERIODIC))

    def _schedule_aligned(self, fired: bool = False) -> None:
        """Arm the clock-aligned timer for the next instant that is a multiple of the
        interval after UTC midnight (the last of a day ends at midnight). ``fired``: called
        at an instant just reached, which (whether the timer ran a little early or late)
        is never the next one."""
        interval = self._aligned_interval_s
        if interval <= 0:
            self._aligned_timer.cancel()
            return
        now = self.clock.now()
        ref = now + (interval / 2 if fired else 0.0)
        since_midnight = ref % 86_400
        delay = ref - now + min(interval - since_midnight % interval,
                                86_400 - since_midnight)
        self._aligned_timer.start(delay)

    def _aligned_due(self) -> None:
        self._schedule_aligned(fired=True)
        for conn in self.connectors.values():
            self._spawn(self._take_sample(conn, conn.session, ReadingContext.CLOCK_ALIGNED))

    async def _take_sample(self, conn: SessionMachine, session: Session | None,
                           context: ReadingContext) -> None:
        """Publish one MeterSample of ``conn`` (``session``: the transaction it belongs to,
        if it still runs); a failing meter gives no sample rather than a stale one."""
        if not self._running:
            return
        try:
            reading = await conn.iec.read_meter()
        except PowerMeterFailure as exc:
            log.warning("connector %d: no %s meter value: %s", conn.id, context.value,
                        exc.reason)
            return
        now = self.clock.now()
        reading = dataclasses.replace(reading, timestamp=now)
        soc = self._ev_soc(conn)
        if session is None or conn.session is not session:
            if context is ReadingContext.PERIODIC:
                return  # the transaction ended meanwhile: its end reading says the rest
            self._publish(MeterSample(conn.id, None, reading, context, conn.evse_id, soc))
            return

        def write() -> None:
            # The sample and the session's last reading are one commit, so a PowerLoss stop
            # is never older or lower than a sample already queued.
            assert session is not None
            self._sessions.record_meter(session, reading.energy_active_import_wh, now)
            self._publish(MeterSample(conn.id, session.session_id, reading, context,
                                      conn.evse_id, soc))
        self._persist(f"meter sample of session {session.session_id}", write)

    def ev_state_of_charge(self, connector_id: int) -> float | None:
        """The state of charge the EV on ``connector_id`` reports, % (None when the EV or
        the hardware cannot say, or no such connector)."""
        conn = self.connectors.get(connector_id)
        return None if conn is None else self._ev_soc(conn)

    @staticmethod
    def _ev_soc(conn: SessionMachine) -> float | None:
        """The EV's state of charge, % (None when the EV or the hardware cannot say)."""
        source = conn.hw.ev_state_of_charge
        if source is None:
            return None
        try:
            return source()
        except Exception:  # a failing report must not cost the meter value
            log.exception("connector %d: reading the EV's state of charge", conn.id)
            return None

    def _connection_timed_out(self, conn: SessionMachine) -> None:
        """The authorization waited ``connection_timeout_s`` (OCPP 1.6 ConnectionTimeOut,
        §9.1.6) without an EV: drop it and go back to idle."""
        token = conn.pending_id_token
        if token is None:
            return
        log.info("connector %d: no EV plugged within ConnectionTimeOut", conn.id)
        conn.pending_id_token = None
        self._admitted.pop(conn.id, None)
        self._publish(Deauthorized(conn.evse_id, conn.id, token, "no EV connected in time",
                                   self.clock.now()))
        if conn.state == PENDING and not conn.plugged():
            conn.timeout()

    # -- sessions -----------------------------------------------------------------------
    def _on_plug_ready(self, conn: SessionMachine) -> None:
        token = conn.pending_id_token
        if (token is not None and conn.session is None
                and self._tx_policy.should_start(conn.facts())):
            if self.transactions_held:
                log.info("connector %d: no transaction while a firmware install waits",
                         conn.id)
                return
            parent = conn.pending_parent_id_tag
            conn.pending_id_token = None
            self._connection_timers[conn.id].cancel()
            self._clear_pending(token.value, why=f"used on EVSE {conn.evse_id}")
            self._spawn(self._begin_session(conn, token, parent))

    def _clear_pending(self, id_tag: str, why: str = "authorization withdrawn") -> None:
        """Drop the waiting authorizations of ``id_tag``, each published as Deauthorized
        with ``why``."""
        for other in self.connectors.values():
            token = other.pending_id_token
            if token is not None and token.value == id_tag:
                other.pending_id_token = None
                self._admitted.pop(other.id, None)
                self._connection_timers[other.id].cancel()
                self._publish(Deauthorized(other.evse_id, other.id, token, why,
                                           self.clock.now()))
                if other.state == PENDING and not other.plugged():
                    other.timeout()

    async def _begin_session(self, conn: SessionMachine, id_token: IdToken,
                             parent: str | None) -> None:
        async with self._busy[conn.id]:
            if conn.session is not None or conn.state != PENDING:
                return
            # The socket is locked before the transaction starts (a lock that fails is a
            # fault and no transaction).
            if not await conn.iec.lock_async():
                return
            if conn.session is not None or conn.state != PENDING:
                return
            if self.settings.rcd_self_test is RcdSelfTest.EVERY_SESSION:
                passed = await conn.iec.rcd_self_test_async()
                if not passed:
                    conn.iec.raise_fault(Fault.RCD_SELF_TEST, "RCD self-test failed before "
                                         "closing: technician reset required")
                    return
                if conn.session is not None or conn.state != PENDING:
                    return
            reading: MeterReading | None
            try:
                reading = await conn.iec.read_meter()
            except PowerMeterFailure as exc:
                log.error("connector %d: meter at start: %s", conn.id, exc.reason)
                if self.settings.meter_failure is MeterFailurePolicy.STOP:
                    return  # the connector faulted (PowerMeterFailure)
                reading = None
            if conn.session is not None or conn.state != PENDING:
                return
            now = self.clock.now()
            if reading is not None:
                reading = dataclasses.replace(reading, timestamp=now)
            start_wh = (reading.energy_active_import_wh if reading is not None
                        else conn.last_reading.energy_active_import_wh
                        if conn.last_reading is not None else 0.0)
            reservation_id = self._admitted.pop(conn.id, None)
            if self.storage_error is not None:
                return  # Faulted: nothing can be recorded, so no power is offered
            # The session row and what subscribers persist for it (the queued
            # StartTransaction and its first meter value) are one commit, before power flows.
            try:
                with transaction(self._db):
                    session = self._sessions.begin(conn.id, id_token.value, parent,
                                                   round(start_wh), now)
                    session.id_token_type = id_token.type
                    self._publish(TransactionStarted(conn.id, session.session_id, id_token,
                                                     session.meter_start_wh, now,
                                                     reservation_id=reservation_id,
                                                     evse_id=conn.evse_id))
                    if reading is not None:
                        self._publish(MeterSample(conn.id, session.session_id, reading,
                                                  ReadingContext.TRANSACTION_BEGIN,
                                                  conn.evse_id, self._ev_soc(conn)))
            except sqlite3.Error as exc:
                self._storage_failed(exc)  # no session, no power
                return
            log.info("connector %d: transaction %d started for %s at %d Wh",
                     conn.id, session.session_id, id_token.value, session.meter_start_wh)
            # Its share of the budget (and Relative profiles) before power is offered.
            self.limits.transaction_started(conn, session.session_id, now)
            conn.begin(session)
            self._sample_origin[conn.id] = self.timer_clock.monotonic()
            self._schedule_sample(conn)
            if reservation_id is not None:
                self.reservations.use(reservation_id)

    async def _finish_session(
        self, conn: SessionMachine, session: Session, cause: StopCause, by: IdToken | None,
        fault: Fault | None = None,
    ) -> None:
        async with self._busy[conn.id]:
            if conn.session is not session:
                return
            conn.session = None
            self._sample_origin.pop(conn.id, None)
            self._sample_timers[conn.id].cancel()
            reading: MeterReading | None
            try:
                reading = await conn.iec.read_meter()
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
                self._sessions.finish(session, cause.value)
                self._publish(TransactionStopped(conn.id, session.session_id, by,
                                                 round(energy), ts, cause, reading, fault,
                                                 evse_id=conn.evse_id))
            # Kept in memory and retried until stored when the disk fails: the session is
            # forgotten only once its stop is durably queued.
            self._persist(f"StopTransaction of session {session.session_id}", write)
            log.info("connector %d: transaction %d stopped (%s) at %d Wh, %.0f Wh charged",
                     conn.id, session.session_id, cause.value, round(energy),
                     energy - session.meter_start_wh)
            self.limits.transaction_ended(conn)  # its TxProfiles go, its share is freed
            self._apply_scheduled(conn)

    async def stop_transaction(
        self, connector_id: int, cause: StopCause, id_token: str | IdToken | None = None
    ) -> bool:
        """Stop the transaction on ``connector_id`` for ``cause`` (``id_token``: who
        stopped it); False when none runs."""
        conn = self.connectors.get(connector_id)
        if conn is None or conn.session is None:
            return False
        session = conn.session
        by = None if id_token is None else _id_token(id_token, IdTokenType.ISO14443)
        running = self._finishing.get(conn.id)
        if running is None and conn.state in TRANSACTION_STATES:
            # Outputs off first (entering ended / idle withdraws the power); the session
            # state handler closes the transaction with this cause.
            self._stopping[conn.id] = (cause, by)
            conn.stop()
            running = self._finishing.get(conn.id)
        if running is not None:
            await asyncio.shield(running)
        else:
            await self._finish_session(conn, session, cause, by)
        return True

    async def stop_all(self, cause: StopCause) -> None:
        """Stop every running transaction (shutdown, reset)."""
        for cid, conn in self.connectors.items():
            if conn.session is not None:
                await self.stop_transaction(cid, cause)

    # -- mains supply -------------------------------------------------------------------
    def on_power_fail_hw(self, loop: asyncio.AbstractEventLoop, lost: bool) -> None:
        """Driver thread: the mains-loss input changed (``lost``: the supply is gone)."""
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._spawn, self.power_changed(lost))

    async def power_changed(self, lost: bool) -> None:
        """The mains supply was lost or is back (a UPS / supply-monitor signal). Lost:
        every running transaction stops with :attr:`StopCause.POWER_LOSS` (durably
        queued) while the hold-up supply lasts, then :class:`PowerSupplyChanged` tells
        the adapters to flush what they hold before the power goes."""
        if lost:
            log.critical("mains supply lost: stopping every transaction (PowerLoss)")
            await self.stop_all(StopCause.POWER_LOSS)
        else:
            log.warning("mains supply back")
        self._publish(PowerSupplyChanged(lost, self.clock.now()))

    def session_by_id(self, session_id: int) -> SessionMachine | None:
        """The connector running local session ``session_id``, if any."""
        for conn in self.connectors.values():
            if conn.session is not None and conn.session.session_id == session_id:
                return conn
        return None

    def set_group(self, session_id: int, parent_id_tag: str | None) -> None:
        """The group (parent IdToken) of running session ``session_id`` became known after
        its start (e.g. from the CSMS's answer to the transaction start): a card of the
        same group stops it from now on. None, or no such running session: nothing."""
        conn = self.session_by_id(session_id)
        if (parent_id_tag is None or conn is None or conn.session is None
                or conn.session.parent_id_tag == parent_id_tag):
            return
        self._sessions.set_parent(conn.session, parent_id_tag)

    # -- identification -----------------------------------------------------------------
    def on_card_hw(self, loop: asyncio.AbstractEventLoop, id_tag: str) -> None:
        """Reader thread: hand a presented card to the loop."""
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._spawn, self.present_card(id_tag))

    def attach_id_reader(self, reader: IdReader) -> None:
        """Take cards from ``reader`` and report its health (call on the loop)."""
        loop = asyncio.get_running_loop()
        reader.add_listener(lambda tag: self.on_card_hw(loop, tag))
        self.reader_health.attach(reader)

    async def present_card(self, id_token: str | IdToken) -> None:
        """A user presents ``id_token`` (a plain value is an ISO 14443 card UID): stop
        their transaction, or authorize and start one.

        Losing the authorization stops a transaction when the policy says so: the same
        IdToken (or one of the same group) as a running transaction stops it (OCPP 1.6
        §3.5.3); otherwise the IdToken is authorized and used on the connected EVSE that
        waits for one, or held for ``connection_timeout_s`` until an EV is connected.
        """
        token = _id_token(id_token, IdTokenType.ISO14443)
        id_tag = token.value
        stops = self._tx_policy.stops_on_loss_of(TxPoint.AUTHORIZED)
        for conn in self.connectors.values():
            if stops and conn.session is not None and conn.session.id_tag == id_tag:
                await self.stop_transaction(conn.id, StopCause.LOCAL_ID_TOKEN, token)
                conn.release_lock()
                return
        for conn in self.connectors.values():
            if conn.lock_held_for == id_tag:
                log.info("card %s: cable released on connector %d", id_tag, conn.id)
                conn.release_lock()
                return
        if any(c.pending_id_tag == id_tag for c in self.connectors.values()):
            log.info("card %s presented again: authorization withdrawn", id_tag)
            self._clear_pending(id_tag, why="presented again")
            return
        result = await self.authorizer.authorize(token)
        if result.parent_id_tag is not None and stops:
            for conn in self.connectors.values():
                if (conn.session is not None and result.accepted
                        and conn.session.parent_id_tag == result.parent_id_tag):
                    await self.stop_transaction(conn.id, StopCause.LOCAL_ID_TOKEN, token)
                    return
        if not result.accepted:
            log.info("card %s not authorized (%s)", id_tag, result.status.value)
            return
        self._hold_authorization(token, result, None)

    def _hold_authorization(
        self, token: IdToken, result: AuthResult, connector_id: int | None
    ) -> bool:
        if self.transactions_held:
            log.info("idTag %s: no new transaction while a firmware install waits",
                     token.value)
            return False
        candidates = [
            c for c in self.connectors.values()
            if (connector_id is None or c.id == connector_id) and c.session is None
            and c.state in (IDLE, PENDING, ENDED, RESERVED)
            and c.pending_id_token is None
        ]
        # A reserved EVSE only for its IdToken (or group); station-wide reservations keep
        # EVSEs free for theirs (OCPP 1.6 §5.13).
        admissions = {c.id: self.reservations.admit(c.evse_id, token, result.parent_id_tag)
                      for c in candidates}
        candidates = [c for c in candidates if admissions[c.id].allowed]
        plugged = [c for c in candidates if c.plugged()]
        # The reserved EVSE first, when the IdToken holds a reservation of its own.
        reserved = [c for c in candidates if c.state == RESERVED]
        target = plugged[:1] or reserved[:1] or candidates
        if not target:
            log.info("idTag %s authorized but no connector is free", token.value)
            return False
        for conn in target:
            admitted = admissions[conn.id].reservation
            self._admitted[conn.id] = (None if admitted is None
                                       else admitted.reservation_id)
            conn.pending_id_token, conn.pending_parent_id_tag = token, result.parent_id_tag
            self._publish(Authorized(conn.evse_id, conn.id, token, result.source,
                                     result.parent_id_tag, self.clock.now()))
            self._connection_timers[conn.id].start(self.connection_timeout_s)
            if conn.state in (IDLE, ENDED, RESERVED):
                conn.authorize()
            self._on_plug_ready(conn)
        return True

    # -- commands from the protocol side ---------------------------------------------------
    def remote_start(self, id_token: str | IdToken, connector_id: int | None,
                     result: AuthResult) -> bool:
        """Remote start (OCPP 1.6 §5.11): hold an authorization for ``id_token`` (a plain
        value: issued by the CSMS) on ``connector_id`` (or any free connector). False =
        rejected (busy / unknown). ``result.source`` says who authorized it."""
        if connector_id is not None and connector_id not in self.connectors:
            return False
        token = _id_token(id_token, IdTokenType.CENTRAL)
        return self._hold_authorization(token, result, connector_id)

    def deauthorize(self, connector_id: int, why: str, stop: bool) -> None:
        """The authorization of the running transaction was withdrawn (e.g. the CSMS found
        its IdToken invalid): stop it (cause :attr:`StopCause.DEAUTHORIZED`) when ``stop``
        and the policy stops on the loss of the authorization, else suspend energy."""
        conn = self.connectors.get(connector_id)
        if conn is None or conn.session is None:
            return
        self._publish(Deauthorized(conn.evse_id, conn.id, conn.session.id_token, why,
                                   self.clock.now()))
        if stop and self._tx_policy.stops_on_loss_of(TxPoint.AUTHORIZED):
            self._spawn(self.stop_transaction(conn.id, StopCause.DEAUTHORIZED))
        else:
            self.set_charging_limit(conn.id, 0.0)

    def change_availability(self, connector_id: int, operative: bool) -> str:
        """Put one connector or all (0) in or out of service (OCPP 1.6 §5.2).

        Returns "accepted", "scheduled" (a transaction runs: applied when it ends) or
        "rejected" (no such connector).
        """
        if connector_id != 0 and connector_id not in self.connectors:
            return "rejected"
        targets = list(self.connectors.values()) if connector_id == 0 else [
            self.connectors[connector_id]]
        self._set_station_operative(connector_id, operative)
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

    def _set_station_operative(self, connector_id: int, operative: bool) -> None:
        """Connector 0's own availability: set by a station-wide change, back in service
        as soon as any connector is (published as AvailabilityChanged of connector 0)."""
        if connector_id != 0 and not operative:
            return
        was = self.operative
        self._db.execute("INSERT OR REPLACE INTO connector_availability VALUES (0, ?)",
                         (int(operative),))
        if was != operative:
            self._publish(AvailabilityChanged(0, 0, operative, self.clock.now()))

    def _set_operative(self, conn: SessionMachine, operative: bool) -> None:
        changed = conn.operative != operative
        conn.operative = operative
        if changed:
            self._publish(AvailabilityChanged(conn.evse_id, conn.id, operative,
                                              self.clock.now()))
        if not operative and conn.state in (IDLE, PENDING, ENDED, RESERVED):
            conn.pending_id_token = None
            conn.disable()
        elif operative and conn.state == OUT_OF_SERVICE:
            conn.enable()

    def _apply_scheduled(self, conn: SessionMachine) -> None:
        """Apply an availability change that waited for the transaction to end."""
        if conn.session is not None or conn.id not in self._scheduled_operative:
            return
        self._set_operative(conn, self._scheduled_operative.pop(conn.id))

    async def unlock(self, connector_id: int) -> str:
        """Unlock the connector (OCPP 1.6 §5.18): stop a running transaction, then unlock.

        Returns "unlocked", "unlock_failed" or "not_supported" (no lock / no connector).
        """
        conn = self.connectors.get(connector_id)
        if conn is None:
            return "not_supported"
        if conn.session is not None:
            await self.stop_transaction(connector_id, StopCause.UNLOCK_COMMAND)
        conn.lock_held_for = None
        conn.iec.keep_locked = False
        if conn.hw.lock is None:
            return "not_supported"
        error = await conn.iec.unlock_async()
        if error is not None:
            log.error("connector %d: unlock failed: %s", connector_id, error)
            return "unlock_failed"
        return "unlocked"

    def set_charging_limit(self, connector_id: int, limit_a: float | None) -> None:
        """Apply a charging limit per phase (A) from the protocol side; None removes it.
        It caps the profile and load-balancing limit. Below 6 A the EVSE pauses (suspended
        by the EVSE)."""
        if connector_id not in self.connectors:
            raise KeyError(connector_id)
        self.limits.set_override(connector_id, limit_a)

    # -- faults -------------------------------------------------------------------------
    def technician_reset(self, connector_id: int) -> bool:
        """A technician clears latched faults locally (``evse fault reset``; 0 = all).
        Never reachable from the CSMS. False for an unknown connector."""
        if connector_id != 0 and connector_id not in self.connectors:
            return False
        for conn in self.connectors.values():
            if connector_id in (0, conn.id):
                log.warning("connector %d: technician reset of faults", conn.id)
                conn.iec.technician_reset()
                # A station-wide cause still present faults again at once, like any other.
                station_cause = self._station_fault or self.storage_error
                if station_cause is not None:
                    conn.iec.raise_fault(Fault.STATION, station_cause)
        return True

    async def technician_reset_report(self, connector_id: int) -> list[dict[str, Any]] | None:
        """:meth:`technician_reset`, then wait until the hardware re-check ran (RCD reset on
        each EVSE's worker, causes still present raised again) and report per connector
        what was cleared and what is still active and why (``evse fault reset``).

        Each entry: ``{"id", "cleared": [{"fault", "info", "recovery"}], "active": [fault
        entries as in :meth:`describe`]}``; a meter failing while charging continues
        (``meter_failure = "warn"``) is listed as active too. None for an unknown connector.
        """
        targets = [c for c in self.connectors.values() if connector_id in (0, c.id)]
        before = {c.id: list(c.iec.faults.active.values()) for c in targets}
        if not self.technician_reset(connector_id):
            return None
        for conn in targets:
            for _ in range(5):  # a job's result may queue another (unlock after recovery)
                if not conn.iec.jobs_pending:
                    break
                await conn.iec.drain_worker()
        report = []
        for conn in targets:
            active = conn.describe()["faults"]
            if conn.iec.meter_fault is not None and not any(
                    f["fault"] == Fault.METER.value for f in active):
                active.append({"fault": Fault.METER.value, "info": conn.iec.meter_fault,
                               "recovery": "condition", "retry_in_s": None, "trips": 0})
            held = {f["fault"] for f in active}
            report.append({
                "id": conn.id,
                "cleared": [{"fault": e.fault.value, "info": e.info,
                             "recovery": e.recovery.value}
                            for e in before[conn.id] if e.fault.value not in held],
                "active": active,
            })
        return report

    def raise_station_fault(self, info: str) -> None:
        """A station-wide fault (shared RCD, supply, enclosure): every EVSE faults."""
        self._station_fault = info
        for conn in self.connectors.values():
            conn.iec.raise_fault(Fault.STATION, info)

    def clear_station_fault(self) -> None:
        """The station-wide fault is gone: EVSEs recover (unless they hold others, or the
        state database is not writable)."""
        self._station_fault = None
        if self.storage_error is not None:
            return
        for conn in self.connectors.values():
            conn.iec.clear_condition(Fault.STATION)

    async def idle(self) -> None:
        """Wait until no session work (card, start, stop) and no hardware job (lock, RCD)
        is in flight (tests, shutdown)."""
        quiet_turns = 0
        while quiet_turns < 3:  # callbacks posted by the hardware may spawn more work
            await asyncio.sleep(0)
            busy = [t for t in self._tasks if not t.done()]
            workers = [c.iec for c in self.connectors.values() if c.iec.jobs_pending]
            if not busy and not workers:
                quiet_turns += 1
                continue
            quiet_turns = 0
            if busy:
                await asyncio.wait(busy)
            for iec in workers:
                await iec.drain_worker()

    def publish_all_statuses(self) -> None:
        """Re-emit every EVSE's current session state (after a reconnect)."""
        for conn in self.connectors.values():
            conn.publish()

    def describe(self) -> dict[str, Any]:
        """JSON-able state of every EVSE (with each one's active limit source), the shared
        budget, the state storage, background tasks, the reservations (expiry in UTC epoch
        s) and the firmware update / diagnostics upload statuses (``evse status``)."""
        connectors = []
        for conn in self.connectors.values():
            state = conn.describe()
            state["limit_source"] = state["limited_by"]
            applied = self.limits.applied(conn.id)
            state["charging_limit_a"] = None if applied is None else applied.limit_a
            connectors.append(state)
        return {"connectors": connectors, "load_balancing": self.limits.describe(),
                "storage": {"writable": self.storage_error is None,
                            "error": self.storage_error,
                            "unsaved": [what for what, _ in self._unsaved]},
                "tasks": self.supervisor.describe(),
                "readers": self.reader_health.describe(),
                "reservations": [{"reservation_id": r.reservation_id, "evse_id": r.evse_id,
                                  "expires_at": r.expires_at_s}
                                 for r in self.reservations.all()],
                "firmware": None if self.firmware is None else self.firmware.status.value,
                "diagnostics": None if self.diagnostics is None
                else self.diagnostics.status.value}

    async def close(self) -> None:
        """Stop polling, open every contactor, let the hardware workers finish what they
        were asked (an unlock after the last stop; at most 2 s), then stop them."""
        self._running = False
        self.reservations.close()
        self._aligned_timer.cancel()
        for timer in self._sample_timers.values():
            timer.cancel()
        self.limits.stop()
        await self.supervisor.close()
        for task in [*self._tasks, *self._background]:
            task.cancel()
        for conn in self.connectors.values():
            conn.hw.contactor.open()
        for conn in self.connectors.values():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.iec.drain_worker(), 2.0)
            conn.iec.close()
