"""The board's interlock on the gpio backend, pin to pin, with real threads: gpiozero
MockFactory pins, the MCP3008 SPI peer on the CP line, a pymodbus meter on loopback.

The board is built from TOML exactly as the daemon builds it (``hal.registry.create_board``),
first with no core attached at all, then under a running Daemon (Station + OCPP adapter +
the dev CSMS). The order of events is read from the pins' own level changes
(:class:`tests.hal.gpio_peers.Timeline`), never from the code under test.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from evse.config import load_config
from evse.daemon import Daemon, load_checked_config
from evse.domain import Fault
from evse.watchdog import board_liveness
from hal.board import Board, ConnectorHardware
from hal.contactor import InhibitCause
from hal.interlock import ConnectorInterlock, InterlockEvent
from hal.pilot import PilotReading, PilotState
from hal.registry import create_board
from tests.hal.gpio_peers import (
    CpLine,
    LoggedMirrorPin,
    LoggedPin,
    Mcp3008Slave,
    MirrorPin,
    Timeline,
)
from tests.hal.peers import CoProcessor, MeterServer, PtyDevice, f32_be

BOARD_TOML = """
[station]
id = "CP-GPIO"
state_dir = "{state}"
[ocpp]
url = "{url}"
reconnect_min_s = 0.1
reconnect_max_s = 0.5
[hardware]
driver = "gpio"
pin_factory = "mock"
[[connector]]
id = 1
max_current_a = 16.0
[connector.meter]
driver = "modbus-tcp"
model = "sdm630"
host = "127.0.0.1"
port = {port}
timeout_s = 0.3
poll_interval_s = 0.0
[connector.gpio.pilot]
samples = 8
period_s = 0.001
debounce = 2
[connector.gpio.contactor]
pin = 17
feedback_pin = 23
fault_after_s = 0.2
[connector.gpio.rcd]
trip_pin = 27
test_pin = 22
trip_window_s = 0.2
clear_window_s = 0.2
[connector.gpio.temperature]
sensor = "adc"
adc_channel = 1
[iec61851]
rcd_self_test = "never"
"""

#: TMP36 output, V, for a temperature, °C (0.5 V at 0 °C, 10 mV/°C).
def tmp36_v(celsius: float) -> float:
    return 0.5 + celsius / 100.0


@pytest.fixture
def meter_server() -> Iterator[MeterServer]:
    server = MeterServer(0x00, 0x60, unit_id=1)
    for i in range(3):
        server.set_words(2 * i, f32_be(230.0))
    server.set_words(0x48, f32_be(1.0))
    server.start_tcp()
    yield server
    server.stop()


class Wiring:
    """The far side of the board: contactor coil with its mirror contact, the RDC-DD's trip
    output (its test input wired to it), the CP line on an MCP3008 with a TMP36 on ch. 1."""

    def __init__(self, factory: MockFactory) -> None:
        self.timeline = Timeline()
        self.feedback = factory.pin(23, pin_class=LoggedPin, timeline=self.timeline,
                                    label="feedback")
        self.coil = factory.pin(17, pin_class=LoggedMirrorPin, input_pin=self.feedback,
                                timeline=self.timeline, label="coil")
        self.trip = factory.pin(27, pin_class=LoggedPin, timeline=self.timeline, label="trip")
        factory.pin(22, pin_class=MirrorPin, input_pin=self.trip)
        self.pwm = factory.pin(18, pin_class=LoggedPin, timeline=self.timeline, label="cp_pwm")
        self.line = CpLine(self.pwm)
        self.adc = Mcp3008Slave(self.line.adc_volts)

    def set_temperature(self, celsius: float) -> None:
        self.timeline.mark(f"temperature {celsius:.0f} C")
        self.line.channels[1] = tmp36_v(celsius)

    def close(self) -> None:
        self.line.running.set()
        self.adc.close()


def write_config(tmp_path: Path, meter_port: int, url: str = "ws://127.0.0.1:9/") -> Path:
    path = tmp_path / "evse.toml"
    path.write_text(BOARD_TOML.format(state=tmp_path / "state", port=meter_port, url=url))
    return path


def wait_until(predicate: Any, timeout_s: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


class Rig:
    """The gpio board from TOML with no core attached, and its far-side wiring."""

    def __init__(self, factory: MockFactory, config: Path) -> None:
        self.wiring = Wiring(factory)
        cfg = load_config(config)
        self.board: Board = create_board(cfg.hardware, cfg.connectors)
        self.hw: ConnectorHardware = self.board.connectors[0]
        assert self.hw.interlock is not None
        self.interlock: ConnectorInterlock = self.hw.interlock
        self.events: list[InterlockEvent] = []
        self.interlock.add_listener(self.events.append)

    def ev_in_c(self) -> None:
        """EV plugged and asking for energy under 16 A PWM: the pilot reads C."""
        self.hw.pilot.set_current(16.0)
        self.wiring.line.set_high(6.0, self.wiring.timeline)
        self.wait_ready()

    def wait_ready(self) -> None:
        """The pilot reads C and the interlock heard it (the sampler publishes the reading
        just before its listeners run)."""
        assert wait_until(lambda: self.hw.pilot.read().state is PilotState.C
                          and InhibitCause.PILOT_NOT_READY not in self.interlock.inhibits)

    def energize(self) -> None:
        assert self.hw.contactor.close() is True, (self.interlock.inhibits,
                                                   self.hw.pilot.read())
        assert self.wiring.coil.state == 1

    def close(self) -> None:
        self.wiring.line.running.set()  # a hung conversion would hold the SPI bus
        self.board.close()
        self.wiring.close()


@pytest.fixture
def rig(factory: MockFactory, tmp_path: Path, meter_server: MeterServer) -> Iterator[Rig]:
    r = Rig(factory, write_config(tmp_path, meter_server.port))
    yield r
    r.close()


def rises(timeline: Timeline, what: str, after_ns: int = 0) -> list[int]:
    return [m.t_ns for m in timeline.of(what) if m.level and m.t_ns >= after_ns]


# -- no core attached: the interlock alone ------------------------------------------------
def test_no_core_rcd_trip_opens_and_latches(rig: Rig) -> None:
    """RCD edge → coil low on the thread that drove the edge, before it returns; close()
    refused while tripped and after (latched) until released with the trip gone."""
    tl = rig.wiring.timeline
    rig.ev_in_c()
    rig.energize()
    seen: list[int] = []

    def residual_current() -> None:
        rig.wiring.trip.drive_high()
        seen.append(rig.wiring.coil.state)  # right after the edge's callbacks ran

    edge = threading.Thread(target=residual_current, name="rdc-dd")
    edge.start()
    edge.join()
    assert seen == [0]
    assert tl.order("coil", "trip") == [("coil", True), ("trip", True), ("coil", False)]
    low = tl.first("coil", False)
    assert low is not None and low.thread == "rdc-dd"
    assert [(e.cause, e.active) for e in rig.events] == [(InhibitCause.RCD_TRIP, True)]
    assert rig.hw.contactor.close() is False
    rig.wiring.trip.drive_low()
    assert rig.hw.contactor.close() is False  # latched: the core must release it
    assert rig.interlock.release(InhibitCause.RCD_TRIP) == frozenset()
    rig.energize()
    # A release while the cause is present is refused.
    rig.wiring.trip.drive_high()
    assert rig.interlock.release() == frozenset({InhibitCause.RCD_TRIP})
    assert rig.wiring.coil.state == 0


def test_no_core_pilot_leaving_c_opens_on_sampler_thread(rig: Rig) -> None:
    tl = rig.wiring.timeline
    rig.ev_in_c()
    rig.energize()
    rig.wiring.line.set_high(9.0, tl)  # EV stops asking: C → B
    assert wait_until(lambda: rig.wiring.coil.state == 0)
    assert tl.order("coil", "cp +9 V") == [("coil", True), ("cp +9 V", None), ("coil", False)]
    low = tl.first("coil", False)
    assert low is not None and low.thread == "pilot-adc"
    assert rig.hw.contactor.close() is False  # B: not ready
    assert rig.events == []  # routine, not a fault
    rig.wiring.line.set_high(6.0, tl)  # back to C: the permit returns by itself
    rig.wait_ready()
    # Under load the rig occasionally shows a false early trip right here (two conversions
    # read outside C; cause under investigation): refused, then lifted after the debounce.
    assert wait_until(rig.hw.contactor.close)
    assert rig.wiring.coil.state == 1


class Conversions:
    """Wraps the CP line as the ADC sees it (channel 0): counts conversions, can replace
    chosen ones (noise), and sets ``done`` after ``until`` conversions."""

    def __init__(self, wiring: Wiring) -> None:
        self.line = wiring.line
        self.count = 0
        self.until = 0
        self.done = threading.Event()
        #: CP volts by conversion index (an isolated spike each).
        self.spikes: dict[int, float] = {}
        #: Positive-plateau conversions (the EV's C at 6 V) to show at this CP voltage.
        self.glitch_v = 0.0
        self.glitches = 0
        wiring.adc.source = self.adc_volts

    def adc_volts(self, channel: int) -> float:
        volts = self.line.adc_volts(channel)
        if channel != 0:
            return volts
        self.count += 1
        line = self.line
        cp_v = (volts - line.offset_v) * line.divider
        if self.count in self.spikes:
            cp_v = self.spikes[self.count]
        elif self.glitches and abs(cp_v - 6.0) < 0.5:
            self.glitches -= 1
            cp_v = self.glitch_v
        if self.until and self.count >= self.until:
            self.done.set()
        return cp_v / line.divider + line.offset_v

    def run(self, n: int) -> None:
        """Wait until ``n`` more conversions have been made."""
        self.done.clear()
        self.until = self.count + n
        assert self.done.wait(10)


def test_no_core_noisy_c_line_does_not_trip(rig: Rig) -> None:
    """Isolated wrong conversions (+12 V, 0 V, −6 V: each alone would look like A, E or a
    diode fault) on a C line: the contactor stays closed and the session logic hears
    nothing; a single conversion never trips."""
    tl = rig.wiring.timeline
    conv = Conversions(rig.wiring)
    rig.ev_in_c()
    rig.energize()
    heard: list[PilotReading] = []
    rig.hw.pilot.add_listener(heard.append)
    start = conv.count
    # Every 20th conversion wrong: never two in one burst of 8 or in two bursts in a row.
    conv.spikes = {start + 20 * k: (12.0, 0.0, -6.0)[k % 3] for k in range(1, 31)}
    conv.run(620)
    assert [m.level for m in tl.of("coil")] == [True]
    assert rig.interlock.inhibits == {}
    assert heard == []
    assert rig.hw.pilot.read() == PilotReading(PilotState.C)


def test_no_core_c_to_b_trips_before_debounce(rig: Rig) -> None:
    """C → B on the CP line: the coil goes low within the first burst's conversions, before
    the debounced reading (debounce 4 bursts of 8) reaches the session logic's listener."""
    tl = rig.wiring.timeline
    conv = Conversions(rig.wiring)
    rig.hw.pilot.debounce = 4
    rig.ev_in_c()
    rig.energize()
    rig.hw.pilot.add_listener(lambda r: tl.mark(f"heard {r.state.value}"))
    at_trip: list[int] = []
    rig.hw.pilot.add_trip_listener(lambda r: at_trip.append(conv.count))
    edge = conv.count
    rig.wiring.line.set_high(9.0, tl)
    assert wait_until(lambda: bool(tl.of("heard B")))
    assert tl.order("coil", "cp +9 V", "heard B") == [
        ("coil", True), ("cp +9 V", None), ("coil", False), ("heard B", None)]
    low = tl.first("coil", False)
    assert low is not None and low.thread == "pilot-adc"
    assert len(at_trip) == 1 and at_trip[0] - edge <= 2 * rig.hw.pilot.samples  # type: ignore[attr-defined]
    assert rig.hw.contactor.close() is False
    assert rig.events == []  # B is routine, not a fault


