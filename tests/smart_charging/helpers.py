"""Small builders for charging profiles in tests (plain constructors, no logic under test)."""

from __future__ import annotations

from datetime import UTC, datetime

from evse.charging_profiles import (
    ChargingProfile,
    ChargingSchedule,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    Recurrency,
    SchedulePeriod,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
        second: int = 0) -> float:
    """UTC epoch seconds of a calendar instant."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


#: Sunday 2026-03-01 00:00:00 UTC.
T0 = utc(2026, 3, 1)


def profile(profile_id: int, purpose: ProfilePurpose, periods: list[tuple[int, float]],
            *, evse_id: int = 1, stack_level: int = 0,
            kind: ProfileKind = ProfileKind.ABSOLUTE, start_at: float | None = T0,
            duration_s: int | None = None, unit: RateUnit = RateUnit.A,
            phases: int | None = None, recurrency: Recurrency | None = None,
            valid_from: float | None = None, valid_to: float | None = None,
            transaction_id: str | None = None) -> ChargingProfile:
    """A profile with ``periods`` = [(start offset s, limit)], all with ``phases``."""
    if purpose is ProfilePurpose.STATION_MAXIMUM:
        evse_id = 0
    return ChargingProfile(
        profile_id=profile_id, evse_id=evse_id, purpose=purpose, stack_level=stack_level,
        kind=kind, recurrency=recurrency, valid_from=valid_from, valid_to=valid_to,
        transaction_id=transaction_id,
        schedule=ChargingSchedule(
            unit=unit, start_at=None if kind is ProfileKind.RELATIVE else start_at,
            duration_s=duration_s,
            periods=tuple(SchedulePeriod(s, lim, phases) for s, lim in periods)))
