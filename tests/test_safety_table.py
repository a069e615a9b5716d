"""The safety rows, written by hand from IEC 61851-1 and DESIGN.md "Safety first" — not
derived from the machines' tables (``evse.iec_machine`` / ``evse.session_machine``).

Each row: a trip input injected in a connector state → whether the contactor is open
*before the event loop ran* (the board interlock on the simulator's thread), whether a close
is then refused, and after the loop ran: the contactor, the pilot the EVSE drives, the
status and error code the CSMS is told (OCPP 1.6, through the adapter's mapping). Runs on the
simulated board (which carries the same interlock as the gpio board) under a Station with a
manual clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.iec.rig import StationRig, station_rig

#: Pilot the EVSE drives: duty %, 0.0 = state F (−12 V), 100.0 = +12 V (no PWM).
F = 0.0
PLUS_12V = 100.0
PWM_32A = round(32 / 0.6, 1)  # IEC 61851-1 Table A.7: 32 A → 53.3 %


@dataclass(frozen=True)
class Row:
    trip: str  # what happens: an injected fault kind, "ev_pause" (C→B) or "unplug" (C→A)
    state: str  # the connector state before
    contactor_closed: bool  # after the loop ran
    pilot_duty: float
    status: str
    error_code: str
    close_refused: bool = True  # the interlock refuses a close right after the trip


ROWS = [
    Row("rcd", "charging", False, F, "faulted", "ground_failure"),
    Row("rcd", "suspended_ev", False, F, "faulted", "ground_failure"),
    Row("rcd", "preparing", False, F, "faulted", "ground_failure"),
    Row("rcd", "available", False, F, "faulted", "ground_failure"),
    Row("cp_short", "charging", False, F, "faulted", "ev_communication_error"),
    Row("cp_short", "preparing", False, F, "faulted", "ev_communication_error"),
    Row("diode", "charging", False, F, "faulted", "ev_communication_error"),
    Row("overtemp", "charging", False, F, "faulted", "high_temperature"),
    Row("overtemp", "available", False, F, "faulted", "high_temperature"),
    Row("ev_pause", "charging", False, PWM_32A, "suspended_ev", "no_error"),
    Row("unplug", "charging", False, PLUS_12V, "available", "no_error"),
]


async def enter(rig: StationRig, state: str) -> None:
    if state == "available":
        return
    rig.sim.plug(1, 32.0, 3)
    await rig.settle()
    if state == "preparing":
        rig.sim.ev_pause(1)  # EV plugged, not asking, no card: Preparing
        await rig.settle()
        return
    await rig.station.present_card("TAG1")
    await rig.settle()
    if state == "suspended_ev":
        rig.sim.ev_pause(1)
        await rig.settle()


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.trip}-in-{r.state}")
async def test_safety_row(row: Row) -> None:
    rig = await station_rig()
    try:
        await enter(rig, row.state)
        assert rig.state16() == row.state
        assert rig.closed() is (row.state == "charging")
        if row.trip == "ev_pause":
            rig.sim.ev_pause(1)
        elif row.trip == "unplug":
            rig.sim.unplug(1)
        else:
            rig.sim.fault(1, row.trip)
        # The interlock acted on the simulator's thread: nothing of the loop ran yet.
        assert rig.closed() is False
        if row.close_refused:
            assert rig.conn().hw.contactor.close() is False
        await rig.settle()
        await rig.poll()  # the core's temperature / meter reading
        assert rig.closed() is row.contactor_closed
        assert rig.conn().hw.pilot.duty_percent == pytest.approx(row.pilot_duty, abs=0.05)
        assert rig.last_status() == (row.status, row.error_code)
    finally:
        await rig.close()


async def test_released_only_when_the_cause_is_gone() -> None:
    """A retry while the RCD still reports a trip keeps the inhibit; once clear, the
    core's recovery releases it and charging resumes on the next start."""
    rig = await station_rig()
    try:
        await enter(rig, "charging")
        rig.sim.fault(1, "rcd")
        await rig.settle()
        interlock = rig.conn().hw.interlock
        assert interlock is not None
        assert "rcd_trip" in {c.value for c in interlock.release()}
        rig.sim.clear(1, "rcd")
        await rig.advance(301.0)  # rcd_retry_s
        assert rig.state16() == "finishing"
        assert {c.value for c in interlock.inhibits} <= {"pilot_not_ready"}
    finally:
        await rig.close()
