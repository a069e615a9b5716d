"""GPIO board parts on gpiozero's MockFactory (MockPWMPin), with the far side wired from
gpiozero's mock pins and an MCP3008 SPI slave."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero import MCP3008
from gpiozero.pins.mock import MockFactory

from hal.gpio.contactor import GpioContactor
from hal.gpio.lock import GpioLock
from hal.gpio.pilot_adc import AdcPilot, PilotThresholds, classify_level
from hal.gpio.rcd import GpioRcd
from hal.gpio.temperature import AdcTemperature, Ds18b20
from hal.lock import ConnectorLockFailure
from hal.pilot import PilotReading, PilotState
from tests.hal.gpio_peers import CpLine, LockMotorPin, Mcp3008Slave, MirrorPin


# -- contactor ---------------------------------------------------------------------------
def test_contactor_feedback_agreement(factory: MockFactory) -> None:
    feedback = factory.pin(27)
    factory.pin(17, pin_class=MirrorPin, input_pin=feedback)
    faults: list[str] = []
    c = GpioContactor(17, feedback_pin=27, fault_after_s=0.1, pin_factory=factory)
    c.add_fault_listener(faults.append)
    assert c.confirmed_closed is False
    c.close()
    assert c.commanded_closed and c.feedback_closed
    assert c.confirmed_closed is True
    c.open()
    c.open()  # idempotent
    assert c.confirmed_closed is False and c.feedback_closed is False
    assert factory.pin(17).state == 0
    assert faults == []
    c.close_hw()


def test_contactor_welded_is_reported_after_window(factory: MockFactory) -> None:
    feedback = factory.pin(27)
    factory.pin(17, pin_class=MirrorPin, input_pin=feedback)
    got = threading.Event()
    faults: list[str] = []

    def on_fault(reason: str) -> None:
        faults.append(reason)
        got.set()

    c = GpioContactor(17, feedback_pin=27, fault_after_s=0.1, pin_factory=factory)
    c.add_fault_listener(on_fault)
    c.close()
    feedback.input_pin = None  # type: ignore[attr-defined]
    factory.pin(17).input_pin = None  # the mirror contact is welded shut
    c.open()
    assert c.confirmed_closed is None  # disagreement: neither PowerOn nor PowerOff
    assert got.wait(2.0)
    assert faults == ["welded"]
    c.close_hw()


def test_contactor_failed_to_close(factory: MockFactory) -> None:
    got = threading.Event()
    faults: list[str] = []
    c = GpioContactor(17, feedback_pin=27, fault_after_s=0.05, pin_factory=factory)
    c.add_fault_listener(lambda r: (faults.append(r), got.set()))
    c.close()  # feedback pin not wired to the output: it never closes
    assert got.wait(2.0)
    assert faults == ["failed_to_close"]
    c.close_hw()


def test_contactor_short_disagreement_is_no_fault(factory: MockFactory) -> None:
    feedback = factory.pin(27)
    faults: list[str] = []
    c = GpioContactor(17, feedback_pin=27, fault_after_s=0.5, pin_factory=factory)
    c.add_fault_listener(faults.append)
    c.close()
    feedback.drive_high()  # contact bounce / closing time within the window
    assert c.wait_confirmed(1.0)
    c.open()
    feedback.drive_low()
    assert c.wait_confirmed(1.0)
    assert faults == []
    c.close_hw()


# -- RCD ---------------------------------------------------------------------------------
def test_rcd_self_test_passes_and_trip_edge_reaches_listener(factory: MockFactory) -> None:
    trip = factory.pin(5)
    factory.pin(6, pin_class=MirrorPin, input_pin=trip)  # test input makes the module trip
    rcd = GpioRcd(5, test_pin=6, trip_window_s=0.2, clear_window_s=0.2, pin_factory=factory)
    trips: list[str] = []
    rcd.add_trip_listener(lambda: trips.append(threading.current_thread().name))
    assert rcd.self_test() is True
    assert trips == []  # the induced test trip is not a trip
    trip.drive_high()  # a real residual current
    assert rcd.tripped
    assert len(trips) == 1
    rcd.close()


def test_rcd_self_test_fails_without_trip(factory: MockFactory) -> None:
    rcd = GpioRcd(5, test_pin=6, trip_window_s=0.05, pin_factory=factory)
    assert rcd.self_test() is False
    assert factory.pin(6).state == 0  # test input released
    rcd.close()


def test_rcd_self_test_fails_when_trip_does_not_clear(factory: MockFactory) -> None:
    trip = factory.pin(5)
    factory.pin(6, pin_class=MirrorPin, input_pin=trip)
    rcd = GpioRcd(5, test_pin=6, trip_window_s=0.1, clear_window_s=0.05, pin_factory=factory)
    factory.pin(6).input_pin = None  # after the test input drops, the module stays latched
    trip.drive_high()
    assert rcd.self_test() is False  # tripped before the test
    rcd.close()


# -- lock --------------------------------------------------------------------------------
def test_lock_cycle_and_timeout(factory: MockFactory) -> None:
    fb = factory.pin(22)
    lock_motor = factory.pin(23, pin_class=LockMotorPin, feedback=fb, engages=True)
    factory.pin(24, pin_class=LockMotorPin, feedback=fb, engages=False)
    lock = GpioLock(23, 24, 22, timeout_s=0.1, pin_factory=factory)
    lock.lock()
    assert lock.locked
    assert factory.pin(23).state == 0  # motor stopped
    lock.unlock()
    assert not lock.locked
    lock_motor.jammed = True  # type: ignore[attr-defined]
    with pytest.raises(ConnectorLockFailure, match="did not lock"):
        lock.lock()
    assert factory.pin(23).state == 0
    lock.close()


# -- pilot -------------------------------------------------------------------------------
def test_classify_hysteresis() -> None:
    t = PilotThresholds()
    assert classify_level(12.0, None, t) is PilotState.A
    assert classify_level(10.3, PilotState.A, t) is PilotState.A  # inside hysteresis
    assert classify_level(10.3, None, t) is PilotState.B
    assert classify_level(10.7, PilotState.B, t) is PilotState.B
    assert classify_level(11.0, PilotState.B, t) is PilotState.A
    assert classify_level(0.2, None, t) is PilotState.E
    assert classify_level(-5.0, None, t) is PilotState.E
    assert classify_level(-12.0, None, t) is PilotState.F


class PilotRig:
    def __init__(self, factory: MockFactory) -> None:
        pwm = factory.pin(18)
        self.line = CpLine(pwm)
        self.slave = Mcp3008Slave(self.line.adc_volts)
        self.adc = adc = MCP3008(channel=0, pin_factory=factory)
        self.pilot = AdcPilot(18, adc, samples=12, period_s=0.001, debounce=2,
                              pin_factory=factory)
        self.cond = threading.Condition()
        self.events: list[PilotReading] = []
        self.pilot.add_listener(self._on)

    def _on(self, reading: PilotReading) -> None:
        with self.cond:
            self.events.append(reading)
            self.cond.notify_all()

    def wait_for(self, reading: PilotReading, timeout_s: float = 3.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.pilot.read() == reading, timeout_s), (
                f"pilot stayed {self.pilot.read()}, wanted {reading}"
            )

    def close(self) -> None:
        self.pilot.close()
        self.slave.close()


@pytest.fixture
def rig(factory: MockFactory) -> Iterator[PilotRig]:
    r = PilotRig(factory)
    yield r
    r.close()


def test_pilot_classifies_a_to_f(rig: PilotRig, factory: MockFactory) -> None:
    rig.wait_for(PilotReading(PilotState.A))
    rig.line.high_v = 9.0  # EV plugged (2.74 kΩ)
    rig.wait_for(PilotReading(PilotState.B))
    rig.pilot.set_current(16.0)
    assert factory.pin(18).state == pytest.approx(16 / 0.6 / 100)
    assert factory.pin(18).frequency == 1000
    rig.line.high_v = 6.0  # EV asks for energy (882 Ω)
    rig.wait_for(PilotReading(PilotState.C))
    rig.line.high_v = 3.0
    rig.wait_for(PilotReading(PilotState.D))
    rig.line.high_v = 0.0  # CP shorted to PE
    rig.wait_for(PilotReading(PilotState.E))
    rig.line.high_v = 9.0
    rig.wait_for(PilotReading(PilotState.B))
    rig.pilot.set_state_f()
    rig.wait_for(PilotReading(PilotState.F))
    states = [e.state for e in rig.events]
    assert states == [PilotState.B, PilotState.C, PilotState.D, PilotState.E,
                      PilotState.B, PilotState.F]
    assert rig.pilot.sampler_age_s() < 1.0


def test_pilot_diode_fault(rig: PilotRig) -> None:
    rig.line.high_v = 6.0
    rig.pilot.set_duty(50.0)
    rig.wait_for(PilotReading(PilotState.C))
    rig.line.low_v = -6.0  # no diode in the EV: the negative plateau is loaded too
    rig.wait_for(PilotReading(PilotState.C, diode_fault=True))
    rig.line.low_v = -12.0
    rig.wait_for(PilotReading(PilotState.C))


def test_pilot_listener_runs_on_sampler_thread(rig: PilotRig) -> None:
    seen: list[str] = []
    done = threading.Event()
    rig.pilot.add_listener(lambda r: (seen.append(threading.current_thread().name), done.set()))
    rig.line.high_v = 9.0
    assert done.wait(3.0)
    assert seen[0] == "pilot-adc"


# -- temperature -------------------------------------------------------------------------
def test_ds18b20_sysfs(tmp_path: Path) -> None:
    dev = tmp_path / "28-0316a2799bff"
    dev.mkdir()
    (dev / "w1_slave").write_text(
        "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
    )
    assert Ds18b20(w1_dir=tmp_path).read_c() == pytest.approx(23.125)
    (dev / "w1_slave").write_text("72 01 4b 46 7f ff 0e 10 57 : crc=00 NO\n... t=23125\n")
    with pytest.raises(OSError, match="CRC"):
        Ds18b20("28-0316a2799bff", w1_dir=tmp_path).read_c()


def test_adc_temperature(factory: MockFactory) -> None:
    slave = Mcp3008Slave(lambda ch: 0.75 if ch == 2 else 0.0)  # TMP36 at 25 °C
    sensor = AdcTemperature(MCP3008(channel=2, pin_factory=factory))
    assert sensor.read_c() == pytest.approx(25.0, abs=0.5)
    sensor.close()
    slave.close()


def test_pilot_c_to_b_reaches_listener_fast(rig: PilotRig) -> None:
    """Safety path: a C→B change on the CP line reaches the listener (which opens the
    contactor) well within IEC 61851-1's 100 ms (DESIGN.md aims at ≤ 50 ms)."""
    import time

    rig.line.high_v = 6.0
    rig.pilot.set_duty(50.0)
    rig.wait_for(PilotReading(PilotState.C))
    heard = threading.Event()
    at: list[float] = []
    rig.pilot.add_listener(lambda r: (at.append(time.monotonic()), heard.set())
                           if r.state is PilotState.B else None)
    t0 = time.monotonic()
    rig.line.high_v = 9.0
    assert heard.wait(2.0)
    latency = at[0] - t0
    print(f"C→B latency (mock SPI, 12 samples/burst, debounce 2): {latency * 1000:.1f} ms")
    assert latency < 0.1


def test_stuck_sampler_is_visible(rig: PilotRig, caplog: pytest.LogCaptureFixture) -> None:
    """An ADC that stops converting stops the sampler's clock: sampler_age_s() grows."""
    import time

    assert rig.pilot.sampler_age_s() < 1.0
    rig.adc.close()  # every conversion now raises
    deadline = time.monotonic() + 2.0
    while rig.pilot.sampler_age_s() < 0.1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert any("ADC read failed" in r.message for r in caplog.records)
