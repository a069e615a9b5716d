"""Load and validate the TOML configuration (DESIGN.md, Configuration).

``load_config`` is the daemon's loader and the one ``evse config check`` runs. Every error
names the file, the key path, the value found and what was expected; an unknown key names the
closest valid one. A file that cannot be read as UTF-8 TOML (missing, a directory, a symlink
loop, binary, unreadable) is one clear :class:`ConfigError`, never a traceback. A password in
the CSMS URL (``ws://user:password@host/``) is never repeated in a message.

After validation the code reads typed settings (:mod:`evse.settings`, :mod:`hal.settings`,
:class:`evse.iec61851.Iec61851Settings`) that carry the schema's defaults.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import os
import stat
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from evse.config_schema import SCHEMA, Schema
from evse.iec61851 import Iec61851Settings
from evse.settings import (
    LoggingSettings,
    Ocpp201Settings,
    OcppSettings,
    SecuritySettings,
    StationSettings,
    SystemSettings,
)
from hal.settings import ConnectorSettings, HardwareSettings

#: A configuration file larger than this is refused (a TOML config is a few kB), bytes.
MAX_FILE_BYTES = 1024 * 1024
#: Longest path of a Unix socket (``sun_path`` of Linux ``sockaddr_un``, with the NUL), bytes.
MAX_SOCKET_PATH = 107


class ConfigError(Exception):
    """The configuration file is unreadable or invalid; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Config:
    """A validated configuration, typed, with every default filled in.

    ``state_dir`` and ``control_socket`` are resolved paths (relative ones against the config
    file's directory).
    """

    path: Path
    station: StationSettings
    ocpp: OcppSettings
    hardware: HardwareSettings
    connectors: tuple[ConnectorSettings, ...]
    iec61851: Iec61851Settings
    logging: LoggingSettings
    system: SystemSettings
    state_dir: Path
    control_socket: Path
    security: SecuritySettings = dataclasses.field(default_factory=SecuritySettings)
    #: ``[ocpp201]``: OCPP 2.0.1 variable defaults (used when ``[ocpp] version = "2.0.1"``).
    ocpp201: Ocpp201Settings = dataclasses.field(default_factory=Ocpp201Settings)

    @property
    def station_id(self) -> str:
        """``[station] id``: the charge point identity."""
        return self.station.id

    @property
    def ocpp_url(self) -> str:
        """``[ocpp] url``: the CSMS endpoint (may hold a password: see :func:`redact_url`)."""
        return self.ocpp.url

    @property
    def ocpp_version(self) -> str:
        """``[ocpp] version``."""
        return self.ocpp.version


# -- typed settings from validated tables ---------------------------------------------------
T = TypeVar("T")


def _dataclass_in(hint: Any) -> type[Any] | None:
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if dataclasses.is_dataclass(arg) and isinstance(arg, type):
                return arg
    return None


def typed(cls: type[T], table: Mapping[str, Any]) -> T:
    """Build the settings dataclass ``cls`` from a validated table (nested tables become
    their classes, arrays tuples, integral numbers of float keys floats). Keys missing from
    ``table`` take the class's defaults, which are the schema's.

    Raises:
        TypeError: a required key is missing (the schema validation catches that first).
    """
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in table:
            continue
        value, hint = table[f.name], hints[f.name]
        nested = _dataclass_in(hint)
        if nested is not None and isinstance(value, Mapping):
            value = typed(nested, value)
        elif isinstance(value, list):
            value = tuple(value)
        elif hint is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif hint is int and isinstance(value, float):
            value = int(value)  # 3.0: the schema's "integer" accepts it
        kwargs[f.name] = value
    return cls(**kwargs)


