"""The composite schedule: which limit applies to an EVSE at an instant and over a window.

Rules (OCPP 1.6 §3.13.2-§3.13.5; OCPP 2.0.1 K08 is the same):

- within one purpose the applicable profile with the highest stack level wins; a profile
  applies at an instant when it is valid then and its schedule covers the instant (after
  the start, before the end of its duration); when the winner's schedule is over, the next
  lower stack level applies. Between a transaction default on the EVSE and one on EVSE 0
  with the same stack level, the EVSE's own wins;
- a transaction profile (for the running transaction) overrides the transaction default;
- the station maximum caps the result;
- W ↔ A by the period's number of phases (limited to the phases the EV uses, when known)
  and a nominal phase voltage.

Pure functions of the installed profiles and the transaction context; instants are UTC
epoch seconds, currents A per phase. The result says when it changes next, so a caller can
arm one timer for the next period boundary instead of polling.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from evse.charging_profiles import (
    DEFAULT_PHASES,
    STATION_EVSE_ID,
    ChargingProfile,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    SchedulePeriod,
    from_amperes,
    to_amperes,
)

#: How far ahead :func:`limit_at` looks for the next change, s (a week and a day, so a
#: weekly recurrence is always seen).
LOOKAHEAD_S = 8 * 86_400


@dataclass(frozen=True)
class TransactionContext:
    """The transaction running on an EVSE, as the composite schedule needs it.

    Attributes:
        transaction_id: the protocol's transaction id, as text.
        started_at: when it started, UTC epoch s (the start of Relative schedules).
    """

    transaction_id: str
    started_at: float


@dataclass(frozen=True)
class ActiveLimit:
    """The composite limit of an EVSE at one instant.

    Attributes:
        limit_a: A per phase; None when no profile applies (no limit from smart charging).
        phases: phases of the winning period (3 when it does not say).
        profile_id: id of the profile that sets ``limit_a``, or None.
        purpose: its purpose, or None.
        next_change_at: the next instant the composite limit changes (UTC epoch s), or None
            when it does not change within :data:`LOOKAHEAD_S`.
    """

    limit_a: float | None
    phases: int
    profile_id: int | None
    purpose: ProfilePurpose | None
    next_change_at: float | None = None

    @property
    def source(self) -> str | None:
        """A short name of what sets the limit, e.g. ``"profile 7"`` (for ``evse status``)."""
        return None if self.profile_id is None else f"profile {self.profile_id}"


@dataclass(frozen=True)
class CompositeSchedule:
    """The composite schedule of an EVSE over a window (OCPP 1.6 §5.7 GetCompositeSchedule).

    Attributes:
        evse_id: the EVSE (0 = the station).
        start_at: window start, UTC epoch s.
        duration_s: window length, s.
        unit: unit of the period limits.
        periods: contiguous steps from offset 0, each lasting until the next.
    """

    evse_id: int
    start_at: float
    duration_s: int
    unit: RateUnit
    periods: tuple[SchedulePeriod, ...]


def _schedule_base(profile: ChargingProfile, t: float, relative_base: float | None
                   ) -> float | None:
    """The start instant of the profile's schedule (the recurrence) in force at ``t``."""
    start = profile.schedule.start_at
    if profile.kind is ProfileKind.RECURRING and profile.recurrency is not None \
            and start is not None:
        period = profile.recurrency.period_s
        return start + math.floor((t - start) / period) * period
    if profile.kind is ProfileKind.ABSOLUTE and start is not None:
        return start
    # Relative, or Absolute without a start: from the transaction start (OCPP 2.0.1 K01
    # "if absent the schedule will be relative to start of charging").
    return relative_base


def _duration(profile: ChargingProfile) -> float | None:
    duration = profile.schedule.duration_s
    if profile.kind is ProfileKind.RECURRING and profile.recurrency is not None:
        period = profile.recurrency.period_s
        return period if duration is None else min(duration, period)
    return duration


