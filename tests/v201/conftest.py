"""Shared pieces of the 2.0.1 device model tests: a station with two EVSEs on a real SQLite
file, and the ``ocpp`` library's own 2.0.1 JSON schemas to validate every payload."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import ocpp
import pytest
from jsonschema import Draft6Validator

from evse.state_db import open_state_db
from ocpp_client.v201.device_model import AttributeKey, DeviceModel, VariableDef
from ocpp_client.v201.standard_components import (
    ConnectorInfo,
    EvseInfo,
    Features,
    all_definitions,
)
from tests.v201.manual_rig import csms201m, start201  # noqa: F401  (fixtures)
from tests.v201.rig import csms201, run201  # noqa: F401  (fixtures)

SCHEMAS = Path(ocpp.__file__).parent / "v201" / "schemas"

EVSES = (
    EvseInfo(1, 22080.0, 3, (ConnectorInfo(1, "sType2", 3),)),
    EvseInfo(2, 7360.0, 1, (ConnectorInfo(1, "cType2", 1),)),
)


def definitions(features: Features | None = None) -> list[VariableDef]:
    return all_definitions("CP-TEST", 3, EVSES, features or Features())


def assert_valid(action: str, kind: str, payload: Any) -> None:
    """Validate ``payload`` against ``<action><kind>.json`` of the ``ocpp`` library.

    ``kind`` is "Request" or "Response"."""
    schema = json.loads((SCHEMAS / f"{action}{kind}.json").read_text())
    errors = sorted(Draft6Validator(schema).iter_errors(payload), key=str)
    assert not errors, f"{action}{kind}: {errors[0].message} at {list(errors[0].path)}"


ModelFactory = Callable[..., DeviceModel]


@pytest.fixture
def open_model(tmp_path: Path) -> Iterator[ModelFactory]:
    """``open_model(toml_defaults=..., features=...)`` opens the station's device model on
    ``tmp_path/evse.db``; calling it again is a restart on the same file."""
    connections: list[sqlite3.Connection] = []

    def factory(toml_defaults: Mapping[AttributeKey, str] | None = None,
                features: Features | None = None) -> DeviceModel:
        for conn in connections:
            conn.close()
        connections.clear()
        db = open_state_db(tmp_path)
        connections.append(db)
        return DeviceModel(db, definitions(features), toml_defaults)

    yield factory
    for conn in connections:
        conn.close()
