"""The watchdog task pings only while the main loop and the safety path's liveness hold."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from evse.sd_notify import Notifier
from evse.watchdog import run_watchdog, sampler_liveness
from hal.pilot import ControlPilot, PilotReading, PilotState

#: WATCHDOG_USEC for the tests: 0.2 s, so pings every 0.1 s.
WATCHDOG_USEC = 200_000
INTERVAL_S = WATCHDOG_USEC / 2e6


class SampledPilot(ControlPilot):
    """A pilot with a sampler whose last cycle time the test controls (the real hook)."""

    def __init__(self) -> None:
        super().__init__()
        self.last_cycle = time.monotonic()
        self.stuck = False

    def sampler_age_s(self) -> float:
        if not self.stuck:
            self.last_cycle = time.monotonic()
        return time.monotonic() - self.last_cycle

    def set_duty(self, duty_percent: float) -> None:
        pass

    def set_off(self) -> None:
        pass

    def set_state_f(self) -> None:
        pass

    @property
    def duty_percent(self) -> float:
        return 100.0

    def read(self) -> PilotReading:
        return PilotReading(PilotState.A)


@contextlib.asynccontextmanager
async def watchdog_task(
    listener: Any, liveness: Callable[[], bool], status: Callable[[], str]
) -> AsyncIterator[Notifier]:
    notifier = Notifier(
        environ={"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    )
    task = asyncio.create_task(run_watchdog(notifier, liveness, status, status_interval_s=0.05))
    try:
        yield notifier
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        notifier.close()


async def count_pings(listener: Any, duration_s: float) -> int:
    """Count WATCHDOG=1 datagrams arriving within ``duration_s``."""
    pings = 0
    deadline = asyncio.get_running_loop().time() + duration_s
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            if await listener.next(left) == "WATCHDOG=1":
                pings += 1
        except TimeoutError:
            break
    return pings


async def test_pings_periodically_at_half_watchdog_usec(notify_socket: Any) -> None:
    async with watchdog_task(notify_socket, lambda: True, lambda: "ok"):
        stamps = []
        while len(stamps) < 5:
            await notify_socket.wait_for(lambda m: m == "WATCHDOG=1", timeout_s=2 * INTERVAL_S)
            stamps.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    # Every gap well inside WATCHDOG_USEC, none much faster than the interval.
    assert all(INTERVAL_S * 0.5 < gap < WATCHDOG_USEC / 1e6 for gap in gaps), gaps


async def test_stuck_pilot_sampler_stops_pings(notify_socket: Any) -> None:
    pilots = [SampledPilot(), SampledPilot()]
    liveness = sampler_liveness(pilots, max_age_s=0.05)
    async with watchdog_task(notify_socket, liveness, lambda: "connector 1: Available"):
        await notify_socket.wait_for(lambda m: m == "WATCHDOG=1")
        pilots[1].stuck = True
        # The failure shows in systemctl status ...
        await notify_socket.wait_for(lambda m: m.startswith("STATUS=SAFETY LIVENESS FAILED"))
        notify_socket.drain()
        # ... and no ping arrives for several intervals (systemd would restart the daemon).
        assert await count_pings(notify_socket, 4 * INTERVAL_S) == 0
        pilots[1].stuck = False
        await notify_socket.wait_for(lambda m: m == "WATCHDOG=1", timeout_s=2.0)
        await notify_socket.wait_for(lambda m: m == "STATUS=connector 1: Available")


async def test_raising_liveness_counts_as_failed(notify_socket: Any) -> None:
    def broken() -> bool:
        raise RuntimeError("sensor gone")

    async with watchdog_task(notify_socket, broken, lambda: "x"):
        assert await count_pings(notify_socket, 3 * INTERVAL_S) == 0


async def test_blocked_main_loop_stops_pings(notify_socket: Any) -> None:
    async with watchdog_task(notify_socket, lambda: True, lambda: "x"):
        await notify_socket.wait_for(lambda m: m == "WATCHDOG=1")
        time.sleep(3 * INTERVAL_S)  # the event loop is hung: nothing may be sent meanwhile
        sent_while_blocked = [m for m in notify_socket.drain() if m == "WATCHDOG=1"]
        assert len(sent_while_blocked) <= 1  # at most the one already queued before blocking


async def test_status_sent_when_it_changes(notify_socket: Any) -> None:
    text = ["CSMS connecting; connector 1: Available"]
    async with watchdog_task(notify_socket, lambda: True, lambda: text[0]):
        await notify_socket.wait_for(lambda m: m == f"STATUS={text[0]}")
        await count_pings(notify_socket, 3 * INTERVAL_S)
        assert [m for m in notify_socket.messages if m.startswith("STATUS=")] == [
            f"STATUS={text[0]}"
        ]
        text[0] = "CSMS connected; connector 1: Charging"
        await notify_socket.wait_for(lambda m: m == f"STATUS={text[0]}")


async def test_no_watchdog_configured_only_status(notify_socket: Any) -> None:
    notifier = Notifier(environ={"NOTIFY_SOCKET": notify_socket.address})
    task = asyncio.create_task(run_watchdog(notifier, lambda: True, lambda: "idle", 0.02))
    try:
        assert await notify_socket.next() == "STATUS=idle"
        with pytest.raises(TimeoutError):
            await notify_socket.next(0.2)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_sampler_liveness_bound() -> None:
    pilot = SampledPilot()
    check = sampler_liveness([pilot], max_age_s=0.01)
    assert check()
    pilot.stuck = True
    pilot.last_cycle -= 1.0
    assert not check()
