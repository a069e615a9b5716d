"""Test rigs for the IEC 61851 behaviour: the simulated board, a manual clock, and either a
bare EVSE (session machine over its IEC 61851 machine; events queued like the loop would) or
a whole Station on the test's loop.

No CSMS and no sleeping: timers run on :class:`ManualClock`, the Station's meter and
temperature polls are driven by the test (``poll``). Statuses are read through the OCPP 1.6
mapping (what a 1.6 CSMS would be told), as snake case: ``("suspended_evse", "no_error")``.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evse.authorization import AuthorizationStatus, AuthResult
from evse.domain import (
    DomainEvent,
    IdToken,
    SessionStateChanged,
    TransactionStarted,
    TransactionStopped,
)
from evse.iec61851 import Iec61851Settings
from evse.iec_machine import IecMachine
from evse.session_machine import SessionMachine
from evse.station import Station
from evse.timers import ManualClock
from hal.board import Board
from hal.settings import ConnectorSettings, HardwareSettings
from hal.sim.board import SimBoard, SimConnector, create_board
from ocpp_client.v16 import mapping


def snake(name: str) -> str:
    """``SuspendedEVSE`` → ``suspended_evse``, ``EVCommunicationError`` →
    ``ev_communication_error``."""
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name)
    return re.sub(r"(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def status16(event: SessionStateChanged) -> tuple[str, str]:
    """The OCPP 1.6 (status, errorCode) of a session state, snake case."""
    status, code = mapping.status_of(event)
    return snake(status.value), snake(code.value)


def reason16(event: TransactionStopped) -> str:
    """The OCPP 1.6 stop Reason of a stopped transaction, snake case."""
    return snake(mapping.stop_reason(event).value)


def sim_board(connectors: int = 1, lock: bool = False, max_current_a: float = 32.0) -> Board:
    """A simulated board with ``connectors`` 3-phase connectors."""
    return create_board(HardwareSettings(driver="sim"), [
        ConnectorSettings(id=i, max_current_a=max_current_a, phases=3, lock=lock)
        for i in range(1, connectors + 1)])


def sim_of(board: Board) -> SimBoard:
    sim = board.simulator
    assert isinstance(sim, SimBoard)
    return sim


@dataclass
class ConnectorRig:
    """One Connector on a sim board; hardware events are queued and run by :meth:`drain`
    the way the loop runs ``call_soon_threadsafe`` callbacks."""

    conn: SessionMachine
    board: Board
    clock: ManualClock
    statuses: list[SessionStateChanged] = field(default_factory=list)
    events: list[DomainEvent] = field(default_factory=list)
    queue: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = field(default_factory=deque)

    @property
    def sim(self) -> SimBoard:
        return sim_of(self.board)

    @property
    def simc(self) -> SimConnector:
        return self.sim.connector(self.conn.id)

    def post(self, func: Callable[..., Any], *args: Any) -> None:
        self.queue.append((func, args))

    def drain(self) -> None:
        """Run the posted events, waiting for the EVSE's hardware worker (lock) too."""
        while True:
            while self.queue:
                func, args = self.queue.popleft()
                func(*args)
            if not self.conn.iec.jobs_pending:
                return
            self.conn.iec.worker.submit(lambda: None).result()

    def advance(self, seconds: float) -> None:
        self.drain()
        self.clock.advance(seconds)
        self.drain()

    @property
    def closed(self) -> bool:
        return self.conn.hw.contactor.commanded_closed

    def status16(self) -> tuple[str, str]:
        """The last state as OCPP 1.6 (status, errorCode)."""
        return status16(self.statuses[-1])

    def state16(self) -> str:
        """The EVSE's current state as the OCPP 1.6 status (snake case)."""
        return snake(mapping.STATUS[self.conn.state].value)

    def record(self, event: DomainEvent) -> None:
        self.events.append(event)
        if isinstance(event, SessionStateChanged):
            self.statuses.append(event)


