"""State database schema versioning: a first-release file opens, migrates and keeps its
rows; a file from a newer release is refused; every step commits with its version."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from evse.sessions import SessionStore
from evse.state_db import (
    DB_NAME,
    MIGRATIONS,
    SCHEMA_VERSION,
    Migration,
    SchemaVersionError,
    migrate,
    open_state_db,
    schema_version,
)
from ocpp_client.auth_cache import AuthCache
from ocpp_client.local_list import LocalList
from ocpp_client.queue import Outbox, TransactionIds
from ocpp_client.v16.configuration import Configuration

V0_DB = Path(__file__).parent / "data" / "state-v0.db"


@pytest.fixture
def v0_dir(tmp_path: Path) -> Path:
    shutil.copyfile(V0_DB, tmp_path / DB_NAME)
    return tmp_path


def test_the_v0_file_is_unversioned() -> None:
    db = sqlite3.connect(V0_DB)
    assert schema_version(db) == 0
    db.close()


def test_a_first_release_db_opens_migrates_and_keeps_every_row(v0_dir: Path) -> None:
    db = open_state_db(v0_dir)
    assert schema_version(db) == SCHEMA_VERSION >= 1

    # The interrupted session is still there to be closed with its last reading.
    [open_session] = SessionStore(db).interrupted()
    assert (open_session.connector_id, open_session.id_tag) == (1, "DEADBEEF")
    assert open_session.meter_start_wh == 19_400
    assert open_session.last_meter_wh == 21_150.5
    assert db.execute("SELECT stop_reason FROM sessions WHERE id_tag = '04A2B3C4D5E6F7'"
                      ).fetchone() == ("EVDisconnected",)

    box = Outbox(db)
    assert len(box) == 3
    first = box.peek()
    assert first is not None and first.action == "StartTransaction"
    assert first.payload["idTag"] == "DEADBEEF"
    assert TransactionIds(db).transaction_id(1) == 4711

    local = LocalList(db)
    assert local.version == 7
    entry = local.get("cafebabe")
    assert entry is not None and entry.status == "Blocked"
    cached = AuthCache(db).get("DEADBEEF")
    assert cached is not None and cached.status == "Accepted"

    config = Configuration(db, {"HeartbeatInterval": 300})
    assert config.get("MeterValueSampleInterval") == 15
    assert config.get("HeartbeatInterval") == 120
    assert db.execute("SELECT operative FROM connector_availability WHERE connector_id = 2"
                      ).fetchone() == (0,)
    db.close()


def test_migrating_twice_changes_nothing(v0_dir: Path) -> None:
    open_state_db(v0_dir).close()
    db = open_state_db(v0_dir)
    assert schema_version(db) == SCHEMA_VERSION
    assert db.execute("SELECT COUNT(*) FROM outbox").fetchone() == (3,)
    db.close()


def test_a_new_db_gets_every_table_of_the_baseline(tmp_path: Path) -> None:
    db = open_state_db(tmp_path)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"sessions", "connector_availability", "outbox", "outbox_stats", "transaction_ids",
            "local_list", "local_list_meta", "auth_cache", "ocpp_configuration"} <= tables
    columns = {r[1] for r in db.execute("PRAGMA table_info(outbox)")}
    assert {"kind", "clock_run", "clock_synced"} <= columns
    db.close()


def test_a_db_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.execute("CREATE TABLE future (x)")
    db.commit()
    db.close()
    with pytest.raises(SchemaVersionError, match=rf"version {SCHEMA_VERSION + 1} was written "
                       rf"by a newer release.*up to {SCHEMA_VERSION}"):
        open_state_db(tmp_path)
    # The file is left as it was: nothing of ours written into it.
    db = sqlite3.connect(tmp_path / DB_NAME)
    assert schema_version(db) == SCHEMA_VERSION + 1
    db.close()


def test_a_later_migration_is_one_registration(v0_dir: Path) -> None:
    steps = (*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "a later table",
                                    ("CREATE TABLE later_table (id INTEGER PRIMARY KEY)",)))
    db = open_state_db(v0_dir)
    assert migrate(db, steps) == len(steps)
    db.execute("INSERT INTO later_table VALUES (1)")
    db.close()


def test_a_failing_step_rolls_back_with_its_version(v0_dir: Path) -> None:
    def broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("power cut")

    db = open_state_db(v0_dir)
    steps = (*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "broken", broken))
    with pytest.raises(RuntimeError):
        migrate(db, steps)
    assert schema_version(db) == SCHEMA_VERSION
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'"
                      ).fetchone() is None
    db.close()


def test_migrations_must_be_numbered_in_order(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    n = len(MIGRATIONS)
    with pytest.raises(ValueError, match=f"expected {n + 1}"):
        migrate(db, (*MIGRATIONS, Migration(n + 2, "gap", ())))
    db.close()


def test_the_daemon_refuses_a_newer_db_with_one_clear_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    db = sqlite3.connect(state / DB_NAME)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.close()
    config = tmp_path / "evse.toml"
    config.write_text('[station]\nid = "CP1"\nstate_dir = "state"\n'
                      '[ocpp]\nurl = "ws://127.0.0.1:9/ocpp"\n'
                      '[hardware]\ndriver = "sim"\n[[connector]]\nid = 1\n')
    done = subprocess.run([sys.executable, "-m", "evse", "run", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert "newer release" in output
    assert "Traceback" not in output


def test_db_files_are_owner_only_whatever_the_umask(v0_dir: Path) -> None:
    old = os.umask(0o000)
    try:
        (v0_dir / DB_NAME).chmod(0o666)  # as a permissive release or copy left it
        db = open_state_db(v0_dir)
        db.execute("INSERT INTO outbox_stats VALUES ('x', 1)")  # -wal and -shm exist now
        fresh = open_state_db(v0_dir / "new")
    finally:
        os.umask(old)
    for path in (v0_dir / DB_NAME, v0_dir / f"{DB_NAME}-wal", v0_dir / f"{DB_NAME}-shm",
                 v0_dir / "new" / DB_NAME, v0_dir / "new" / f"{DB_NAME}-wal"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    db.close()
    fresh.close()
