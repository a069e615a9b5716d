"""OCPP 1.6 Smart Charging profile ↔ the protocol-neutral engine (``evse.smart_charging``).

- ``csChargingProfiles`` / ``chargingProfile`` payloads ↔ :class:`ChargingProfile`
  (OCPP 1.6 §7.7-§7.9; instants ISO 8601 ↔ UTC epoch s);
- the 1.6 acceptance rules of SetChargingProfile (§5.16) and of a profile inside
  RemoteStartTransaction (§5.11), including the limits of the configuration keys
  ChargeProfileMaxStackLevel, ChargingScheduleAllowedChargingRateUnit,
  ChargingScheduleMaxPeriods and MaxChargingProfilesInstalled (§9.4);
- ClearChargingProfile matching (§5.5) and the GetCompositeSchedule response (§5.7).

Payloads may come camelCase (the wire) or snake_case (as the ``ocpp`` library hands them to
handlers, numbers possibly ``Decimal``); produced payloads are camelCase, valid against the
``ocpp`` library's 1.6 JSON schemas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ocpp.charge_point import camel_to_snake_case

from evse.charging_profiles import (
    STATION_EVSE_ID,
    ChargingProfile,
    ChargingSchedule,
    ProfileError,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    Recurrency,
    SchedulePeriod,
    validate_profile,
)
from evse.smart_charging import SmartChargingEngine
from ocpp_client.v16.meter_values import iso_timestamp, parse_timestamp

PURPOSES: dict[str, ProfilePurpose] = {
    "ChargePointMaxProfile": ProfilePurpose.STATION_MAXIMUM,
    "TxDefaultProfile": ProfilePurpose.TX_DEFAULT,
    "TxProfile": ProfilePurpose.TX,
}
PURPOSE_NAMES: dict[ProfilePurpose, str] = {v: k for k, v in PURPOSES.items()}
KINDS: dict[str, ProfileKind] = {
    "Absolute": ProfileKind.ABSOLUTE,
    "Recurring": ProfileKind.RECURRING,
    "Relative": ProfileKind.RELATIVE,
}
KIND_NAMES: dict[ProfileKind, str] = {v: k for k, v in KINDS.items()}
RECURRENCIES: dict[str, Recurrency] = {"Daily": Recurrency.DAILY, "Weekly": Recurrency.WEEKLY}
RECURRENCY_NAMES: dict[Recurrency, str] = {v: k for k, v in RECURRENCIES.items()}

#: ChargingScheduleAllowedChargingRateUnit items (OCPP 1.6 §9.4) ↔ units.
UNIT_ITEMS: dict[str, RateUnit] = {"Current": RateUnit.A, "Power": RateUnit.W}

#: Configuration keys of the Smart Charging profile (OCPP 1.6 §9.4), all read-only, with
#: this implementation's values (what GetConfiguration reports).
CONFIGURATION_KEYS: dict[str, int | str] = {
    "ChargeProfileMaxStackLevel": 8,
    "ChargingScheduleAllowedChargingRateUnit": "Current,Power",
    "ChargingScheduleMaxPeriods": 24,
    "MaxChargingProfilesInstalled": 32,
}

ACCEPTED = "Accepted"
REJECTED = "Rejected"
UNKNOWN = "Unknown"


@dataclass(frozen=True)
class SmartChargingLimits:
    """The limits of OCPP 1.6 §9.4 that SetChargingProfile enforces.

    Attributes:
        max_stack_level: ChargeProfileMaxStackLevel (highest stackLevel accepted).
        allowed_units: ChargingScheduleAllowedChargingRateUnit.
        max_periods: ChargingScheduleMaxPeriods (periods per schedule).
        max_installed: MaxChargingProfilesInstalled.
    """

    max_stack_level: int = 8
    allowed_units: frozenset[RateUnit] = frozenset({RateUnit.A, RateUnit.W})
    max_periods: int = 24
    max_installed: int = 32

    @classmethod
    def from_configuration(cls, values: Mapping[str, int | str]) -> SmartChargingLimits:
        """Read the four keys from ``values`` (missing ones keep :data:`CONFIGURATION_KEYS`).

        Raises:
            ValueError: a value of the wrong form (e.g. an unknown unit item).
        """
        merged = {**CONFIGURATION_KEYS, **values}
        items = [i.strip() for i in str(merged["ChargingScheduleAllowedChargingRateUnit"])
                 .split(",") if i.strip()]
        unknown = [i for i in items if i not in UNIT_ITEMS]
        if unknown or not items:
            raise ValueError("ChargingScheduleAllowedChargingRateUnit must list Current and/or"
                             f" Power, got {merged['ChargingScheduleAllowedChargingRateUnit']!r}")
        return cls(int(merged["ChargeProfileMaxStackLevel"]),
                   frozenset(UNIT_ITEMS[i] for i in items),
                   int(merged["ChargingScheduleMaxPeriods"]),
                   int(merged["MaxChargingProfilesInstalled"]))


@dataclass(frozen=True)
class Decision:
    """The answer to a profile the CSMS sent.

    Attributes:
        status: ``"Accepted"`` or ``"Rejected"`` (ChargingProfileStatus, §7.12).
        profile: the engine profile to install when accepted, else None.
        reason: why it was rejected (for the log), empty when accepted.
    """

    status: str
    profile: ChargingProfile | None = None
    reason: str = ""

    @property
    def accepted(self) -> bool:
        """True when the profile is to be installed."""
        return self.status == ACCEPTED


def _rejected(reason: str) -> Decision:
    return Decision(REJECTED, None, reason)


def _number(value: Any, field: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ProfileError(f"{field} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ProfileError(f"{field} must be finite, got {value!r}")
    return number


def _integer(value: Any, field: str) -> int:
    number = _number(value, field)
    if number != int(number):
        raise ProfileError(f"{field} must be an integer, got {value!r}")
    return int(number)


def _instant(value: Any, field: str) -> float | None:
    if value is None:
        return None
    try:
        return parse_timestamp(str(value))
    except ValueError:
        raise ProfileError(f"{field} must be an ISO 8601 date-time, got {value!r}") from None


def _enum(table: Mapping[str, Any], value: Any, field: str) -> Any:
    if value not in table:
        raise ProfileError(f"{field} must be one of {', '.join(table)}, got {value!r}")
    return table[value]


def profile_from_payload(payload: Mapping[str, Any], connector_id: int) -> ChargingProfile:
    """An OCPP 1.6 ChargingProfile (camelCase or snake_case) for ``connector_id`` → engine
    profile, checked with :func:`evse.charging_profiles.validate_profile`.

    Raises:
        ProfileError: a missing or malformed field, or a rule of §7.7-§7.9 broken.
    """
    try:
        p = camel_to_snake_case(dict(payload))
        s = p["charging_schedule"]
        periods = tuple(
            SchedulePeriod(
                _integer(q["start_period"], "startPeriod"),
                _number(q["limit"], "limit"),
                None if q.get("number_phases") is None
                else _integer(q["number_phases"], "numberPhases"))
            for q in s["charging_schedule_period"])
        schedule = ChargingSchedule(
            unit=_enum({u.value: u for u in RateUnit}, s["charging_rate_unit"],
                       "chargingRateUnit"),
            periods=periods,
            start_at=_instant(s.get("start_schedule"), "startSchedule"),
            duration_s=None if s.get("duration") is None
            else _integer(s["duration"], "duration"),
            min_rate=None if s.get("min_charging_rate") is None
            else _number(s["min_charging_rate"], "minChargingRate"),
        )
        recurrency = p.get("recurrency_kind")
        tx = p.get("transaction_id")
        profile = ChargingProfile(
            profile_id=_integer(p["charging_profile_id"], "chargingProfileId"),
            evse_id=connector_id,
            purpose=_enum(PURPOSES, p["charging_profile_purpose"], "chargingProfilePurpose"),
            stack_level=_integer(p["stack_level"], "stackLevel"),
            kind=_enum(KINDS, p["charging_profile_kind"], "chargingProfileKind"),
            schedule=schedule,
            recurrency=None if recurrency is None
            else _enum(RECURRENCIES, recurrency, "recurrencyKind"),
            valid_from=_instant(p.get("valid_from"), "validFrom"),
            valid_to=_instant(p.get("valid_to"), "validTo"),
            transaction_id=None if tx is None else str(_integer(tx, "transactionId")),
        )
    except KeyError as missing:
        raise ProfileError(f"missing field {missing.args[0]}") from None
    except TypeError as wrong:
        raise ProfileError(f"malformed charging profile: {wrong}") from None
    validate_profile(profile)
    return profile


def _limit(value: float) -> float:
    """A limit on the schema's 0.1 grid (OCPP 1.6 schemas: multipleOf 0.1)."""
    return round(value, 1)