def period_at(profile: ChargingProfile, t: float, relative_base: float | None
              ) -> SchedulePeriod | None:
    """The profile's period in force at ``t`` (UTC epoch s), or None when it does not apply
    (outside its validity, before its start, after its duration, or no start known)."""
    if profile.valid_from is not None and t < profile.valid_from:
        return None
    if profile.valid_to is not None and t >= profile.valid_to:
        return None
    base = _schedule_base(profile, t, relative_base)
    if base is None:
        return None
    offset = t - base
    if offset < 0:
        return None
    duration = _duration(profile)
    if duration is not None and offset >= duration:
        return None
    periods = profile.schedule.periods
    index = bisect.bisect_right(periods, offset, key=lambda p: p.start_s) - 1
    return periods[index] if index >= 0 else None


def _boundaries(profile: ChargingProfile, after: float, until: float,
                relative_base: float | None) -> Iterator[float]:
    """Instants in (after, until] at which the profile's contribution may change."""
    for edge in (profile.valid_from, profile.valid_to):
        if edge is not None and after < edge <= until:
            yield edge
    duration = _duration(profile)
    bases: Iterable[float]
    start = profile.schedule.start_at
    if profile.kind is ProfileKind.RECURRING and profile.recurrency is not None \
            and start is not None:
        period = profile.recurrency.period_s
        first = math.floor((after - start) / period)
        last = math.floor((until - start) / period)
        bases = (start + k * period for k in range(first, last + 1))
    else:
        base = _schedule_base(profile, after, relative_base)
        bases = () if base is None else (base,)
    for base in bases:
        for p in profile.schedule.periods:
            instant = base + p.start_s
            if instant > until:
                break
            if instant > after:
                yield instant
        if duration is not None and after < base + duration <= until:
            yield base + duration


def _relevant(profiles: Iterable[ChargingProfile], evse_id: int,
              tx: TransactionContext | None) -> list[ChargingProfile]:
    """The profiles that can take part in ``evse_id``'s composite, best first per purpose
    (stack level descending; at equal level the EVSE's own before EVSE 0's)."""
    chosen: list[ChargingProfile] = []
    for p in profiles:
        if p.purpose is ProfilePurpose.STATION_MAXIMUM:
            chosen.append(p)
        elif evse_id == STATION_EVSE_ID:
            continue
        elif p.purpose is ProfilePurpose.TX_DEFAULT:
            if p.evse_id in (evse_id, STATION_EVSE_ID):
                chosen.append(p)
        elif (p.evse_id == evse_id and tx is not None
              and p.transaction_id == tx.transaction_id):
            chosen.append(p)
    chosen.sort(key=lambda p: (-p.stack_level, p.evse_id == STATION_EVSE_ID))
    return chosen


def _by_purpose(candidates: Sequence[ChargingProfile]
                ) -> dict[ProfilePurpose, list[ChargingProfile]]:
    out: dict[ProfilePurpose, list[ChargingProfile]] = {p: [] for p in ProfilePurpose}
    for c in candidates:
        out[c.purpose].append(c)
    return out


def _winner(candidates: Sequence[ChargingProfile], t: float, relative_base: float | None
            ) -> tuple[ChargingProfile, SchedulePeriod] | None:
    for p in candidates:
        period = period_at(p, t, relative_base)
        if period is not None:
            return p, period
    return None


def _evaluate(candidates: dict[ProfilePurpose, list[ChargingProfile]], t: float,
              relative_base: float | None, voltage_v: float, ev_phases: int | None
              ) -> ActiveLimit:
    """The composite at ``t`` from pre-filtered, pre-sorted ``candidates`` per purpose."""
    picks = [
        _winner(candidates[ProfilePurpose.TX], t, relative_base)
        or _winner(candidates[ProfilePurpose.TX_DEFAULT], t, relative_base),
        _winner(candidates[ProfilePurpose.STATION_MAXIMUM], t, relative_base),
    ]
    best: ActiveLimit = ActiveLimit(None, ev_phases or DEFAULT_PHASES, None, None)
    for pick in picks:
        if pick is None:
            continue
        profile, period = pick
        phases = period.phases_or_default
        if ev_phases is not None:
            phases = min(phases, ev_phases)
        limit_a = to_amperes(period.limit, profile.schedule.unit, phases, voltage_v)
        if best.limit_a is None or limit_a < best.limit_a:
            best = ActiveLimit(limit_a, phases, profile.profile_id, profile.purpose)
    return best


