"""Commissioning checks for technicians: ``evse meter read`` and ``evse hw test``.

Both build the configured hardware themselves, so they must run with no daemon driving it
(``evse hw test`` refuses when the control socket answers).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evse.config import Config
from hal.board import Board, ConnectorHardware
from hal.lock import ConnectorLockFailure
from hal.meter import EnergyMeter, MeterReading, PowerMeterFailure
from hal.pilot import PilotState
from hal.registry import BackendError, create_board, create_meter


@dataclass(frozen=True)
class MeterResult:
    """One connector's meter: a reading, or the fault and why."""

    connector_id: int
    reading: MeterReading | None = None
    fault: str | None = None

    def as_json(self) -> dict[str, Any]:
        """``energy_active_import_wh``, ``power_active_w``, ``voltage_v`` and ``current_a``
        (lists L1–L3), or ``fault``."""
        if self.reading is None:
            return {"fault": self.fault or "unknown"}
        r = self.reading
        return {
            "energy_active_import_wh": r.energy_active_import_wh,
            "power_active_w": r.power_active_w,
            "voltage_v": list(r.voltage_v),
            "current_a": list(r.current_a),
        }


@dataclass(frozen=True)
class PartResult:
    """The outcome of testing one part of one connector."""

    connector_id: int
    part: str
    passed: bool
    detail: str


def _read(connector_id: int, meter: EnergyMeter) -> MeterResult:
    try:
        return MeterResult(connector_id, reading=meter.read())
    except PowerMeterFailure as exc:
        return MeterResult(connector_id, fault=exc.reason)


def read_meters(config: Config) -> list[MeterResult]:
    """Read every configured meter once.

    Bus meters are opened on their own (no GPIO needed); ``sim`` meters through the
    simulated board. A meter that cannot even be opened is reported as a fault.
    """
    results: list[MeterResult] = []
    board: Board | None = None
    try:
        for conn in config.connectors:
            if conn.meter.driver == "sim":
                if board is None:
                    board = create_board(config.hardware, config.connectors)
                hw = next(h for h in board.connectors if h.connector_id == conn.id)
                results.append(_read(conn.id, hw.meter))
                continue
            try:
                meter = create_meter(conn.meter)
            except (BackendError, ValueError, OSError) as exc:
                results.append(MeterResult(conn.id, fault=f"cannot open meter: {exc}"))
                continue
            try:
                results.append(_read(conn.id, meter))
            finally:
                meter.close()
    finally:
        if board is not None:
            board.close()
    return results


#: How long the pilot must read A without a break before the line counts as "no EV", s.
#: The sampler needs a few bursts to report a change; a reading taken at once could be the
#: driver's start-up assumption (A).
PILOT_SETTLE_S = 0.5


