"""Supervision of background tasks: nothing dies silently (DESIGN.md, Safety first).

Every background task of the daemon (meter poll, temperature sampling, periodic meter
samples, the OCPP link and its sender) runs under a :class:`Supervisor`. When a task raises
anything but a cancellation, the supervisor

1. logs the exception with its traceback,
2. calls the task's ``on_failure(exc)`` hook, which raises the matching fault (a meter
   driver error is a PowerMeterFailure, a lost temperature sensor a HighTemperature fault
   that stops charging, a state that cannot be written stops the offer of power),
3. waits a backoff (doubling from ``backoff_initial_s`` up to ``backoff_max_s``) and runs
   the task again.

A periodic task that succeeds again after failing calls ``on_recovery()`` and its backoff
starts over. :meth:`Supervisor.describe` reports every task's failures for ``evse status``.

The supervisor runs on the asyncio loop; it never touches the safety path (the interlock
opens contactors on the driver threads without it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
FailureHook = Callable[[BaseException], None]


@dataclass
class TaskRecord:
    """What the supervisor knows of one task (shown by ``evse status``).

    Attributes:
        name: what the task does ("meter poll connector 1").
        failures: unexpected exceptions since the daemon started.
        failing: True between a failure and the next success (periodic tasks) or restart.
        last_error: ``repr`` of the last exception, "" when none.
        restarts: times the task was started again after a failure.
    """

    name: str
    failures: int = 0
    failing: bool = False
    last_error: str = ""
    restarts: int = 0
    _backoff_s: float = field(default=0.0, repr=False)


class Supervisor:
    """Runs background coroutines and restarts them with backoff when they fail.

    Args:
        backoff_initial_s: first wait after a failure, s.
        backoff_max_s: longest wait between restarts, s.
        sleep: the sleep the waits use (``asyncio.sleep``; tests inject their own).
    """

    def __init__(self, backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0,
                 sleep: Sleep = asyncio.sleep) -> None:
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError("need 0 < backoff_initial_s <= backoff_max_s")
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep
        self.records: dict[str, TaskRecord] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- starting tasks -----------------------------------------------------------------
    def periodic(self, name: str, step: Callable[[], Awaitable[None]],
                 interval_s: Callable[[], float],
                 on_failure: FailureHook | None = None,
                 on_recovery: Callable[[], None] | None = None) -> asyncio.Task[None]:
        """Run ``await step()`` every ``interval_s()`` seconds (re-read each time) until
        cancelled. A failing step is logged, ``on_failure(exc)`` is called and the step runs
        again after the backoff; the first success after failures calls ``on_recovery()``."""
        record = self._record(name)
        return self._start(self._periodic(record, step, interval_s, on_failure, on_recovery))

    def run(self, name: str, body: Callable[[], Awaitable[None]],
            on_failure: FailureHook | None = None) -> asyncio.Task[None]:
        """Run ``await body()``; when it raises, log, call ``on_failure(exc)`` and start it
        again after the backoff. When it returns normally the task is done."""
        record = self._record(name)
        return self._start(self._forever(record, body, on_failure))

    async def close(self) -> None:
        """Cancel every supervised task and wait for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def describe(self) -> dict[str, dict[str, Any]]:
        """JSON-able state of every task, by name."""
        return {r.name: {"failures": r.failures, "failing": r.failing,
                         "last_error": r.last_error, "restarts": r.restarts}
                for r in self.records.values()}

    # -- internals ----------------------------------------------------------------------
    def _record(self, name: str) -> TaskRecord:
        record = self.records.get(name)
        if record is None:
            record = self.records[name] = TaskRecord(name)
        return record

    def _start(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _failed(self, record: TaskRecord, exc: BaseException,
                on_failure: FailureHook | None) -> float:
        """Log, raise the fault, and return how long to wait before the next run, s."""
        record.failures += 1
        record.failing = True
        record.last_error = repr(exc)[:500]
        record._backoff_s = (self.backoff_initial_s if record._backoff_s == 0.0
                             else min(record._backoff_s * 2.0, self.backoff_max_s))
        log.error("%s failed (%d so far); restarting in %.1f s", record.name,
                  record.failures, record._backoff_s, exc_info=exc)
        if on_failure is not None:
            try:
                on_failure(exc)
            except Exception:  # the hook must not take the supervision down with it
                log.exception("%s: raising its fault failed", record.name)
        return record._backoff_s

    async def _periodic(self, record: TaskRecord, step: Callable[[], Awaitable[None]],
                        interval_s: Callable[[], float], on_failure: FailureHook | None,
                        on_recovery: Callable[[], None] | None) -> None:
        while True:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = self._failed(record, exc, on_failure)
                record.restarts += 1
            else:
                if record.failing:
                    record.failing = False
                    record._backoff_s = 0.0
                    log.warning("%s works again after %d failure(s)", record.name,
                                record.failures)
                    if on_recovery is not None:
                        try:
                            on_recovery()
                        except Exception:
                            log.exception("%s: recovery hook failed", record.name)
                delay = interval_s()
            await self._sleep(delay)

    async def _forever(self, record: TaskRecord, body: Callable[[], Awaitable[None]],
                       on_failure: FailureHook | None) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await body()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if loop.time() - started > self.backoff_max_s:
                    record._backoff_s = 0.0  # it ran well for a while: start over
                delay = self._failed(record, exc, on_failure)
            await self._sleep(delay)
            record.restarts += 1
            record.failing = False


__all__ = ["Supervisor", "TaskRecord"]
