"""The configuration store: keys a CSMS reads and sets, persisted in the state DB.

Version-independent: an adapter passes its key table (:class:`KeyDef` per key; OCPP 1.6
§9 keys in :mod:`ocpp_client.v16.configuration`). Values live in three layers: the
specification default of the key table, the technician's default in ``[ocpp.configuration]``
of the TOML, and a value the CSMS set (persisted). A CSMS value wins until the TOML value for
that key changes.

Every value is parsed and range-checked *before* it is stored (DESIGN.md, Configuration);
a stored value that no longer validates when the daemon starts (an older release stored it,
or the range narrowed) is reported, removed and replaced by the default — never a crash.
Key names are compared case-insensitively (OCPP 1.6 §9: "key names are case-insensitive"),
answers use the spelling of the key table.
"""

from __future__ import annotations

import difflib
import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Value = bool | int | str

#: Longest value a CSMS may set (OCPP 1.6 ChangeConfiguration.req value: CiString500).
MAX_VALUE_LENGTH = 500
#: Integer keys without an explicit maximum stay within 32 bits (OCPP "integer").
INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class KeyDef:
    """One configuration key.

    Args:
        name: as the specification spells it.
        type: bool, int or str.
        default: the specification's (or our) default.
        readonly: the CSMS may not change it.
        reboot_required: ChangeConfiguration answers RebootRequired.
        minimum: smallest int value accepted (inclusive).
        maximum: largest int value accepted (inclusive).
        check: further rule on the parsed value (True = fine).
        write_only: GetConfiguration lists the key without its value (a secret such as
            AuthorizationKey, 1.6 security whitepaper ed. 3).
    """

    name: str
    type: type
    default: Value
    readonly: bool = False
    reboot_required: bool = False
    minimum: int = -INT32_MAX - 1
    maximum: int = INT32_MAX
    check: Callable[[Any], bool] | None = None
    write_only: bool = False


#: A key whose ChangeConfiguration is decided elsewhere (e.g. SecurityProfile: raised only,
#: stored after a successful reconnect): given the value text, returns the answer.
ChangeHandler = Callable[[str], str]


def format_value(value: Value) -> str:
    """The OCPP text form of a value ("true"/"false" for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_value(key: KeyDef, text: str) -> Value:
    """Parse and range-check a value given as text (ChangeConfiguration).

    Raises:
        ValueError: the text is not a value of the key's type, or out of its range.
    """
    if len(text) > MAX_VALUE_LENGTH:
        raise ValueError(f"{key.name}: longer than {MAX_VALUE_LENGTH} characters")
    if key.type is bool:
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"{key.name}: expected true or false")
        return lowered == "true"
    if key.type is int:
        stripped = text.strip()
        # Checked on the text first: int() of thousands of digits is slow or refused.
        if len(stripped) > 12:
            raise ValueError(f"{key.name}: {stripped[:20]}… out of range")
        return check_value(key, int(stripped))
    return check_value(key, text)


def check_value(key: KeyDef, value: Any) -> Value:
    """``value`` if it has the key's type and lies in its range; ValueError otherwise."""
    problem = _problem(key, value)
    if problem:
        raise ValueError(f"{key.name}: {problem}")
    checked: Value = value
    return checked


def _problem(key: KeyDef, value: Any) -> str:
    """What is wrong with ``value`` for ``key`` ("" when nothing)."""
    if type(value) is not key.type:
        return f"{value!r} is not of type {key.type.__name__}"
    number: Any = value
    if key.type is int and not key.minimum <= number <= key.maximum:
        return f"{value} outside {key.minimum}..{key.maximum}"
    if key.check is not None and not key.check(value):
        return f"{value!r} not allowed"
    return ""


