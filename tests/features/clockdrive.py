"""Drive a coroutine that waits on a :class:`~evse.timers.ManualClock` (no real waits)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from evse.timers import ManualClock

T = TypeVar("T")


async def drive(awaitable: Awaitable[T], clock: ManualClock, limit_s: float = 10.0) -> T:
    """Await ``awaitable``; whenever it waits on ``clock`` (a timer is armed), jump the
    clock to that timer's deadline. Real time is only spent on real I/O (worker threads,
    loopback sockets), bounded by ``limit_s``."""
    task = asyncio.ensure_future(awaitable)
    loop = asyncio.get_running_loop()
    end = loop.time() + limit_s
    while not task.done():
        if loop.time() > end:
            task.cancel()
            raise AssertionError("did not finish")
        await asyncio.wait({task}, timeout=0.01)
        if task.done():
            break
        due = clock.next_deadline()
        if due is not None:
            clock.advance(max(0.0, due - clock.monotonic()))
    return task.result()
