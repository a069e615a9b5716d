"""The composite schedule against hand-computed expectations (OCPP 1.6 §3.13.2-§3.13.5)."""

from __future__ import annotations

import pytest

from evse.charging_profiles import (
    ProfileError,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    Recurrency,
    SchedulePeriod,
    validate_profile,
)
from evse.composite_schedule import TransactionContext, composite_schedule, limit_at

from .helpers import T0, profile, utc

MAX = ProfilePurpose.STATION_MAXIMUM
DEFAULT = ProfilePurpose.TX_DEFAULT
TX = ProfilePurpose.TX


def test_higher_stack_level_wins_then_lower_resumes_when_it_ends() -> None:
    base = profile(1, DEFAULT, [(0, 32.0)], evse_id=0, stack_level=0)
    burst = profile(2, DEFAULT, [(0, 10.0)], stack_level=1, start_at=T0 + 3600,
                    duration_s=1800)
    profiles = [base, burst]
    before = limit_at(profiles, 1, T0 + 3599)
    assert (before.limit_a, before.profile_id, before.next_change_at) == (32.0, 1, T0 + 3600)
    during = limit_at(profiles, 1, T0 + 3600)
    assert (during.limit_a, during.profile_id, during.next_change_at) == (10.0, 2, T0 + 5400)
    after = limit_at(profiles, 1, T0 + 5400)
    assert (after.limit_a, after.profile_id, after.next_change_at) == (32.0, 1, None)
    # The same over a window, as GetCompositeSchedule reports it.
    window = composite_schedule(profiles, 1, T0, 7200, ceiling_a=32.0)
    assert [(p.start_s, p.limit) for p in window.periods] == [(0, 32.0), (3600, 10.0),
                                                              (5400, 32.0)]
    capped = composite_schedule(profiles, 1, T0, 7200, ceiling_a=25.0)
    assert [(p.start_s, p.limit) for p in capped.periods] == [(0, 25.0), (3600, 10.0),
                                                              (5400, 25.0)]


def test_evse_default_beats_station_wide_default_at_the_same_stack_level() -> None:
    station_wide = profile(1, DEFAULT, [(0, 20.0)], evse_id=0, stack_level=3)
    own = profile(2, DEFAULT, [(0, 12.0)], evse_id=1, stack_level=3)
    assert limit_at([station_wide, own], 1, T0).limit_a == 12.0
    assert limit_at([own, station_wide], 1, T0).limit_a == 12.0
    # EVSE 2 has no own default: the station-wide one applies.
    assert limit_at([station_wide, own], 2, T0).limit_a == 20.0


def test_tx_profile_overrides_default_even_upwards_and_station_maximum_caps() -> None:
    default = profile(1, DEFAULT, [(0, 10.0)], stack_level=5)
    tx_profile = profile(2, TX, [(0, 20.0)], stack_level=0, transaction_id="77")
    station_max = profile(3, MAX, [(0, 16.0)], start_at=T0 + 600)
    tx = TransactionContext("77", T0)
    profiles = [default, tx_profile, station_max]
    assert limit_at(profiles, 1, T0 + 10, tx).limit_a == 20.0
    capped = limit_at(profiles, 1, T0 + 600, tx)
    assert (capped.limit_a, capped.profile_id, capped.source) == (16.0, 3, "profile 3")
    # A TX profile of another transaction does not apply.
    assert limit_at(profiles, 1, T0 + 10, TransactionContext("78", T0)).limit_a == 10.0
    # Without a transaction, the default applies.
    assert limit_at(profiles, 1, T0 + 10).limit_a == 10.0
    # EVSE 0 is the station maximum alone.
    assert limit_at(profiles, 0, T0 + 10).limit_a is None
    assert limit_at(profiles, 0, T0 + 600).limit_a == 16.0


def test_recurring_daily_across_midnight() -> None:
    # Every day from 22:00 UTC: 8 A until 02:00, then 32 A until 06:00, then no limit.
    night = profile(1, DEFAULT, [(0, 8.0), (4 * 3600, 32.0)], kind=ProfileKind.RECURRING,
                    recurrency=Recurrency.DAILY, start_at=utc(2026, 3, 1, 22),
                    duration_s=8 * 3600, stack_level=1)
    floor = profile(2, DEFAULT, [(0, 16.0)], stack_level=0, evse_id=0)
    profiles = [night, floor]
    assert limit_at(profiles, 1, utc(2026, 3, 5, 1)).limit_a == 8.0
    assert limit_at(profiles, 1, utc(2026, 3, 5, 1)).next_change_at == utc(2026, 3, 5, 2)
    assert limit_at(profiles, 1, utc(2026, 3, 5, 2, 30)).limit_a == 32.0
    assert limit_at(profiles, 1, utc(2026, 3, 5, 7)).limit_a == 16.0
    evening = limit_at(profiles, 1, utc(2026, 3, 5, 21, 59))
    assert (evening.limit_a, evening.next_change_at) == (16.0, utc(2026, 3, 5, 22))
    assert limit_at(profiles, 1, utc(2026, 3, 5, 23, 59, 59)).limit_a == 8.0
    window = composite_schedule(profiles, 1, utc(2026, 3, 5, 20), 12 * 3600, ceiling_a=32.0)
    assert [(p.start_s, p.limit) for p in window.periods] == [
        (0, 16.0), (2 * 3600, 8.0), (6 * 3600, 32.0), (10 * 3600, 16.0)]


