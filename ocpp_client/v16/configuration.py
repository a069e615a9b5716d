"""OCPP 1.6 configuration keys (OCPP 1.6 §9): definitions, TOML defaults, CSMS changes.

Values live in three layers: the specification default here, the technician's default in
``[ocpp.configuration]`` of the TOML, and a value the CSMS set with ChangeConfiguration
(persisted in the state DB). A CSMS value wins until the TOML value for that key changes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ocpp_client.v16.meter_values import SUPPORTED_MEASURANDS

Value = bool | int | str


def _csl_of(allowed: tuple[str, ...]) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        items = [v.strip() for v in value.split(",") if v.strip()]
        return all(item in allowed for item in items)

    return check


@dataclass(frozen=True)
class KeyDef:
    """One configuration key: name as the spec spells it, type, access, default, check."""

    name: str
    type: type
    default: Value
    readonly: bool = False
    reboot_required: bool = False
    check: Callable[[Any], bool] | None = None


_MEASURANDS_OK = _csl_of(SUPPORTED_MEASURANDS)
_NON_NEGATIVE: Callable[[Any], bool] = lambda v: v >= 0  # noqa: E731

KEYS: dict[str, KeyDef] = {k.name: k for k in [
    # Core profile (OCPP 1.6 §9.1)
    KeyDef("AllowOfflineTxForUnknownId", bool, False),
    KeyDef("AuthorizationCacheEnabled", bool, True),
    KeyDef("AuthorizeRemoteTxRequests", bool, False),
    KeyDef("ClockAlignedDataInterval", int, 0, check=_NON_NEGATIVE),
    KeyDef("ConnectionTimeOut", int, 60, check=lambda v: v > 0),
    KeyDef("GetConfigurationMaxKeys", int, 50, readonly=True),
    KeyDef("HeartbeatInterval", int, 300, check=_NON_NEGATIVE),
    KeyDef("LocalAuthorizeOffline", bool, True),
    # Local Auth List Management profile (OCPP 1.6 §9.2)
    KeyDef("LocalAuthListEnabled", bool, True),
    KeyDef("LocalAuthListMaxLength", int, 10000, readonly=True),
    KeyDef("SendLocalListMaxLength", int, 1000, readonly=True),
    KeyDef("LocalPreAuthorize", bool, False),
    KeyDef("MeterValuesAlignedData", str, "Energy.Active.Import.Register", check=_MEASURANDS_OK),
    KeyDef("MeterValuesSampledData", str,
           "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage",
           check=_MEASURANDS_OK),
    KeyDef("MeterValueSampleInterval", int, 60, check=_NON_NEGATIVE),
    KeyDef("NumberOfConnectors", int, 1, readonly=True),
    KeyDef("ResetRetries", int, 3, check=_NON_NEGATIVE),
    KeyDef("ConnectorPhaseRotation", str, "0.RST"),
    KeyDef("StopTransactionOnEVSideDisconnect", bool, True),
    KeyDef("StopTransactionOnInvalidId", bool, True),
    KeyDef("StopTxnAlignedData", str, "", check=_MEASURANDS_OK),
    KeyDef("StopTxnSampledData", str, "Energy.Active.Import.Register", check=_MEASURANDS_OK),
    KeyDef("SupportedFeatureProfiles", str, "Core,LocalAuthListManagement,RemoteTrigger",
           readonly=True),
    KeyDef("TransactionMessageAttempts", int, 3, check=lambda v: v >= 1),
    KeyDef("TransactionMessageRetryInterval", int, 60, check=_NON_NEGATIVE),
    KeyDef("UnlockConnectorOnEVSideDisconnect", bool, True),
    KeyDef("WebSocketPingInterval", int, 60, check=_NON_NEGATIVE),
]}


def _format(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse(key: KeyDef, text: str) -> Value:
    """Parse a ChangeConfiguration string value; ValueError when it does not fit."""
    if key.type is bool:
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"{key.name}: expected true or false")
        return lowered == "true"
    if key.type is int:
        number = int(text.strip())
        if key.check is not None and not key.check(number):
            raise ValueError(f"{key.name}: {number} out of range")
        return number
    if key.check is not None and not key.check(text):
        raise ValueError(f"{key.name}: {text!r} not allowed")
    return text


def check_toml_defaults(defaults: Mapping[str, Any]) -> list[str]:
    """Problems with ``[ocpp.configuration]`` values: unknown keys, wrong types, bad values."""
    import difflib

    errors = []
    for name, value in defaults.items():
        key = KEYS.get(name)
        if key is None:
            close = difflib.get_close_matches(name, KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            errors.append(f"ocpp.configuration.{name}: unknown OCPP 1.6 key{hint}")
            continue
        if type(value) is not key.type:
            toml_type = {bool: "boolean", int: "integer", str: "string"}[key.type]
            errors.append(f"ocpp.configuration.{name}: found {value!r}, expected type "
                          f"{toml_type}")
            continue
        if key.check is not None and not key.check(value):
            errors.append(f"ocpp.configuration.{name}: found {value!r}, not allowed")
    return errors


class Configuration:
    """The live configuration keys, backed by the ``ocpp_configuration`` table.

    Args:
        db: state database.
        toml_defaults: ``[ocpp.configuration]`` (validated with :func:`check_toml_defaults`).
        fixed: values the charge point dictates (e.g. NumberOfConnectors).
    """

    def __init__(self, db: sqlite3.Connection, toml_defaults: Mapping[str, Value],
                 fixed: Mapping[str, Value] | None = None) -> None:
        self._db = db
        self._toml = dict(toml_defaults)
        self._fixed = dict(fixed or {})
        self._listeners: list[Callable[[str, Value], None]] = []
        db.execute(
            "CREATE TABLE IF NOT EXISTS ocpp_configuration ("
            " key TEXT PRIMARY KEY, value TEXT NOT NULL, toml_default TEXT)"
        )
        self._csms: dict[str, Value] = {}
        for name, text, toml_default in db.execute(
            "SELECT key, value, toml_default FROM ocpp_configuration"
        ).fetchall():
            key = KEYS.get(name)
            if key is None:
                continue
            current_toml = _format(self._toml[name]) if name in self._toml else None
            if toml_default != current_toml:
                # The technician changed the TOML value since the CSMS set it: TOML wins.
                db.execute("DELETE FROM ocpp_configuration WHERE key = ?", (name,))
                continue
            try:
                self._csms[name] = _parse(key, text)
            except ValueError:
                continue

    def on_change(self, listener: Callable[[str, Value], None]) -> None:
        """Call ``listener(key, value)`` after a key changes."""
        self._listeners.append(listener)

    def get(self, name: str) -> Value:
        """Effective value of ``name`` (KeyError for unknown keys)."""
        if name in self._fixed:
            return self._fixed[name]
        if name in self._csms:
            return self._csms[name]
        if name in self._toml:
            return self._toml[name]
        return KEYS[name].default

    def get_int(self, name: str) -> int:
        return int(self.get(name))

    def get_bool(self, name: str) -> bool:
        return bool(self.get(name))

    def get_list(self, name: str) -> list[str]:
        return [v.strip() for v in str(self.get(name)).split(",") if v.strip()]

    def describe(self, names: list[str] | None) -> tuple[list[dict[str, Any]], list[str]]:
        """GetConfiguration.conf content: (configurationKey entries, unknownKey names)."""
        wanted = names if names else list(KEYS)
        known, unknown = [], []
        for name in wanted:
            key = KEYS.get(name)
            if key is None:
                unknown.append(name)
                continue
            known.append({
                "key": name,
                "readonly": key.readonly or name in self._fixed,
                "value": _format(self.get(name)),
            })
        return known, unknown

    def change(self, name: str, text: str) -> str:
        """ChangeConfiguration (OCPP 1.6 §5.3): "Accepted", "Rejected", "RebootRequired" or
        "NotSupported" (unknown key)."""
        key = KEYS.get(name)
        if key is None:
            return "NotSupported"
        if key.readonly or name in self._fixed:
            return "Rejected"
        try:
            value = _parse(key, text)
        except ValueError:
            return "Rejected"
        toml_default = _format(self._toml[name]) if name in self._toml else None
        self._db.execute(
            "INSERT OR REPLACE INTO ocpp_configuration (key, value, toml_default)"
            " VALUES (?, ?, ?)",
            (name, _format(value), toml_default),
        )
        self._csms[name] = value
        for listener in self._listeners:
            listener(name, value)
        return "RebootRequired" if key.reboot_required else "Accepted"
