"""Charging limits of the station's EVSEs: smart-charging profiles + load balancing → pilot.

The Station's one place where the protocol-neutral engines meet the IEC 61851 machines:

- a :class:`~evse.smart_charging.SmartChargingEngine` holds the charging profiles (OCPP 1.6
  §3.13; persisted) and the running transactions; a
  :class:`~evse.smart_charging.LimitWatcher` per EVSE (and one for EVSE 0, the station
  maximum) re-evaluates at every period boundary on a timer;
- a :class:`~evse.load_balancing.LoadBalancer` shares the station budget
  (``[station] max_current_a``, capped by a station-maximum profile and, with a grid-side
  meter, by ``grid_limit_a`` minus the measured non-EV load) among the EVSEs running a
  transaction with an EV plugged: fair share, at least 6 A or 0 (the EVSE waits,
  SuspendedEVSE, and is served first when budget frees);
- each EVSE's offer (A per phase) becomes ``IecMachine.limit_a``, which the current-limit
  resolution (:func:`evse.limits.resolve_current`) turns into the pilot duty — the IEC 61851
  rules still apply there (duty changes at most every ``duty_change_interval_s``; below 6 A
  the EVSE suspends).

Re-split on a transaction start / end, a session state change (EV starts, pauses, resumes),
every meter reading (an EV drawing less than offered), a profile change and the balancer's
own review instant. Everything runs on the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evse.charging_profiles import STATION_EVSE_ID
from evse.composite_schedule import ActiveLimit
from evse.iec_machine import FAULT
from evse.load_balancing import THREE_PHASES, LoadBalancer, grid_budget, phase_currents
from evse.session_machine import SUSPENDED_BY_EV, SessionMachine
from evse.smart_charging import LimitWatcher, SmartChargingEngine
from evse.timers import Clock as TimerClock
from evse.timers import Timer
from hal.meter import EnergyMeter, MeterReading, PowerMeterFailure

log = logging.getLogger(__name__)

#: Source names shown by ``evse status`` (``limit_source``) besides "profile <id>".
LOAD_BALANCING = "load balancing"

#: A phase carrying at least this current counts as one the EV draws on, A.
_PHASE_IN_USE_A = 1.0


@dataclass(frozen=True)
class GridSupply:
    """A grid-side meter giving the load balancer dynamic headroom.

    Attributes:
        meter: the grid meter (any configured meter backend).
        limit_a: the grid connection's limit per phase, A.
    """

    meter: EnergyMeter
    limit_a: float


@dataclass(frozen=True)
class EvseLimit:
    """The limit applied to one EVSE.

    Attributes:
        limit_a: A per phase handed to the IEC machine (None = no limit from here).
        source: what set it: ``"profile 7"``, ``"load balancing"``, ``"station"`` (the
            budget itself), or the override's name.
    """

    limit_a: float | None
    source: str


class ChargingLimits:
    """Profiles and the shared budget of every EVSE of a station.

    Args:
        connectors: the EVSEs' session machines by connector id.
        engine: the smart-charging engine.
        station_limit_a: the configured station maximum per phase, A (a callable: the
            Station's attribute may change).
        timer_clock: the clock of the period-boundary and review timers.
        utc_now: the UTC clock of the profiles, epoch s.
        grid: a grid-side meter and limit, or None.
    """

    def __init__(self, connectors: Mapping[int, SessionMachine], engine: SmartChargingEngine,
                 station_limit_a: Callable[[], float], timer_clock: TimerClock,
                 utc_now: Callable[[], float], grid: GridSupply | None = None) -> None:
        self._connectors = connectors
        self.engine = engine
        self._station_limit_a = station_limit_a
        self._utc_now = utc_now
        self.grid = grid
        #: The last grid reading (current per phase), A.
        self.grid_current_a: tuple[float, float, float] | None = None
        self.balancer = LoadBalancer(timer_clock.monotonic)
        self._review = Timer(timer_clock, "load balancing review", self.rebalance)
        self._overrides: dict[int, tuple[float, str]] = {}
        self._applied: dict[int, EvseLimit] = {}
        self.budget_a: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self.budget_source = "station"
        self._busy = False
        self._again = False
        #: Each EVSE's own profile limit by (EVSE id, EV phases), valid until its
        #: ``next_change_at`` or the next engine change: a re-split on every meter reading
        #: must not re-evaluate every profile of every EVSE.
        self._own: dict[tuple[int, int], ActiveLimit] = {}
        engine.on_change(self._engine_changed)  # before the watchers: they re-split
        self._watchers = [
            LimitWatcher(engine, evse_id, timer_clock, utc_now, self._profile_changed)
            for evse_id in [STATION_EVSE_ID, *(c.evse_id for c in connectors.values())]]

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Arm the period-boundary timers and apply the limits (on the running loop).
        Transaction profiles of transactions that no longer run (the last run ended) are
        dropped first: no transaction survives a restart."""
        for conn in self._connectors.values():
            if self.engine.transaction(conn.evse_id) is None:
                self.engine.store.drop_transaction(conn.evse_id)
        self.engine.drop_expired()
        for watcher in self._watchers:
            watcher.evaluate()
        self.rebalance()

    def stop(self) -> None:
        """Disarm every timer."""
        for watcher in self._watchers:
            watcher.stop()
        self._review.cancel()

    # -- what the Station tells --------------------------------------------------------------
    def transaction_started(self, conn: SessionMachine, session_id: int,
                            started_at: float) -> None:
        """A transaction (local session ``session_id``) started on ``conn`` at
        ``started_at`` (UTC epoch s): Relative schedules start now, its budget share is
        computed before power is offered."""
        self.engine.transaction_started(conn.evse_id, str(session_id), started_at)
        self.rebalance()

    def transaction_ended(self, conn: SessionMachine) -> None:
        """The transaction on ``conn`` ended: its transaction profiles go, its share is
        given to the others, and an override set for it (a deauthorization) is lifted."""
        self._overrides.pop(conn.id, None)
        if self.engine.transaction(conn.evse_id) is not None:
            self.engine.transaction_ended(conn.evse_id)
        self.balancer.remove(conn.id)
        self.rebalance()

    def set_override(self, connector_id: int, limit_a: float | None,
                     source: str = "charging_limit") -> None:
        """A limit from elsewhere (e.g. a deauthorized transaction: 0 A) that caps the
        profile / balancer limit; None removes it."""
        if limit_a is None:
            self._overrides.pop(connector_id, None)
        else:
            self._overrides[connector_id] = (limit_a, source)
        self.rebalance()

    def on_grid_reading(self, reading: MeterReading) -> None:
        """A grid meter reading: the headroom changed."""
        currents = (*reading.current_a, 0.0, 0.0, 0.0)
        self.grid_current_a = (currents[0], currents[1], currents[2])
        self.rebalance()

    async def poll_grid(self) -> None:
        """Read the grid meter once (on a worker thread). Without a good reading the
        non-EV load is unknown: the budget is then the station maximum capped at the grid
        limit (logged)."""
        if self.grid is None:
            return
        try:
            reading = await asyncio.to_thread(self.grid.meter.read)
        except PowerMeterFailure as exc:
            log.warning("grid meter: %s; budget capped at the grid limit", exc.reason)
            self.grid_current_a = None
            self.rebalance()
            return
        self.on_grid_reading(reading)

    # -- the split --------------------------------------------------------------------------
    def _engine_changed(self, _evse_id: int) -> None:
        self._own.clear()

    def _profile_changed(self, _limit: ActiveLimit) -> None:
        self._own.clear()
        self.rebalance()

    def clock_corrected(self) -> None:
        """The UTC clock stepped (first CSMS time): period boundaries move, re-arm."""
        self._own.clear()
        for watcher in self._watchers:
            watcher.evaluate()
        self.rebalance()

    def _own_limit(self, evse_id: int, ev_phases: int) -> ActiveLimit:
        """The EVSE's profile limit now (cached until it changes)."""
        key = (evse_id, ev_phases)
        cached = self._own.get(key)
        if cached is not None and (cached.next_change_at is None
                                   or self._utc_now() < cached.next_change_at):
            return cached
        limit = self.engine.limit_now(evse_id, ev_phases=ev_phases)
        self._own[key] = limit
        return limit

    def _active(self, conn: SessionMachine) -> bool:
        """The EVSE takes part in the split: a transaction runs on it and it is not faulted.
        An EV unplugged from a transaction kept open counts as paused (it keeps the minimum,
        so it never offers more than its share when it comes back)."""
        return (self.engine.transaction(conn.evse_id) is not None
                and conn.iec.state != FAULT)

    @staticmethod
    def _phases(conn: SessionMachine) -> tuple[int, ...]:
        """The supply phases the EV draws on (from the meter), all three when unknown."""
        reading = conn.iec.last_reading
        if reading is None or not conn.hw.contactor.commanded_closed:
            return THREE_PHASES
        used = tuple(i + 1 for i, a in enumerate(reading.current_a[:3]) if a >= _PHASE_IN_USE_A)
        return used or THREE_PHASES

    def _budget(self) -> tuple[tuple[float, float, float], str]:
        # SmartChargingEngine.station_budget, on the cached station maximum.
        budget, source = self._station_limit_a(), "station"
        station = self._own_limit(STATION_EVSE_ID, 3)
        if station.limit_a is not None and station.limit_a < budget:
            budget, source = station.limit_a, station.source or "station"
        if self.grid is None:
            return (budget, budget, budget), source
        ev: dict[int, float] = {}
        phases: dict[int, tuple[int, ...]] = {}
        for conn in self._connectors.values():
            reading = conn.iec.last_reading
            if reading is not None and reading.current_a:
                ev[conn.id] = max(reading.current_a)
                phases[conn.id] = self._phases(conn)
        grid = self.grid_current_a
        if grid is None:  # no reading (yet): only the grid limit is known
            capped = min(budget, self.grid.limit_a)
            return (capped, capped, capped), source if capped == budget else "grid"
        per_phase = grid_budget(budget, self.grid.limit_a, grid, phase_currents(ev, phases))
        return per_phase, source if min(per_phase) >= budget else "grid"

    def rebalance(self) -> None:
        """Re-split the budget and apply every EVSE's limit (re-entrant calls coalesce)."""
        if self._busy:
            self._again = True
            return
        self._busy = True
        try:
            self._again = True
            while self._again:
                self._again = False
                self._split_and_apply()
        finally:
            self._busy = False

    def _split_and_apply(self) -> None:
        self.budget_a, self.budget_source = self._budget()
        own: dict[int, ActiveLimit] = {}
        maxima: dict[int, float] = {}
        for conn in self._connectors.values():
            phases = self._phases(conn)
            limit = self._own_limit(conn.evse_id, len(phases))
            own[conn.id] = limit
            rated = conn.iec.max_current_a
            maxima[conn.id] = rated if limit.limit_a is None else min(rated, limit.limit_a)
            if not self._active(conn):
                self.balancer.remove(conn.id)
                continue
            reading = conn.iec.last_reading
            # Only a good reading while energized tells what the EV draws.
            drawing = (max(reading.current_a) if reading is not None and reading.current_a
                       and conn.iec.meter_fault is None
                       and conn.hw.contactor.commanded_closed else None)
            self.balancer.update(conn.id, max_a=maxima[conn.id], phases=phases,
                                 ev_paused=conn.state == SUSPENDED_BY_EV, drawing_a=drawing)
        allocation = self.balancer.split(self.budget_a)
        if allocation.review_at is not None:
            self._review.start(max(0.0, allocation.review_at - self._review.clock.monotonic()))
        else:
            self._review.cancel()
        for conn in self._connectors.values():
            limit = own[conn.id]
            if conn.id in allocation.offers_a:
                offer = allocation.offers_a[conn.id]
                # The EVSE's own profile is what binds when the split gave it all of it.
                binds = limit.limit_a is not None and offer >= maxima[conn.id] - 0.1 \
                    and maxima[conn.id] == limit.limit_a
                applied = EvseLimit(offer, (limit.source or LOAD_BALANCING) if binds
                                    else LOAD_BALANCING)
            elif limit.limit_a is not None:
                applied = EvseLimit(limit.limit_a, limit.source or LOAD_BALANCING)
            else:
                applied = EvseLimit(None, "station")
            override = self._overrides.get(conn.id)
            if override is not None and (applied.limit_a is None or override[0] < applied.limit_a):
                applied = EvseLimit(override[0], override[1])
            self._apply(conn, applied)

    def _apply(self, conn: SessionMachine, limit: EvseLimit) -> None:
        previous = self._applied.get(conn.id)
        self._applied[conn.id] = limit
        conn.iec.limit_a = limit.limit_a
        conn.iec.limit_source = limit.source
        if previous != limit:
            log.info("connector %d: charging limit %s (%s)", conn.id,
                     "none" if limit.limit_a is None else f"{limit.limit_a:.1f} A",
                     limit.source)
            conn.reevaluate()

    # -- reporting --------------------------------------------------------------------------
    def applied(self, connector_id: int) -> EvseLimit | None:
        """The limit last applied to ``connector_id``."""
        return self._applied.get(connector_id)

    def describe(self) -> dict[str, Any]:
        """JSON-able budget state for ``evse status``."""
        return {
            "budget_a": [round(b, 1) for b in self.budget_a],
            "budget_source": self.budget_source,
            "waiting": list(self.balancer.waiting),
            "grid_current_a": None if self.grid_current_a is None
            else list(self.grid_current_a),
            "profiles_installed": len(self.engine.store),
        }

    def waiting(self) -> Sequence[int]:
        """Connectors waiting for budget (offered 0), in service order."""
        return self.balancer.waiting
