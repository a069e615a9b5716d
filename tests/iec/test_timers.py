"""Every IEC 61851 timer, on a manual clock (DESIGN.md timings; ``[iec61851]`` settings)."""

from __future__ import annotations

import pytest

from evse.iec61851 import Iec61851Settings
from hal.pilot import PilotState, duty_for_current
from tests.iec.rig import ConnectorRig, connector_rig, reason16, station_rig


def start_charging(rig: ConnectorRig) -> None:
    """Bare connector: EV plugged in C, transaction started."""
    rig.sim.plug(1, 32.0, 3)
    rig.drain()
    assert rig.state16() == "preparing"
    rig.conn.start()
    rig.drain()
    assert rig.state16() == "charging" and rig.closed
    assert rig.conn.iec.system_state() == "C2"


def test_contactor_opens_on_the_driver_thread_at_c_to_b_and_c_to_a() -> None:
    for leave in ("pause", "unplug"):
        rig = connector_rig()
        start_charging(rig)
        t0 = rig.clock.monotonic()
        if leave == "pause":
            rig.sim.ev_pause(1)
        else:
            rig.sim.unplug(1)
        # Open before the loop ran anything (the posted event is still queued) and
        # without any time passing.
        assert rig.queue and not rig.closed
        assert rig.clock.monotonic() == t0
        rig.drain()
        assert rig.state16() == ("suspended_ev" if leave == "pause" else "available")


def test_power_on_after_b_to_c_without_delay() -> None:
    rig = connector_rig()
    start_charging(rig)
    rig.sim.ev_pause(1)
    rig.drain()
    assert rig.state16() == "suspended_ev" and not rig.closed
    assert rig.conn.iec.system_state() == "B2"  # PWM still offered
    t0 = rig.clock.monotonic()
    rig.sim.ev_resume(1)
    rig.drain()
    assert rig.state16() == "charging" and rig.closed
    assert rig.clock.monotonic() - t0 <= 3.0


@pytest.mark.parametrize("how", ["stop", "limit"])
def test_pwm_withdrawn_ev_stays_in_c_forced_off_after_6_s(how: str) -> None:
    rig = connector_rig()
    start_charging(rig)
    rig.simc.ev.ignore_pwm_off = True  # a misbehaving EV
    if how == "stop":
        rig.conn.stop()
        expected = "finishing"
    else:
        rig.conn.iec.limit_a = 3.0  # below 6 A: pause, PWM off
        rig.conn.reevaluate()
        expected = "suspended_evse"
    rig.drain()
    assert rig.state16() == expected
    assert rig.conn.hw.pilot.duty_percent == 100.0  # PWM withdrawn at once
    assert rig.closed  # the EV still draws: do not break the load yet
    rig.advance(5.99)
    assert rig.closed
    rig.advance(0.02)
    assert not rig.closed


def test_pwm_withdrawn_ev_leaves_c_opens_at_once() -> None:
    rig = connector_rig()
    start_charging(rig)
    rig.conn.stop()  # the sim EV follows IEC: PWM off → state B
    assert not rig.closed
    rig.drain()
    assert rig.state16() == "finishing"
    assert not rig.conn.iec.pwm_off_timer.active or not rig.closed


def test_pwm_off_timeout_is_configurable() -> None:
    rig = connector_rig(settings=Iec61851Settings(pwm_off_timeout_s=2.0))
    start_charging(rig)
    rig.simc.ev.ignore_pwm_off = True
    rig.conn.stop()
    rig.advance(1.9)
    assert rig.closed
    rig.advance(0.2)
    assert not rig.closed


def test_duty_changes_at_most_every_5_s_but_stops_at_once() -> None:
    rig = connector_rig()
    start_charging(rig)
    pilot = rig.conn.hw.pilot
    assert pilot.duty_percent == pytest.approx(duty_for_current(32.0), abs=0.05)
    rig.advance(1.0)
    rig.conn.iec.limit_a = 16.0
    rig.conn.reevaluate()
    assert pilot.duty_percent == pytest.approx(duty_for_current(32.0), abs=0.05)
    rig.conn.iec.limit_a = 20.0  # the latest wish wins when the interval is over
    rig.conn.reevaluate()
    rig.advance(3.9)
    assert pilot.duty_percent == pytest.approx(duty_for_current(32.0), abs=0.05)
    rig.advance(0.2)
    assert pilot.duty_percent == pytest.approx(duty_for_current(20.0), abs=0.05)
    rig.conn.iec.limit_a = 10.0
    rig.conn.reevaluate()
    assert pilot.duty_percent == pytest.approx(duty_for_current(20.0), abs=0.05)
    # Stopping (below 6 A → SuspendedEVSE) is never delayed.
    rig.conn.iec.limit_a = 0.0
    rig.conn.reevaluate()
    rig.drain()
    assert rig.state16() == "suspended_evse"
    assert pilot.duty_percent == 100.0 and not rig.closed
    # Resuming starts PWM at once.
    rig.conn.iec.limit_a = 6.0
    rig.conn.reevaluate()
    rig.drain()
    assert rig.state16() == "charging"
    assert pilot.duty_percent == pytest.approx(10.0, abs=0.05)


