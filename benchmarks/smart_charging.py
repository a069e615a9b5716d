#!/usr/bin/env python3
"""Smart-charging benchmark: the cost of the composite schedule and of a load re-split.

1. Composite schedule with 1, 10 and 100 installed profiles (a realistic mix over 4 EVSEs:
   daily-recurring station maxima and transaction defaults with 24 hourly periods, absolute
   and relative profiles, a transaction profile), for EVSE 1 with a running transaction:
   - ``limit_now``: the limit at an instant plus the next change (what the station calls at
     every period boundary and every profile change);
   - ``composite 24 h``: the GetCompositeSchedule answer for 86400 s.
2. ``LoadBalancer.split`` for 2, 8 and 32 connectors (mixed 1- and 3-phase EVs, a budget
   that leaves some waiting, some EVs under-drawing).
3. The Station's whole re-split (``ChargingLimits.rebalance``: budget, each EVSE's profile
   limit, the split, the limits applied to the IEC machines) with 2, 8 and 32 simulated EVs
   charging and 32 profiles installed — what runs after every meter reading.

Times are the median of repeated calls, in microseconds, on this machine.

Run:  python benchmarks/smart_charging.py
Last line: ``smart_charging limit_now_100_us=… composite_100_us=… split_32_us=…
resplit_32_us=…``
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evse.authorization import AuthorizationStatus, AuthResult  # noqa: E402
from evse.charging_profiles import (  # noqa: E402
    ChargingProfile,
    ChargingSchedule,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    Recurrency,
    SchedulePeriod,
)
from evse.clock import Clock  # noqa: E402
from evse.composite_schedule import (  # noqa: E402
    TransactionContext,
    composite_schedule,
    limit_at,
)
from evse.domain import IdToken  # noqa: E402
from evse.load_balancing import LoadBalancer  # noqa: E402
from evse.station import Station  # noqa: E402
from evse.timers import ManualClock  # noqa: E402
from hal.settings import ConnectorSettings, HardwareSettings  # noqa: E402
from hal.sim.board import create_board  # noqa: E402

T0 = 1_772_323_200.0  # 2026-03-01T00:00:00Z


def make_profiles(count: int) -> list[ChargingProfile]:
    """``count`` profiles of mixed purpose, kind and unit on EVSEs 0-4."""
    out: list[ChargingProfile] = []
    hourly = tuple(SchedulePeriod(3600 * h, 6.0 + (h * 7) % 26, 3) for h in range(24))
    for i in range(count):
        variant = i % 5
        if variant == 0:
            out.append(ChargingProfile(
                i + 1, 0, ProfilePurpose.STATION_MAXIMUM, i // 5, ProfileKind.RECURRING,
                ChargingSchedule(RateUnit.A, hourly, start_at=T0 + 60 * i),
                recurrency=Recurrency.DAILY))
        elif variant == 1:
            out.append(ChargingProfile(
                i + 1, 1 + i % 4, ProfilePurpose.TX_DEFAULT, i // 5, ProfileKind.RECURRING,
                ChargingSchedule(RateUnit.W, tuple(
                    SchedulePeriod(p.start_s, p.limit * 690, 3) for p in hourly),
                    start_at=T0 + 30 * i),
                recurrency=Recurrency.DAILY))
        elif variant == 2:
            out.append(ChargingProfile(
                i + 1, 0, ProfilePurpose.TX_DEFAULT, i // 5, ProfileKind.ABSOLUTE,
                ChargingSchedule(RateUnit.A, hourly[:8], start_at=T0 + 600 * i,
                                 duration_s=8 * 3600)))
        elif variant == 3:
            out.append(ChargingProfile(
                i + 1, 1 + i % 4, ProfilePurpose.TX_DEFAULT, 20 + i // 5, ProfileKind.RELATIVE,
                ChargingSchedule(RateUnit.A, hourly[:4], duration_s=4 * 3600),
                valid_from=T0 + 3600, valid_to=T0 + 7 * 86_400))
        else:
            out.append(ChargingProfile(
                i + 1, 1, ProfilePurpose.TX, i // 5, ProfileKind.RELATIVE,
                ChargingSchedule(RateUnit.A, hourly[:12]), transaction_id="1"))
    return out


def median_us(fn: Callable[[], object], budget_s: float = 1.0, max_runs: int = 2000) -> float:
    """Median wall time of ``fn`` in µs over up to ``max_runs`` calls within ~``budget_s``."""
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < max_runs and (len(samples) < 5
                                       or time.perf_counter() - started < budget_s):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e6)
    return statistics.median(samples)


class _AcceptAll:
    async def authorize(self, id_token: IdToken | str) -> AuthResult:
        return AuthResult(AuthorizationStatus.ACCEPTED)


async def station_resplit_us(count: int) -> float:
    """Median µs of one Station re-split with ``count`` EVs charging, 32 profiles."""
    board = create_board(HardwareSettings(driver="sim"), [
        ConnectorSettings(id=i, max_current_a=32.0, phases=3) for i in range(1, count + 1)])
    clock = ManualClock()
    db = sqlite3.connect(":memory:", isolation_level=None)
    station = Station(board, {i: 32.0 for i in range(1, count + 1)}, 7.0 * count, db,
                      clock=clock, utc_clock=Clock(wall=lambda: T0 + 5000,
                                                   monotonic=clock.monotonic))
    station.authorizer = _AcceptAll()
    await station.start(poll=False)
    for profile in make_profiles(32):
        station.smart.install(profile)
    assert board.simulator is not None
    for cid in range(1, count + 1):
        board.simulator.plug(cid, 32.0, 3)
        await station.idle()
        await station.present_card(f"CARD-{cid}")
        await station.idle()
    us = median_us(station.limits.rebalance)
    await station.close()
    db.close()
    return us


def main() -> None:
    tx = TransactionContext("1", T0 + 1800)
    at = T0 + 2 * 86_400 + 5000
    figures: dict[str, float] = {}
    print(f"{'profiles':>8} {'limit_now µs':>14} {'composite 24 h µs':>18} {'periods':>8}")
    for count in (1, 10, 100):
        profiles = make_profiles(count)
        now_us = median_us(lambda p=profiles: limit_at(p, 1, at, tx))
        comp_us = median_us(lambda p=profiles: composite_schedule(
            p, 1, at, 86_400, 32.0, tx))
        periods = len(composite_schedule(profiles, 1, at, 86_400, 32.0, tx).periods)
        print(f"{count:>8} {now_us:>14.1f} {comp_us:>18.1f} {periods:>8}")
        figures[f"limit_now_{count}_us"] = now_us
        figures[f"composite_{count}_us"] = comp_us
    print(f"{'connectors':>10} {'split µs':>10} {'waiting':>8}")
    for count in (2, 8, 32):
        clock_now = [0.0]
        lb = LoadBalancer(lambda c=clock_now: c[0], settle_s=0.0)
        for cid in range(1, count + 1):
            phases = (1 + cid % 3,) if cid % 4 == 0 else (1, 2, 3)
            lb.update(cid, max_a=32.0, phases=phases)
        budget = 4.5 * count + 3.0  # not enough for a 6 A minimum each: some wait
        lb.split(budget)
        for cid in range(1, count + 1, 3):
            lb.update(cid, max_a=32.0, phases=(1, 2, 3), drawing_a=4.0)
        split_us = median_us(lambda lb=lb, b=budget: lb.split(b))
        print(f"{count:>10} {split_us:>10.1f} {len(lb.split(budget).waiting):>8}")
        figures[f"split_{count}_us"] = split_us
    print(f"{'charging':>10} {'re-split µs':>12}")
    for count in (2, 8, 32):
        resplit_us = asyncio.run(station_resplit_us(count))
        print(f"{count:>10} {resplit_us:>12.1f}")
        figures[f"resplit_{count}_us"] = resplit_us
    print("smart_charging " + " ".join(f"{k}={v:.1f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
