"""Charging profiles: the protocol-neutral types of smart charging, and their validation.

A charging profile limits the current (A per phase) or power (W) an EVSE, or the whole
station, may draw over time (OCPP 1.6 §3.13, §7.7-§7.9 ChargingProfile / ChargingSchedule;
OCPP 2.0.1 K01 maps onto the same fields). All instants are UTC epoch seconds; all
schedule offsets are seconds.

The protocol adapters map their enumerations onto :class:`ProfilePurpose` /
:class:`ProfileKind` / :class:`Recurrency` / :class:`RateUnit` and apply their own
protocol limits (e.g. OCPP 1.6 ChargeProfileMaxStackLevel) on top of
:func:`validate_profile`, which checks only what every protocol requires.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

#: Seconds in a day / a week: the recurrence periods of a Recurring profile.
DAY_S = 86_400
WEEK_S = 7 * DAY_S

#: Phases assumed when a schedule period does not say (OCPP 1.6 §7.9 numberPhases default).
DEFAULT_PHASES = 3

#: EVSE id meaning "the whole station" (OCPP 1.6 connectorId 0, OCPP 2.0.1 evseId 0).
STATION_EVSE_ID = 0


class ProfilePurpose(enum.Enum):
    """What a profile is for (OCPP 1.6 §7.8 ChargingProfilePurposeType)."""

    #: Caps the whole station's consumption (1.6 ChargePointMaxProfile); EVSE 0 only.
    STATION_MAXIMUM = "station_maximum"
    #: Applies to every transaction without a transaction-specific profile (TxDefaultProfile).
    TX_DEFAULT = "tx_default"
    #: Applies to one running transaction only (TxProfile); removed when it ends.
    TX = "tx"


class ProfileKind(enum.Enum):
    """How the schedule's start is found (OCPP 1.6 §7.7 ChargingProfileKindType)."""

    #: Periods are offsets from the schedule's start instant.
    ABSOLUTE = "absolute"
    #: The schedule restarts every day / week from its start instant (see :class:`Recurrency`).
    RECURRING = "recurring"
    #: Periods are offsets from the start of the transaction.
    RELATIVE = "relative"


class Recurrency(enum.Enum):
    """Recurrence period of a Recurring profile (OCPP 1.6 §7.46 RecurrencyKindType)."""

    DAILY = "daily"
    WEEKLY = "weekly"

    @property
    def period_s(self) -> int:
        """Length of one recurrence, s (UTC days: no daylight-saving shifts)."""
        return DAY_S if self is Recurrency.DAILY else WEEK_S


class RateUnit(enum.Enum):
    """Unit of a schedule's limits (OCPP 1.6 §7.10 ChargingRateUnitType)."""

    #: Amperes per phase.
    A = "A"
    #: Watts, total over the phases in use.
    W = "W"


class ProfileError(ValueError):
    """A charging profile that no protocol would accept; the message names the field."""


@dataclass(frozen=True)
class SchedulePeriod:
    """One step of a schedule.

    Attributes:
        start_s: offset from the schedule start, s (the first period starts at 0).
        limit: the limit, in the schedule's :class:`RateUnit` (A per phase or W).
        phases: phases that may be used, 1-3; None means :data:`DEFAULT_PHASES`.
    """

    start_s: int
    limit: float
    phases: int | None = None

    @property
    def phases_or_default(self) -> int:
        """``phases``, or 3 when unset (OCPP 1.6 §7.9)."""
        return self.phases if self.phases is not None else DEFAULT_PHASES


@dataclass(frozen=True)
class ChargingSchedule:
    """A schedule (OCPP 1.6 §7.9 ChargingSchedule).

    Attributes:
        unit: unit of every period's limit.
        periods: the steps, ascending ``start_s``, the first at 0.
        start_at: the schedule's start, UTC epoch s (Absolute / Recurring; None for
            Relative, and for an Absolute profile that is relative to the transaction start).
        duration_s: length of the schedule, s; None = until the next recurrence (Recurring)
            or indefinitely, the last period continuing.
        min_rate: minimum rate the EV accepts efficiently, in ``unit`` (advisory).
    """

    unit: RateUnit
    periods: tuple[SchedulePeriod, ...]
    start_at: float | None = None
    duration_s: int | None = None
    min_rate: float | None = None


