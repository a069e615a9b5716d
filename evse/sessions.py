"""Durable record of charging sessions, so a power cut never loses one (DESIGN.md, Persistence).

A session row is written before the transaction proceeds and updated with each committed
meter *sample* (not every meter poll: flash wears); a row still open at start-up belongs to
a session the power cut interrupted, and is closed with reason PowerLoss (OCPP 1.6 §4.10
Reason). Its meterStop is the meter's own energy register read at restart when that is
plausible, else the last committed sample; its stop time the later of that sample and the
station's low-rate *alive stamp* (:meth:`SessionStore.stamp_alive`), the last instant the
station is known to have run.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from evse.domain import IdToken, IdTokenType


@dataclass
class Session:
    """A transaction on one connector. Energies in Wh, times UTC epoch seconds."""

    session_id: int
    connector_id: int
    id_tag: str
    parent_id_tag: str | None
    meter_start_wh: int
    start_ts: float
    last_meter_wh: float
    last_ts: float
    #: How the IdToken was presented (kept in memory; a session found after a power cut
    #: has the reader's default).
    id_token_type: IdTokenType = IdTokenType.ISO14443

    @property
    def id_token(self) -> IdToken:
        """The IdToken that started the session."""
        return IdToken(self.id_tag, self.id_token_type)

#: The ``sessions`` table; also the state database's baseline migration
#: (:mod:`evse.state_db`) runs it. A change to the table is a new migration there, never an
#: edit of this text (a board in the field already has the table).
CREATE_SESSIONS = """CREATE TABLE IF NOT EXISTS sessions (
    session_id INTEGER PRIMARY KEY AUTOINCREMENT,
    connector_id INTEGER NOT NULL,
    id_tag TEXT NOT NULL,
    parent_id_tag TEXT,
    meter_start_wh INTEGER NOT NULL,
    start_ts REAL NOT NULL,
    last_meter_wh REAL NOT NULL,
    last_ts REAL NOT NULL,
    stop_reason TEXT
)"""


class SessionStore:
    """The ``sessions`` table of the state database."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.execute(CREATE_SESSIONS)
        db.execute("CREATE TABLE IF NOT EXISTS station_alive"
                   " (id INTEGER PRIMARY KEY CHECK (id = 1), ts REAL NOT NULL)")

    def begin(
        self,
        connector_id: int,
        id_tag: str,
        parent_id_tag: str | None,
        meter_start_wh: int,
        start_ts: float,
    ) -> Session:
        """Persist a new session (fsync'd) and return it with its local id."""
        cur = self._db.execute(
            "INSERT INTO sessions (connector_id, id_tag, parent_id_tag, meter_start_wh,"
            " start_ts, last_meter_wh, last_ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (connector_id, id_tag, parent_id_tag, meter_start_wh, start_ts, meter_start_wh,
             start_ts),
        )
        assert cur.lastrowid is not None
        return Session(cur.lastrowid, connector_id, id_tag, parent_id_tag, meter_start_wh,
                       start_ts, float(meter_start_wh), start_ts)

    def record_meter(self, session: Session, energy_wh: float, ts: float) -> None:
        """Remember the latest committed sample, Wh at UTC epoch s (the meterStop after a
        power cut when the meter keeps no register)."""
        session.last_meter_wh = energy_wh
        session.last_ts = ts
        self._db.execute(
            "UPDATE sessions SET last_meter_wh = ?, last_ts = ? WHERE session_id = ?",
            (energy_wh, ts, session.session_id),
        )

    def set_parent(self, session: Session, parent_id_tag: str) -> None:
        """Record the group (parent IdToken) of a running session, learnt after its start."""
        session.parent_id_tag = parent_id_tag
        self._db.execute("UPDATE sessions SET parent_id_tag = ? WHERE session_id = ?",
                         (parent_id_tag, session.session_id))

    def finish(self, session: Session, reason: str) -> None:
        """Mark the session closed."""
        self._db.execute(
            "UPDATE sessions SET stop_reason = ? WHERE session_id = ?",
            (reason, session.session_id),
        )

    def shift(self, session: Session, correction_s: float) -> None:
        """Move an open session's timestamps by ``correction_s`` (the clock was corrected)."""
        session.start_ts += correction_s
        session.last_ts += correction_s
        self._db.execute(
            "UPDATE sessions SET start_ts = ?, last_ts = ? WHERE session_id = ?",
            (session.start_ts, session.last_ts, session.session_id),
        )

    def stamp_alive(self, ts: float) -> None:
        """Persist "the station ran at ``ts``" (UTC epoch s): the stop time of sessions a
        power cut interrupts later. Always writes a page, so it also probes the disk."""
        self._db.execute("INSERT OR REPLACE INTO station_alive (id, ts) VALUES (1, ?)", (ts,))

    def alive_ts(self) -> float:
        """The last alive stamp (UTC epoch s; 0 when none)."""
        row = self._db.execute("SELECT ts FROM station_alive WHERE id = 1").fetchone()
        return float(row[0]) if row else 0.0

    def latest_ts(self) -> float:
        """The newest timestamp persisted in any session or alive stamp (UTC epoch s;
        0 when none)."""
        row = self._db.execute("SELECT MAX(last_ts) FROM sessions").fetchone()
        newest = float(row[0]) if row and row[0] is not None else 0.0
        return max(newest, self.alive_ts())

    def interrupted(self) -> list[Session]:
        """Sessions left open by a crash or power cut, oldest first."""
        rows = self._db.execute(
            "SELECT session_id, connector_id, id_tag, parent_id_tag, meter_start_wh, start_ts,"
            " last_meter_wh, last_ts FROM sessions WHERE stop_reason IS NULL"
            " ORDER BY session_id"
        ).fetchall()
        return [Session(*row) for row in rows]
