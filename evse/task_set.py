"""A set of asyncio tasks an object keeps alive and can cancel together: the CSMS
commands' *actions* run after their CALLRESULT (OCPP 1.6 §4.9, OCPP 2.0.1 use case B11),
security uploads and the like, which a disconnect or shutdown must end.

asyncio holds only a weak reference to a task, so a task nobody keeps may be collected
mid-run; keeping it here (and dropping it when done) prevents that."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")


class TaskSet:
    """Tasks started by :meth:`spawn`, kept until done, ended by :meth:`cancel_all`."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
        """Run ``coro`` as a task on the running loop and keep it until it is done.

        Raises RuntimeError when no event loop is running."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel_all(self) -> None:
        """Cancel every task still running (each ends at its next await)."""
        for task in list(self._tasks):
            task.cancel()

    def __len__(self) -> int:
        """How many tasks are still kept (not yet done)."""
        return len(self._tasks)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (None: nothing runs) and wait until it has ended; its
    CancelledError is swallowed, so a caller's close() returns normally."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
