"""Every fault injected through the simulator: contactor opened, status / error code
reported, recovery rule (retry, condition, technician) — on a manual clock."""

from __future__ import annotations

import asyncio
import threading

import pytest

from evse.iec61851 import Iec61851Settings, MeterFailurePolicy, RcdSelfTest
from hal.pilot import duty_for_current
from tests.iec.rig import StationRig, reason16, station_rig


async def charging(rig: StationRig, connector_id: int = 1, tag: str = "TAG1") -> None:
    rig.sim.plug(connector_id, 32.0, 3)
    await rig.settle()
    await rig.station.present_card(tag)
    await rig.settle()
    assert rig.state16(connector_id) == "charging" and rig.closed(connector_id)


async def test_rcd_trip_retry_then_latch_after_n_trips() -> None:
    rig = await station_rig(settings=Iec61851Settings(rcd_max_trips=2))
    await charging(rig)
    rig.sim.fault(1, "rcd")
    assert not rig.closed()  # opened on the simulator's thread, before the loop ran
    await rig.settle()
    assert rig.last_status() == ("faulted", "ground_failure")
    assert reason16(rig.stopped()[-1]) == "emergency_stop"
    # Still tripped at the retry: stays faulted, retries again later.
    await rig.advance(300.0)
    assert rig.state16() == "faulted"
    rig.sim.clear(1, "rcd")
    await rig.advance(299.0)
    assert rig.state16() == "faulted"
    await rig.advance(2.0)
    assert rig.state16() == "finishing"  # EV still plugged, transaction over
    # Second trip (while idle): latched for a technician; no retry clears it.
    rig.sim.fault(1, "rcd")
    await rig.settle()
    rig.sim.clear(1, "rcd")
    await rig.advance(3600.0)
    assert rig.last_status()[0] == "faulted"
    assert "technician" in rig.conn().iec.reported_fault()[1]
    # A CSMS command cannot clear it (ChangeAvailability only schedules / changes operative).
    rig.station.change_availability(1, True)
    await rig.settle()
    assert rig.state16() == "faulted"
    assert rig.station.technician_reset(1)
    await rig.advance(0.5)
    assert rig.last_status() == ("finishing", "no_error")
    await rig.close()


async def test_rcd_self_test_before_each_session() -> None:
    rig = await station_rig()
    calls: list[int] = []
    rcd = rig.conn().hw.rcd
    original = rcd.self_test

    def counting() -> bool:
        calls.append(1)
        return original()
    rcd.self_test = counting  # type: ignore[method-assign]
    await charging(rig)
    assert calls == [1]
    await rig.station.present_card("TAG1")  # stop
    rig.sim.unplug(1)
    await rig.settle()
    # A failing self-test: no session, no close, GroundFailure latched.
    rcd.self_test = lambda: False  # type: ignore[method-assign]
    rig.sim.plug(1, 32.0, 3)
    await rig.station.present_card("TAG1")
    await rig.settle()
    assert rig.last_status() == ("faulted", "ground_failure")
    assert len(rig.started()) == 1 and not rig.closed()
    await rig.advance(3600.0)
    assert rig.state16() == "faulted"
    await rig.close()


async def test_rcd_self_test_policy_never() -> None:
    rig = await station_rig(settings=Iec61851Settings(rcd_self_test=RcdSelfTest.NEVER))
    rig.conn().hw.rcd.self_test = lambda: False  # type: ignore[method-assign]
    await charging(rig)
    await rig.close()


async def test_welded_contactor_latches_until_technician() -> None:
    rig = await station_rig()
    await charging(rig)
    rig.sim.fault(1, "weld")
    rig.sim.ev_pause(1)  # C→B: open commanded, the mirror contact stays closed
    await rig.settle()
    assert rig.last_status() == ("faulted", "power_switch_failure")
    assert not rig.conn().hw.contactor.commanded_closed
    assert rig.stopped()
    await rig.advance(3600.0)
    assert rig.state16() == "faulted"
    rig.station.technician_reset(1)  # still welded: faults again at once
    await rig.settle()
    assert rig.last_status() == ("faulted", "power_switch_failure")
    rig.sim.clear(1, "weld")
    rig.station.technician_reset(1)
    await rig.advance(1.0)
    assert rig.state16() == "finishing"
    await rig.close()