def limit_at(profiles: Iterable[ChargingProfile], evse_id: int, t: float,
             tx: TransactionContext | None = None, *, voltage_v: float = 230.0,
             ev_phases: int | None = None) -> ActiveLimit:
    """The composite limit of ``evse_id`` at ``t`` and the instant it next changes.

    Args:
        profiles: every installed profile (any EVSE, any purpose).
        evse_id: the EVSE; 0 gives the station maximum alone.
        t: the instant, UTC epoch s.
        tx: the transaction running on the EVSE, if any. Without one, Relative schedules
            are evaluated as for a transaction starting at ``t``.
        voltage_v: nominal phase voltage for W → A, V.
        ev_phases: phases the EV draws on, when known (a W limit spread over fewer phases
            allows more A per phase).
    """
    candidates = _relevant(profiles, evse_id, tx)
    per_purpose = _by_purpose(candidates)
    # Without a transaction a Relative schedule is "as for one starting at the instant
    # asked about": it does not move on with time, so it contributes no boundaries.
    fixed_base = tx.started_at if tx is not None else None
    now = _evaluate(per_purpose, t, fixed_base if tx is not None else t, voltage_v,
                    ev_phases)
    horizon = t + LOOKAHEAD_S
    instants = sorted({b for p in candidates
                       for b in _boundaries(p, t, horizon, fixed_base)})
    for instant in instants:
        later = _evaluate(per_purpose, instant, fixed_base if tx is not None else instant,
                          voltage_v, ev_phases)
        if (later.limit_a, later.phases) != (now.limit_a, now.phases):
            return ActiveLimit(now.limit_a, now.phases, now.profile_id, now.purpose, instant)
    return now


def composite_schedule(profiles: Iterable[ChargingProfile], evse_id: int, start_at: float,
                       duration_s: int, ceiling_a: float,
                       tx: TransactionContext | None = None, *, unit: RateUnit = RateUnit.A,
                       voltage_v: float = 230.0, ev_phases: int | None = None
                       ) -> CompositeSchedule:
    """The composite schedule of ``evse_id`` over ``[start_at, start_at + duration_s)``.

    Args:
        profiles: every installed profile.
        evse_id: the EVSE; 0 = the station (its station maximum).
        start_at: window start, UTC epoch s.
        duration_s: window length, s (> 0).
        ceiling_a: the limit where no profile applies, and a cap everywhere: the hardware
            or configured maximum, A per phase.
        tx: the transaction running on the EVSE, if any (Relative schedules start with it,
            else at ``start_at``).
        unit: unit of the output limits; W = A × ``voltage_v`` × phases.
        voltage_v: nominal phase voltage, V.
        ev_phases: phases the EV draws on, when known.

    Returns:
        Contiguous periods from offset 0 s; adjacent equal periods are merged, offsets are
        whole seconds (OCPP 1.6 §7.9 startPeriod), limits rounded down to 0.1.

    Raises:
        ValueError: ``duration_s`` not positive.
    """
    if duration_s <= 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    candidates = _relevant(profiles, evse_id, tx)
    per_purpose = _by_purpose(candidates)
    relative_base = tx.started_at if tx is not None else start_at
    end = start_at + duration_s
    instants = {start_at}
    for p in candidates:
        instants.update(b for b in _boundaries(p, start_at, end, relative_base) if b < end)
    periods: list[SchedulePeriod] = []
    for instant in sorted(instants):
        active = _evaluate(per_purpose, instant, relative_base, voltage_v, ev_phases)
        limit_a = ceiling_a if active.limit_a is None else min(active.limit_a, ceiling_a)
        value = math.floor(from_amperes(limit_a, unit, active.phases, voltage_v) * 10 + 1e-6)
        period = SchedulePeriod(round(instant - start_at), value / 10, active.phases)
        if periods and periods[-1].start_s == period.start_s:
            periods.pop()  # two instants within the same whole second: the later one holds
        if periods and (periods[-1].limit, periods[-1].phases) == (period.limit,
                                                                    period.phases):
            continue
        periods.append(period)
    return CompositeSchedule(evse_id, start_at, duration_s, unit, tuple(periods))