# -- messages --------------------------------------------------------------------------------
def redact_url(url: str) -> str:
    """``url`` with the password of its userinfo replaced by ``***`` (for messages, logs)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
    except ValueError:
        head, sep, tail = url.rpartition("@")
        return f"{head.partition('//')[0]}//***@{tail}" if sep else url


def _shown(value: Any) -> str:
    """``repr`` of a value for a message: URLs redacted, long values cut."""
    if isinstance(value, str) and "@" in value and "//" in value:
        value = redact_url(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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
            prefix = _key_path([*error.absolute_path, _shown(key)[1:-1]])
            lines.append(
                f"{file}: {prefix}: unknown key (valid keys: {', '.join(known)}){hint}"
            )
        return lines
    if error.validator == "required":
        return [f"{where}: {error.message}"]
    if isinstance(error.instance, float) and not math.isfinite(error.instance):
        return [f"{where}: found {error.instance!r}, expected a finite number "
                "(NaN and infinities are never in range)"]
    expected = {
        "type": f"type {schema.get('type')}",
        "enum": f"one of {schema.get('enum')}",
        "minimum": f"≥ {schema.get('minimum')} {schema.get('x-unit', '')}".rstrip(),
        "maximum": f"≤ {schema.get('maximum')} {schema.get('x-unit', '')}".rstrip(),
        "pattern": f"text matching {schema.get('pattern')!r}",
        "maxLength": f"at most {schema.get('maxLength')} characters",
        "minLength": f"at least {schema.get('minLength')} characters",
        "minItems": f"at least {schema.get('minItems')} entries",
        "contains": str(schema.get("x-contains", f"an entry matching {schema.get('contains')}")),
        "uniqueItems": "no entry twice",
    }.get(str(error.validator), error.message)
    return [f"{where}: found {_shown(error.instance)}, expected {expected}"]


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


def _finite_number(checker: Any, instance: Any) -> bool:
    """JSON Schema "number", without NaN and ±inf (TOML has them; no setting means them)."""
    if isinstance(instance, bool) or not isinstance(instance, int | float):
        return False
    return not isinstance(instance, float) or math.isfinite(instance)


#: Draft 2020-12 with NaN and infinities outside "number" (and so outside every range).
_Validator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("number", _finite_number),
)


# -- rules across keys -----------------------------------------------------------------------
#: Meter models each bus driver can read.
_METER_MODELS = {
    "modbus-tcp": ("sdm630", "sdm72dm", "abb-b23", "em340", "custom"),
    "modbus-rtu": ("sdm630", "sdm72dm", "abb-b23", "em340", "custom"),
    "can": ("ivt-s", "custom"),
}


def _check_url(url: str, file: Path) -> list[str]:
    """``[ocpp] url``: ws:// or wss://, a host, a valid port, no query or fragment (the
    station id is appended to the path, OCPP-J 1.6 §3.1.1), no spaces."""
    where = f"{file}: ocpp.url: found {_shown(url)}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return [f"{where}, expected a ws:// or wss:// URL ({exc})"]
    if parts.scheme not in ("ws", "wss"):
        return [f"{where}, expected a ws:// or wss:// URL"]
    if not parts.hostname:
        return [f"{where}, expected a host after {parts.scheme}://"]
    if port == 0:
        return [f"{where}, expected a port 1-65535"]
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return [f"{where}, expected no query or fragment (the station id is appended to the "
                "path)"]
    if any(c.isspace() or ord(c) < 32 for c in url):
        return [f"{where}, expected no spaces or control characters"]
    return []


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


def _meter_identity(meter: dict[str, Any]) -> tuple[Any, ...] | None:
    """What makes two connectors' meters the same device (None: cannot be the same)."""
    if meter["driver"] == "modbus-tcp":
        return ("modbus-tcp", meter["host"].lower(), meter["port"], meter["unit_id"])
    if meter["driver"] == "modbus-rtu":
        return ("modbus-rtu", meter["device"], meter["unit_id"])
    if meter["driver"] == "can" and meter["model"] == "ivt-s":
        return ("can", meter["interface"], meter["channel"])
    return None


