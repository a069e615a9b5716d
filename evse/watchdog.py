"""The systemd watchdog task: ``WATCHDOG=1`` only while the main loop *and* the safety path live.

systemd restarts the daemon when no ``WATCHDOG=1`` arrives within ``WatchdogSec=``
(``systemd.service(5)``). Pinging from the asyncio main loop proves the loop is not blocked;
pinging only while ``liveness()`` is True proves the safety path is alive too. The daemon's
liveness callable is :func:`board_liveness`: the board interlock's own supervisor
(:meth:`hal.interlock.Interlock.healthy`: every pilot sampler / co-processor heartbeat and
temperature sample fresh, and the supervisor itself cycling) plus every control pilot's
:meth:`hal.pilot.ControlPilot.sampler_age_s`. On a liveness loss the interlock has already
opened the affected contactors (LIVENESS inhibit) on its own thread; then the pings stop and
systemd restarts the daemon, and ``ExecStopPost=`` (``evse hw safe-off``) drives the contactor
outputs low once more after the process is gone (DESIGN.md, Safety first).

The same task keeps ``STATUS=`` current: it sends the ``status()`` text whenever it changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from evse.sd_notify import Notifier
from hal.board import Board
from hal.pilot import ControlPilot

log = logging.getLogger(__name__)

#: How often the STATUS= text is re-read when no watchdog interval forces a faster tick, s.
STATUS_INTERVAL_S = 1.0
#: Default bound on a pilot sampler's age before the safety path counts as stuck, s.
#: The sampler classifies the CP line every few ms; 0.5 s without a cycle means it is hung
#: and a C→B / C→A transition could no longer open the contactor within IEC 61851-1's 100 ms.
DEFAULT_MAX_SAMPLER_AGE_S = 0.5


def sampler_liveness(
    pilots: Iterable[ControlPilot], max_age_s: float = DEFAULT_MAX_SAMPLER_AGE_S
) -> Callable[[], bool]:
    """A liveness check for :func:`run_watchdog`: True while every pilot's sampler completed a
    cycle within ``max_age_s`` seconds (:meth:`ControlPilot.sampler_age_s`).

    A failing pilot is logged (at error level, once per failure episode) by name and age.
    """
    pilot_list = list(pilots)
    failing: set[int] = set()

    def check() -> bool:
        healthy = True
        for index, pilot in enumerate(pilot_list):
            age = pilot.sampler_age_s()
            if age > max_age_s:
                healthy = False
                if index not in failing:
                    failing.add(index)
                    log.error(
                        "pilot sampler %d stuck: last cycle %.3f s ago (bound %.3f s)",
                        index + 1,
                        age,
                        max_age_s,
                    )
            elif index in failing:
                failing.discard(index)
                log.warning("pilot sampler %d running again", index + 1)
        return healthy

    return check


def board_liveness(
    board: Board, max_age_s: float = DEFAULT_MAX_SAMPLER_AGE_S
) -> Callable[[], bool]:
    """The daemon's liveness check: :func:`sampler_liveness` over the board's pilots, and
    the board interlock's :meth:`~hal.interlock.Interlock.healthy` when it has one (logged
    at error level once per failure episode)."""
    samplers = sampler_liveness([hw.pilot for hw in board.connectors], max_age_s)
    interlock = board.interlock
    failing = [False]

    def check() -> bool:
        pilots_ok = samplers()
        interlock_ok = interlock is None or interlock.healthy()
        if not interlock_ok and not failing[0]:
            log.error("interlock supervisor reports the safety path dead: contactors inhibited")
        failing[0] = not interlock_ok
        return pilots_ok and interlock_ok

    return check


def _is_alive(liveness: Callable[[], bool]) -> bool:
    try:
        return bool(liveness())
    except Exception:
        log.exception("safety liveness check raised; treating as failed")
        return False


async def run_watchdog(
    notifier: Notifier,
    liveness: Callable[[], bool],
    status: Callable[[], str],
    status_interval_s: float = STATUS_INTERVAL_S,
) -> None:
    """Ping the systemd watchdog and keep ``STATUS=`` current until cancelled.

    Every ``notifier.watchdog_interval_s()`` seconds (half of ``WATCHDOG_USEC``) this sends
    ``WATCHDOG=1`` if ``liveness()`` returns True; while it returns False (or raises) no ping is
    sent, so systemd's watchdog fires after ``WatchdogSec=``. ``status()`` is read every tick
    (at most ``status_interval_s`` apart) and sent as ``STATUS=`` when its text changed. With no
    watchdog configured only the status is maintained. Run it as a task on the main loop::

        task = asyncio.create_task(run_watchdog(notifier, liveness, status_text))
        ...
        task.cancel()
    """
    interval = notifier.watchdog_interval_s()
    tick = status_interval_s if interval is None else min(interval, status_interval_s)
    last_status: str | None = None
    alive_before = True
    next_ping = time.monotonic()
    if interval is not None:
        log.info("systemd watchdog: pinging every %.3f s while the safety path is alive", interval)
    while True:
        alive = _is_alive(liveness)
        if alive != alive_before:
            if alive:
                log.warning("safety liveness check passes again: resuming watchdog pings")
            else:
                log.error("safety liveness check failed: withholding systemd watchdog pings")
            alive_before = alive
        if interval is not None and alive:
            now = time.monotonic()
            # Half a tick of slack: the loop may wake a hair early, and a skipped ping would
            # stretch the gap to a whole WATCHDOG_USEC.
            if now + tick / 2 >= next_ping:
                notifier.watchdog()
                next_ping = now + interval
        try:
            text = status()
        except Exception:
            log.exception("status text callable raised")
            text = "status unavailable"
        if not alive:
            text = f"SAFETY LIVENESS FAILED, watchdog pings withheld; {text}"
        if text != last_status:
            notifier.status(text)
            last_status = text
        await asyncio.sleep(tick)