def test_no_core_unconfirmed_excursion_holds_then_lifts(rig: Rig) -> None:
    """Two conversions in a row at 9 V (B) on a C line: the interlock opens at once and
    refuses a release or a close until the debounce decides; the debounce keeps C, the pilot
    says C again to its listeners and the close is allowed through the normal path."""
    conv = Conversions(rig.wiring)
    rig.hw.pilot.debounce = 3  # the two conversions span at most two bursts
    rig.ev_in_c()
    rig.energize()
    heard: list[PilotReading] = []
    held: list[tuple[frozenset[InhibitCause], bool]] = []

    def on_trip(_: PilotReading) -> None:  # still on the sampler, before the next burst
        held.append((rig.interlock.release(), rig.hw.contactor.close()))

    rig.hw.pilot.add_trip_listener(on_trip)
    rig.hw.pilot.add_listener(heard.append)
    conv.glitch_v, conv.glitches = 9.0, 2
    assert wait_until(lambda: bool(heard))
    assert held == [(frozenset({InhibitCause.PILOT_NOT_READY}), False)]
    assert [m.level for m in rig.wiring.timeline.of("coil")] == [True, False]
    assert heard == [PilotReading(PilotState.C)]
    assert wait_until(lambda: InhibitCause.PILOT_NOT_READY not in rig.interlock.inhibits)
    assert rig.events == []
    rig.energize()