def test_recurring_weekly_across_the_week_boundary() -> None:
    # Sunday 23:00 UTC weekly: 16 A for two hours, then 6 A for the rest of the week.
    weekly = profile(1, DEFAULT, [(0, 16.0), (7200, 6.0)], kind=ProfileKind.RECURRING,
                     recurrency=Recurrency.WEEKLY, start_at=utc(2026, 3, 1, 23))
    profiles = [weekly]
    assert limit_at(profiles, 1, utc(2026, 3, 8, 22, 59)).limit_a == 6.0
    assert limit_at(profiles, 1, utc(2026, 3, 8, 22, 59)).next_change_at == utc(2026, 3, 8, 23)
    assert limit_at(profiles, 1, utc(2026, 3, 8, 23)).limit_a == 16.0
    assert limit_at(profiles, 1, utc(2026, 3, 9, 0, 30)).limit_a == 16.0   # Monday
    assert limit_at(profiles, 1, utc(2026, 3, 9, 1)).limit_a == 6.0
    # Before its first start the recurrence still holds (the start only fixes the phase).
    assert limit_at(profiles, 1, utc(2026, 3, 1, 12)).limit_a == 6.0


def test_relative_schedule_starts_with_the_transaction() -> None:
    relative = profile(1, DEFAULT, [(0, 6.0), (600, 16.0)], kind=ProfileKind.RELATIVE)
    tx = TransactionContext("5", T0 + 100)
    early = limit_at([relative], 1, T0 + 650, tx)
    assert (early.limit_a, early.next_change_at) == (6.0, T0 + 700)
    assert limit_at([relative], 1, T0 + 700, tx).limit_a == 16.0
    window = composite_schedule([relative], 1, T0 + 400, 600, ceiling_a=32.0, tx=tx)
    assert [(p.start_s, p.limit) for p in window.periods] == [(0, 6.0), (300, 16.0)]
    # No transaction: the limit now is period 0 and does not move on by itself.
    idle_now = limit_at([relative], 1, T0 + 5000)
    assert (idle_now.limit_a, idle_now.next_change_at) == (6.0, None)
    # Over a window: as for a transaction starting at the window start.
    idle = composite_schedule([relative], 1, T0, 1200, ceiling_a=32.0)
    assert [(p.start_s, p.limit) for p in idle.periods] == [(0, 6.0), (600, 16.0)]


def test_absolute_profile_without_start_is_relative_to_the_transaction() -> None:
    p = profile(1, TX, [(0, 8.0), (60, 20.0)], start_at=None, transaction_id="9")
    tx = TransactionContext("9", T0 + 1000)
    assert limit_at([p], 1, T0 + 1059, tx).limit_a == 8.0
    assert limit_at([p], 1, T0 + 1060, tx).limit_a == 20.0


@pytest.mark.parametrize(("watts", "phases", "amperes"), [
    (11_040.0, 3, 16.0),   # 11040 / (230 × 3)
    (3_680.0, 1, 16.0),    # 3680 / 230
    (22_080.0, None, 32.0),  # numberPhases absent = 3
    (7_360.0, 2, 16.0),    # 7360 / (230 × 2)
])
def test_watts_to_amperes_by_phases(watts: float, phases: int | None, amperes: float) -> None:
    p = profile(1, DEFAULT, [(0, watts)], unit=RateUnit.W, phases=phases)
    active = limit_at([p], 1, T0)
    assert active.limit_a == pytest.approx(amperes)
    assert active.phases == (phases or 3)


def test_power_limit_on_a_one_phase_ev_allows_more_amperes() -> None:
    p = profile(1, DEFAULT, [(0, 11_040.0)], unit=RateUnit.W, phases=3)
    assert limit_at([p], 1, T0, ev_phases=1).limit_a == pytest.approx(48.0)


