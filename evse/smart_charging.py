"""The smart-charging engine: installed profiles + running transactions → limits per EVSE.

The one object the station and the protocol adapters talk to (OCPP 1.6 §3.13; written once,
mapped by ``ocpp_client.v16.smart_charging`` and later by the 2.0.1 K-block):

- ``install`` / ``clear`` profiles (persisted by :class:`~evse.profile_store.ProfileStore`);
- ``transaction_started`` / ``transaction_ended`` (Relative schedules start with the
  transaction; its transaction profiles are dropped when it ends);
- ``limit_now(evse_id)`` → the limit (A per phase), its source and the next change instant;
- ``composite(evse_id, duration_s)`` → the composite schedule (GetCompositeSchedule);
- :class:`LimitWatcher` re-evaluates at each period boundary on a timer, not by polling.

Listeners registered with :meth:`SmartChargingEngine.on_change` are called with the EVSE ids
whose limit may have changed (0 = all) after every install, clear and transaction change.

Wiring (the composition root / Station; names of the station side are illustrative)::

    engine = SmartChargingEngine(ProfileStore(db), utc_clock.now, voltage_v=230.0)
    balancer = LoadBalancer(time.monotonic)
    def resplit(_=None):
        budget, source = engine.station_budget(settings.station.max_current_a)
        for c in charging_connectors():          # EV wants power (B/C, authorized)
            own = engine.limit_now(c.id, ev_phases=c.phases_in_use).limit_a
            balancer.update(c.id, max_a=min(c.rated_a, own or c.rated_a),
                            phases=c.supply_phases, ev_paused=c.ev_suspended,
                            drawing_a=c.measured_a)
        for cid, amps in balancer.split(budget).offers_a.items():
            connector(cid).set_charging_limit(amps)  # → resolve_current → pilot duty
    watchers = [LimitWatcher(engine, e, LoopClock(), utc_clock.now, resplit)
                for e in [0, *connector_ids]]
    utc_clock.on_first_sync(lambda _: [w.evaluate() for w in watchers])

and call ``resplit()`` on EV start / stop / pause / resume / meter sample, and at
``Allocation.review_at``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from evse.charging_profiles import (
    STATION_EVSE_ID,
    ChargingProfile,
    ProfilePurpose,
    RateUnit,
)
from evse.composite_schedule import (
    ActiveLimit,
    CompositeSchedule,
    TransactionContext,
    composite_schedule,
    limit_at,
)
from evse.profile_store import ProfileStore
from evse.timers import Clock as TimerClock
from evse.timers import Timer

ChangeListener = Callable[[int], None]


class SmartChargingEngine:
    """Charging profiles and the transactions they shape.

    Args:
        store: where profiles persist.
        utc_now: the UTC clock, epoch s (``evse.clock.Clock.now`` in production).
        voltage_v: nominal phase voltage for W ↔ A, V (from config).
    """

    def __init__(self, store: ProfileStore, utc_now: Callable[[], float],
                 voltage_v: float = 230.0) -> None:
        self.store = store
        self.voltage_v = voltage_v
        self._utc_now = utc_now
        self._transactions: dict[int, TransactionContext] = {}
        self._listeners: list[ChangeListener] = []
        store.drop_expired(utc_now())

    def on_change(self, listener: ChangeListener) -> None:
        """Call ``listener(evse_id)`` when that EVSE's limit may have changed (0 = every
        EVSE)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: ChangeListener) -> None:
        """Undo :meth:`on_change` (no-op when not registered)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self, evse_id: int) -> None:
        for listener in list(self._listeners):
            listener(evse_id)

    # --- profiles ------------------------------------------------------------------------

    def install(self, profile: ChargingProfile) -> list[ChargingProfile]:
        """Install (persisted) and return the profiles it replaced.

        Raises:
            ProfileError: invalid profile; sqlite3.Error: not persisted (nothing changed).
        """
        replaced = self.store.install(profile)
        self._notify(profile.evse_id)
        return replaced

    def clear(self, profile_id: int | None = None, evse_id: int | None = None,
              purpose: ProfilePurpose | None = None, stack_level: int | None = None
              ) -> list[ChargingProfile]:
        """Remove the profiles matching every given criterion; by ``profile_id`` alone when
        it is given (OCPP 1.6 §5.5). Returns the removed ones (empty: nothing matched)."""
        if profile_id is not None:
            victims = self.store.matching(profile_id=profile_id)
        else:
            victims = self.store.matching(evse_id=evse_id, purpose=purpose,
                                          stack_level=stack_level)
        gone = self.store.remove(victims)
        for evse in sorted({p.evse_id for p in gone}):
            self._notify(evse)
        return gone

    def drop_expired(self) -> list[ChargingProfile]:
        """Delete profiles that can never apply again."""
        return self.store.drop_expired(self._utc_now())

    # --- transactions --------------------------------------------------------------------

    def transaction(self, evse_id: int) -> TransactionContext | None:
        """The transaction running on ``evse_id``, as last reported."""
        return self._transactions.get(evse_id)

    def transaction_started(self, evse_id: int, transaction_id: str,
                            started_at: float | None = None) -> None:
        """A transaction started on ``evse_id`` (at ``started_at``, UTC epoch s; default now)."""
        at = self._utc_now() if started_at is None else started_at
        self._transactions[evse_id] = TransactionContext(transaction_id, at)
        self._notify(evse_id)

    def transaction_ended(self, evse_id: int) -> list[ChargingProfile]:
        """The transaction on ``evse_id`` ended: forget it and drop its transaction profiles
        (OCPP 1.6 §3.13.2 TxProfile). Returns the dropped profiles."""
        tx = self._transactions.pop(evse_id, None)
        dropped = self.store.drop_transaction(
            evse_id, None if tx is None else tx.transaction_id)
        self._notify(evse_id)
        return dropped

    # --- limits --------------------------------------------------------------------------

    def limit_now(self, evse_id: int, at: float | None = None,
                  ev_phases: int | None = None) -> ActiveLimit:
        """The composite limit of ``evse_id`` at ``at`` (default now), A per phase, with its
        source and the next change instant (see :func:`evse.composite_schedule.limit_at`).
        EVSE 0 gives the station maximum (the load balancer's profile cap)."""
        t = self._utc_now() if at is None else at
        return limit_at(self.store.all(), evse_id, t, self._transactions.get(evse_id),
                        voltage_v=self.voltage_v, ev_phases=ev_phases)

    def station_budget(self, max_current_a: float, at: float | None = None
                       ) -> tuple[float, str]:
        """The load balancer's budget, A per phase, and its source: the configured station
        maximum (``[station] max_current_a``) further capped by a station maximum profile.

        Returns:
            ``(budget_a, source)`` with source ``"station"`` or e.g. ``"profile 3"``.
        """
        limit = self.limit_now(STATION_EVSE_ID, at)
        if limit.limit_a is not None and limit.limit_a < max_current_a:
            return limit.limit_a, limit.source or "station"
        return max_current_a, "station"

    def composite(self, evse_id: int, duration_s: int, ceiling_a: float,
                  unit: RateUnit = RateUnit.A, start_at: float | None = None
                  ) -> CompositeSchedule:
        """The composite schedule of ``evse_id`` from ``start_at`` (default: now, rounded
        down to the second) for ``duration_s`` s, capped at ``ceiling_a`` (A per phase), in
        ``unit``.

        Raises:
            ValueError: ``duration_s`` not positive.
        """
        # Default start on a whole second, so period offsets are exact (1.6 §7.9 integers).
        t = float(math.floor(self._utc_now())) if start_at is None else start_at
        return composite_schedule(self.store.all(), evse_id, t, duration_s, ceiling_a,
                                  self._transactions.get(evse_id), unit=unit,
                                  voltage_v=self.voltage_v)


class LimitWatcher:
    """Keeps one EVSE's profile limit current: evaluates it on every engine change and at
    the next period boundary (one timer), and calls ``apply(limit)`` when it differs.

    Args:
        engine: the engine.
        evse_id: the EVSE watched (0 = the station maximum).
        clock: the timer clock (``LoopClock`` in production, ``ManualClock`` in tests).
        utc_now: the UTC clock used by the engine, epoch s.
        apply: called with the new :class:`ActiveLimit` (on the loop).
    """

    def __init__(self, engine: SmartChargingEngine, evse_id: int, clock: TimerClock,
                 utc_now: Callable[[], float], apply: Callable[[ActiveLimit], None]) -> None:
        self._engine = engine
        self.evse_id = evse_id
        self._utc_now = utc_now
        self._apply = apply
        self._timer = Timer(clock, f"profile period boundary (EVSE {evse_id})",
                            self._on_timer)
        self.current: ActiveLimit | None = None
        engine.on_change(self._changed)

    def _changed(self, evse_id: int) -> None:
        if evse_id in (self.evse_id, STATION_EVSE_ID):
            self.evaluate()

    def _on_timer(self) -> None:
        self.evaluate()

    def evaluate(self) -> ActiveLimit:
        """Re-evaluate now, re-arm the timer for the next change, apply if changed."""
        limit = self._engine.limit_now(self.evse_id)
        self._timer.cancel()
        if limit.next_change_at is not None:
            self._timer.start(max(0.0, limit.next_change_at - self._utc_now()))
        previous, self.current = self.current, limit
        if previous is None or (previous.limit_a, previous.phases, previous.profile_id) != (
                limit.limit_a, limit.phases, limit.profile_id):
            self._apply(limit)
        return limit

    def stop(self) -> None:
        """Disarm the timer and stop following the engine."""
        self._timer.cancel()
        self._engine.remove_listener(self._changed)