def _check_consistency(doc: dict[str, Any], file: Path) -> list[str]:
    """Limits and wiring that are each in range but contradict each other.

    A connector rated above ``[station] max_current_a`` is *not* one of them: the station
    limit caps it (a 32 A wallbox on a 16 A supply is a normal installation).
    """
    errors: list[str] = []
    ocpp, iec = doc["ocpp"], doc["iec61851"]
    if ocpp["reconnect_min_s"] > ocpp["reconnect_max_s"]:
        errors.append(f"{file}: ocpp.reconnect_min_s: found {ocpp['reconnect_min_s']}, "
                      f"expected ≤ reconnect_max_s ({ocpp['reconnect_max_s']}) s")
    if iec["overtemp_trip_c"] <= iec["derating_start_c"]:
        errors.append(f"{file}: iec61851.overtemp_trip_c: found {iec['overtemp_trip_c']}, "
                      f"expected above derating_start_c ({iec['derating_start_c']}) °C: "
                      "derating must start before the trip")
    meters: dict[tuple[Any, ...], int] = {}
    rtu_lines: dict[str, tuple[int, tuple[Any, ...]]] = {}
    for index, conn in enumerate(doc["connector"]):
        meter = conn["meter"]
        key = _meter_identity(meter)
        if key is not None:
            if key in meters:
                errors.append(f"{file}: connector[{index}].meter: the same meter as "
                              f"connector[{meters[key]}] ({', '.join(map(str, key))}): each "
                              "connector needs its own")
            meters.setdefault(key, index)
        if meter["driver"] == "modbus-rtu":
            line = (meter["baudrate"], meter["parity"], meter["stopbits"])
            first = rtu_lines.setdefault(meter["device"], (index, line))
            if first[1] != line:
                errors.append(f"{file}: connector[{index}].meter: serial settings {line} "
                              f"differ from connector[{first[0]}] on the same bus "
                              f"{meter['device']!r} {first[1]}")
    if doc["hardware"]["driver"] == "gpio":
        errors.extend(_check_gpio(doc, file))
    return errors


def _check_gpio(doc: dict[str, Any], file: Path) -> list[str]:
    """GPIO board wiring: required pins wired, no pin or ADC channel used twice, PWM
    available for an ADC pilot, a test pin for the per-session RCD self-test."""
    errors: list[str] = []
    used: dict[int, str] = {}
    adc_used: dict[tuple[int, int, int], str] = {}
    adc_chips: dict[tuple[int, int], tuple[str, str]] = {}
    factory = doc["hardware"]["pin_factory"]

    def pin(value: int, name: str, required: bool) -> None:
        if value < 0:
            if required:
                errors.append(f"{file}: {name}: required (a GPIO pin), found -1 (not wired)")
            return
        if value in used:
            errors.append(f"{file}: {name}: GPIO {value} is already {used[value]}")
        used.setdefault(value, name)

    def adc(table: dict[str, Any], name: str) -> None:
        bus = (table["spi_port"], table["spi_device"])
        spot = (*bus, table["adc_channel"])
        if spot in adc_used:
            errors.append(f"{file}: {name}.adc_channel: SPI {bus[0]}.{bus[1]} channel "
                          f"{spot[2]} is already {adc_used[spot]}")
        adc_used.setdefault(spot, f"{name}.adc_channel")
        chip = adc_chips.setdefault(bus, (table["adc_chip"], name))
        if chip[0] != table["adc_chip"]:
            errors.append(f"{file}: {name}.adc_chip: found {table['adc_chip']!r}, but SPI "
                          f"{bus[0]}.{bus[1]} is an {chip[0]} ({chip[1]})")

    for index, conn in enumerate(doc["connector"]):
        gpio = conn["gpio"]
        at = f"connector[{index}].gpio"
        pilot, contactor, rcd, lock = gpio["pilot"], gpio["contactor"], gpio["rcd"], gpio["lock"]
        if pilot["mode"] == "adc":
            pin(pilot["pwm_pin"], f"{at}.pilot.pwm_pin", True)
            adc(pilot, f"{at}.pilot")
            if factory == "native":
                errors.append(f"{file}: {at}.pilot.mode: found 'adc', but [hardware] "
                              "pin_factory = 'native' has no PWM: use mode = 'uart' or a "
                              "PWM-capable factory")
        pin(contactor["pin"], f"{at}.contactor.pin", True)
        pin(contactor["feedback_pin"], f"{at}.contactor.feedback_pin", False)
        pin(rcd["trip_pin"], f"{at}.rcd.trip_pin", True)
        pin(rcd["test_pin"], f"{at}.rcd.test_pin", False)
        pin(rcd["reset_pin"], f"{at}.rcd.reset_pin", False)
        if doc["iec61851"]["rcd_self_test"] == "every_session" and rcd["test_pin"] < 0:
            errors.append(f"{file}: {at}.rcd.test_pin: required for iec61851.rcd_self_test "
                          "= 'every_session' (else every session fails its self-test)")
        if conn["lock"]:
            for key in ("lock_pin", "unlock_pin", "feedback_pin"):
                pin(lock[key], f"{at}.lock.{key}", True)
        if gpio["temperature"]["sensor"] == "adc":
            adc(gpio["temperature"], f"{at}.temperature")
    return errors