def check_defaults(keys: Mapping[str, KeyDef], defaults: Mapping[str, Any], prefix: str,
                   version: str) -> list[str]:
    """Problems with technician defaults (``[ocpp.configuration]``): unknown keys, wrong
    types, values out of range; each names ``prefix.key``."""
    errors = []
    for name, value in defaults.items():
        key = keys.get(name)
        if key is None:
            close = difflib.get_close_matches(name, keys, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            errors.append(f"{prefix}.{name}: unknown OCPP {version} key{hint}")
            continue
        if type(value) is not key.type:
            toml_type = {bool: "boolean", int: "integer", str: "string"}[key.type]
            errors.append(f"{prefix}.{name}: found {value!r}, expected type {toml_type}")
            continue
        problem = _problem(key, value)
        if problem:
            errors.append(f"{prefix}.{name}: found {value!r}, {problem}")
    return errors


class ConfigurationStore:
    """The live configuration keys, backed by one table of the state DB.

    Args:
        db: state database.
        keys: the version's key table, by name.
        toml_defaults: the technician's defaults (validated with :func:`check_defaults`).
        fixed: values the charge point dictates (e.g. NumberOfConnectors).
        table: the DB table.
    """

    def __init__(self, db: sqlite3.Connection, keys: Mapping[str, KeyDef],
                 toml_defaults: Mapping[str, Value], fixed: Mapping[str, Value] | None = None,
                 table: str = "ocpp_configuration") -> None:
        self._db = db
        self._keys = dict(keys)
        self._by_lower = {name.lower(): key for name, key in self._keys.items()}
        self._toml = dict(toml_defaults)
        self._fixed = dict(fixed or {})
        self._table = table
        self._listeners: list[Callable[[str, Value], None]] = []
        self._handlers: dict[str, ChangeHandler] = {}
        db.execute(f"CREATE TABLE IF NOT EXISTS {table} ("
                   " key TEXT PRIMARY KEY, value TEXT NOT NULL, toml_default TEXT)")
        self._csms: dict[str, Value] = {}
        for name, text, toml_default in db.execute(
                f"SELECT key, value, toml_default FROM {table}").fetchall():
            key = self.key(name)
            if key is None:
                continue
            if toml_default != self._toml_text(key.name):
                # The technician changed the TOML value since the CSMS set it: TOML wins.
                db.execute(f"DELETE FROM {table} WHERE key = ?", (name,))
                continue
            try:
                self._csms[key.name] = parse_value(key, text)
            except ValueError as exc:
                log.warning("configuration key %s: stored value %.40r is not valid (%s); "
                            "using the default %s", key.name, text, exc,
                            format_value(self._default(key.name)))
                db.execute(f"DELETE FROM {table} WHERE key = ?", (name,))

    def _toml_text(self, name: str) -> str | None:
        return format_value(self._toml[name]) if name in self._toml else None

    def key(self, name: str) -> KeyDef | None:
        """The key definition of ``name`` (any letter case), or None if unknown."""
        return self._by_lower.get(name.lower())

    def on_change(self, listener: Callable[[str, Value], None]) -> None:
        """Call ``listener(key, value)`` after a key changes."""
        self._listeners.append(listener)

    def handle_change(self, name: str, handler: ChangeHandler) -> None:
        """ChangeConfiguration of ``name`` is answered by ``handler(text)`` instead of
        being stored (the handler stores with :meth:`store` when, and if, it should)."""
        key = self.key(name)
        if key is None:
            raise KeyError(name)
        self._handlers[key.name] = handler

    def _default(self, name: str) -> Value:
        return self._toml[name] if name in self._toml else self._keys[name].default

    def get(self, name: str) -> Value:
        """Effective value of ``name`` (KeyError for unknown keys)."""
        key = self.key(name)
        if key is None:
            raise KeyError(name)
        name = key.name
        if name in self._fixed:
            return self._fixed[name]
        if name in self._csms:
            return self._csms[name]
        return self._default(name)

    def get_int(self, name: str) -> int:
        return int(self.get(name))

    def get_bool(self, name: str) -> bool:
        return bool(self.get(name))

    def get_list(self, name: str) -> list[str]:
        """A comma-separated list value, items stripped, empty items dropped."""
        return [v.strip() for v in str(self.get(name)).split(",") if v.strip()]

    def describe(self, names: Iterable[str] | None
                 ) -> tuple[list[dict[str, Any]], list[str]]:
        """GetConfiguration.conf content: (configurationKey entries, unknownKey names)."""
        wanted = list(names) if names else list(self._keys)
        known, unknown = [], []
        for name in wanted:
            key = self.key(name)
            if key is None:
                unknown.append(name)
                continue
            entry: dict[str, Any] = {
                "key": key.name,
                "readonly": key.readonly or key.name in self._fixed,
            }
            if not key.write_only:
                entry["value"] = format_value(self.get(key.name))
            known.append(entry)
        return known, unknown

    def change(self, name: str, text: str) -> str:
        """ChangeConfiguration (OCPP 1.6 §5.3): "Accepted", "Rejected" (read-only key, or a
        value that does not parse or is out of range), "RebootRequired" or "NotSupported"
        (unknown key). Only a valid value is stored."""
        key = self.key(name)
        if key is None:
            return "NotSupported"
        if key.readonly or key.name in self._fixed:
            return "Rejected"
        handler = self._handlers.get(key.name)
        if handler is not None:
            return handler(text)
        return self.store(key.name, text)

    def store(self, name: str, text: str) -> str:
        """Parse, range-check and persist ``text`` as the CSMS value of ``name`` (no
        change handler consulted): "Accepted", "RebootRequired", "Rejected" (invalid) or
        "NotSupported" (unknown key)."""
        key = self.key(name)
        if key is None:
            return "NotSupported"
        try:
            value = parse_value(key, text)
        except ValueError as exc:
            # A write-only key's value is a secret: its error text is not logged.
            log.warning("ChangeConfiguration %s rejected: %s", key.name,
                        "invalid value" if key.write_only else exc)
            return "Rejected"
        self._db.execute(
            f"INSERT OR REPLACE INTO {self._table} (key, value, toml_default) VALUES (?, ?, ?)",
            (key.name, format_value(value), self._toml_text(key.name)),
        )
        self._csms[key.name] = value
        for listener in self._listeners:
            listener(key.name, value)
        return "RebootRequired" if key.reboot_required else "Accepted"
