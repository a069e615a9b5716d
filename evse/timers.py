"""Clocks and named one-shot timers for the connector's IEC 61851 timings.

Every timer the core uses runs on a :class:`Clock`: in production :class:`LoopClock` (the
asyncio loop's monotonic clock and ``call_later``), in tests :class:`ManualClock`, which a
test advances explicitly, so timing behaviour is tested without sleeping.

Timers are created and fired on the event loop only (never on the safety path).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any, Protocol


class Cancellable(Protocol):
    """A scheduled call that can be cancelled (``asyncio.TimerHandle`` fits)."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """A monotonic clock with one-shot callbacks."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale (only differences are meaningful)."""
        ...

    def call_later(self, delay_s: float, callback: Callable[..., Any], *args: Any
                   ) -> Cancellable:
        """Run ``callback(*args)`` once after ``delay_s`` seconds (on the loop)."""
        ...


class LoopClock:
    """The production clock: the running asyncio loop's ``time()`` and ``call_later``.

    The loop is looked up lazily, so the clock may be created before the loop runs.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def monotonic(self) -> float:
        """The loop's monotonic time, s."""
        return self._get_loop().time()

    def call_later(self, delay_s: float, callback: Callable[..., Any], *args: Any
                   ) -> Cancellable:
        """``loop.call_later``."""
        return self._get_loop().call_later(max(0.0, delay_s), callback, *args)


class _ManualHandle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock tests drive: time only moves with :meth:`advance`, which fires due callbacks
    in deadline order (ties in scheduling order), each seeing its own deadline as the time."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._heap: list[tuple[float, int, _ManualHandle, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        """Current manual time, s."""
        return self._now

    def call_later(self, delay_s: float, callback: Callable[..., Any], *args: Any
                   ) -> Cancellable:
        """Schedule ``callback(*args)`` at ``now + delay_s``."""
        handle = _ManualHandle()
        heapq.heappush(self._heap, (self._now + max(0.0, delay_s), next(self._seq), handle,
                                    callback, args))
        return handle

    def next_deadline(self) -> float | None:
        """When the next live callback is due, or None."""
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running every callback that falls due."""
        end = self._now + seconds
        while True:
            due = self.next_deadline()
            if due is None or due > end:
                break
            when, _, handle, callback, args = heapq.heappop(self._heap)
            self._now = max(self._now, when)
            if not handle.cancelled:
                callback(*args)
        self._now = end


class Timer:
    """A named, restartable one-shot timer on a :class:`Clock`.

    Args:
        clock: the clock to run on.
        name: what the timer is for (shown in ``evse status`` and logs).
        callback: called on expiry, with no arguments.
    """

    def __init__(self, clock: Clock, name: str, callback: Callable[[], None]) -> None:
        self.clock = clock
        self.name = name
        self._callback = callback
        self._handle: Cancellable | None = None
        self.deadline: float | None = None

    @property
    def active(self) -> bool:
        """True while armed and not yet fired or cancelled."""
        return self._handle is not None

    def start(self, delay_s: float) -> None:
        """(Re)arm: fire ``delay_s`` seconds from now."""
        self.cancel()
        self.deadline = self.clock.monotonic() + delay_s
        self._handle = self.clock.call_later(delay_s, self._fire)

    def start_if_idle(self, delay_s: float) -> None:
        """Arm unless already armed (keeps the earlier deadline)."""
        if not self.active:
            self.start(delay_s)

    def cancel(self) -> None:
        """Disarm (no-op when idle)."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self.deadline = None

    def remaining_s(self) -> float | None:
        """Seconds until expiry, or None when idle."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - self.clock.monotonic())

    def _fire(self) -> None:
        self._handle = None
        self.deadline = None
        self._callback()