def profile_to_payload(profile: ChargingProfile) -> dict[str, Any]:
    """Engine profile → OCPP 1.6 ChargingProfile (camelCase), e.g. for a test CSMS or a
    diagnostics dump."""
    s = profile.schedule
    schedule: dict[str, Any] = {
        "chargingRateUnit": s.unit.value,
        "chargingSchedulePeriod": [
            {"startPeriod": q.start_s, "limit": _limit(q.limit),
             **({} if q.phases is None else {"numberPhases": q.phases})}
            for q in s.periods],
    }
    if s.duration_s is not None:
        schedule["duration"] = s.duration_s
    if s.start_at is not None:
        schedule["startSchedule"] = iso_timestamp(s.start_at)
    if s.min_rate is not None:
        schedule["minChargingRate"] = _limit(s.min_rate)
    out: dict[str, Any] = {
        "chargingProfileId": profile.profile_id,
        "stackLevel": profile.stack_level,
        "chargingProfilePurpose": PURPOSE_NAMES[profile.purpose],
        "chargingProfileKind": KIND_NAMES[profile.kind],
        "chargingSchedule": schedule,
    }
    if profile.transaction_id is not None:
        out["transactionId"] = int(profile.transaction_id)
    if profile.recurrency is not None:
        out["recurrencyKind"] = RECURRENCY_NAMES[profile.recurrency]
    if profile.valid_from is not None:
        out["validFrom"] = iso_timestamp(profile.valid_from)
    if profile.valid_to is not None:
        out["validTo"] = iso_timestamp(profile.valid_to)
    return out


