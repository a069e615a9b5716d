"""The state directory is 0700 and the database files 0600 whatever the umask: the DB holds
the local authorization list and the transactions (issue 15, "State files")."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from evse.state_db import DB_NAME, open_state_db


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The loosest umask a careless shell or unit could give the daemon."""
    old = os.umask(0)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
@pytest.mark.parametrize("existing_mode", [None, 0o777, 0o755])
def test_modes_whatever_the_umask(tmp_path: Path, existing_mode: int | None) -> None:
    state = tmp_path / "state"
    if existing_mode is not None:  # a directory made earlier by hand or by an old version
        state.mkdir()
        os.chmod(state, existing_mode)
    conn = open_state_db(state)
    try:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
        files = sorted(p.name for p in state.iterdir())
        assert files == [DB_NAME, f"{DB_NAME}-shm", f"{DB_NAME}-wal"]
        assert mode(state) == 0o700
        for name in files:
            assert mode(state / name) == 0o600, name
    finally:
        conn.close()


@pytest.mark.usefixtures("open_umask")
def test_existing_loose_db_is_tightened(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / DB_NAME).touch(mode=0o666)
    os.chmod(state / DB_NAME, 0o666)
    open_state_db(state).close()
    assert mode(state / DB_NAME) == 0o600