@pytest.mark.parametrize(("volts", "low_v", "what"), [
    (0.0, -12.0, "state E"), (6.0, -6.0, "diode"), (-12.0, -12.0, "state F")])
def test_no_core_pilot_faults_latch(rig: Rig, volts: float, low_v: float, what: str) -> None:
    rig.ev_in_c()
    rig.energize()
    rig.wiring.line.low_v = low_v
    rig.wiring.line.set_high(volts, rig.wiring.timeline)
    assert wait_until(lambda: rig.wiring.coil.state == 0)
    assert wait_until(lambda: InhibitCause.PILOT_FAULT in rig.interlock.inhibits)
    assert what.split()[-1] in rig.interlock.inhibits[InhibitCause.PILOT_FAULT]
    rig.wiring.line.low_v = -12.0
    rig.wiring.line.set_high(6.0, rig.wiring.timeline)
    assert wait_until(lambda: rig.hw.pilot.read() .state is PilotState.C
                      and not rig.hw.pilot.read().diode_fault)
    assert rig.hw.contactor.close() is False
    assert rig.interlock.release() == frozenset()
    rig.energize()


def test_no_core_overtemperature(rig: Rig) -> None:
    rig.ev_in_c()
    rig.energize()
    rig.wiring.set_temperature(95.0)  # default trip 80 °C, sampled every 1 s
    # The output goes low first, the inhibit is booked right after under the lock.
    assert wait_until(lambda: InhibitCause.OVERTEMP in rig.interlock.inhibits, 3.0)
    assert rig.wiring.coil.state == 0
    low = rig.wiring.timeline.first("coil", False)
    assert low is not None and low.thread == "temperature-1"
    assert rig.hw.contactor.close() is False
    rig.wiring.set_temperature(75.0)  # below trip, above the 70 °C release level
    assert wait_until(lambda: rig.interlock.temperature_c is not None
                      and rig.interlock.temperature_c < 80.0, 3.0)
    assert rig.interlock.release() == frozenset({InhibitCause.OVERTEMP})
    rig.wiring.set_temperature(30.0)
    assert wait_until(lambda: [e.active for e in rig.events] == [True, False], 3.0)
    assert rig.interlock.release() == frozenset()
    rig.energize()


