"""Load and validate the TOML configuration (DESIGN.md, Configuration).

``load_config`` is the daemon's loader and the one ``evse config check`` runs. Every error
names the file, the key path, the value found and what was expected; an unknown key names the
closest valid one.
"""

from __future__ import annotations

import copy
import difflib
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from evse.config_schema import SCHEMA, Schema


class ConfigError(Exception):
    """The configuration file is unreadable or invalid; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class ConnectorConfig:
    """A ``[[connector]]`` table; ``raw`` is the full table (with defaults) for hal backends."""

    id: int
    max_current_a: float
    phases: int
    lock: bool
    raw: dict[str, Any]


@dataclass(frozen=True)
class Config:
    """A validated configuration with every default filled in.

    ``raw`` holds the whole document as validated (defaults included); typed fields are the
    keys the core reads.
    """

    path: Path
    station_id: str
    state_dir: Path
    control_socket: Path
    ocpp_url: str
    ocpp_version: str
    connectors: list[ConnectorConfig]
    raw: dict[str, Any] = field(repr=False)

    @property
    def station(self) -> dict[str, Any]:
        return dict(self.raw["station"])

    @property
    def ocpp(self) -> dict[str, Any]:
        return dict(self.raw["ocpp"])

    @property
    def hardware(self) -> dict[str, Any]:
        return dict(self.raw["hardware"])


def _key_path(path: Iterable[Any]) -> str:
    """Render a JSON path the way a TOML user writes it: ``connector[0].meter.driver``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _subschema(path: Iterable[Any]) -> Schema:
    node: Schema = SCHEMA
    for part in path:
        if isinstance(part, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(part, {})
    return node


def _describe(error: ValidationError, file: Path) -> list[str]:
    where = f"{file}: {_key_path(error.absolute_path)}"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(_subschema(error.absolute_path).get("properties", {}))
        lines = []
        for key in error.instance:
            if key in known:
                continue
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            prefix = _key_path([*error.absolute_path, key])
            lines.append(
                f"{file}: {prefix}: unknown key (valid keys: {', '.join(known)}){hint}"
            )
        return lines
    if error.validator == "required":
        return [f"{where}: {error.message}"]
    expected = {
        "type": f"type {schema.get('type')}",
        "enum": f"one of {schema.get('enum')}",
        "minimum": f"≥ {schema.get('minimum')} {schema.get('x-unit', '')}".rstrip(),
        "maximum": f"≤ {schema.get('maximum')} {schema.get('x-unit', '')}".rstrip(),
        "pattern": f"text matching {schema.get('pattern')!r}",
        "maxLength": f"at most {schema.get('maxLength')} characters",
        "minLength": f"at least {schema.get('minLength')} characters",
        "minItems": f"at least {schema.get('minItems')} entries",
    }.get(str(error.validator), error.message)
    return [f"{where}: found {error.instance!r}, expected {expected}"]


def _fill_defaults(schema: Schema, value: Any) -> Any:
    """Return ``value`` with every missing key that has a schema default filled in."""
    if schema.get("type") == "object" and isinstance(value, dict):
        out = dict(value)
        for key, sub in schema.get("properties", {}).items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = _fill_defaults(sub, out[key])
        return out
    if schema.get("type") == "array" and isinstance(value, list):
        return [_fill_defaults(schema.get("items", {}), v) for v in value]
    return value


#: Meter models each bus driver can read.
_METER_MODELS = {
    "modbus-tcp": ("sdm630", "sdm72dm", "abb-b23", "em340", "custom"),
    "modbus-rtu": ("sdm630", "sdm72dm", "abb-b23", "em340", "custom"),
    "can": ("ivt-s", "custom"),
}


def _check_backends(doc: dict[str, Any], file: Path) -> list[str]:
    """Cross-field rules of hardware and meter tables the schema cannot express."""
    errors: list[str] = []
    board = doc["hardware"]["driver"]
    reader = doc["hardware"]["reader"]
    if reader["driver"] != "none" and not reader["device"]:
        errors.append(f"{file}: hardware.reader.device: required for driver = "
                      f"{reader['driver']!r}")
    for index, conn in enumerate(doc["connector"]):
        meter = conn["meter"]
        where = f"{file}: connector[{index}].meter"
        driver = meter["driver"]
        if driver == "sim":
            if board != "sim":
                errors.append(f"{where}.driver: found 'sim', expected a bus meter "
                              f"(modbus-tcp, modbus-rtu, can) with [hardware] driver = {board!r}")
            continue
        if meter["model"] not in _METER_MODELS[driver]:
            errors.append(f"{where}.model: found {meter['model']!r}, expected one of "
                          f"{list(_METER_MODELS[driver])} for driver = {driver!r}")
        if driver == "modbus-tcp" and not meter["host"]:
            errors.append(f"{where}.host: required for driver = 'modbus-tcp'")
        if driver == "modbus-rtu" and not meter["device"]:
            errors.append(f"{where}.device: required for driver = 'modbus-rtu'")
        if meter["model"] == "custom":
            table = meter["custom"] if driver != "can" else meter["signals"]
            name = "custom" if driver != "can" else "signals"
            for quantity in ("energy_active_import", "power_active"):
                if quantity not in table:
                    errors.append(f"{where}.{name}.{quantity}: required for model = 'custom'")
        pilot = conn["gpio"]["pilot"]
        if board == "gpio" and pilot["mode"] == "uart" and not pilot["device"]:
            errors.append(f"{file}: connector[{index}].gpio.pilot.device: required for "
                          "mode = 'uart'")
    return errors


def validate_document(document: dict[str, Any], file: Path) -> dict[str, Any]:
    """Validate a parsed TOML document; return it with defaults filled.

    Raises:
        ConfigError: with one line per problem.
    """
    validator = Draft202012Validator(SCHEMA)
    errors: list[str] = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path))):
        errors.extend(_describe(error, file))
    if errors:
        raise ConfigError(errors)
    filled: dict[str, Any] = _fill_defaults(SCHEMA, document)
    errors.extend(_check_backends(filled, file))
    ids = [c["id"] for c in filled["connector"]]
    for index, cid in enumerate(ids):
        if ids.index(cid) != index:
            errors.append(f"{file}: connector[{index}].id: found {cid}, expected a unique id")
    if errors:
        raise ConfigError(errors)
    return filled


def load_config(path: str | Path) -> Config:
    """Read, validate and type the configuration at ``path``.

    Raises:
        ConfigError: the file is missing, not TOML, or invalid (all problems listed).
    """
    file = Path(path).resolve()
    try:
        with file.open("rb") as fh:
            document = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"{file}: file not found"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{file}: not valid TOML: {exc}"]) from None
    raw = validate_document(document, file)
    station = raw["station"]
    state_dir = Path(station["state_dir"])
    if not state_dir.is_absolute():
        state_dir = (file.parent / state_dir).resolve()
    socket = Path(station["control_socket"]) if station["control_socket"] else None
    if socket is None:
        socket = state_dir / "control.sock"
    elif not socket.is_absolute():
        socket = (file.parent / socket).resolve()
    connectors = [
        ConnectorConfig(
            id=c["id"],
            max_current_a=float(c["max_current_a"]),
            phases=c["phases"],
            lock=c["lock"],
            raw=c,
        )
        for c in raw["connector"]
    ]
    return Config(
        path=file,
        station_id=station["id"],
        state_dir=state_dir,
        control_socket=socket,
        ocpp_url=raw["ocpp"]["url"],
        ocpp_version=raw["ocpp"]["version"],
        connectors=connectors,
        raw=raw,
    )
