"""Hypothesis properties of the composite schedule (OCPP 1.6 §3.13.4-§3.13.5).

Profiles here are single-period absolute windows, so which ones cover an instant is plain
interval arithmetic, written independently of the engine.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evse.charging_profiles import ChargingProfile, ProfilePurpose
from evse.composite_schedule import TransactionContext, composite_schedule, limit_at

from .helpers import T0, profile

Window = tuple[int, int, int, float]  # stack level, start offset s, duration s, limit A

windows = st.tuples(st.integers(0, 8), st.integers(0, 3600), st.integers(1, 3600),
                    st.floats(0.0, 80.0).map(lambda x: round(x, 1)))


def _build(purpose: ProfilePurpose, raw: list[Window], first_id: int, evse_id: int = 1,
           tx: str | None = None) -> list[ChargingProfile]:
    out, seen = [], set()
    for i, (level, start, duration, limit) in enumerate(raw):
        if level in seen:  # one profile per stack level and purpose, as the store keeps
            continue
        seen.add(level)
        out.append(profile(first_id + i, purpose, [(0, limit)], evse_id=evse_id,
                           stack_level=level, start_at=T0 + start, duration_s=duration,
                           transaction_id=tx))
    return out


def _covering(profiles: list[ChargingProfile], t: float) -> list[ChargingProfile]:
    out = []
    for p in profiles:
        start = p.schedule.start_at
        assert start is not None and p.schedule.duration_s is not None
        if start <= t < start + p.schedule.duration_s:
            out.append(p)
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(windows, max_size=4), st.lists(windows, max_size=4),
       st.lists(windows, max_size=3), st.integers(0, 7300))
def test_composite_never_exceeds_the_applicable_station_maximum(
        maxima: list[Window], defaults: list[Window], txs: list[Window], offset: int) -> None:
    station = _build(ProfilePurpose.STATION_MAXIMUM, maxima, 100, evse_id=0)
    profiles = (station + _build(ProfilePurpose.TX_DEFAULT, defaults, 200)
                + _build(ProfilePurpose.TX, txs, 300, tx="1"))
    tx = TransactionContext("1", T0)
    t = T0 + offset
    active = limit_at(profiles, 1, t, tx)
    covering = _covering(station, t)
    if covering:
        top = max(covering, key=lambda p: p.stack_level)
        assert active.limit_a is not None
        assert active.limit_a <= top.schedule.periods[0].limit
    # The window composite agrees: each of its periods respects the station maximum at
    # the period's start.
    window = composite_schedule(profiles, 1, T0, 7300, ceiling_a=80.0, tx=tx)
    for period in window.periods:
        covering = _covering(station, T0 + period.start_s)
        if covering:
            top = max(covering, key=lambda p: p.stack_level)
            assert period.limit <= top.schedule.periods[0].limit + 1e-9


@settings(max_examples=150, deadline=None)
@given(st.lists(windows, min_size=1, max_size=6), st.integers(0, 7300))
def test_the_highest_covering_stack_level_wins_within_a_purpose(
        defaults: list[Window], offset: int) -> None:
    profiles = _build(ProfilePurpose.TX_DEFAULT, defaults, 1)
    t = T0 + offset
    active = limit_at(profiles, 1, t)
    covering = _covering(profiles, t)
    if not covering:
        assert active.limit_a is None
        return
    top = max(covering, key=lambda p: p.stack_level)
    assert active.profile_id == top.profile_id
    assert active.limit_a == top.schedule.periods[0].limit


@settings(max_examples=100, deadline=None)
@given(st.lists(windows, max_size=4), st.lists(windows, max_size=4),
       st.lists(st.integers(0, 7299), min_size=1, max_size=5))
def test_window_composite_agrees_with_the_limit_at_each_instant(
        maxima: list[Window], defaults: list[Window], offsets: list[int]) -> None:
    profiles = (_build(ProfilePurpose.STATION_MAXIMUM, maxima, 100, evse_id=0)
                + _build(ProfilePurpose.TX_DEFAULT, defaults, 200))
    window = composite_schedule(profiles, 1, T0, 7300, ceiling_a=40.0)
    starts = [p.start_s for p in window.periods]
    assert starts[0] == 0 and starts == sorted(set(starts))
    for offset in offsets:
        period = [p for p in window.periods if p.start_s <= offset][-1]
        active = limit_at(profiles, 1, T0 + offset)
        expected = 40.0 if active.limit_a is None else min(active.limit_a, 40.0)
        assert period.limit == pytest.approx(expected, abs=0.1)
        assert period.limit <= expected + 1e-9