@dataclass(frozen=True)
class ChargingProfile:
    """A charging profile (OCPP 1.6 §7.7 ChargingProfile).

    Attributes:
        profile_id: the CSMS's id of the profile (unique on the station).
        evse_id: the EVSE it applies to; 0 = the station (station maximum) or every EVSE
            (a transaction default).
        purpose: see :class:`ProfilePurpose`.
        stack_level: precedence within the purpose; the highest applicable one wins.
        kind: see :class:`ProfileKind`.
        schedule: the schedule.
        recurrency: daily / weekly, for a Recurring profile only.
        valid_from: the profile applies from this instant on, UTC epoch s (None = always).
        valid_to: the profile applies until before this instant, UTC epoch s (None = always).
        transaction_id: the transaction a TX profile belongs to (protocol's id as text).
    """

    profile_id: int
    evse_id: int
    purpose: ProfilePurpose
    stack_level: int
    kind: ProfileKind
    schedule: ChargingSchedule
    recurrency: Recurrency | None = None
    valid_from: float | None = None
    valid_to: float | None = None
    transaction_id: str | None = None

    def with_transaction(self, transaction_id: str) -> ChargingProfile:
        """A copy bound to ``transaction_id`` (a TX profile sent with a remote start)."""
        return replace(self, transaction_id=transaction_id)

    def expired(self, now: float) -> bool:
        """True when the profile can never apply again at or after ``now`` (UTC epoch s):
        its validity ended, or its absolute schedule's duration is over."""
        if self.valid_to is not None and self.valid_to <= now:
            return True
        s = self.schedule
        return (self.kind is ProfileKind.ABSOLUTE and s.start_at is not None
                and s.duration_s is not None and s.start_at + s.duration_s <= now)


def _finite(value: float | None) -> bool:
    return value is None or math.isfinite(value)


def validate_profile(profile: ChargingProfile) -> None:
    """Check the rules every protocol shares (OCPP 1.6 §3.13, §7.7-§7.9).

    Raises:
        ProfileError: naming the first violated rule: a station maximum not on EVSE 0 or
            Relative, a TX profile on EVSE 0, a negative EVSE id or stack level, no periods,
            a first period not at 0, periods not strictly ascending, a negative or
            non-finite limit, phases outside 1-3, a Recurring profile without recurrency or
            start, a recurrency on a non-Recurring profile, a non-positive duration,
            ``valid_to`` not after ``valid_from``.
    """
    p, s = profile, profile.schedule
    if p.evse_id < 0:
        raise ProfileError(f"evse_id must be >= 0, got {p.evse_id}")
    if p.stack_level < 0:
        raise ProfileError(f"stack_level must be >= 0, got {p.stack_level}")
    if p.purpose is ProfilePurpose.STATION_MAXIMUM and p.evse_id != STATION_EVSE_ID:
        raise ProfileError("a station maximum profile applies to EVSE 0 only")
    if p.purpose is ProfilePurpose.STATION_MAXIMUM and p.kind is ProfileKind.RELATIVE:
        # Nothing to be relative to (OCPP 2.0.1 K01.FR.38; 1.6 is silent).
        raise ProfileError("a station maximum profile cannot be Relative")
    if p.purpose is ProfilePurpose.TX and p.evse_id == STATION_EVSE_ID:
        raise ProfileError("a transaction profile needs an EVSE, not 0")
    if p.purpose is not ProfilePurpose.TX and p.transaction_id is not None:
        raise ProfileError("only a transaction profile names a transaction")
    if not s.periods:
        raise ProfileError("the schedule has no periods")
    if s.periods[0].start_s != 0:
        raise ProfileError(f"the first period must start at 0 s, got {s.periods[0].start_s}")
    for before, after in zip(s.periods, s.periods[1:], strict=False):
        if after.start_s <= before.start_s:
            raise ProfileError(f"periods must have ascending start offsets: {before.start_s} "
                               f"then {after.start_s}")
    for period in s.periods:
        if not math.isfinite(period.limit) or period.limit < 0:
            raise ProfileError(f"a period limit must be finite and >= 0, got {period.limit}")
        if period.phases is not None and period.phases not in (1, 2, 3):
            raise ProfileError(f"phases must be 1, 2 or 3, got {period.phases}")
    if p.kind is ProfileKind.RECURRING:
        if p.recurrency is None:
            raise ProfileError("a Recurring profile needs a recurrency (daily / weekly)")
        if s.start_at is None:
            raise ProfileError("a Recurring profile needs a schedule start")
    elif p.recurrency is not None:
        raise ProfileError("a recurrency is only allowed on a Recurring profile")
    if s.duration_s is not None and s.duration_s <= 0:
        raise ProfileError(f"the schedule duration must be > 0 s, got {s.duration_s}")
    if s.min_rate is not None and (not math.isfinite(s.min_rate) or s.min_rate < 0):
        raise ProfileError(f"min_rate must be finite and >= 0, got {s.min_rate}")
    if not (_finite(p.valid_from) and _finite(p.valid_to) and _finite(s.start_at)):
        raise ProfileError("instants must be finite")
    if p.valid_from is not None and p.valid_to is not None and p.valid_to <= p.valid_from:
        raise ProfileError("valid_to must be after valid_from")


def to_amperes(limit: float, unit: RateUnit, phases: int, voltage_v: float) -> float:
    """A limit as A per phase: W / (nominal phase voltage × phases) for a power limit.

    Args:
        limit: the limit in ``unit``.
        unit: A or W.
        phases: phases the power is spread over (1-3).
        voltage_v: nominal phase-to-neutral voltage, V (e.g. 230).
    """
    if unit is RateUnit.A:
        return limit
    return limit / (voltage_v * phases)


def from_amperes(current_a: float, unit: RateUnit, phases: int, voltage_v: float) -> float:
    """A current per phase (A) expressed in ``unit``: A × voltage × phases for W."""
    if unit is RateUnit.A:
        return current_a
    return current_a * voltage_v * phases