def test_no_core_welded_contactor(rig: Rig) -> None:
    rig.ev_in_c()
    rig.energize()
    rig.wiring.coil.input_pin = None  # the main contacts weld: the mirror stays closed
    rig.hw.contactor.open()
    assert wait_until(lambda: InhibitCause.WELDED in rig.interlock.inhibits, 2.0)
    assert rig.hw.contactor.close() is False
    assert rig.interlock.release() == frozenset({InhibitCause.WELDED})  # still closed
    rig.wiring.feedback.drive_low()  # repaired
    assert rig.interlock.release() == frozenset()


def test_no_core_failed_to_close(rig: Rig) -> None:
    rig.ev_in_c()
    rig.wiring.coil.input_pin = None  # coil open circuit: the mirror never follows
    rig.energize()
    assert wait_until(lambda: InhibitCause.FAILED_TO_CLOSE in rig.interlock.inhibits, 2.0)
    assert rig.wiring.coil.state == 0
    low = rig.wiring.timeline.first("coil", False)
    assert low is not None and low.thread.startswith("Thread")  # the feedback timer


def test_no_core_stuck_sampler_opens_and_stops_health(rig: Rig) -> None:
    """A hung ADC transfer stops the pilot sampler: the supervisor opens the contactor
    (LIVENESS) within the 0.5 s bound plus a check period, and the board is unhealthy."""
    assert rig.board.interlock is not None
    rig.ev_in_c()
    rig.energize()
    assert rig.board.interlock.healthy()
    t0 = time.perf_counter_ns()
    rig.wiring.line.running.clear()
    assert wait_until(lambda: rig.events != [], 2.0)
    assert rig.wiring.coil.state == 0
    low = rig.wiring.timeline.first("coil", False)
    assert low is not None and low.thread == "interlock"
    assert 0.5 <= (low.t_ns - t0) / 1e9 < 1.0
    # The supervisor inhibits (and notifies) first, then records the health it found.
    interlock = rig.board.interlock
    assert wait_until(lambda: not interlock.healthy(), 1.0)
    assert board_liveness(rig.board)() is False  # the systemd watchdog pings stop
    assert [(e.cause, e.active) for e in rig.events] == [(InhibitCause.LIVENESS, True)]
    assert rig.hw.contactor.close() is False
    rig.wiring.line.running.set()
    assert wait_until(lambda: len(rig.events) == 2)
    assert rig.events[-1].active is False and rig.board.interlock.healthy()
    assert rig.interlock.release() == frozenset()
    rig.energize()