def test_composite_in_watts_and_mixed_units() -> None:
    amps = profile(1, DEFAULT, [(0, 16.0), (1800, 10.0)], phases=3)
    watts_max = profile(2, MAX, [(0, 9_200.0)], unit=RateUnit.W, phases=1,
                        start_at=T0 + 3600)  # 40 A on one phase: not binding
    window = composite_schedule([amps, watts_max], 1, T0, 7200, ceiling_a=32.0,
                                unit=RateUnit.W)
    # 16 A × 230 V × 3 = 11040 W, 10 A × 230 × 3 = 6900 W.
    assert [(p.start_s, p.limit, p.phases) for p in window.periods] == [
        (0, 11_040.0, 3), (1800, 6_900.0, 3)]
    tight_max = profile(2, MAX, [(0, 1_380.0)], unit=RateUnit.W, phases=1,
                        start_at=T0 + 3600)  # 6 A on one phase
    window = composite_schedule([amps, tight_max], 1, T0, 7200, ceiling_a=32.0)
    assert [(p.start_s, p.limit, p.phases) for p in window.periods] == [
        (0, 16.0, 3), (1800, 10.0, 3), (3600, 6.0, 1)]


def test_validity_window() -> None:
    base = profile(1, DEFAULT, [(0, 20.0)])
    windowed = profile(2, DEFAULT, [(0, 10.0)], stack_level=2, valid_from=T0 + 1000,
                       valid_to=T0 + 2000)
    profiles = [base, windowed]
    assert limit_at(profiles, 1, T0 + 999).limit_a == 20.0
    assert limit_at(profiles, 1, T0 + 999).next_change_at == T0 + 1000
    assert limit_at(profiles, 1, T0 + 1000).limit_a == 10.0
    assert limit_at(profiles, 1, T0 + 1000).next_change_at == T0 + 2000
    assert limit_at(profiles, 1, T0 + 2000).limit_a == 20.0
    assert windowed.expired(T0 + 2000) and not windowed.expired(T0 + 1999)


def test_no_profile_means_no_limit_and_the_ceiling_in_the_composite() -> None:
    assert limit_at([], 1, T0).limit_a is None
    window = composite_schedule([], 1, T0, 3600, ceiling_a=32.0)
    assert [(p.start_s, p.limit) for p in window.periods] == [(0, 32.0)]


@pytest.mark.parametrize(("changes", "message"), [
    ({"periods": ()}, "no periods"),
    ({"periods": (SchedulePeriod(5, 10.0),)}, "first period"),
    ({"periods": (SchedulePeriod(0, 10.0), SchedulePeriod(0, 8.0))}, "ascending"),
    ({"periods": (SchedulePeriod(0, -1.0),)}, ">= 0"),
    ({"periods": (SchedulePeriod(0, float("nan")),)}, "finite"),
    ({"periods": (SchedulePeriod(0, 10.0, 4),)}, "phases"),
    ({"duration_s": 0}, "duration"),
])
def test_invalid_schedules_are_refused(changes: dict[str, object], message: str) -> None:
    p = profile(1, DEFAULT, [(0, 10.0)])
    bad = p.__class__(**{**p.__dict__,
                         "schedule": p.schedule.__class__(**{**p.schedule.__dict__,
                                                             **changes})})
    with pytest.raises(ProfileError, match=message):
        validate_profile(bad)


def test_purpose_rules() -> None:
    with pytest.raises(ProfileError, match="EVSE 0 only"):
        validate_profile(profile(1, DEFAULT, [(0, 1.0)]).__class__(
            **{**profile(1, DEFAULT, [(0, 1.0)]).__dict__, "purpose": MAX}))
    with pytest.raises(ProfileError, match="needs an EVSE"):
        validate_profile(profile(1, TX, [(0, 1.0)], evse_id=0))
    with pytest.raises(ProfileError, match="cannot be Relative"):
        validate_profile(profile(1, MAX, [(0, 1.0)], kind=ProfileKind.RELATIVE))
    with pytest.raises(ProfileError, match="recurrency"):
        validate_profile(profile(1, DEFAULT, [(0, 1.0)], kind=ProfileKind.RECURRING))


def test_tx_profile_with_duration_hands_back_to_the_default() -> None:
    # TxDefault: 32 A until 01:00, then 16 A. TxProfile (Relative, 20 min): 10 A, then 24 A
    # after 10 min. Transaction starts at 00:50.
    default = profile(1, DEFAULT, [(0, 32.0), (3600, 16.0)], evse_id=0)
    tx_profile = profile(2, TX, [(0, 10.0), (600, 24.0)], kind=ProfileKind.RELATIVE,
                         duration_s=1200, transaction_id="3")
    tx = TransactionContext("3", T0 + 3000)
    window = composite_schedule([default, tx_profile], 1, T0 + 2400, 3600, ceiling_a=32.0,
                                tx=tx)
    # 00:40 default 32; 00:50 tx 10; 01:00 tx 24; 01:10 tx over → default 16.
    assert [(p.start_s, p.limit) for p in window.periods] == [
        (0, 32.0), (600, 10.0), (1200, 24.0), (1800, 16.0)]
