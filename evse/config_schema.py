"""The configuration schema: every TOML key, its type, default, unit, range and meaning.

A JSON Schema (draft 2020-12), validated with ``jsonschema``. ``x-unit`` names the unit of a
number. ``docs/configuration.md`` is generated from this table, so docs and code agree.
Hardware-backend tables (``[hardware]`` pins, ``[connector.meter]`` transports) are declared
here too, by the backend's name.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def _num(default: float, minimum: float, maximum: float, unit: str, description: str) -> Schema:
    return {
        "type": "number",
        "default": default,
        "minimum": minimum,
        "maximum": maximum,
        "x-unit": unit,
        "description": description,
    }


def _int(default: int, minimum: int, maximum: int, unit: str, description: str) -> Schema:
    return {
        "type": "integer",
        "default": default,
        "minimum": minimum,
        "maximum": maximum,
        "x-unit": unit,
        "description": description,
    }


def _str(default: str, description: str, **extra: Any) -> Schema:
    return {"type": "string", "default": default, "description": description, **extra}


def _bool(default: bool, description: str) -> Schema:
    return {"type": "boolean", "default": default, "description": description}


def _table(
    properties: dict[str, Schema], description: str, required: list[str] | None = None
) -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "description": description,
        "properties": properties,
        "required": required or [],
        "default": {},
    }


STATION = _table(
    {
        "id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 48,
            "pattern": "^[A-Za-z0-9._:-]+$",
            "description": "Charge point identity; appended to [ocpp] url as OCPP-J requires "
            "(OCPP-J 1.6 §3.1.1). Letters, digits and . _ : - only.",
        },
        "state_dir": _str(
            "/var/lib/evse",
            "Directory for the state database and the control socket; relative paths resolve "
            "against the config file's directory.",
        ),
        "control_socket": _str(
            "",
            "Unix socket for `evse status` / `evse sim`; empty = <state_dir>/control.sock.",
        ),
        "vendor": _str(
            "OpenEVSE-Py", "chargePointVendor in BootNotification (≤ 20 chars).", maxLength=20
        ),
        "model": _str("SimBox", "chargePointModel in BootNotification (≤ 20 chars).", maxLength=20),
        "serial_number": _str(
            "", "chargePointSerialNumber in BootNotification (≤ 25 chars).", maxLength=25
        ),
        "max_current_a": _num(
            32.0, 6.0, 2000.0, "A", "Station / grid limit per phase, shared by all connectors."
        ),
    },
    "The charge point as a whole.",
    required=["id"],
)

OCPP = _table(
    {
        "url": {
            "type": "string",
            "pattern": "^wss?://",
            "description": "CSMS WebSocket endpoint (ws:// or wss://); the station id is "
            "appended to its path.",
        },
        "version": {
            "enum": ["1.6"],
            "default": "1.6",
            "description": "OCPP version spoken: \"1.6\" (OCPP-J 1.6, subprotocol ocpp1.6).",
        },
        "call_timeout_s": _num(
            30.0, 1.0, 600.0, "s", "How long to wait for a CALLRESULT before the CALL fails."
        ),
        "reconnect_min_s": _num(
            1.0, 0.1, 600.0, "s", "Shortest delay between reconnect attempts (backoff floor)."
        ),
        "reconnect_max_s": _num(
            60.0, 0.2, 3600.0, "s", "Longest delay between reconnect attempts (backoff cap)."
        ),
        "queue_max_messages": _int(
            100_000, 100, 10_000_000, "messages",
            "Bound of the durable transaction-message queue. Above it the queue is thinned: "
            "periodic MeterValues of the longest-queued session first (every second one), "
            "never StartTransaction, StopTransaction or a session's first / last meter value "
            "(docs/offline-delivery.md).",
        ),
        "queue_max_mb": _num(
            64.0, 0.1, 4096.0, "MB",
            "Bound of the transaction-message queue in payload megabytes (MiB); thinned as "
            "for queue_max_messages when exceeded.",
        ),
        "configuration": {
            "type": "object",
            "default": {},
            "description": "Defaults for OCPP configuration keys, by the specification's key "
            "names and types (e.g. MeterValueSampleInterval = 60). A key the CSMS changes "
            "overrides it until the value here changes.",
            "additionalProperties": {"type": ["boolean", "integer", "string", "number"]},
        },
    },
    "The link to the CSMS.",
    required=["url"],
)

HARDWARE = _table(
    {
        "driver": {
            "enum": ["sim", "gpio"],
            "default": "sim",
            "description": "Board backend: \"sim\" (simulated board and EVs) or \"gpio\".",
        },
    },
    "The controller board.",
)

METER = _table(
    {
        "driver": {
            "enum": ["sim", "modbus-tcp", "modbus-rtu", "can"],
            "default": "sim",
            "description": "Meter backend; \"sim\" integrates the simulated EV's power.",
        },
    },
    "The connector's energy meter.",
)

CONNECTOR = _table(
    {
        "id": {
            "type": "integer",
            "minimum": 1,
            "maximum": 32,
            "description": "OCPP connectorId (1, 2, ...; 0 is the station).",
        },
        "max_current_a": _num(
            32.0, 6.0, 80.0, "A", "Rated current per phase of the connector and its cable."
        ),
        "phases": _int(3, 1, 3, "phases", "Number of phases wired to the connector."),
        "lock": _bool(False, "A socket outlet with a cable lock (Type 2 socket)."),
        "meter": METER,
    },
    "One connector (EVSE outlet).",
    required=["id"],
)

LOGGING = _table(
    {
        "level": {
            "enum": ["debug", "info", "warning", "error"],
            "default": "info",
            "description": "Log level of the daemon.",
        },
    },
    "Logging.",
)

SCHEMA: Schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["station", "ocpp", "connector"],
    "properties": {
        "station": STATION,
        "ocpp": OCPP,
        "hardware": HARDWARE,
        "connector": {
            "type": "array",
            "minItems": 1,
            "description": "[[connector]] tables, one per connector.",
            "items": CONNECTOR,
        },
        "logging": LOGGING,
    },
}