def test_close_refused_while_any_inhibit_holds(rig: Rig) -> None:
    """Every latched cause on its own: close() returns False and the coil never rises."""
    rig.ev_in_c()
    for cause in (InhibitCause.RCD_TRIP, InhibitCause.PILOT_FAULT, InhibitCause.OVERTEMP,
                  InhibitCause.WELDED, InhibitCause.FAILED_TO_CLOSE, InhibitCause.LIVENESS,
                  InhibitCause.COPROCESSOR):
        after = time.perf_counter_ns()
        rig.hw.contactor.inhibit(cause, "test")
        for _ in range(3):
            assert rig.hw.contactor.close() is False, cause
        assert rises(rig.wiring.timeline, "coil", after) == [], cause
        assert rig.interlock.release(cause) == frozenset(), cause
    rig.energize()


def test_race_trip_edges_against_close_never_left_high(rig: Rig) -> None:
    """One thread hammers RCD trip edges (and releases once the trip is gone), another
    closes as fast as it can. While the trip input is high, the coil may only be high for
    the instant between a close's write and its re-check (bounded by the 50 ms budget),
    and it is never left high."""
    tl = rig.wiring.timeline
    rig.ev_in_c()
    stop = threading.Event()
    closes = [0, 0]
    high_after_edge: list[int] = []

    def closer() -> None:
        while not stop.is_set():
            closes[rig.hw.contactor.close()] += 1

    def tripper() -> None:
        for _ in range(300):
            rig.wiring.trip.drive_high()
            high_after_edge.append(rig.wiring.coil.state)
            time.sleep(0.0002)
            high_after_edge.append(rig.wiring.coil.state)
            rig.wiring.trip.drive_low()
            rig.interlock.release(InhibitCause.RCD_TRIP)
            time.sleep(0.0002)
        stop.set()

    threads = [threading.Thread(target=closer, name="closer"),
               threading.Thread(target=tripper, name="tripper")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert closes[True] > 0 and closes[False] > 0  # both sides really raced
    assert high_after_edge and not any(high_after_edge)
    # A close that had passed its checks before the edge writes high once and takes it back
    # at its re-check; that window is a thread's scheduling slice (long on a loaded host),
    # so it is bounded by the pin-to-pin budget (50 ms, DESIGN.md), not by the 0.2 ms the
    # trip lasts here. Every coil rise while the trip input is high falls within it.
    marks = sorted((m for m in tl.entries if m.what in ("trip", "coil")), key=lambda m: m.t_ns)
    tripped, coil, high_since = False, False, None  # high_since: coil high while tripped
    for m in marks:
        if m.what == "trip":
            tripped = bool(m.level)
            if tripped and coil:
                high_since = m.t_ns
            elif not tripped and high_since is not None:
                assert (m.t_ns - high_since) / 1e6 < 50.0, "coil high through a trip"
                high_since = None
        else:
            coil = bool(m.level)
            if coil and tripped:
                high_since = m.t_ns
            elif not coil and high_since is not None:
                assert (m.t_ns - high_since) / 1e6 < 50.0, "coil high too long while tripped"
                high_since = None
    assert high_since is None, "coil left high while tripped"
    assert len([1 for m in marks if m.what == "trip" and m.level]) == 300


UART_PILOT = """[connector.gpio.pilot]
mode = "uart"
device = "{device}"
"""


def test_no_core_coprocessor_fault_and_silence(factory: MockFactory, tmp_path: Path,
                                               meter_server: MeterServer) -> None:
    """The pilot co-processor on a pty (its framed protocol on the other end): a corrupt
    frame opens the contactor on the UART reader thread (COPROCESSOR) until a good frame
    follows; a co-processor that falls silent opens it from the supervisor (LIVENESS)."""
    pty = PtyDevice()
    mcu = CoProcessor(pty)
    path = write_config(tmp_path, meter_server.port)
    text = path.read_text()
    adc_pilot = text[text.index("[connector.gpio.pilot]"):text.index("[connector.gpio.contactor]")]
    path.write_text(text.replace(adc_pilot, UART_PILOT.format(device=pty.path)))
    wiring = Wiring(factory)
    beating = threading.Event()
    beating.set()
    stop = threading.Event()
    state = ["S C 0"]

    def heartbeat() -> None:  # the MCU reports the CP state every 50 ms
        while not stop.is_set():
            if beating.is_set():
                mcu.send(state[0])
            stop.wait(0.05)

    beat = threading.Thread(target=heartbeat, daemon=True)
    beat.start()
    cfg = load_config(path)
    board = create_board(cfg.hardware, cfg.connectors)
    try:
        hw = board.connectors[0]
        assert hw.interlock is not None
        events: list[InterlockEvent] = []
        hw.interlock.add_listener(events.append)
        assert wait_until(lambda: hw.pilot.read().state is PilotState.C
                          and InhibitCause.PILOT_NOT_READY not in hw.interlock.inhibits)  # type: ignore[union-attr]
        assert hw.contactor.close() is True and wiring.coil.state == 1
        pty.write(mcu.frame("S C 0", crc=0x00))  # a corrupt frame
        assert wait_until(lambda: InhibitCause.COPROCESSOR in hw.interlock.inhibits)  # type: ignore[union-attr]
        low = wiring.timeline.first("coil", False)
        assert low is not None and low.thread == "pilot-uart"
        assert wait_until(lambda: [e.active for e in events] == [True, False])  # good again
        assert hw.interlock.release() == frozenset()
        assert hw.contactor.close() is True
        beating.clear()  # the co-processor falls silent
        assert wait_until(lambda: InhibitCause.LIVENESS in hw.interlock.inhibits)  # type: ignore[union-attr]
        assert wiring.coil.state == 0
        low = wiring.timeline.entries[-2] if wiring.timeline.entries[-1].what == "feedback" \
            else wiring.timeline.entries[-1]
        assert low.what == "coil" and low.thread == "interlock"
    finally:
        stop.set()
        beat.join(2)
        board.close()
        wiring.close()
        pty.close()


# -- under a running daemon (Station, adapter, dev CSMS) ----------------------------------
@pytest.fixture
async def station(factory: MockFactory, tmp_path: Path, meter_server: MeterServer,
                  csms: Any) -> AsyncIterator[tuple[Daemon, Wiring]]:
    wiring = Wiring(factory)
    path = write_config(tmp_path, meter_server.port, url=f"ws://127.0.0.1:{csms.port}/")
    daemon = Daemon(load_checked_config(str(path)))
    await daemon.start()
    await csms.wait_for(lambda: "CP-GPIO" in csms.stations
                        and csms.actions("StatusNotification"))
    try:
        yield daemon, wiring
    finally:
        await daemon.shutdown()
        wiring.close()


async def wait_for(predicate: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def charging(daemon: Daemon, wiring: Wiring) -> None:
    assert daemon.station is not None
    conn = daemon.station.connectors[1]
    wiring.line.set_high(9.0, wiring.timeline)  # EV plugged (B)
    await wait_for(lambda: conn.state == "pending")
    await daemon.station.present_card("DEMO01")
    await wait_for(lambda: conn.session is not None)
    wiring.line.set_high(6.0, wiring.timeline)  # EV asks for energy under PWM (C)
    await wait_for(lambda: conn.state == "energy_transfer" and wiring.coil.state == 1)


async def test_station_rcd_trip_order_and_fault(station: tuple[Daemon, Wiring]) -> None:
    daemon, wiring = station
    assert daemon.station is not None
    conn = daemon.station.connectors[1]
    await charging(daemon, wiring)
    tl = wiring.timeline
    await asyncio.to_thread(wiring.trip.drive_high)
    assert wiring.coil.state == 0  # before the loop ran at all
    await wait_for(lambda: conn.state == "faulted")
    assert conn.iec.reported_fault()[0] is Fault.RCD_TRIP
    await wait_for(lambda: wiring.pwm.state == 0)  # state F driven by the core
    trip = tl.first("trip", True)
    assert trip is not None
    order = [(m.what, m.level) for m in tl.entries if m.t_ns >= trip.t_ns
             and m.what in ("trip", "coil", "feedback", "cp_pwm")]
    # Edge, coil low, mirror contact open, then (on the loop) the pilot to −12 V.
    assert order[:4] == [("trip", True), ("coil", False), ("feedback", False), ("cp_pwm", 0.0)]


async def test_station_pilot_c_to_b_and_temperature(station: tuple[Daemon, Wiring]) -> None:
    daemon, wiring = station
    assert daemon.station is not None
    conn = daemon.station.connectors[1]
    await charging(daemon, wiring)
    wiring.line.set_high(9.0, wiring.timeline)  # C → B
    await wait_for(lambda: conn.state == "suspended_by_ev")
    low = wiring.timeline.first("coil", False)
    assert low is not None and low.thread == "pilot-adc"
    wiring.line.set_high(6.0, wiring.timeline)
    await wait_for(lambda: conn.state == "energy_transfer" and wiring.coil.state == 1)
    t0 = time.perf_counter_ns()
    wiring.set_temperature(95.0)
    await wait_for(lambda: wiring.coil.state == 0, 3.0)
    low = wiring.timeline.first("coil", False, after_ns=t0)
    assert low is not None and low.thread == "temperature-1"
    await wait_for(lambda: conn.state == "faulted", 5.0)
    assert conn.iec.reported_fault()[0] is Fault.OVERTEMP


async def test_station_interlock_holds_while_loop_blocked(
        station: tuple[Daemon, Wiring]) -> None:
    daemon, wiring = station
    await charging(daemon, wiring)
    edge_at: list[int] = []

    def residual_current_soon() -> None:
        time.sleep(0.1)
        edge_at.append(time.perf_counter_ns())
        wiring.trip.drive_high()

    threading.Thread(target=residual_current_soon, name="rdc-dd").start()
    time.sleep(1.0)  # the event loop is blocked for 1 s
    unblocked = time.perf_counter_ns()
    low = wiring.timeline.first("coil", False, after_ns=edge_at[0])
    assert low is not None and low.t_ns < unblocked
    assert (low.t_ns - edge_at[0]) / 1e6 < 50.0


class StalledHandler(logging.Handler):
    """A log handler that blocks (a full journald pipe) until ``unblock`` is set."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.unblock = threading.Event()
        self.stalled = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.stalled.set()
        self.unblock.wait(5.0)


async def test_station_interlock_holds_while_logging_stalled(
        station: tuple[Daemon, Wiring]) -> None:
    daemon, wiring = station
    await charging(daemon, wiring)
    handler = StalledHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        edge_at = time.perf_counter_ns()
        drive = threading.Thread(target=wiring.trip.drive_high, name="rdc-dd")
        drive.start()
        assert handler.stalled.wait(2.0)  # the RCD driver logs after notifying ...
        assert drive.is_alive()  # ... and that thread now hangs in the handler
        low = wiring.timeline.first("coil", False, after_ns=edge_at)
        assert low is not None and (low.t_ns - edge_at) / 1e6 < 50.0
        assert daemon.station is not None
        assert daemon.station.connectors[1].hw.contactor.close() is False
    finally:
        handler.unblock.set()
        root.removeHandler(handler)
    drive.join(5)


async def test_station_unconfirmed_excursion_recloses_through_the_core(
        station: tuple[Daemon, Wiring]) -> None:
    """Charging; two conversions at 9 V on the C line: the coil drops at once; the debounce
    keeps C, so the session goes on and the core closes the contactor again, with no
    fault raised."""
    daemon, wiring = station
    assert daemon.station is not None
    conn = daemon.station.connectors[1]
    await charging(daemon, wiring)
    hw = daemon.board.connectors[0]  # type: ignore[union-attr]
    hw.pilot.debounce = 3  # type: ignore[attr-defined]  # two conversions span ≤ 2 bursts
    conv = Conversions(wiring)
    conv.glitch_v, conv.glitches = 9.0, 2
    await wait_for(lambda: False in [m.level for m in wiring.timeline.of("coil")])
    await wait_for(lambda: [m.level for m in wiring.timeline.of("coil")][-2:] == [False, True],
                   timeout_s=2.0)
    assert conn.state == "energy_transfer"
    assert not conn.iec.faults.active