async def test_contactor_fails_to_close_retries() -> None:
    rig = await station_rig()
    rig.sim.fault(1, "stuck_open")
    rig.sim.plug(1, 32.0, 3)
    await rig.station.present_card("TAG1")
    await rig.settle()
    assert rig.last_status() == ("faulted", "power_switch_failure")
    rig.sim.clear(1, "stuck_open")
    await rig.advance(30.0)
    assert rig.state16() == "finishing"
    await rig.close()


async def test_lock_failure_never_energizes() -> None:
    rig = await station_rig(lock=True)
    rig.sim.fault(1, "lock")
    rig.sim.plug(1, 32.0, 3)
    await rig.station.present_card("TAG1")
    await rig.settle()
    assert rig.last_status() == ("faulted", "connector_lock_failure")
    assert not rig.closed() and not rig.sim.connector(1).contactor_closed
    assert ("charging", "no_error") not in rig.statuses()
    # Locked first, transaction after: a lock that fails starts none (issue 12 defect 5).
    assert not rig.started() and not rig.stopped()
    rig.sim.clear(1, "lock")
    await rig.advance(30.0)
    assert rig.state16() == "finishing"
    await rig.close()


async def test_lock_engaged_while_charging_unlocked_after() -> None:
    rig = await station_rig(lock=True)
    await charging(rig)
    assert rig.sim.connector(1).cable_locked
    await rig.station.present_card("TAG1")
    await rig.settle()
    assert rig.state16() == "finishing" and not rig.sim.connector(1).cable_locked
    await rig.close()


@pytest.mark.parametrize("kind,code", [("diode", "ev_communication_error"),
                                       ("cp_short", "ev_communication_error")])
async def test_pilot_faults_retry(kind: str, code: str) -> None:
    rig = await station_rig()
    await charging(rig)
    rig.sim.fault(1, kind)
    assert not rig.closed()
    await rig.settle()
    assert rig.last_status() == ("faulted", code)
    assert rig.conn().hw.pilot.duty_percent == 0.0  # state F
    await rig.advance(30.0)
    if kind == "cp_short":  # still shorted: faults again after the retry
        assert rig.state16() == "faulted"
    rig.sim.clear(1, kind)
    await rig.advance(30.0)
    assert rig.state16() == "finishing"
    await rig.close()


async def test_overtemperature_derating_steps_and_trip() -> None:
    rig = await station_rig()
    await charging(rig)
    simc = rig.sim.connector(1)
    for temp, expected in ((55.0, 32.0), (60.0, 24.0), (66.0, 16.0), (71.0, 8.0)):
        simc.temperature_c = temp
        await rig.advance(5.0, poll=True)
        assert rig.conn().offered_current_a() == expected, temp
        assert rig.conn().hw.pilot.duty_percent == pytest.approx(
            duty_for_current(expected), abs=0.05)
        assert rig.state16() == "charging"
    simc.temperature_c = 77.0  # 32 A − 4 × 25 % = 0 A: pause, not a tiny duty
    await rig.advance(1.0, poll=True)
    assert rig.last_status() == ("suspended_evse", "no_error")
    assert rig.conn().hw.pilot.duty_percent == 100.0 and not rig.closed()
    simc.temperature_c = 66.0
    await rig.advance(1.0, poll=True)
    assert rig.state16() == "charging"
    # Over the trip level: opened on the sensor's worker thread.
    opened_on: list[str] = []
    contactor = rig.conn().hw.contactor
    original = contactor.open

    def spy() -> None:
        if contactor.commanded_closed:
            opened_on.append(threading.current_thread().name)
        original()
    contactor.open = spy  # type: ignore[method-assign]
    simc.temperature_c = 85.0
    await rig.poll()
    assert opened_on and opened_on[0] != threading.main_thread().name
    assert rig.last_status() == ("faulted", "high_temperature")
    simc.temperature_c = 75.0  # within the hysteresis: still faulted
    await rig.advance(60.0, poll=True)
    assert rig.state16() == "faulted"
    simc.temperature_c = 69.0
    await rig.advance(1.0, poll=True)
    assert rig.state16() == "finishing"
    await rig.close()