def test_state_f_lasts_at_least_300_ms() -> None:
    rig = connector_rig()
    start_charging(rig)
    rig.sim.fault(1, "cp_short")
    rig.drain()
    assert rig.state16() == "faulted" and not rig.closed
    assert rig.conn.hw.pilot.duty_percent == 0.0
    rig.sim.clear(1, "cp_short")
    rig.advance(rig.conn.settings.fault_retry_s)
    # retry due now, but the EV side is checked only after F held 300 ms: already true.
    assert rig.state16() == "finishing"
    # A condition fault that clears after 100 ms keeps F until 300 ms.
    from evse.faults import Fault
    rig.conn.iec.raise_fault(Fault.STATION, "test")
    f_at = rig.clock.monotonic()
    rig.advance(0.1)
    rig.conn.iec.clear_condition(Fault.STATION)
    assert rig.state16() == "faulted" and rig.conn.hw.pilot.duty_percent == 0.0
    rig.advance(0.19)
    assert rig.state16() == "faulted"
    rig.advance(0.02)
    assert rig.state16() == "finishing"
    assert rig.clock.monotonic() - f_at >= 0.3
    assert rig.conn.hw.pilot.duty_percent == 100.0


def test_state_d_only_with_ventilation() -> None:
    for ventilation in (False, True):
        rig = connector_rig(ventilation=ventilation)
        rig.simc.ev.ventilation_needed = True
        rig.sim.plug(1, 32.0, 3)
        rig.drain()
        rig.conn.start()
        rig.drain()
        if ventilation:
            assert rig.state16() == "charging" and rig.closed
            assert rig.conn.iec.pilot.state is PilotState.D
        else:
            assert rig.state16() == "faulted" and not rig.closed
            assert rig.status16() == ("faulted", "other_error")


async def test_connection_timeout_card_then_no_plug() -> None:
    rig = await station_rig()
    rig.station.connection_timeout_s = 60.0
    await rig.station.present_card("TAG1")
    await rig.settle()
    assert rig.state16() == "preparing"
    await rig.advance(59.9)
    assert rig.state16() == "preparing"
    await rig.advance(0.2)
    assert rig.state16() == "available"
    # Plug later: no session (the authorization expired).
    rig.sim.plug(1, 32.0, 3)
    await rig.settle()
    assert rig.state16() == "preparing" and not rig.started()
    await rig.close()


async def test_connection_timeout_plug_in_time_starts() -> None:
    rig = await station_rig()
    await rig.station.present_card("TAG1")
    await rig.advance(30.0)
    rig.sim.plug(1, 32.0, 3)
    await rig.settle()
    assert rig.state16() == "charging" and rig.closed()
    await rig.advance(60.0)
    assert rig.state16() == "charging"
    await rig.close()


async def test_overcurrent_stops_after_7_s() -> None:
    rig = await station_rig()
    rig.sim.plug(1, 32.0, 3)
    await rig.station.present_card("TAG1")
    await rig.settle()
    rig.station.set_charging_limit(1, 16.0)
    await rig.advance(5.0, poll=True)  # the duty change is due after 5 s
    assert rig.conn().hw.pilot.duty_percent == pytest.approx(duty_for_current(16.0), abs=0.05)
    await rig.advance(30.0, poll=True)
    assert rig.state16() == "charging"  # the EV follows: 16 A
    rig.sim.fault(1, "overcurrent")  # now it draws 32 A
    await rig.poll()
    await rig.advance(6.0, poll=True)
    assert rig.state16() == "charging"
    await rig.advance(1.5, poll=True)
    assert rig.last_status() == ("faulted", "over_current_failure")
    assert not rig.closed()
    assert rig.stopped() and reason16(rig.stopped()[-1]) == "other"
    # 16 A + 10 % + 0.5 A = 18.1 A tolerated: 18 A would not trip.
    assert rig.conn().settings.overcurrent_threshold_a(16.0) == pytest.approx(18.1)
    await rig.close()


async def test_overcurrent_within_margin_never_trips() -> None:
    rig = await station_rig()
    rig.sim.plug(1, 32.0, 3)
    await rig.station.present_card("TAG1")
    await rig.settle()
    # EV draws its max 17.5 A while 16 A are announced: within +10 % + 0.5 A.
    rig.station.set_charging_limit(1, 16.0)
    await rig.advance(6.0, poll=True)
    simc = rig.sim.connector(1)
    simc.ev.max_current_a = 17.5
    simc.ev.ignore_pilot = True
    await rig.advance(20.0, poll=True)
    assert rig.state16() == "charging"
    await rig.close()
