"""The persistent outgoing queue of transaction-related messages (OCPP 1.6 §4.8, §4.7, §4.10).

Guarantees (docs/offline-delivery.md states them for operators):

- **Durable before the session proceeds.** :meth:`Outbox.put` commits (WAL,
  ``synchronous=FULL``) before it returns; the Station wraps the session row and the
  queued message in one commit (:func:`evse.state_db.transaction`).
- **In order per connector.** Each connector's messages leave strictly in the order they
  were queued; connectors take turns (round robin), so one connector's offline backlog
  never starves a live session on another.
- **Exactly once as far as the charge point can know.** A row leaves the queue only after
  the CSMS's CALLRESULT, or when the OCPP 1.6 §4.10 retry rule gives up. Every row keeps
  its CALL's unique id, so a CALL whose CALLRESULT was lost (link cut, power cut) is re-sent
  *identical* — same unique id, same payload — and the CSMS can deduplicate it.
  Acknowledgements of MeterValues are committed in batches (:data:`ACK_BATCH` messages, or
  with the next queued message's commit, at the latest :data:`ACK_DELAY_S` after the first
  one), so a power cut may re-send up to one batch, always as identical re-sends;
  StartTransaction / StopTransaction acknowledgements commit at once.
- **A failing disk loses nothing.** When a commit fails (disk full, I/O error) the rows and
  this object's in-memory state roll back together (:func:`evse.state_db.on_rollback`):
  unsaved acknowledgements stay pending and are committed again later.
- **Bounded.** ``[ocpp] queue_max_messages`` / ``queue_max_mb``; over the bound the
  queue is *thinned* (see :meth:`Outbox._thin`): every second periodic MeterValues of the
  session with the most periodic samples goes first; StartTransaction, StopTransaction and
  each session's first (Transaction.Begin) and newest meter value are never thinned.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sqlite3
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evse.state_db import on_rollback, transaction

log = logging.getLogger(__name__)

#: MeterValues acknowledgements committed together (bounded re-send after a power cut).
ACK_BATCH = 64
#: Longest time an acknowledgement waits for its batch commit, s. Long enough that at a
#: MeterValueSampleInterval up to this the acknowledgements ride with the next sample's
#: commit (one commit per sample, DESIGN.md Persistence) instead of one of their own.
ACK_DELAY_S = 30.0
#: Rows read ahead per connector.
_PREFETCH = 128

#: Message kinds: what thinning may remove (only ``KIND_PERIODIC``).
KIND_START = "start"
KIND_STOP = "stop"
KIND_BEGIN = "meter_begin"
KIND_PERIODIC = "meter_periodic"
KIND_OTHER = "meter_other"


@dataclass(frozen=True)
class QueuedMessage:
    """A queued CALL: ``payload`` holds the call's snake_case keyword arguments."""

    id: int
    action: str
    payload: dict[str, Any]
    connector_id: int
    session_id: int | None
    unique_id: str
    attempts: int
    kind: str = KIND_OTHER
    #: Payload size as stored, bytes.
    size: int = 0


_COLUMNS = ("id, action, payload, connector_id, session_id, unique_id, attempts, kind")


def _row(row: tuple[Any, ...]) -> QueuedMessage:
    return QueuedMessage(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5], row[6],
                         row[7], len(row[2]))