def connector_rig(lock: bool = False, ventilation: bool = False,
                  settings: Iec61851Settings | None = None) -> ConnectorRig:
    board = sim_board(lock=lock)
    clock = ManualClock()
    rig: ConnectorRig
    iec = IecMachine(board.connectors[0], 32.0, lambda: 32.0, ventilation=ventilation,
                     settings=settings, clock=clock)
    conn = SessionMachine(iec, lambda e: rig.record(e), time.time)
    rig = ConnectorRig(conn, board, clock)
    iec.attach(post=rig.post)
    return rig


class AcceptAll:
    """Authorizer for the rigs: every idTag accepted; ``parents`` groups tags."""

    def __init__(self, parents: dict[str, str] | None = None,
                 rejected: frozenset[str] = frozenset()) -> None:
        self.parents = parents or {}
        self.rejected = rejected

    async def authorize(self, id_token: IdToken) -> AuthResult:
        if id_token.value in self.rejected:
            return AuthResult(AuthorizationStatus.INVALID, id_token=id_token)
        return AuthResult(AuthorizationStatus.ACCEPTED, self.parents.get(id_token.value),
                          id_token=id_token)


@dataclass
class StationRig:
    """A Station on the test's loop with a manual clock and an in-memory state DB."""

    station: Station
    board: Board
    clock: ManualClock
    db: sqlite3.Connection
    events: list[DomainEvent] = field(default_factory=list)

    @property
    def sim(self) -> SimBoard:
        return sim_of(self.board)

    def conn(self, connector_id: int = 1) -> SessionMachine:
        return self.station.connectors[connector_id]

    async def settle(self) -> None:
        await self.station.idle()

    async def advance(self, seconds: float, poll: bool = False) -> None:
        """Advance the clock (firing timers), optionally polling meters each second."""
        await self.settle()
        if not poll:
            self.clock.advance(seconds)
            await self.settle()
            return
        # A poll per second for the first 10 s (over-current, derating act on readings),
        # then one jump: long waits (retry timers) need no readings in between.
        remaining = seconds
        while remaining > 1e-9:
            step = min(1.0, remaining) if seconds - remaining < 10.0 else remaining
            self.clock.advance(step)
            remaining -= step
            await self.poll()

    async def poll(self) -> None:
        for conn in self.station.connectors.values():
            await self.station.poll_once(conn)
        await self.settle()

    def statuses(self, connector_id: int = 1) -> list[tuple[str, str]]:
        """Every state published, as OCPP 1.6 (status, errorCode)."""
        return [status16(e) for e in self.events
                if isinstance(e, SessionStateChanged) and e.connector_id == connector_id]

    def state16(self, connector_id: int = 1) -> str:
        """The EVSE's current state as the OCPP 1.6 status (snake case)."""
        conn = self.conn(connector_id)
        return snake(mapping.STATUS[conn.state].value)

    def last_status(self, connector_id: int = 1) -> tuple[str, str]:
        return self.statuses(connector_id)[-1]

    def started(self) -> list[TransactionStarted]:
        return [e for e in self.events if isinstance(e, TransactionStarted)]

    def stopped(self) -> list[TransactionStopped]:
        return [e for e in self.events if isinstance(e, TransactionStopped)]

    def closed(self, connector_id: int = 1) -> bool:
        return self.conn(connector_id).hw.contactor.commanded_closed

    async def close(self) -> None:
        await self.station.close()
        self.db.close()


async def station_rig(connectors: int = 1, lock: bool = False,
                      settings: Iec61851Settings | None = None,
                      ventilation: frozenset[int] = frozenset(),
                      authorizer: Any = None) -> StationRig:
    board = sim_board(connectors, lock=lock)
    clock = ManualClock()
    db = sqlite3.connect(":memory:", isolation_level=None)
    station = Station(board, {i: 32.0 for i in range(1, connectors + 1)}, 32.0, db,
                      settings=settings, ventilation=ventilation, clock=clock)
    station.authorizer = authorizer or AcceptAll()
    rig = StationRig(station, board, clock, db)
    station.subscribe(rig.events.append)
    await station.start(poll=False)
    await rig.settle()
    return rig
