"""OCPP 1.6 configuration keys (OCPP 1.6 §9): the key table, its ranges, TOML checks.

The store itself (three layers: specification default, ``[ocpp.configuration]`` of the TOML,
CSMS value in the state DB) is :class:`ocpp_client.configuration.ConfigurationStore`.
Ranges keep every value usable where it goes (timers, SQLite, WebSocket pings): seconds are
0..86 400 (one day) unless a key says otherwise.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ocpp_client.configuration import ConfigurationStore, KeyDef, Value, check_defaults
from ocpp_client.v16 import firmware, reservation
from ocpp_client.v16.meter_values import SUPPORTED_MEASURANDS
from ocpp_client.v16.smart_charging import CONFIGURATION_KEYS as SMART_CHARGING_KEYS

__all__ = ["DICTATED", "FEATURE_PROFILES", "KEYS", "PROFILE_KEYS", "Configuration", "KeyDef",
           "check_toml_defaults", "supported_feature_profiles"]

#: One day, s: the longest interval a key may hold.
DAY_S = 86_400


def _csl_of(allowed: tuple[str, ...]) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        items = [v.strip() for v in value.split(",") if v.strip()]
        return all(item in allowed for item in items)

    return check


_MEASURANDS_OK = _csl_of(SUPPORTED_MEASURANDS)

KEYS: dict[str, KeyDef] = {k.name: k for k in [
    # Core profile (OCPP 1.6 §9.1)
    KeyDef("AllowOfflineTxForUnknownId", bool, False),
    KeyDef("AuthorizationCacheEnabled", bool, True),
    KeyDef("AuthorizeRemoteTxRequests", bool, False),
    KeyDef("ClockAlignedDataInterval", int, 0, minimum=0, maximum=DAY_S),
    KeyDef("ConnectionTimeOut", int, 60, minimum=1, maximum=3600),
    KeyDef("GetConfigurationMaxKeys", int, 50, readonly=True),
    KeyDef("HeartbeatInterval", int, 300, minimum=0, maximum=DAY_S),
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
    KeyDef("MeterValueSampleInterval", int, 60, minimum=0, maximum=DAY_S),
    KeyDef("NumberOfConnectors", int, 1, readonly=True),
    KeyDef("ResetRetries", int, 3, minimum=0, maximum=100),
    KeyDef("ConnectorPhaseRotation", str, "0.RST"),
    KeyDef("StopTransactionOnEVSideDisconnect", bool, True),
    KeyDef("StopTransactionOnInvalidId", bool, True),
    KeyDef("StopTxnAlignedData", str, "", check=_MEASURANDS_OK),
    KeyDef("StopTxnSampledData", str, "Energy.Active.Import.Register", check=_MEASURANDS_OK),
    KeyDef("SupportedFeatureProfiles", str,
           "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,"
           "RemoteTrigger",
           readonly=True),
    KeyDef("TransactionMessageAttempts", int, 3, minimum=1, maximum=10_000),
    KeyDef("TransactionMessageRetryInterval", int, 60, minimum=0, maximum=DAY_S),
    KeyDef("UnlockConnectorOnEVSideDisconnect", bool, True),
    # 0 disables pings; a dead link must be found within the hour.
    KeyDef("WebSocketPingInterval", int, 60, minimum=0, maximum=3600),
    # Firmware Management profile (OCPP 1.6 §9.1: SupportedFileTransferProtocols)
    *firmware.KEY_DEFS,
    # Reservation profile (OCPP 1.6 §9.4); the engine honours both values.
    *reservation.key_defs(True),
    # Smart Charging profile (OCPP 1.6 §9.4): read-only, the limits SetChargingProfile
    # enforces (ocpp_client.v16.smart_charging).
    *(KeyDef(name, type(value), value, readonly=True)
      for name, value in SMART_CHARGING_KEYS.items()),
    # Security (1.6 security whitepaper ed. 3, "Configuration keys"). SecurityProfile and
    # AuthorizationKey changes are decided by the security wiring (ChangeConfiguration is
    # handled, not stored directly): the profile may only be raised and is stored after a
    # successful reconnect; the key is write-only and lives in a 0600 file, never here.
    KeyDef("SecurityProfile", int, 0, minimum=0, maximum=3),
    KeyDef("AuthorizationKey", str, "", write_only=True),
    KeyDef("CpoName", str, "", check=lambda v: len(v) <= 64),
    KeyDef("CertificateStoreMaxLength", int, 20, readonly=True, minimum=1, maximum=1000),
    KeyDef("AdditionalRootCertificateCheck", bool, False, readonly=True),
]}

#: Keys whose value must never be in the TOML (a secret: ``[security]`` names its file).
_SECRET_KEYS = {"AuthorizationKey": "[security] authorization_key_file"}

#: The OCPP 1.6 feature profiles (§3), in the order SupportedFeatureProfiles lists them.
FEATURE_PROFILES = ("Core", "FirmwareManagement", "LocalAuthListManagement", "Reservation",
                    "SmartCharging", "RemoteTrigger")

#: Keys that belong to a profile other than Core (OCPP 1.6 §9.2-§9.4): left out (NotSupported,
#: absent from GetConfiguration) when that profile is switched off. Names of keys another
#: module adds later (Smart Charging) may be listed before they exist.
PROFILE_KEYS: dict[str, frozenset[str]] = {
    "FirmwareManagement": frozenset({"SupportedFileTransferProtocols"}),
    "LocalAuthListManagement": frozenset({"LocalAuthListEnabled", "LocalAuthListMaxLength",
                                          "SendLocalListMaxLength"}),
    "Reservation": frozenset({"ReserveConnectorZeroSupported"}),
    "SmartCharging": frozenset({"ChargeProfileMaxStackLevel",
                                "ChargingScheduleAllowedChargingRateUnit",
                                "ChargingScheduleMaxPeriods",
                                "ConnectorSwitch3to1PhaseSupported",
                                "MaxChargingProfilesInstalled"}),
}

#: Read-only keys whose value is what the firmware does: never set in the TOML (the feature
#: profiles come from ``[ocpp] feature_profiles``, the connectors from ``[[connector]]``).
DICTATED = {
    "SupportedFeatureProfiles": "set [ocpp] feature_profiles instead",
    "NumberOfConnectors": "it is the number of [[connector]] tables",
    "SupportedFileTransferProtocols": "it is what the firmware can transfer",
    "GetConfigurationMaxKeys": "it is what the firmware answers",
}


def supported_feature_profiles(enabled: Iterable[str]) -> str:
    """SupportedFeatureProfiles (OCPP 1.6 §9.1.32) for the enabled profiles, in spec order."""
    wanted = set(enabled)
    return ",".join(p for p in FEATURE_PROFILES if p in wanted)


def check_toml_defaults(defaults: Mapping[str, Any]) -> list[str]:
    """Problems with ``[ocpp.configuration]`` values: unknown keys, wrong types, bad values,
    secrets (never in the TOML) and read-only keys whose value the firmware dictates
    (:data:`DICTATED`)."""
    errors = [f"ocpp.configuration.{name}: a secret is never written into the TOML; put it"
              f" in a 0600 file named by {_SECRET_KEYS[name]}"
              for name in defaults if name in _SECRET_KEYS]
    errors += [f"ocpp.configuration.{name}: read-only, cannot be set here: {why}"
               for name, why in DICTATED.items() if name in defaults]
    rest = {k: v for k, v in defaults.items() if k not in _SECRET_KEYS and k not in DICTATED}
    return errors + check_defaults(KEYS, rest, "ocpp.configuration", "1.6")


class Configuration(ConfigurationStore):
    """The OCPP 1.6 configuration keys, backed by the ``ocpp_configuration`` table.

    Args:
        db: state database.
        toml_defaults: ``[ocpp.configuration]`` (validated with :func:`check_toml_defaults`).
        fixed: values the charge point dictates (e.g. NumberOfConnectors).
        feature_profiles: the enabled profiles (``[ocpp] feature_profiles``): the keys of the
            others are left out of GetConfiguration and answer NotSupported to
            ChangeConfiguration (OCPP 1.6 §9); SupportedFeatureProfiles lists these.
    """

    def __init__(self, db: sqlite3.Connection, toml_defaults: Mapping[str, Value],
                 fixed: Mapping[str, Value] | None = None,
                 feature_profiles: Iterable[str] = FEATURE_PROFILES) -> None:
        profiles = frozenset(feature_profiles)
        dictated = {"SupportedFeatureProfiles": supported_feature_profiles(profiles),
                    **(fixed or {})}
        super().__init__(db, KEYS, toml_defaults, dictated, table="ocpp_configuration")
        #: The enabled feature profiles.
        self.feature_profiles = profiles
        #: Keys of switched-off profiles (lower case): not offered to the CSMS.
        self._hidden = {name.lower() for profile, names in PROFILE_KEYS.items()
                        if profile not in profiles for name in names}

    def offered(self, name: str) -> bool:
        """True when ``name`` is a key the CSMS may see (its profile is enabled)."""
        return self.key(name) is not None and name.lower() not in self._hidden

    def describe(self, names: Iterable[str] | None
                 ) -> tuple[list[dict[str, Any]], list[str]]:
        """GetConfiguration.conf content without the keys of switched-off profiles."""
        if not names:
            return super().describe([k for k in self._keys if self.offered(k)])
        wanted = list(names)
        hidden = [n for n in wanted if n.lower() in self._hidden]
        rest = [n for n in wanted if n.lower() not in self._hidden]
        known, unknown = super().describe(rest) if rest else ([], [])
        return known, [*unknown, *hidden]

    def change(self, name: str, text: str) -> str:
        """ChangeConfiguration; NotSupported for a key of a switched-off profile."""
        if self.key(name) is not None and not self.offered(name):
            return "NotSupported"
        return super().change(name, text)
