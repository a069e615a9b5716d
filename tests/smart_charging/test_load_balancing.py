"""Load balancing: a shared station budget, 6 A minimum, FIFO service, EV behaviour, phases."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from evse.load_balancing import (
    Demand,
    LoadBalancer,
    grid_budget,
    phase_currents,
    split,
)

L1, L2 = (1,), (2,)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_two_connectors_share_and_one_takes_all_when_the_other_stops() -> None:
    lb = LoadBalancer(Clock())
    lb.update(1, max_a=32.0)
    assert lb.split(32.0).offers_a == {1: 32.0}
    lb.update(2, max_a=32.0)
    assert lb.split(32.0).offers_a == {1: 16.0, 2: 16.0}
    lb.remove(1)
    assert lb.split(32.0).offers_a == {2: 32.0}


def test_connector_maximum_leaves_the_rest_to_the_other() -> None:
    # Connector 1 is a 10 A socket: connector 2 gets 32 − 10.
    assert split((32.0,) * 3, [Demand(1, 10.0), Demand(2, 32.0)]) == {1: 10.0, 2: 22.0}


def test_four_connectors_minimum_6_a_and_fifo_service() -> None:
    lb = LoadBalancer(Clock())
    for cid in (1, 2, 3, 4, 5):
        lb.update(cid, max_a=32.0)
    result = lb.split(20.0)
    # 20 A fits three minimums (18 A); the 2 A left is shared: 6.66 → 6.6 A each.
    assert result.offers_a == {1: 6.6, 2: 6.6, 3: 6.6, 4: 0.0, 5: 0.0}
    assert result.waiting == (4, 5)
    lb.remove(2)
    result = lb.split(20.0)
    assert result.offers_a == {1: 6.6, 3: 6.6, 4: 6.6, 5: 0.0}  # 4 waited longest
    assert result.waiting == (5,)
    lb.remove(1)
    lb.remove(3)
    assert lb.split(20.0).offers_a == {4: 10.0, 5: 10.0}


def test_a_connector_whose_maximum_is_below_6_a_gets_nothing_and_does_not_block() -> None:
    assert split((16.0,) * 3, [Demand(1, 5.0), Demand(2, 32.0)]) == {1: 0.0, 2: 16.0}


def test_under_draw_is_given_away_after_settling_and_reclaimed_on_ramp_up() -> None:
    clock = Clock()
    lb = LoadBalancer(clock, settle_s=30.0, headroom_a=2.0, ramp_a=1.0)
    lb.update(1, max_a=32.0)
    lb.update(2, max_a=32.0)
    assert lb.split(32.0).offers_a == {1: 16.0, 2: 16.0}
    lb.update(1, max_a=32.0, drawing_a=8.0)  # EV 1 takes only 8 A of its 16 A
    lb.update(2, max_a=32.0, drawing_a=15.8)
    first = lb.split(32.0)
    assert first.offers_a == {1: 16.0, 2: 16.0}  # not settled yet
    assert first.review_at == 130.0
    clock.now = 130.0
    settled = lb.split(32.0)
    assert settled.offers_a == {1: 10.0, 2: 22.0}  # 8 A + 2 A headroom; the rest to EV 2
    assert settled.review_at is None
    lb.update(1, max_a=32.0, drawing_a=9.5)  # EV 1 ramps up towards its 10 A
    assert lb.split(32.0).offers_a == {1: 16.0, 2: 16.0}


def test_ev_pause_keeps_the_minimum_and_resume_restores_the_share() -> None:
    lb = LoadBalancer(Clock())
    lb.update(1, max_a=32.0)
    lb.update(2, max_a=32.0)
    lb.update(1, max_a=32.0, ev_paused=True)
    assert lb.split(32.0).offers_a == {1: 6.0, 2: 26.0}
    lb.update(1, max_a=32.0, ev_paused=False)
    assert lb.split(32.0).offers_a == {1: 16.0, 2: 16.0}


def test_phases_one_phase_evs_on_different_phases_do_not_share() -> None:
    offers = split((16.0, 16.0, 16.0), [Demand(1, 32.0, L1), Demand(2, 32.0, L2)])
    assert offers == {1: 16.0, 2: 16.0}


def test_phases_one_phase_ev_and_three_phase_ev_share_only_l1() -> None:
    # Both on L1: 10 A each; L2 and L3 keep 10 A unused because EV 2 is held by L1.
    offers = split((20.0, 20.0, 20.0), [Demand(1, 32.0, L1), Demand(2, 32.0)])
    assert offers == {1: 10.0, 2: 10.0}
    # A 1-phase EV that is satisfied (max 6 A) leaves L1 room for the 3-phase one.
    offers = split((20.0, 20.0, 20.0), [Demand(1, 6.0, L1), Demand(2, 32.0)])
    assert offers == {1: 6.0, 2: 14.0}


def test_phases_mixed_three_connectors() -> None:
    offers = split((32.0, 32.0, 32.0),
                   [Demand(1, 32.0, L1), Demand(2, 32.0), Demand(3, 32.0, L2)])
    assert offers == {1: 16.0, 2: 16.0, 3: 16.0}


def test_grid_meter_headroom() -> None:
    # Grid limit 40 A per phase; the grid meter reads 30/20/10 A of which EVs draw 16 A on
    # each phase: the house takes 14/4/0 A.
    assert grid_budget(32.0, 40.0, (30.0, 20.0, 10.0), (16.0, 16.0, 16.0)) == (
        26.0, 32.0, 32.0)
    # House load above the grid limit: nothing for the EVs, never negative.
    assert grid_budget(32.0, 40.0, (45.0, 0.0, 0.0), (0.0, 0.0, 0.0)) == (0.0, 32.0, 32.0)
    assert phase_currents({1: 10.0, 2: 6.0}, {1: L2}) == (6.0, 16.0, 6.0)


demand_lists = st.lists(
    st.tuples(st.floats(0.0, 80.0), st.sampled_from([(1,), (2,), (3,), (1, 2, 3)])),
    min_size=0, max_size=12)


@given(st.tuples(st.floats(0.0, 100.0), st.floats(0.0, 100.0), st.floats(0.0, 100.0)),
       demand_lists)
def test_split_never_exceeds_the_budget_on_any_phase(
        budget: tuple[float, float, float],
        raw: list[tuple[float, tuple[int, ...]]]) -> None:
    demands = [Demand(i, m, ph) for i, (m, ph) in enumerate(raw)]
    offers = split(budget, demands)
    for phase in (1, 2, 3):
        used = sum(offers[d.connector_id] for d in demands if phase in d.phases)
        assert used <= budget[phase - 1] + 1e-6
    for d in demands:
        offer = offers[d.connector_id]
        assert offer == 0.0 or 6.0 <= offer <= d.max_a + 1e-9
    # Service order: a connector only waits if every one before it was considered first,
    # i.e. a later connector never takes the place of an earlier one on the same phases.
    for i, d in enumerate(demands):
        if offers[d.connector_id] == 0.0 and d.max_a >= 6.0:
            for later in demands[i + 1:]:
                if later.phases == d.phases:
                    assert offers[later.connector_id] == 0.0


def test_under_draw_alone_keeps_the_full_offer() -> None:
    # Nobody else could use the unused part: the EV keeps its offer (no needless duty cut).
    clock = Clock()
    lb = LoadBalancer(clock, settle_s=30.0)
    lb.update(1, max_a=32.0)
    lb.split(32.0)
    lb.update(1, max_a=32.0, drawing_a=8.0)
    lb.split(32.0)
    clock.now += 60.0
    assert lb.split(32.0).offers_a == {1: 32.0}
    lb.update(1, max_a=32.0, ev_paused=True)
    assert lb.split(32.0).offers_a == {1: 32.0}


def test_four_connectors_start_pause_under_draw_stop() -> None:
    clock = Clock()
    lb = LoadBalancer(clock, settle_s=10.0, headroom_a=2.0)
    for cid in (1, 2, 3, 4):
        lb.update(cid, max_a=32.0)
    assert lb.split(32.0).offers_a == {1: 8.0, 2: 8.0, 3: 8.0, 4: 8.0}
    lb.update(3, max_a=32.0, ev_paused=True)      # EV 3 pauses: keeps 6 A
    assert lb.split(32.0).offers_a == {1: 8.6, 2: 8.6, 3: 6.0, 4: 8.6}  # 26 / 3 = 8.66
    lb.update(4, max_a=32.0, drawing_a=5.0)       # EV 4 takes 5 A of 8.6 A
    lb.split(32.0)
    clock.now += 10.0
    # EV 4 keeps 5 + 2 A; EVs 1 and 2 share 32 − 6 − 7 = 19 A.
    assert lb.split(32.0).offers_a == {1: 9.5, 2: 9.5, 3: 6.0, 4: 7.0}
    lb.remove(1)                                  # EV 1 leaves
    assert lb.split(32.0).offers_a == {2: 19.0, 3: 6.0, 4: 7.0}
    lb.update(3, max_a=32.0)                      # EV 3 resumes
    assert lb.split(32.0).offers_a == {2: 12.5, 3: 12.5, 4: 7.0}


def test_the_review_instant_settles_the_under_draw_despite_float_rounding() -> None:
    # 1000.1 + 30 − 1000.1 is 29.999999999999886 in floats: at its own review instant the
    # under-draw must count as settled (it once re-armed the review at 0 s, forever).
    clock = Clock()
    clock.now = 1000.1
    lb = LoadBalancer(clock, settle_s=30.0, headroom_a=2.0, ramp_a=1.0)
    lb.update(1, max_a=32.0)
    lb.update(2, max_a=32.0)
    lb.split(32.0)
    lb.update(1, max_a=32.0, drawing_a=8.0)
    lb.update(2, max_a=32.0, drawing_a=15.8)
    first = lb.split(32.0)
    assert first.review_at is not None
    clock.now = first.review_at
    settled = lb.split(32.0)
    assert settled.offers_a == {1: 10.0, 2: 22.0}
    assert settled.review_at is None
