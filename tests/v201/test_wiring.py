"""The 2.0.1 adapter's wiring into the daemon: its tables in the state database's migration
list, ``[ocpp201.variables]`` checked by the daemon's loader, the adapter chosen by
``[ocpp] version``."""

from __future__ import annotations

from pathlib import Path

import pytest

from evse.config import ConfigError
from evse.daemon import PROTOCOL_ADAPTERS, load_checked_config
from evse.state_db import (
    MIGRATIONS,
    OCPP201_BOOT_SQL,
    OCPP201_TRANSACTIONS_SQL,
    OCPP201_VARIABLES_SQL,
    open_state_db,
)
from ocpp_client.v201 import device_model, transactions
from ocpp_client.v201.adapter import BOOT_TABLE_SQL

from .rig import write_config_201


def test_migration_sql_equals_the_modules_tables() -> None:
    assert OCPP201_VARIABLES_SQL == device_model.CREATE_TABLE_SQL
    assert OCPP201_TRANSACTIONS_SQL == transactions.CREATE_TABLE_SQL
    assert OCPP201_BOOT_SQL == BOOT_TABLE_SQL
    registered = [step for m in MIGRATIONS if not callable(m.apply) for step in m.apply]
    assert {OCPP201_VARIABLES_SQL, OCPP201_TRANSACTIONS_SQL, OCPP201_BOOT_SQL} <= set(registered)


def test_a_fresh_database_has_the_201_tables(tmp_path: Path) -> None:
    db = open_state_db(tmp_path)
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert {"ocpp201_variable_attributes", "ocpp201_transactions", "ocpp201_boot"} <= names


def test_version_201_selects_the_201_package() -> None:
    assert PROTOCOL_ADAPTERS["2.0.1"] == "ocpp_client.v201"


def test_bad_variable_defaults_are_config_errors(tmp_path: Path) -> None:
    path = write_config_201(tmp_path, "ws://127.0.0.1:9/", variables=(
        '"OCPPCommCtrlr.HeartbeatIntervall" = 30\n'
        '"TxCtrlr.TxStartPoint" = "Sometime"'))
    with pytest.raises(ConfigError) as info:
        load_checked_config(str(path))
    text = "\n".join(info.value.errors)
    assert str(path) in text
    assert "HeartbeatIntervall" in text and "did you mean" in text
    assert "TxStartPoint" in text and "Sometime" in text


def test_good_variable_defaults_load(tmp_path: Path) -> None:
    config = load_checked_config(str(write_config_201(tmp_path, "ws://127.0.0.1:9/",
                                                      variables='"TxCtrlr.TxStopPoint" = '
                                                      '"EVConnected"')))
    assert config.ocpp_version == "2.0.1"
    assert config.ocpp201.variables["TxCtrlr.TxStopPoint"] == "EVConnected"
