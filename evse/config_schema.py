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
        "ventilation": _bool(
            False,
            "Ventilation is available: an EV in state D (+3 V, IEC 61851-1 A.2.2) may be "
            "energized. Without it state D is a fault and the contactor stays open.",
        ),
        "meter": METER,
    },
    "One connector (EVSE outlet).",
    required=["id"],
)

IEC61851 = _table(
    {
        "pwm_off_timeout_s": _num(
            6.0, 0.0, 6.0, "s",
            "PWM withdrawn (stop, pause) while the EV stays in state C: the contactor is forced "
            "open after this long (IEC 61851-1 Table A.6, seq. 10.2: at most 6 s). 0 = open "
            "at once without waiting for the EV to go to B.",
        ),
        "duty_change_interval_s": _num(
            5.0, 5.0, 60.0, "s",
            "Shortest time between two PWM duty changes (IEC 61851-1 A.5.2: the EV has 5 s "
            "to follow a change). Stopping PWM is never delayed.",
        ),
        "state_f_min_s": _num(
            0.3, 0.3, 10.0, "s",
            "Minimum time the pilot stays in state F (−12 V) after a fault before it may "
            "return to +12 V (IEC 61851-1 A.5.3: ≥ 300 ms).",
        ),
        "fault_retry_s": _num(
            30.0, 5.0, 3600.0, "s",
            "Delay before a self-clearing fault (pilot state E, diode, ventilation, "
            "over-current, lock, contactor failed to close) is retried.",
        ),
        "rcd_retry_s": _num(
            300.0, 60.0, 86400.0, "s",
            "Delay before the connector retries after a residual current trip (the RCD "
            "must report clear by then).",
        ),
        "rcd_max_trips": _int(
            3, 1, 10, "trips",
            "Residual current trips after which the fault latches until a technician clears "
            "it (`evse fault reset`); a CSMS command cannot clear it.",
        ),
        "rcd_self_test": {
            "enum": ["every_session", "never"],
            "default": "every_session",
            "description": "RCD self-test before the contactor closes for a session "
            "(IEC 62955 RDC-DD): \"every_session\" or \"never\" (a device testing "
            "itself). A failed test latches a GroundFailure until a technician clears it.",
        },
        "overcurrent_margin_percent": _num(
            10.0, 0.0, 20.0, "%",
            "Over-current tolerance: the EV may draw the offered current plus this share of "
            "it, plus overcurrent_margin_a.",
        ),
        "overcurrent_margin_a": _num(
            0.5, 0.0, 2.0, "A", "Over-current tolerance added to the percentage, amperes."
        ),
        "overcurrent_time_s": _num(
            7.0, 1.0, 10.0, "s",
            "Drawing more than offered current + margins for longer than this stops charging "
            "with OverCurrentFailure.",
        ),
        "derating_start_c": _num(
            60.0, 30.0, 100.0, "°C",
            "Connector temperature at which the offered current starts to be reduced.",
        ),
        "derating_step_c": _num(
            5.0, 1.0, 20.0, "°C", "Each further step of this size reduces the current again."
        ),
        "derating_step_percent": _num(
            25.0, 5.0, 50.0, "%",
            "Reduction per derating step, as a share of the connector's rated current "
            "(below 6 A the connector pauses: SuspendedEVSE).",
        ),
        "overtemp_trip_c": _num(
            80.0, 40.0, 120.0, "°C",
            "Temperature at which the contactor opens at once (HighTemperature fault).",
        ),
        "overtemp_hysteresis_c": _num(
            10.0, 2.0, 30.0, "°C",
            "The HighTemperature fault clears once the temperature is this far below "
            "overtemp_trip_c.",
        ),
        "meter_failure": {
            "enum": ["stop", "continue"],
            "default": "stop",
            "description": "A failing energy meter (PowerMeterFailure): \"stop\" faults the "
            "connector (running transactions stop), \"continue\" keeps charging without "
            "metering and reports the error code with the status.",
        },
    },
    "IEC 61851-1 connector behaviour: timings, fault retry policy, derating. Every timer "
    "is bounded to the range the standard allows.",
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
        "iec61851": IEC61851,
        "logging": LOGGING,
    },
}