def check_limits(profile: ChargingProfile, limits: SmartChargingLimits,
                  installed: Sequence[ChargingProfile]) -> str:
    """Why ``profile`` breaks a §9.4 limit, or "" when it does not."""
    if profile.stack_level > limits.max_stack_level:
        return (f"stackLevel {profile.stack_level} above ChargeProfileMaxStackLevel "
                f"{limits.max_stack_level}")
    if profile.schedule.unit not in limits.allowed_units:
        return (f"chargingRateUnit {profile.schedule.unit.value} not in "
                "ChargingScheduleAllowedChargingRateUnit")
    if len(profile.schedule.periods) > limits.max_periods:
        return (f"{len(profile.schedule.periods)} periods above ChargingScheduleMaxPeriods "
                f"{limits.max_periods}")
    remaining = [p for p in installed
                 if p.profile_id != profile.profile_id
                 and (p.evse_id, p.purpose, p.stack_level)
                 != (profile.evse_id, profile.purpose, profile.stack_level)]
    if len(remaining) + 1 > limits.max_installed:
        return f"MaxChargingProfilesInstalled {limits.max_installed} reached"
    return ""


def check_set_charging_profile(connector_id: int, cs_charging_profiles: Mapping[str, Any], *,
                               number_of_connectors: int,
                               running_transaction_id: int | None,
                               limits: SmartChargingLimits,
                               installed: Sequence[ChargingProfile]) -> Decision:
    """Decide a SetChargingProfile.req (OCPP 1.6 §5.16).

    Rules: the connector exists (0 = the Charge Point); ChargePointMaxProfile only on
    connector 0; TxDefaultProfile on 0 or a connector; TxProfile only on a connector with a
    running transaction, whose id it must match when it names one (it is bound to the
    running one otherwise); the §9.4 limits (a replaced profile does not count).

    Args:
        connector_id: the request's connectorId.
        cs_charging_profiles: the request's csChargingProfiles.
        number_of_connectors: connectors of the Charge Point (1..n).
        running_transaction_id: the transaction running on ``connector_id``, if any.
        limits: the §9.4 limits.
        installed: the profiles installed now.
    """
    if not 0 <= connector_id <= number_of_connectors:
        return _rejected(f"unknown connectorId {connector_id}")
    try:
        profile = profile_from_payload(cs_charging_profiles, connector_id)
    except ProfileError as error:
        return _rejected(str(error))
    if profile.purpose is ProfilePurpose.TX:
        if running_transaction_id is None:
            return _rejected(f"TxProfile without a transaction on connector {connector_id}")
        if profile.transaction_id is not None \
                and profile.transaction_id != str(running_transaction_id):
            return _rejected(f"TxProfile for transaction {profile.transaction_id}, running is "
                             f"{running_transaction_id}")
        profile = profile.with_transaction(str(running_transaction_id))
    reason = check_limits(profile, limits, installed)
    return _rejected(reason) if reason else Decision(ACCEPTED, profile)