def _wait_stable(predicate: Callable[[], bool], hold_s: float, timeout_s: float) -> bool:
    """True once ``predicate`` held for ``hold_s`` without a break (within ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    since: float | None = None
    while True:
        now = time.monotonic()
        if predicate():
            since = now if since is None else since
            if now - since >= hold_s:
                return True
        else:
            since = None
        if now >= deadline:
            return False
        time.sleep(0.01)


def _wait(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


#: ``say(text)``: tell the technician what the next step does, before it does it.
Say = Callable[[str], None]
#: ``confirm(question) -> bool``: ask the technician; False = do not energize.
Confirm = Callable[[str], bool]


def _test_contactor(hw: ConnectorHardware, timeout_s: float, say: Say,
                    confirm: Confirm) -> PartResult:
    """Energize only with no EV (pilot A) and a clear RCD, after the technician confirms."""
    cid = hw.connector_id
    if not _wait_stable(lambda: hw.pilot.read().state is PilotState.A, PILOT_SETTLE_S,
                        PILOT_SETTLE_S + 0.1):
        reading = hw.pilot.read()
        return PartResult(cid, "contactor", False,
                          f"not energized: pilot reads {reading.state.value}, not A "
                          "(unplug any EV first)")
    if hw.rcd.tripped:
        return PartResult(cid, "contactor", False, "not energized: the RCD reports a trip")
    say(f"connector {cid} contactor: will CLOSE the contactor for up to {timeout_s:.1f} s "
        "(the outlet is LIVE at mains voltage meanwhile), check the feedback contact, "
        "then open it and check the feedback again")
    if not confirm(f"Energize connector {cid} now?"):
        return PartResult(cid, "contactor", False, "not energized: not confirmed")
    c = hw.contactor
    permit = hw.interlock.commissioning() if hw.interlock is not None else contextlib.nullcontext()
    try:
        with permit:
            if not c.close():
                held = ", ".join(f"{k.value} ({v})" for k, v in c.inhibits.items())
                return PartResult(cid, "contactor", False,
                                  f"not energized: the interlock refused ({held or 'permit'})")
            closed = _wait(lambda: c.feedback_closed in (None, True), timeout_s)
    finally:
        c.open()
    opened = _wait(lambda: c.feedback_closed in (None, False), timeout_s)
    if c.feedback_closed is None:
        return PartResult(cid, "contactor", True,
                          "closed and opened (no feedback contact wired)")
    if closed and opened:
        return PartResult(cid, "contactor", True, "feedback followed close and open")
    what = "did not confirm close" if not closed else "still closed after open (welded?)"
    return PartResult(cid, "contactor", False, f"feedback {what}")


def _test_rcd(hw: ConnectorHardware, say: Say) -> PartResult:
    if hw.rcd.tripped:
        return PartResult(hw.connector_id, "rcd", False, "device reports a trip before the test")
    say(f"connector {hw.connector_id} rcd: driving the RCD test input, expecting a trip, "
        "then releasing it (and pulsing reset) and expecting the trip to clear")
    ok = hw.rcd.self_test()
    detail = "tripped on test and cleared" if ok else "self-test failed (see log)"
    return PartResult(hw.connector_id, "rcd", ok, detail)


def _test_pilot(hw: ConnectorHardware, timeout_s: float, say: Say) -> PartResult:
    say(f"connector {hw.connector_id} pilot: driving constant +12 V on the CP line (no PWM, "
        "no charging allowed), expecting state A (no EV plugged)")
    hw.pilot.set_off()
    ok = _wait_stable(lambda: hw.pilot.read().state is PilotState.A, PILOT_SETTLE_S,
                      timeout_s + PILOT_SETTLE_S)
    reading = hw.pilot.read()
    detail = f"state {reading.state.value} with +12 V output" + (
        "" if ok else " (expected A: unplug any EV, check the CP divider and ADC)"
    )
    return PartResult(hw.connector_id, "pilot", ok, detail)


def _test_lock(hw: ConnectorHardware, say: Say) -> PartResult | None:
    if hw.lock is None:
        return None
    say(f"connector {hw.connector_id} lock: driving the cable lock motor to lock, "
        "then to unlock, checking the feedback switch each time")
    try:
        hw.lock.lock()
        hw.lock.unlock()
    except ConnectorLockFailure as exc:
        with contextlib.suppress(ConnectorLockFailure):
            hw.lock.unlock()
        return PartResult(hw.connector_id, "lock", False, str(exc))
    return PartResult(hw.connector_id, "lock", True, "locked and unlocked")


def hardware_test(config: Config, timeout_s: float = 2.0, say: Say = lambda _t: None,
                  confirm: Confirm = lambda _q: False) -> list[PartResult]:
    """On every connector: pilot A-level reading, RCD self-test, lock cycle, and last a
    contactor close/open with feedback check. ``say`` is told what each step does before
    it runs. The contactor is only energized when the pilot reads A (no EV), the RCD
    reports no trip and ``confirm`` returns True (the default refuses). Every contactor is
    open when this returns (or raises).

    Raises:
        BackendError: the board cannot be built.
    """
    try:
        board = create_board(config.hardware, config.connectors)
    except ValueError as exc:
        raise BackendError(str(exc)) from exc
    results: list[PartResult] = []
    try:
        for hw in board.connectors:
            results.append(_test_pilot(hw, timeout_s, say))
            results.append(_test_rcd(hw, say))
            lock = _test_lock(hw, say)
            if lock is not None:
                results.append(lock)
            results.append(_test_contactor(hw, timeout_s, say, confirm))
    finally:
        board.close()
    return results
