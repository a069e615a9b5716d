"""evse.supervisor: a failing background task is logged with its traceback, raises its
fault, restarts with a doubling backoff, and reports recovery."""

from __future__ import annotations

import asyncio
import logging

import pytest

from evse.supervisor import Supervisor


class Waits:
    """An injected sleep: records every wait and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay_s: float) -> None:
        self.delays.append(delay_s)
        await asyncio.sleep(0)


async def test_periodic_step_failures_fault_back_off_and_recover(
        caplog: pytest.LogCaptureFixture) -> None:
    waits = Waits()
    sup = Supervisor(backoff_initial_s=0.5, backoff_max_s=2.0, sleep=waits)
    outcomes = [TypeError("bad driver")] * 4 + [None] * 3
    faults: list[BaseException] = []
    recovered = asyncio.Event()
    done = asyncio.Event()
    runs = 0

    async def step() -> None:
        nonlocal runs
        runs += 1
        if runs == len(outcomes):
            done.set()
        outcome = outcomes[min(runs, len(outcomes)) - 1]
        if outcome is not None:
            raise outcome

    with caplog.at_level(logging.ERROR, logger="evse.supervisor"):
        task = sup.periodic("meter poll connector 1", step, lambda: 1.0,
                            on_failure=faults.append, on_recovery=recovered.set)
        await asyncio.wait_for(done.wait(), 5)
    await sup.close()
    assert task.cancelled()
    # Four failures: four faults, waits 0.5, 1, 2, 2 (capped); then the normal interval.
    assert [str(f) for f in faults] == ["bad driver"] * 4
    assert waits.delays[:6] == [0.5, 1.0, 2.0, 2.0, 1.0, 1.0]
    assert recovered.is_set()
    record = sup.describe()["meter poll connector 1"]
    assert record["failures"] == 4 and not record["failing"]
    assert record["last_error"] == "TypeError('bad driver')"
    # Every failure logged with its traceback.
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert len(tracebacks) == 4
    assert all(isinstance(r.exc_info[1], TypeError) for r in tracebacks if r.exc_info)


async def test_backoff_starts_over_after_a_recovery() -> None:
    waits = Waits()
    sup = Supervisor(backoff_initial_s=0.5, backoff_max_s=8.0, sleep=waits)
    pattern = [True, True, False, True, False]  # True = fail
    done = asyncio.Event()
    runs = 0

    async def step() -> None:
        nonlocal runs
        runs += 1
        if runs >= len(pattern):
            done.set()
            await asyncio.Event().wait()  # park
        if pattern[runs - 1]:
            raise OSError("bus error")

    sup.periodic("temperature connector 1", step, lambda: 3.0)
    await asyncio.wait_for(done.wait(), 5)
    await sup.close()
    assert waits.delays == [0.5, 1.0, 3.0, 0.5]


async def test_long_running_task_restarts_after_a_crash_and_finishes() -> None:
    waits = Waits()
    sup = Supervisor(backoff_initial_s=0.25, backoff_max_s=1.0, sleep=waits)
    faults: list[BaseException] = []
    runs = 0

    async def body() -> None:
        nonlocal runs
        runs += 1
        if runs <= 3:
            raise RuntimeError(f"crash {runs}")

    task = sup.run("ocpp link", body, on_failure=faults.append)
    await asyncio.wait_for(task, 5)
    assert runs == 4 and [str(f) for f in faults] == ["crash 1", "crash 2", "crash 3"]
    assert waits.delays == [0.25, 0.5, 1.0]
    assert sup.describe()["ocpp link"]["restarts"] == 3


async def test_a_failing_fault_hook_does_not_end_supervision() -> None:
    waits = Waits()
    sup = Supervisor(sleep=waits)
    done = asyncio.Event()
    runs = 0

    async def step() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            done.set()
        raise ValueError("x")

    def broken_hook(_exc: BaseException) -> None:
        raise RuntimeError("hook bug")

    sup.periodic("sampler", step, lambda: 1.0, on_failure=broken_hook)
    await asyncio.wait_for(done.wait(), 5)
    await sup.close()
    assert runs >= 3


async def test_cancellation_is_not_a_failure() -> None:
    sup = Supervisor()
    started = asyncio.Event()
    faults: list[BaseException] = []

    async def body() -> None:
        started.set()
        await asyncio.Event().wait()

    task = sup.run("link", body, on_failure=faults.append)
    await started.wait()
    await sup.close()
    assert task.cancelled() and faults == [] and sup.describe()["link"]["failures"] == 0


def test_backoff_bounds_validated() -> None:
    with pytest.raises(ValueError):
        Supervisor(backoff_initial_s=5.0, backoff_max_s=1.0)
