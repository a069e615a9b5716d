"""Load balancing: one station budget (A per phase) shared among the charging connectors.

- :func:`split` — max-min fair share of a per-phase budget: every admitted connector gets at
  least the IEC 61851 minimum of 6 A (IEC 61851-1 Table A.7: below it the pilot cannot
  announce charging), then the rest is raised evenly until a connector reaches its own
  maximum or a phase it draws on is full. A connector that cannot get 6 A gets 0 (it waits,
  SuspendedEVSE); connectors are admitted in service order, so a waiting one is served
  first when budget frees. A 1-phase EV loads only the phase it is wired to.
- :class:`LoadBalancer` — the state around it: arrival order (the FIFO of waiting
  connectors), EV pause, and EVs that draw less than offered (after ``settle_s`` the unused
  part goes to the others, if any of them could use it; it is reclaimed as soon as the EV
  draws close to its offer).
  Offers always sum to at most the budget on every phase, so an EV ramping up can never
  push the site over it.
- :func:`grid_budget` — dynamic headroom from a grid-side meter: budget = grid limit −
  measured non-EV load, per phase.

Pure functions and one small class with an injectable monotonic clock; no I/O.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hal.pilot import MIN_CURRENT_A  # 6 A, the least a pilot may announce (IEC 61851-1)

#: Supply phases (L1, L2, L3) of a three-phase EV.
THREE_PHASES: tuple[int, ...] = (1, 2, 3)

_EPS = 1e-9


@dataclass(frozen=True)
class Demand:
    """What one active connector may take.

    Attributes:
        connector_id: the connector.
        max_a: the most it may be offered, A per phase (connector rating, cable, profile
            limit, EV cap already applied).
        phases: the supply phases (1-3) its EV draws on, e.g. ``(1, 2, 3)`` or ``(2,)``.
    """

    connector_id: int
    max_a: float
    phases: tuple[int, ...] = THREE_PHASES


def _floor_tenth(value: float) -> float:
    """Round down to 0.1 A (keeps the sum of offers within the budget)."""
    return math.floor(value * 10 + 1e-6) / 10


def split(budget_a: Sequence[float], demands: Sequence[Demand],
          min_a: float = MIN_CURRENT_A) -> dict[int, float]:
    """Share a per-phase budget among ``demands`` (in service order), A per phase.

    Args:
        budget_a: available current on L1, L2, L3, A (a single float per phase).
        demands: the active connectors, first to be served first.
        min_a: the least an admitted connector gets, A.

    Returns:
        The offer per connector id, rounded down to 0.1 A: 0 for one that cannot be given
        ``min_a`` (or whose ``max_a`` is below it); otherwise between ``min_a`` and its
        ``max_a``. On every phase the offers of the connectors drawing on it sum to at
        most that phase's budget.
    """
    slack = [max(0.0, b) for b in budget_a]
    alloc: dict[int, float] = {d.connector_id: 0.0 for d in demands}
    admitted: list[Demand] = []
    for d in demands:
        if d.max_a + _EPS < min_a:
            continue
        if all(slack[p - 1] + _EPS >= min_a for p in d.phases):
            for p in d.phases:
                slack[p - 1] -= min_a
            alloc[d.connector_id] = min_a
            admitted.append(d)
    # Progressive filling: raise every unfrozen connector by the same step until it hits
    # its maximum or one of its phases runs out.
    rising = [d for d in admitted if d.max_a > min_a + _EPS]
    while rising:
        users = [0, 0, 0]
        for d in rising:
            for p in d.phases:
                users[p - 1] += 1
        step = min(d.max_a - alloc[d.connector_id] for d in rising)
        for i in range(3):
            if users[i]:
                step = min(step, slack[i] / users[i])
        step = max(0.0, step)
        for d in rising:
            alloc[d.connector_id] += step
            for p in d.phases:
                slack[p - 1] -= step
        rising = [d for d in rising
                  if alloc[d.connector_id] < d.max_a - _EPS
                  and all(slack[p - 1] > _EPS for p in d.phases)]
    return {cid: _floor_tenth(a) if a >= min_a - _EPS else 0.0 for cid, a in alloc.items()}


def grid_budget(station_max_a: float, grid_limit_a: float,
                grid_measured_a: Sequence[float], ev_measured_a: Sequence[float]
                ) -> tuple[float, float, float]:
    """Per-phase budget with a grid-side meter: ``min(station max, grid limit − non-EV
    load)``, where non-EV load = grid current − the EVs' current on that phase (A, ≥ 0).

    Args:
        station_max_a: the station's own maximum, A per phase.
        grid_limit_a: the grid connection's limit, A per phase.
        grid_measured_a: grid meter current on L1-L3, A.
        ev_measured_a: the sum of the EVs' currents on L1-L3, A.
    """
    out = []
    for grid, ev in zip(grid_measured_a, ev_measured_a, strict=True):
        non_ev = max(0.0, grid - ev)
        out.append(max(0.0, min(station_max_a, grid_limit_a - non_ev)))
    return (out[0], out[1], out[2])


def phase_currents(currents_a: dict[int, float], phases: dict[int, tuple[int, ...]]
                   ) -> tuple[float, float, float]:
    """Sum the per-connector currents (A) onto L1-L3 by each connector's phases."""
    total = [0.0, 0.0, 0.0]
    for cid, current in currents_a.items():
        for p in phases.get(cid, THREE_PHASES):
            total[p - 1] += current
    return (total[0], total[1], total[2])