def check_remote_start_profile(connector_id: int | None, charging_profile: Mapping[str, Any],
                               *, number_of_connectors: int, limits: SmartChargingLimits,
                               installed: Sequence[ChargingProfile]) -> Decision:
    """Decide the chargingProfile of a RemoteStartTransaction.req (OCPP 1.6 §5.11): it must
    be a TxProfile and pass the §9.4 limits. The accepted profile carries no transaction
    id yet: bind it with ``profile.with_transaction(str(transaction_id))`` when the
    transaction starts, then install it. Without a connectorId it is checked for
    connector 1 (the connector the station will pick is not known yet).
    """
    connector = 1 if connector_id is None else connector_id
    if not 1 <= connector <= number_of_connectors:
        return _rejected(f"unknown connectorId {connector_id}")
    try:
        profile = profile_from_payload(charging_profile, connector)
    except ProfileError as error:
        return _rejected(str(error))
    if profile.purpose is not ProfilePurpose.TX:
        return _rejected(f"a RemoteStartTransaction profile must be a TxProfile, got "
                         f"{PURPOSE_NAMES[profile.purpose]}")
    reason = check_limits(profile, limits, installed)
    if reason:
        return _rejected(reason)
    # The transaction id, if the CSMS sent one, cannot be known yet: it is replaced when
    # the transaction starts.
    return Decision(ACCEPTED, ChargingProfile(
        profile.profile_id, profile.evse_id, profile.purpose, profile.stack_level,
        profile.kind, profile.schedule, profile.recurrency, profile.valid_from,
        profile.valid_to, None))


def clear_charging_profile(engine: SmartChargingEngine, id: int | None = None,
                           connector_id: int | None = None,
                           charging_profile_purpose: str | None = None,
                           stack_level: int | None = None) -> str:
    """Apply a ClearChargingProfile.req (OCPP 1.6 §5.5) to ``engine``: by ``id`` alone when
    given, else every profile matching all the given criteria (none given: all profiles).

    Returns:
        ``"Accepted"`` when at least one profile was removed, else ``"Unknown"``
        (ClearChargingProfileStatus, §7.13).
    """
    purpose = None if charging_profile_purpose is None else PURPOSES.get(
        charging_profile_purpose)
    if charging_profile_purpose is not None and purpose is None:
        return UNKNOWN
    gone = engine.clear(profile_id=id, evse_id=connector_id, purpose=purpose,
                        stack_level=stack_level)
    return ACCEPTED if gone else UNKNOWN


def get_composite_schedule(engine: SmartChargingEngine, connector_id: int, duration: int,
                           charging_rate_unit: str | None = None, *,
                           number_of_connectors: int, ceiling_a: float,
                           limits: SmartChargingLimits,
                           now: float | None = None) -> dict[str, Any]:
    """The GetCompositeSchedule.conf payload (OCPP 1.6 §5.7), camelCase.

    Connector 0 gives the Charge Point's schedule (its station maximum). Rejected for an
    unknown connector, a non-positive duration or a unit outside
    ChargingScheduleAllowedChargingRateUnit. The unit defaults to A.

    Args:
        engine: the smart-charging engine.
        connector_id: the request's connectorId.
        duration: the request's duration, s.
        charging_rate_unit: the request's chargingRateUnit ("A" / "W"), if any.
        number_of_connectors: connectors of the Charge Point.
        ceiling_a: the limit where no profile applies (connector rating or station
            maximum), A per phase.
        limits: the §9.4 limits.
        now: the schedule start, UTC epoch s (default: the engine's clock).
    """
    unit = RateUnit.A if charging_rate_unit is None else {
        u.value: u for u in RateUnit}.get(charging_rate_unit)
    if (unit is None or unit not in limits.allowed_units or duration <= 0
            or not STATION_EVSE_ID <= connector_id <= number_of_connectors):
        return {"status": REJECTED}
    composite = engine.composite(connector_id, int(duration), ceiling_a, unit, now)
    return {
        "status": ACCEPTED,
        "connectorId": connector_id,
        "scheduleStart": iso_timestamp(composite.start_at),
        "chargingSchedule": {
            "duration": composite.duration_s,
            "startSchedule": iso_timestamp(composite.start_at),
            "chargingRateUnit": unit.value,
            "chargingSchedulePeriod": [
                {"startPeriod": q.start_s, "limit": _limit(q.limit),
                 "numberPhases": q.phases_or_default}
                for q in composite.periods],
        },
    }
