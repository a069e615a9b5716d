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


def _wait(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _test_contactor(hw: ConnectorHardware, timeout_s: float) -> PartResult:
    c = hw.contactor
    try:
        c.close()
        closed = _wait(lambda: c.feedback_closed in (None, True), timeout_s)
    finally:
        c.open()
    opened = _wait(lambda: c.feedback_closed in (None, False), timeout_s)
    if c.feedback_closed is None:
        return PartResult(hw.connector_id, "contactor", True,
                          "closed and opened (no feedback contact wired)")
    if closed and opened:
        return PartResult(hw.connector_id, "contactor", True, "feedback followed close and open")
    what = "did not confirm close" if not closed else "still closed after open (welded?)"
    return PartResult(hw.connector_id, "contactor", False, f"feedback {what}")


def _test_rcd(hw: ConnectorHardware) -> PartResult:
    if hw.rcd.tripped:
        return PartResult(hw.connector_id, "rcd", False, "device reports a trip before the test")
    ok = hw.rcd.self_test()
    detail = "tripped on test and cleared" if ok else "self-test failed (see log)"
    return PartResult(hw.connector_id, "rcd", ok, detail)


def _test_pilot(hw: ConnectorHardware, timeout_s: float) -> PartResult:
    hw.pilot.set_off()
    ok = _wait(lambda: hw.pilot.read().state is PilotState.A, timeout_s)
    reading = hw.pilot.read()
    detail = f"state {reading.state.value} with +12 V output" + (
        "" if ok else " (expected A: unplug any EV, check the CP divider and ADC)"
    )
    return PartResult(hw.connector_id, "pilot", ok, detail)


def _test_lock(hw: ConnectorHardware) -> PartResult | None:
    if hw.lock is None:
        return None
    try:
        hw.lock.lock()
        hw.lock.unlock()
    except ConnectorLockFailure as exc:
        with contextlib.suppress(ConnectorLockFailure):
            hw.lock.unlock()
        return PartResult(hw.connector_id, "lock", False, str(exc))
    return PartResult(hw.connector_id, "lock", True, "locked and unlocked")


def hardware_test(config: Config, timeout_s: float = 2.0) -> list[PartResult]:
    """Contactor close/open with feedback check, RCD self-test, pilot A-level reading and a
    lock cycle on every connector. Every contactor is open when this returns (or raises).

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
            results.append(_test_contactor(hw, timeout_s))
            results.append(_test_rcd(hw))
            results.append(_test_pilot(hw, timeout_s))
            lock = _test_lock(hw)
            if lock is not None:
                results.append(lock)
    finally:
        board.close()
    return results