def validate_document(document: dict[str, Any], file: Path) -> dict[str, Any]:
    """Validate a parsed TOML document; return it with defaults filled.

    Raises:
        ConfigError: with one line per problem.
    """
    validator = _Validator(SCHEMA)
    errors: list[str] = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path))):
        errors.extend(_describe(error, file))
    if errors:
        raise ConfigError(errors)
    filled: dict[str, Any] = _fill_defaults(SCHEMA, document)
    errors.extend(_check_url(filled["ocpp"]["url"], file))
    errors.extend(_check_backends(filled, file))
    ids = [c["id"] for c in filled["connector"]]
    for index, cid in enumerate(ids):
        if ids.index(cid) != index:
            errors.append(f"{file}: connector[{index}].id: found {cid}, expected a unique id")
    errors.extend(_check_consistency(filled, file))
    if errors:
        raise ConfigError(errors)
    return filled


def _read(file: Path) -> dict[str, Any]:
    """Parse the TOML file; every way it can fail is one ConfigError line."""
    try:
        info = file.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError([f"{file}: is a directory, expected a TOML file"])
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError([f"{file}: not a regular file, expected a TOML file"])
        if info.st_size > MAX_FILE_BYTES:
            raise ConfigError([f"{file}: {info.st_size} bytes, expected a TOML file of at "
                               f"most {MAX_FILE_BYTES} bytes"])
        data = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{file}: file not found"]) from None
    except PermissionError:
        raise ConfigError([f"{file}: cannot be read (permission denied)"]) from None
    except OSError as exc:
        raise ConfigError([f"{file}: cannot be read ({exc.strerror or exc})"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{file}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                           f"{exc.start}): a TOML file is UTF-8"]) from None
    if "\x00" in text:
        raise ConfigError([f"{file}: contains NUL bytes: a binary file, expected TOML text"])
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{file}: not valid TOML: {exc}"]) from None
    except RecursionError:
        raise ConfigError([f"{file}: not valid TOML: arrays or tables nested too deeply"]
                          ) from None
    except ValueError as exc:  # Python refuses integers of more than 4300 digits
        why = ("an integer of more than 4300 digits" if "digits" in str(exc)
               else str(exc)[:200])
        raise ConfigError([f"{file}: not valid TOML: {why}"]) from None


def load_config(path: str | Path) -> Config:
    """Read, validate and type the configuration at ``path``.

    Raises:
        ConfigError: the file is missing, unreadable, not UTF-8 TOML, or invalid (all
            problems listed).
    """
    try:
        file = Path(path).resolve()
    except (OSError, RuntimeError):  # a symlink loop: report it when reading
        file = Path(os.path.abspath(path))
    raw = validate_document(_read(file), file)
    station = typed(StationSettings, raw["station"])
    state_dir = Path(station.state_dir)
    if not state_dir.is_absolute():
        state_dir = (file.parent / state_dir).resolve()
    socket = Path(station.control_socket) if station.control_socket else None
    if socket is None:
        socket = state_dir / "control.sock"
    elif not socket.is_absolute():
        socket = (file.parent / socket).resolve()
    if len(os.fsencode(socket)) > MAX_SOCKET_PATH:
        raise ConfigError([f"{file}: station.control_socket: {socket} is "
                           f"{len(os.fsencode(socket))} bytes long, expected at most "
                           f"{MAX_SOCKET_PATH} (a Unix socket path)"])
    return Config(
        path=file,
        station=station,
        ocpp=typed(OcppSettings, raw["ocpp"]),
        hardware=typed(HardwareSettings, raw["hardware"]),
        connectors=tuple(typed(ConnectorSettings, c) for c in raw["connector"]),
        iec61851=Iec61851Settings.from_table(raw["iec61851"]),
        logging=typed(LoggingSettings, raw["logging"]),
        system=typed(SystemSettings, raw["system"]),
        state_dir=state_dir,
        control_socket=socket,
        security=typed(SecuritySettings, raw["security"]),
        ocpp201=typed(Ocpp201Settings, raw["ocpp201"]),
    )
