#!/usr/bin/env python3
"""Make ``tests/data/state-v0.db``: a state database as the first release writes it.

Run once, with the code *before* ``PRAGMA user_version`` existed (commit 3586619), from the
repository root: ``.venv/bin/python tests/data/make_v0_db.py``. It drives the stores of that
release through their own APIs (no hand-written SQL): one finished and one interrupted
session, queued StartTransaction / MeterValues / StopTransaction, a local auth list of
version 7, two authorization cache entries, two configuration keys changed by the CSMS and
connector 2 set Inoperative. ``tests/test_state_db.py`` opens the file with today's code.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from evse.sessions import SessionStore  # noqa: E402
from evse.state_db import DB_NAME, open_state_db  # noqa: E402
from evse.station import Station  # noqa: E402
from hal.sim.board import create_board  # noqa: E402
from ocpp_client.auth_cache import AuthCache  # noqa: E402
from ocpp_client.local_list import LocalList  # noqa: E402
from ocpp_client.queue import KIND_START, KIND_STOP, Outbox, TransactionIds  # noqa: E402
from ocpp_client.v16.configuration import Configuration  # noqa: E402

OUT = Path(__file__).resolve().parent / "state-v0.db"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


async def _availability(db: object) -> None:
    board = create_board({"driver": "sim"}, [
        {"id": 1, "max_current_a": 32.0, "phases": 3, "lock": False},
        {"id": 2, "max_current_a": 16.0, "phases": 1, "lock": False}])
    station = Station(board, {1: 32.0, 2: 16.0}, 32.0, db)  # type: ignore[arg-type]
    assert station.change_availability(2, False) == "accepted"
    board.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = open_state_db(Path(tmp))
        sessions = SessionStore(db)
        done = sessions.begin(1, "04A2B3C4D5E6F7", "FLEET-1", 12_000, T0)
        sessions.record_meter(done, 19_400.0, T0 + 3600)
        sessions.finish(done, "EVDisconnected")
        open_ = sessions.begin(1, "DEADBEEF", None, 19_400, T0 + 7200)
        sessions.record_meter(open_, 21_150.5, T0 + 7800)

        ids = TransactionIds(db)
        ids.set(done.session_id, 4711)
        box = Outbox(db, run_id="v0-run")
        box.put("StartTransaction", {"connectorId": 1, "idTag": "DEADBEEF", "meterStart": 19400,
                                     "timestamp": "2026-01-01T02:00:00Z"},
                1, open_.session_id, kind=KIND_START)
        box.put("MeterValues", {"connectorId": 1, "meterValue": [{
            "timestamp": "2026-01-01T02:10:00Z",
            "sampledValue": [{"value": "21150.5", "measurand": "Energy.Active.Import.Register",
                              "unit": "Wh", "context": "Sample.Periodic"}]}]},
                1, open_.session_id)
        box.put("StopTransaction", {"transactionId": 4711, "meterStop": 19400,
                                    "timestamp": "2026-01-01T01:00:00Z",
                                    "reason": "EVDisconnected"},
                1, done.session_id, kind=KIND_STOP, clock_synced=False)

        local = LocalList(db)
        assert local.update(7, "Full", [
            {"id_tag": "04A2B3C4D5E6F7", "id_tag_info": {"status": "Accepted",
                                                          "parent_id_tag": "FLEET-1"}},
            {"id_tag": "CAFEBABE", "id_tag_info": {"status": "Blocked"}},
            {"id_tag": "0011223344", "id_tag_info": {"status": "Accepted",
                                                      "expiry_date": "2027-01-01T00:00:00Z"}},
        ], 10_000, 1000, lambda text: None if text is None else T0 + 365 * 86400) == "Accepted"

        cache = AuthCache(db)
        cache.update("DEADBEEF", "Accepted", None, T0 + 86400)
        cache.update("BADC0FFEE0", "Invalid", None, None)

        config = Configuration(db, {"HeartbeatInterval": 300})
        assert config.change("MeterValueSampleInterval", "15") == "Accepted"
        assert config.change("HeartbeatInterval", "120") == "Accepted"

        asyncio.run(_availability(db))
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        shutil.copyfile(Path(tmp) / DB_NAME, OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
