"""Collects events a callback port reports, and lets a test await one."""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Recorder(Generic[T]):
    """``recorder(item, *rest)`` appends ``item``; ``await recorder.until(item)`` returns
    once it was seen."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self.extra: list[tuple[Any, ...]] = []
        self._changed = asyncio.Event()

    def __call__(self, item: T, *rest: Any) -> None:
        self.items.append(item)
        self.extra.append(rest)
        self._changed.set()

    async def until(self, item: T) -> None:
        while item not in self.items:
            self._changed.clear()
            await self._changed.wait()