@dataclass
class _Connector:
    connector_id: int
    max_a: float
    phases: tuple[int, ...]
    arrival: int
    ev_paused: bool = False
    drawing_a: float | None = None
    cap_a: float | None = None
    under_since: float | None = None
    offered_a: float = 0.0
    paused_cap: bool = False


@dataclass(frozen=True)
class Allocation:
    """The result of a re-split.

    Attributes:
        offers_a: offer per active connector, A per phase (0 = waits, SuspendedEVSE).
        waiting: connectors offered 0 for want of budget, in the order they will be served.
        review_at: when to re-split again even without an event (an under-draw settling),
            on the balancer's clock, s; None if nothing is pending.
    """

    offers_a: dict[int, float]
    waiting: tuple[int, ...]
    review_at: float | None


class LoadBalancer:
    """Shares the station budget among active connectors and adapts to what EVs draw.

    Call :meth:`update` when a connector starts or stops wanting power, its EV pauses or
    resumes, its maximum changes, or a new current reading arrives; then :meth:`split`.

    Args:
        clock: monotonic clock, s (injectable for tests).
        min_a: the least an admitted connector gets, A.
        settle_s: how long an EV must draw ``headroom_a`` less than offered before the
            unused part is given away, s.
        headroom_a: kept above an under-drawing EV's draw, A.
        ramp_a: an EV drawing within this of its reduced offer is ramping up: its full
            share is reclaimed at once, A.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 min_a: float = MIN_CURRENT_A, settle_s: float = 30.0,
                 headroom_a: float = 2.0, ramp_a: float = 1.0) -> None:
        self._clock = clock
        self.min_a = min_a
        self.settle_s = settle_s
        self.headroom_a = headroom_a
        self.ramp_a = ramp_a
        self._arrivals = itertools.count()
        self._connectors: dict[int, _Connector] = {}

    def update(self, connector_id: int, *, max_a: float,
               phases: tuple[int, ...] = THREE_PHASES, ev_paused: bool = False,
               drawing_a: float | None = None) -> None:
        """Register or refresh an active connector (one whose EV wants power).

        Args:
            connector_id: the connector.
            max_a: the most it may be offered, A per phase.
            phases: the supply phases its EV draws on.
            ev_paused: the EV suspended charging (e.g. state B after C): it keeps only
                ``min_a`` so it can resume, the rest goes to the others.
            drawing_a: its measured current (highest phase), A, if known.
        """
        c = self._connectors.get(connector_id)
        if c is None:
            c = _Connector(connector_id, max_a, phases, next(self._arrivals))
            self._connectors[connector_id] = c
        c.max_a, c.phases, c.ev_paused, c.drawing_a = max_a, phases, ev_paused, drawing_a

    def remove(self, connector_id: int) -> None:
        """The connector stopped wanting power (EV unplugged, transaction over)."""
        self._connectors.pop(connector_id, None)

    @property
    def waiting(self) -> tuple[int, ...]:
        """Active connectors currently offered 0, in service (FIFO) order."""
        return tuple(c.connector_id for c in self._ordered()
                     if c.offered_a == 0.0 and c.max_a >= self.min_a)

    def _ordered(self) -> list[_Connector]:
        return sorted(self._connectors.values(), key=lambda c: c.arrival)

    def _learn(self, c: _Connector, now: float) -> None:
        """Adjust the connector's learned cap from pause and measured draw."""
        if c.ev_paused:
            c.cap_a, c.under_since, c.paused_cap = self.min_a, None, True
            return
        if c.paused_cap:
            c.cap_a, c.paused_cap = None, False  # resumed from a pause: full share again
        if c.drawing_a is None or c.offered_a < self.min_a:
            c.under_since = None
            return
        if c.drawing_a > c.offered_a - self.ramp_a:
            c.cap_a, c.under_since = None, None  # at its offer: reclaim its full share
        elif c.drawing_a < c.offered_a - self.headroom_a:
            if c.under_since is None:
                c.under_since = now
            # Tolerance: the review fires at exactly under_since + settle_s, and the float
            # difference may come out a hair short (which re-armed the review at once).
            if now - c.under_since >= self.settle_s - 1e-6:
                c.cap_a = max(self.min_a, c.drawing_a + self.headroom_a)
        else:
            c.under_since = None

    def split(self, budget_a: float | Sequence[float]) -> Allocation:
        """Re-split ``budget_a`` (A per phase; one float = the same on each phase).

        Returns:
            The offers, the waiting connectors, and when to review again.
        """
        budget = (budget_a,) * 3 if isinstance(budget_a, int | float) else tuple(budget_a)
        now = self._clock()
        ordered = self._ordered()
        for c in ordered:
            self._learn(c, now)
        full = [Demand(c.connector_id, c.max_a, c.phases) for c in ordered]
        offers = split(budget, full, self.min_a)
        if any(offers[d.connector_id] < _floor_tenth(d.max_a) for d in full):
            # Someone could use more: give them what under-drawing or paused EVs leave.
            offers = split(budget, [
                Demand(c.connector_id,
                       c.max_a if c.cap_a is None else min(c.max_a, c.cap_a), c.phases)
                for c in ordered], self.min_a)
        review: float | None = None
        for c in ordered:
            c.offered_a = offers[c.connector_id]
            if c.under_since is not None and c.cap_a is None:
                due = c.under_since + self.settle_s
                review = due if review is None else min(review, due)
        waiting = tuple(c.connector_id for c in ordered
                        if c.offered_a == 0.0 and c.max_a >= self.min_a)
        return Allocation(offers, waiting, review)
