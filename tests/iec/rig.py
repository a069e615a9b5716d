"""Test rigs for the IEC 61851 behaviour: the simulated board, a manual clock, and either a
bare Connector (events queued like the loop would) or a whole Station on the test's loop.

No CSMS and no sleeping: timers run on :class:`ManualClock`, the Station's meter and
temperature polls are driven by the test (``poll``).
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evse.authorization import AuthorizationStatus, AuthResult
from evse.connector import Connector
from evse.domain import DomainEvent, StatusChanged, TransactionStarted, TransactionStopped
from evse.iec61851 import Iec61851Settings
from evse.station import Station
from evse.timers import ManualClock
from hal.board import Board
from hal.settings import ConnectorSettings, HardwareSettings
from hal.sim.board import SimBoard, SimConnector, create_board


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

    conn: Connector
    board: Board
    clock: ManualClock
    statuses: list[StatusChanged] = field(default_factory=list)
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
        while self.queue:
            func, args = self.queue.popleft()
            func(*args)

    def advance(self, seconds: float) -> None:
        self.drain()
        self.clock.advance(seconds)
        self.drain()

    @property
    def closed(self) -> bool:
        return self.conn.hw.contactor.commanded_closed


def connector_rig(lock: bool = False, ventilation: bool = False,
                  settings: Iec61851Settings | None = None) -> ConnectorRig:
    board = sim_board(lock=lock)
    clock = ManualClock()
    rig: ConnectorRig
    conn = Connector(board.connectors[0], 32.0, lambda: 32.0,
                     lambda e: rig.statuses.append(e), ventilation=ventilation,
                     settings=settings, clock=clock)
    rig = ConnectorRig(conn, board, clock)
    conn.attach(post=rig.post)
    return rig


class AcceptAll:
    """Authorizer for the rigs: every idTag accepted; ``parents`` groups tags."""

    def __init__(self, parents: dict[str, str] | None = None,
                 rejected: frozenset[str] = frozenset()) -> None:
        self.parents = parents or {}
        self.rejected = rejected

    async def authorize(self, id_tag: str) -> AuthResult:
        if id_tag in self.rejected:
            return AuthResult(AuthorizationStatus.INVALID)
        return AuthResult(AuthorizationStatus.ACCEPTED, self.parents.get(id_tag))


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

    def conn(self, connector_id: int = 1) -> Connector:
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
        return [(e.status.value, e.error_code.value) for e in self.events
                if isinstance(e, StatusChanged) and e.connector_id == connector_id]

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