async def test_overtemp_fault_kind_from_simulator() -> None:
    rig = await station_rig()
    await charging(rig)
    rig.sim.fault(1, "overtemp")
    await rig.poll()
    assert rig.last_status() == ("faulted", "high_temperature") and not rig.closed()
    rig.sim.clear(1, "overtemp")
    await rig.poll()
    assert rig.state16() == "faulted"  # state F for 300 ms at least
    await rig.advance(0.3)
    assert rig.state16() == "finishing"
    await rig.close()


async def test_meter_failure_stop_policy() -> None:
    rig = await station_rig()
    await charging(rig)
    rig.sim.fault(1, "meter")
    await rig.poll()
    assert rig.last_status() == ("faulted", "power_meter_failure")
    assert not rig.closed() and rig.stopped()
    rig.sim.clear(1, "meter")
    await rig.advance(1.0, poll=True)
    assert rig.state16() == "finishing"
    await rig.close()


async def test_meter_failure_continue_policy() -> None:
    rig = await station_rig(settings=Iec61851Settings(meter_failure=MeterFailurePolicy.CONTINUE))
    await charging(rig)
    rig.sim.fault(1, "meter")
    await rig.poll()
    assert rig.last_status() == ("charging", "power_meter_failure")
    assert rig.closed() and not rig.stopped()
    rig.sim.clear(1, "meter")
    await rig.poll()
    assert rig.last_status() == ("charging", "no_error")
    # A session may start with a failed meter (meterStart = last good reading).
    await rig.station.present_card("TAG1")
    rig.sim.fault(1, "meter")
    await rig.poll()
    rig.sim.unplug(1)
    await rig.settle()
    rig.sim.plug(1, 32.0, 3)
    await rig.station.present_card("TAG2")
    await rig.settle()
    assert rig.state16() == "charging" and len(rig.started()) == 2
    await rig.close()


async def test_station_wide_fault_affects_every_connector() -> None:
    rig = await station_rig(connectors=2)
    await charging(rig, 1, "TAG1")
    await charging(rig, 2, "TAG2")
    rig.station.raise_station_fault("supply undervoltage")
    await rig.settle()
    for cid in (1, 2):
        assert rig.last_status(cid) == ("faulted", "other_error") and not rig.closed(cid)
    assert len(rig.stopped()) == 2
    rig.station.clear_station_fault()
    await rig.advance(0.5)
    assert rig.state16(1) == rig.state16(2) == "finishing"
    await rig.close()


async def test_connectors_are_independent() -> None:
    rig = await station_rig(connectors=2)
    await charging(rig, 1, "TAG1")
    await charging(rig, 2, "TAG2")
    rig.sim.fault(1, "rcd")
    await rig.settle()
    assert rig.state16(1) == "faulted" and not rig.closed(1)
    assert rig.state16(2) == "charging" and rig.closed(2)
    rig.sim.ev_pause(2)
    await rig.settle()
    assert rig.state16(1) == "faulted"
    await rig.close()


async def test_lock_and_rcd_run_on_the_evse_worker_not_the_loop() -> None:
    """A lock that takes its time (a motor lock: up to its timeout) never holds the loop:
    the transaction waits for it, everything else goes on."""
    rig = await station_rig(lock=True)
    hw = rig.conn().hw
    assert hw.lock is not None
    release = threading.Event()
    threads: list[str] = []
    lock_original, self_test_original = hw.lock.lock, hw.rcd.self_test

    def slow_lock() -> None:
        threads.append(threading.current_thread().name)
        assert release.wait(10.0)
        lock_original()

    def self_test() -> bool:
        threads.append(threading.current_thread().name)
        return self_test_original()
    hw.lock.lock = slow_lock  # type: ignore[method-assign]
    hw.rcd.self_test = self_test  # type: ignore[method-assign]
    rig.sim.plug(1, 32.0, 3)
    await rig.station.present_card("TAG1")
    for _ in range(20):  # the loop keeps turning while the lock moves
        await asyncio.sleep(0)
    assert threads == ["evse1-hw_0"]
    assert rig.state16() == "preparing" and not rig.started() and not rig.closed()
    release.set()
    await asyncio.wait_for(rig.settle(), 10.0)
    assert rig.state16() == "charging" and rig.closed() and len(rig.started()) == 1
    assert threads == ["evse1-hw_0", "evse1-hw_0"]  # lock, then the RCD self-test
    await rig.close()