class Outbox:
    """The ``outbox`` table plus the read-ahead and retry state of the sender.

    Args:
        db: the state database (autocommit connection, WAL, synchronous=FULL).
        max_messages: bound in messages (thinning starts above it).
        max_bytes: bound in payload bytes (thinning starts above it).
        run_id: this run's clock id (:attr:`evse.clock.Clock.run_id`).
    """

    def __init__(self, db: sqlite3.Connection, max_messages: int = 100_000,
                 max_bytes: int = 64 * 1024 * 1024, run_id: str = "") -> None:
        self._db = db
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.run_id = run_id
        db.execute(
            """CREATE TABLE IF NOT EXISTS outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                action TEXT NOT NULL,
                payload TEXT NOT NULL,
                connector_id INTEGER NOT NULL,
                session_id INTEGER,
                unique_id TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                created REAL NOT NULL
            )"""
        )
        columns = {r[1] for r in db.execute("PRAGMA table_info(outbox)")}
        for name, decl in (("kind", f"TEXT NOT NULL DEFAULT '{KIND_OTHER}'"),
                           ("clock_run", "TEXT NOT NULL DEFAULT ''"),
                           ("clock_synced", "INTEGER NOT NULL DEFAULT 1")):
            if name not in columns:
                db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {decl}")
        db.execute("CREATE INDEX IF NOT EXISTS outbox_connector ON outbox (connector_id, id)")
        db.execute(
            "CREATE TABLE IF NOT EXISTS outbox_stats (name TEXT PRIMARY KEY, count INTEGER)"
        )
        #: Set whenever a message is queued (the sender waits on it).
        self.changed = asyncio.Event()
        count, size = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM outbox").fetchone()
        self._count, self._bytes = int(count), int(size)
        self._connectors: list[int] = sorted(
            r[0] for r in db.execute("SELECT DISTINCT connector_id FROM outbox"))
        self._heads: dict[int, deque[QueuedMessage]] = {}
        self._fetched: dict[int, int] = {}
        self._blocked_until: dict[int, float] = {}
        self._turn = 0
        self._pending_acks: list[tuple[int, int]] = []  # (id, payload bytes)
        self._first_pending = 0.0
        self._clock_unsynced = False
        self._ack_timer: asyncio.TimerHandle | None = None

    def _undo_on_rollback(self) -> None:
        """Restore counters and pending acknowledgements if the open transaction fails."""
        saved = (self._count, self._bytes, list(self._pending_acks), self._first_pending)

        def undo() -> None:
            self._count, self._bytes, pending, self._first_pending = saved
            self._pending_acks[:] = pending
            self._reset_readahead()
        on_rollback(self._db, undo)

    # -- producing ----------------------------------------------------------------------
    def put(self, action: str, payload: dict[str, Any], connector_id: int,
            session_id: int | None, kind: str = KIND_OTHER, clock_synced: bool = True
            ) -> int:
        """Append a message; it is durable when this returns (or, inside an enclosing
        :func:`~evse.state_db.transaction`, when that commits). Returns its row id.

        ``clock_synced`` False marks timestamps stamped before the clock was synchronized
        (see :meth:`correct_timestamps`).
        """
        text = json.dumps(payload, separators=(",", ":"))
        with transaction(self._db):
            self._undo_on_rollback()
            self._flush_acks()
            cur = self._db.execute(
                "INSERT INTO outbox (action, payload, connector_id, session_id, unique_id,"
                " created, kind, clock_run, clock_synced) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (action, text, connector_id, session_id, str(uuid.uuid4()), time.time(),
                 kind, self.run_id, int(clock_synced)),
            )
            self._count += 1
            self._bytes += len(text)
            if self._count > self.max_messages or self._bytes > self.max_bytes:
                self._thin()
        if connector_id not in self._connectors:
            self._connectors.append(connector_id)
        self.changed.set()
        assert cur.lastrowid is not None
        return cur.lastrowid

    def _thin(self) -> None:
        """Bring the queue under its bound by removing periodic meter values.

        Policy: take the session with the most queued periodic MeterValues and remove
        every second one of them, keeping its oldest and newest; repeat while over the
        bound. StartTransaction, StopTransaction, Transaction.Begin values and other
        meter values are never removed; if only those remain the queue stays over its
        bound (logged) rather than lose a billing-relevant message.
        """
        while self._count > self.max_messages or self._bytes > self.max_bytes:
            row = self._db.execute(
                "SELECT session_id, COUNT(*) AS n FROM outbox WHERE kind = ?"
                " GROUP BY session_id HAVING n > 2 ORDER BY n DESC LIMIT 1",
                (KIND_PERIODIC,)).fetchone()
            if row is None:
                log.warning("outbox over its bound (%d messages, %.1f MB) with nothing left "
                            "to thin: keeping every Start/Stop/first/last message",
                            self._count, self._bytes / 1e6)
                return
            session_id = row[0]
            pending = {i for i, _ in self._pending_acks}
            ids = [r[0] for r in self._db.execute(
                "SELECT id FROM outbox WHERE kind = ? AND session_id IS ? ORDER BY id",
                (KIND_PERIODIC, session_id)) if r[0] not in pending]
            # Keep the oldest (possibly in flight right now) and the newest.
            victims = ids[1:-1:2]
            if not victims:
                return
            removed = 0
            for chunk in range(0, len(victims), 500):
                part = victims[chunk:chunk + 500]
                marks = ",".join("?" * len(part))
                size = self._db.execute(
                    f"SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox WHERE id IN ({marks})",
                    part).fetchone()[0]
                self._db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", part)
                self._bytes -= int(size)
                removed += len(part)
            self._count -= removed
            self._count_stat("thinned", removed)
            log.warning("outbox over its bound: thinned %d periodic MeterValues of session %s",
                        removed, session_id)
            self._reset_readahead()

    # -- consuming ----------------------------------------------------------------------
    def _reset_readahead(self) -> None:
        self._heads.clear()
        self._fetched.clear()

    def _head(self, connector_id: int) -> QueuedMessage | None:
        head = self._heads.get(connector_id)
        if not head:
            after = self._fetched.get(connector_id, 0)
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE connector_id = ? AND id > ?"
                " ORDER BY id LIMIT ?", (connector_id, after, _PREFETCH)).fetchall()
            pending = {i for i, _ in self._pending_acks}
            head = deque(_row(r) for r in rows if r[0] not in pending)
            if rows:
                self._fetched[connector_id] = rows[-1][0]
            self._heads[connector_id] = head
        return head[0] if head else None

    def next_message(self, now: float | None = None) -> tuple[QueuedMessage | None, float]:
        """The next message to send, connectors taking turns, and — when there is none
        ready — how long until a connector's retry wait ends (s; ``inf`` when empty)."""
        now = time.monotonic() if now is None else now
        wait = float("inf")
        n = len(self._connectors)
        for i in range(n):
            cid = self._connectors[(self._turn + i) % n]
            message = self._head(cid)
            if message is None:
                continue
            until = self._blocked_until.get(cid, 0.0)
            if until > now:
                wait = min(wait, until - now)
                continue
            self._turn = (self._turn + i + 1) % n
            return message, 0.0
        return None, wait

    def holds(self, action: str, connector_id: int) -> bool:
        """Whether a message ``action`` of ``connector_id`` is still queued."""
        return self._db.execute(
            "SELECT 1 FROM outbox WHERE connector_id = ? AND action = ? LIMIT 1",
            (connector_id, action)).fetchone() is not None

    def peek(self) -> QueuedMessage | None:
        """The oldest message of all (tests, status)."""
        row = self._db.execute(f"SELECT {_COLUMNS} FROM outbox ORDER BY id LIMIT 1").fetchone()
        return None if row is None else _row(row)

    def done(self, message: QueuedMessage, commit_now: bool = False) -> None:
        """The CSMS answered ``message`` with a CALLRESULT: remove it.

        MeterValues acknowledgements are batched (:data:`ACK_BATCH`, :data:`ACK_DELAY_S`);
        ``commit_now`` commits at once (StartTransaction / StopTransaction), and inside an
        enclosing transaction joins it (e.g. with the transactionId it delivered).
        """
        head = self._heads.get(message.connector_id)
        if head and head[0].id == message.id:
            head.popleft()
        self._blocked_until.pop(message.connector_id, None)
        if not self._pending_acks:
            self._first_pending = time.monotonic()
        self._pending_acks.append((message.id, message.size))
        if (commit_now or len(self._pending_acks) >= ACK_BATCH
                or time.monotonic() - self._first_pending >= ACK_DELAY_S):
            self.flush()
        elif self._ack_timer is None:
            with contextlib.suppress(RuntimeError):  # no loop (tests): next put/flush
                self._ack_timer = asyncio.get_running_loop().call_later(
                    ACK_DELAY_S, self._flush_due)

    def _flush_due(self) -> None:
        self._ack_timer = None
        try:
            self.flush()
        except sqlite3.ProgrammingError:
            return  # the database was closed (shutdown)
        except sqlite3.Error as exc:
            log.warning("acknowledgements not committed (%s): kept, retrying", exc)
            if self._pending_acks:
                self._ack_timer = asyncio.get_running_loop().call_later(
                    ACK_DELAY_S, self._flush_due)

    def flush(self) -> None:
        """Commit pending acknowledgements now; once the queue is empty, give the pages
        it used back to the file system (:meth:`reclaim_space`).

        Raises:
            sqlite3.Error: the commit failed; the acknowledgements stay pending.
        """
        if self._pending_acks:
            with transaction(self._db):
                self._undo_on_rollback()
                self._flush_acks()
        if not self._pending_acks and self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        if not self._pending_acks and self._count == 0:
            self.reclaim_space()

    def reclaim_space(self) -> int:
        """Shrink the database file by its free pages (``PRAGMA incremental_vacuum``, with
        ``auto_vacuum=INCREMENTAL`` set by :func:`evse.state_db.open_state_db`) and
        truncate the WAL: a large offline queue that drained must not keep its megabytes
        on the SD card. Returns the free pages released (0 when there were none)."""
        free = int(self._db.execute("PRAGMA freelist_count").fetchone()[0])
        if free == 0 or self._db.in_transaction:
            return 0
        # sqlite3_exec steps it to the end (one execute() frees a single page).
        self._db.executescript("PRAGMA incremental_vacuum;")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        log.info("outbox empty: %d free page(s) of the state database released", free)
        return free

    def _flush_acks(self) -> None:
        if not self._pending_acks:
            return
        ids = [i for i, _ in self._pending_acks]
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            cur = self._db.execute(
                f"DELETE FROM outbox WHERE id IN ({','.join('?' * len(part))})", part)
            self._count -= cur.rowcount
        self._bytes -= sum(size for _, size in self._pending_acks)
        self._pending_acks.clear()

    @property
    def pending_acks(self) -> int:
        """Acknowledged messages whose removal is not committed yet."""
        return len(self._pending_acks)

    def failed(self, message: QueuedMessage, retry_in_s: float) -> int:
        """Count a failed attempt (CALLERROR / timeout, OCPP 1.6 §4.10) and hold the
        message's connector for ``retry_in_s`` seconds; returns the attempts so far."""
        self._db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", (message.id,))
        attempts = message.attempts + 1
        head = self._heads.get(message.connector_id)
        if head and head[0].id == message.id:
            head[0] = dataclasses.replace(message, attempts=attempts)
        self._blocked_until[message.connector_id] = time.monotonic() + retry_in_s
        return attempts

    def drop(self, message: QueuedMessage, why: str) -> None:
        """Give up on ``message`` (only as OCPP 1.6 §4.10 allows); logged and counted in
        :attr:`dropped`."""
        log.error("dropping %s (session %s, unique id %s): %s", message.action,
                  message.session_id, message.unique_id, why)
        with transaction(self._db):
            self._undo_on_rollback()
            self._flush_acks()
            size = self._db.execute("SELECT LENGTH(payload) FROM outbox WHERE id = ?",
                                    (message.id,)).fetchone()
            self._db.execute("DELETE FROM outbox WHERE id = ?", (message.id,))
            if size is not None:
                self._count -= 1
                self._bytes -= int(size[0])
            self._count_stat("dropped", 1)
        head = self._heads.get(message.connector_id)
        if head and head[0].id == message.id:
            head.popleft()
        self._blocked_until.pop(message.connector_id, None)

    def release(self) -> None:
        """The link went down: forget retry waits and read-ahead (re-read on reconnect).
        Pending acknowledgements are committed, or kept for later if the disk fails."""
        try:
            self.flush()
        except sqlite3.Error as exc:
            log.warning("acknowledgements not committed (%s): kept, retrying", exc)
        self._blocked_until.clear()
        self._reset_readahead()

    # -- clock ----------------------------------------------------------------------------
    def correct_timestamps(self, rewrite: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
        """Rewrite the payloads this run queued before the clock was synchronized
        (``clock_synced`` 0) with ``rewrite`` (which shifts their timestamps); returns the
        number of rows corrected. Rows of earlier runs cannot be corrected (their monotonic
        anchor is gone) and keep their floor-clamped timestamps."""
        self.flush()
        rows = self._db.execute(
            "SELECT id, payload FROM outbox WHERE clock_synced = 0 AND clock_run = ?",
            (self.run_id,)).fetchall()
        with transaction(self._db):
            for row_id, text in rows:
                new = json.dumps(rewrite(json.loads(text)), separators=(",", ":"))
                self._bytes += len(new) - len(text)
                self._db.execute(
                    "UPDATE outbox SET payload = ?, clock_synced = 1 WHERE id = ?",
                    (new, row_id))
        self._reset_readahead()
        return len(rows)

    # -- statistics -----------------------------------------------------------------------
    def _count_stat(self, name: str, n: int) -> None:
        self._db.execute(
            "INSERT INTO outbox_stats VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET count = count + excluded.count", (name, n))

    def _stat(self, name: str) -> int:
        row = self._db.execute("SELECT count FROM outbox_stats WHERE name = ?", (name,))
        found = row.fetchone()
        return int(found[0]) if found else 0

    @property
    def dropped(self) -> int:
        """Messages given up on (§4.10 retries exhausted) since the database was created."""
        return self._stat("dropped")

    @property
    def thinned(self) -> int:
        """Periodic meter values removed by the queue bound since the database was created."""
        return self._stat("thinned")

    @property
    def size_bytes(self) -> int:
        """Payload bytes queued (not yet acknowledged)."""
        return self._bytes

    def __len__(self) -> int:
        return self._count - len(self._pending_acks)


class TransactionIds:
    """Local session id ↔ CSMS transactionId (from StartTransaction.conf)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.execute(
            "CREATE TABLE IF NOT EXISTS transaction_ids"
            " (session_id INTEGER PRIMARY KEY, transaction_id INTEGER NOT NULL)"
        )
        self._cache: dict[int, int] = {}

    def set(self, session_id: int, transaction_id: int) -> None:
        """Remember the CSMS's transactionId of local session ``session_id``."""
        self._db.execute("INSERT OR REPLACE INTO transaction_ids VALUES (?, ?)",
                         (session_id, transaction_id))
        self._cache[session_id] = transaction_id

    def transaction_id(self, session_id: int) -> int | None:
        """The transactionId of ``session_id``, or None before StartTransaction.conf."""
        if session_id in self._cache:
            return self._cache[session_id]
        row = self._db.execute(
            "SELECT transaction_id FROM transaction_ids WHERE session_id = ?", (session_id,)
        ).fetchone()
        if row is None:
            return None
        self._cache[session_id] = int(row[0])
        return int(row[0])

    def session_id(self, transaction_id: int) -> int | None:
        """The newest local session the CSMS knows as ``transaction_id``."""
        row = self._db.execute(
            "SELECT session_id FROM transaction_ids WHERE transaction_id = ?"
            " ORDER BY session_id DESC LIMIT 1", (transaction_id,)
        ).fetchone()
        return None if row is None else int(row[0])
