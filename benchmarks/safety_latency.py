#!/usr/bin/env python3
"""Safety-path latency: edge → contactor-open command, with the OCPP link under load.

The daemon runs as ``evse run`` wires it (simulated board, two connectors, a real dev CSMS
on loopback). The CSMS and its load generator run in a separate process (this script with
``--csms-child``, driven over a pipe): a CSMS is a remote peer and must not take the
charger process's CPU or GIL. Connector 2 runs a charging session with
MeterValueSampleInterval = 1 while the CSMS sends GetConfiguration / TriggerMessage CALLs
as fast as the link answers (the rate is printed; it must be ≥ 200 calls/s). A separate
thread, standing for the driver thread (a gpiozero callback, the pilot sampler), injects
N trips of each kind on connector 1 through the hal listener interface, exactly where a
driver reports an edge:

* ``RCD``:  the RCD's trip listeners (``Rcd._emit_trip``);
* ``C->B``, ``C->A``, ``E``, ``F``: a pilot reading to the pilot's listeners.

Before every trip the contactor is commanded closed; the time from the edge (just before the
listener call) to the contactor's ``open()`` being entered on that same thread is one sample.
Interleaved with the trips, in the same run and thread, the floor is measured: a bare
gpiozero ``MockFactory`` input pin whose ``when_activated`` callback drives an output pin.

Prints a table (p50 / p99 / max in ms per kind) and
``safety_latency p99_ms=… max_ms=… floor_p99_ms=…`` for the worst kind. Target on the CI
machine: p99 ≤ 5 ms, max ≤ 20 ms.

Then, pin to pin on the **gpio** backend (:func:`run_gpio`): the daemon as ``evse run`` wires
it on gpiozero's MockFactory, the CP line on the MCP3008 SPI peer, a pymodbus SDM630 on
loopback, the dev CSMS flooding the link with CALLs. An injector thread makes real input
edges (the RDC-DD trip pin; the CP line moving to B, A, E or losing its diode) and the
time from the edge to the contactor coil pin going low is taken from the coil pin's own
level change (including the pilot sampler's bursts and debounce: leaving C trips on the
first two conversions that show it, see :mod:`hal.gpio.pilot_adc`). Rows per condition:
``load`` (OCPP load only), ``loop2s`` (the event loop blocked for 2 s windows while edges
keep coming), ``log2s`` (every log handler stalled for 2 s windows, as a full journald
pipe stalls it). A sample counts only when the coil was high at the edge and went low on
the thread that saw the edge (the RDC-DD callback thread, ``pilot-adc``). The last line is
``safety_latency_gpio p99_ms=… max_ms=… stalled_max_ms=…`` (worst p99 and max over every
row, and the max over the stalled rows). Target: p99 ≤ 10 ms, max ≤ 50 ms for every row.

    python benchmarks/safety_latency.py [--n 2000] [--gpio-n 300] [--windows 6]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "hal"))  # the gpio / Modbus peers of the tests

from dev_csms import DevCsms  # noqa: E402

from evse.daemon import Daemon, load_checked_config  # noqa: E402
from hal.board import ConnectorHardware  # noqa: E402
from hal.pilot import PilotReading, PilotState  # noqa: E402

KINDS = ("RCD", "C->B", "C->A", "E", "F")
_READINGS = {"C->B": PilotState.B, "C->A": PilotState.A, "E": PilotState.E,
             "F": PilotState.F}

CONFIG = """
[station]
id = "CP-BENCH"
state_dir = "state"

[ocpp]
url = "ws://127.0.0.1:{port}/"
call_timeout_s = 10.0
reconnect_min_s = 0.1
reconnect_max_s = 0.5

[hardware]
driver = "sim"

[ocpp.configuration]
MeterValueSampleInterval = 1

[[connector]]
id = 1
[[connector]]
id = 2

[iec61851]
rcd_self_test = "never"

[logging]
level = "warning"
"""


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0–1) of ``values`` (nearest rank)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class Probe:
    """Times edge → the contactor output written low (``_drive(False)``, whoever calls it:
    the interlock's inhibit or a listener's ``open()``) on the injecting thread."""

    def __init__(self, hw: ConnectorHardware) -> None:
        self.hw = hw
        self.t0_ns: int | None = None
        self.thread = 0
        self.sample_ns: int | None = None
        contactor = hw.contactor
        original = contactor._drive

        def timed_drive(closed: bool) -> None:
            t0 = self.t0_ns
            if (not closed and t0 is not None and threading.get_ident() == self.thread
                    and contactor.commanded_closed):
                self.sample_ns = time.perf_counter_ns() - t0
                self.t0_ns = None
            original(closed)

        contactor._drive = timed_drive  # type: ignore[method-assign]


class Floor:
    """A bare gpiozero MockFactory callback driving an output pin: the floor."""

    def __init__(self) -> None:
        from gpiozero import LED, Button
        from gpiozero.pins.mock import MockFactory

        factory = MockFactory()
        self.button = Button(5, pin_factory=factory, pull_up=False)
        self.output = LED(6, pin_factory=factory)
        self.t0_ns = 0
        self.sample_ns: int | None = None

        def on_edge() -> None:
            self.sample_ns = time.perf_counter_ns() - self.t0_ns
            self.output.on()

        self.button.when_activated = on_edge

    def measure(self) -> float | None:
        self.sample_ns = None
        self.t0_ns = time.perf_counter_ns()
        self.button.pin.drive_high()
        sample = self.sample_ns
        self.button.pin.drive_low()
        self.output.off()
        self.button.pin.clear_states()  # type: ignore[attr-defined]
        return None if sample is None else sample / 1e6

    def close(self) -> None:
        self.button.close()
        self.output.close()


def inject_all(hw: ConnectorHardware, n: int, results: dict[str, list[float]],
               floor: list[float], spacing_s: float, stop: threading.Event,
               sim: Any = None) -> None:
    """The driver thread: N trips of each kind, interleaved with floor samples."""
    probe = Probe(hw)
    probe.thread = threading.get_ident()
    floor_pin = Floor()
    try:
        for kind in KINDS:
            samples = results[kind]
            attempts = 0
            while len(samples) < n and not stop.is_set() and attempts < n * 5:
                attempts += 1
                # Re-arm: the EV in C on the CP line, the interlock's inhibits released,
                # energized.
                if sim is not None:  # whatever the core drives (F while Faulted)
                    sim.duty_percent, sim.state_f = 50.0, False
                if hw.interlock is not None:
                    hw.interlock.release()
                if not hw.contactor.close():
                    hw.pilot._emit(PilotReading(PilotState.C))
                    time.sleep(spacing_s)
                    continue
                probe.sample_ns = None
                probe.t0_ns = time.perf_counter_ns()
                if kind == "RCD":
                    hw.rcd._emit_trip()
                else:
                    hw.pilot._emit(PilotReading(_READINGS[kind]))
                probe.t0_ns = None
                if probe.sample_ns is not None:
                    samples.append(probe.sample_ns / 1e6)
                sample = floor_pin.measure()
                if sample is not None:
                    floor.append(sample)
                # The EV back in C, so the next edge is a change again; let the loop work.
                hw.pilot._emit(PilotReading(PilotState.C))
                time.sleep(spacing_s)
    finally:
        floor_pin.close()


class _Answers:
    """Stands in for the CSMS charge point's response queue: counts CALLRESULTs."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = asyncio.Event()

    def put_nowait(self, _msg: Any) -> None:
        self.count += 1
        self.changed.set()


async def load(csms: DevCsms, station_id: str, stop: asyncio.Event,
               counter: list[int], window: int = 8, connector_id: int = 2) -> None:
    """CSMS → charge point CALLs (GetConfiguration, TriggerMessage), ``window`` in flight
    at a time, written as raw OCPP-J frames on the CSMS's connection; ``counter[0]``
    counts the CALLRESULTs the charge point sent back."""
    cp = csms.stations[station_id]
    answers = _Answers()
    cp._response_queue = answers  # type: ignore[assignment]
    frames = [
        ["GetConfiguration", {}],
        ["TriggerMessage", {"requestedMessage": "MeterValues", "connectorId": connector_id}],
        ["GetConfiguration", {"key": ["HeartbeatInterval"]}],
        ["TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 1}],
    ]
    sent = 0
    while not stop.is_set():
        while sent - answers.count < window:
            action, payload = frames[sent % len(frames)]
            await cp._send(json.dumps([2, f"load-{sent}", action, payload]))
            sent += 1
        answers.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(answers.changed.wait(), 1.0)
        counter[0] = answers.count


# -- the CSMS: a remote peer, in its own process ------------------------------------------
async def _csms_child(accept_tag: str) -> None:
    """``--csms-child``: the dev CSMS and its load generator in this (separate) process,
    driven by JSON lines on stdin; answers one JSON line on stdout per request."""
    csms = DevCsms(port=0, accept_tags=(accept_tag,))
    await csms.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(obj: Any) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    say({"port": csms.port})
    stop_load = asyncio.Event()
    counter = [0]
    load_task: asyncio.Task[None] | None = None
    try:
        while line := await reader.readline():
            req = json.loads(line)
            op = req["op"]
            if op == "count":
                say({"n": len(csms.actions(req["action"], req.get("station")))
                     if req["station"] in csms.stations else -1})
            elif op == "load":
                stop_load.clear()
                load_task = loop.create_task(load(csms, req["station"], stop_load, counter,
                                                  connector_id=req["connector_id"]))
                say({"ok": True})
            elif op == "counter":
                say({"n": counter[0]})
            elif op == "stop_load":
                stop_load.set()
                if load_task is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(load_task, 5)
                say({"n": counter[0]})
            else:
                say({"ok": True})
                break
    finally:
        await csms.stop()


class RemoteCsms:
    """The parent's handle on the CSMS child process (a CSMS is a remote peer: its CPU time
    must not be taken from the charger's process, as it was when it ran in-process)."""

    def __init__(self, accept_tag: str = "BENCH") -> None:
        self.accept_tag = accept_tag
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--csms-child", self.accept_tag,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        self.port = int((await self._read())["port"])

    async def _read(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), 30)
        if not line:
            raise RuntimeError("CSMS child process ended")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def request(self, **req: Any) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write((json.dumps(req) + "\n").encode())
        await self._proc.stdin.drain()
        return await self._read()

    async def count(self, station: str, action: str) -> int:
        """CALLs of ``action`` received from ``station``; −1 while it is not connected."""
        return int((await self.request(op="count", station=station, action=action))["n"])

    async def wait_count(self, station: str, action: str, at_least: int = 1,
                         timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while await self.count(station, action) < at_least:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {action} from {station}")
            await asyncio.sleep(0.05)

    async def start_load(self, station: str, connector_id: int) -> None:
        await self.request(op="load", station=station, connector_id=connector_id)

    async def calls(self) -> int:
        """CALLRESULTs the charge point has sent back to the load generator so far."""
        return int((await self.request(op="counter"))["n"])

    async def stop_load(self) -> int:
        return int((await self.request(op="stop_load"))["n"])

    async def stop(self) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.request(op="quit"), 5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._proc.wait(), 5)
        if self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()


async def run(n: int, spacing_s: float) -> dict[str, Any]:
    """Run the benchmark; returns samples per kind (ms), floor (ms), load figures."""
    csms = RemoteCsms("BENCH")
    await csms.start()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "evse.toml"
        path.write_text(CONFIG.format(port=csms.port))
        daemon = Daemon(load_checked_config(str(path)))
        await daemon.start()
        try:
            assert daemon.board is not None and daemon.board.simulator is not None
            sim = daemon.board.simulator
            await csms.wait_count("CP-BENCH", "StatusNotification")
            # A session on connector 2 keeps MeterValues flowing during the run.
            sim.plug(2, 32.0, 3)
            sim.swipe("BENCH")
            await csms.wait_count("CP-BENCH", "StartTransaction")
            sim.plug(1, 32.0, 3)
            meter_values_before = await csms.count("CP-BENCH", "MeterValues")
            await csms.start_load("CP-BENCH", 2)
            await asyncio.sleep(0.5)  # load running before the first trip
            results: dict[str, list[float]] = {k: [] for k in KINDS}
            floor: list[float] = []
            stop = threading.Event()
            hw = daemon.board.connectors[0]
            t_start = time.monotonic()
            calls_start = await csms.calls()
            injector = asyncio.get_running_loop().run_in_executor(
                None, inject_all, hw, n, results, floor, spacing_s, stop,
                sim.connector(1))  # type: ignore[attr-defined]
            try:
                await injector
            finally:
                stop.set()
            duration = time.monotonic() - t_start
            calls = await csms.calls() - calls_start
            await csms.stop_load()
            meter_values = await csms.count("CP-BENCH", "MeterValues") - meter_values_before
        finally:
            await daemon.shutdown()
            await csms.stop()
    return {"results": results, "floor": floor, "duration_s": duration,
            "calls_per_s": calls / duration if duration else 0.0,
            "meter_values": meter_values}


def report(data: dict[str, Any], out: Callable[[str], None] = print) -> str:
    """Print the table; return (and print) the summary line for the worst kind."""
    results: dict[str, list[float]] = data["results"]
    floor: list[float] = data["floor"]
    out(f"OCPP load: {data['calls_per_s']:.0f} CSMS calls/s, {data['meter_values']} MeterValues "
        f"during {data['duration_s']:.1f} s")
    out(f"{'trip':<8}{'n':>7}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    rows: dict[str, tuple[float, float, float]] = {}
    for kind, samples in [*results.items(), ("floor", floor)]:
        if not samples:
            out(f"{kind:<8}{0:>7}{'-':>10}{'-':>10}{'-':>10}")
            continue
        p50, p99, worst = statistics.median(samples), percentile(samples, 0.99), max(samples)
        rows[kind] = (p50, p99, worst)
        out(f"{kind:<8}{len(samples):>7}{p50:>10.3f}{p99:>10.3f}{worst:>10.3f}")
    trips = {k: v for k, v in rows.items() if k != "floor"}
    worst_kind = max(trips, key=lambda k: (trips[k][1], trips[k][2]))
    _, p99, worst = trips[worst_kind]
    floor_p99 = rows.get("floor", (0.0, 0.0, 0.0))[1]
    line = (f"safety_latency p99_ms={p99:.3f} max_ms={worst:.3f} "
            f"floor_p99_ms={floor_p99:.3f}")
    out(f"worst kind: {worst_kind}")
    out(line)
    return line


# -- pin to pin on the gpio backend ------------------------------------------------------
GPIO_KINDS = ("RCD", "C->B", "C->A", "E", "diode")
#: CP line (positive plateau V, negative plateau V) for each pilot kind.
_CP = {"C->B": (9.0, -12.0), "C->A": (12.0, -12.0), "E": (0.0, -12.0), "diode": (6.0, -6.0)}

GPIO_CONFIG = """
[station]
id = "CP-GPIO-BENCH"
state_dir = "state"
[ocpp]
url = "ws://127.0.0.1:{port}/"
call_timeout_s = 10.0
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
port = {meter_port}
timeout_s = 0.5
[connector.gpio.pilot]
samples = 8
period_s = 0.001
debounce = 2
[connector.gpio.contactor]
pin = 17
feedback_pin = 23
[connector.gpio.rcd]
trip_pin = 27
test_pin = 22
[connector.gpio.temperature]
sensor = "adc"
adc_channel = 1
[iec61851]
rcd_self_test = "never"
[logging]
level = "warning"
"""


class GpioBench:
    """The far side of the gpio board and the edge injector (one thread)."""

    def __init__(self, factory: Any) -> None:
        from gpio_peers import (
            CpLine,
            LoggedMirrorPin,
            LoggedPin,
            Mcp3008Slave,
            MirrorPin,
            Timeline,
        )

        self.timeline = Timeline()
        self.feedback = factory.pin(23, pin_class=LoggedPin, timeline=self.timeline,
                                    label="feedback")
        self.coil = factory.pin(17, pin_class=LoggedMirrorPin, input_pin=self.feedback,
                                timeline=self.timeline, label="coil")
        self.trip = factory.pin(27, pin_class=LoggedPin, timeline=self.timeline, label="trip")
        factory.pin(22, pin_class=MirrorPin, input_pin=self.trip)
        self.line = CpLine(factory.pin(18))
        self.adc = Mcp3008Slave(self.line.adc_volts)
        self.hw: Any = None
        self.dropped = 0
        #: Why edges were not counted (reason → count).
        self.drop_reasons: dict[str, int] = {}
        # The RDC-DD's output as a thread of its own that raises the trip pin on request and
        # notes the time of the edge just before (the edge is the pin change, not the
        # creation of a thread).
        self._edge_go = threading.Event()
        self._edge_done = threading.Event()
        self._edge_t0 = 0
        #: Set while the RDC-DD thread is not inside an edge's callbacks (the interlock,
        #: then the core's listener, which opens the contactor too: re-arming before they
        #: return would let that late open() land on the next edge).
        self._edge_idle = threading.Event()
        self._edge_idle.set()
        self._edge_stop = False
        self._edge_thread = threading.Thread(target=self._rdc_dd, name="rdc-dd-edge",
                                             daemon=True)
        self._edge_thread.start()

    def _rdc_dd(self) -> None:
        while True:
            self._edge_go.wait()
            self._edge_go.clear()
            if self._edge_stop:
                return
            self._edge_idle.clear()
            self._edge_t0 = time.perf_counter_ns()
            # Told before the edge: with logging stalled this thread hangs in the log
            # handler after the interlock has acted.
            self._edge_done.set()
            self.trip.drive_high()
            self._edge_idle.set()

    def close(self) -> None:
        self._edge_stop = True
        self._edge_go.set()
        self._edge_thread.join(2)
        self.adc.close()

    def rearm(self, timeout_s: float = 1.0) -> bool:
        """EV in C under PWM, inputs clear, inhibits released, contactor closed."""
        from hal.pilot import PilotState

        hw = self.hw
        self._edge_idle.wait(5.0)
        self.timeline.clear()  # only this edge's marks: a short list for the collector
        self.trip.drive_low()
        self.line.high_v, self.line.low_v = 6.0, -12.0
        if not 0.0 < hw.pilot.duty_percent < 100.0:
            hw.pilot.set_duty(26.7)  # the core may have withdrawn PWM or driven F
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            reading = hw.pilot.read()
            if reading.state is PilotState.C and not reading.diode_fault:
                hw.interlock.release()
                if hw.contactor.close():
                    return True
            time.sleep(0.002)
        return False

    def fire(self, kind: str, wait_s: float = 0.5) -> float | None:
        """One edge of ``kind``; the edge → coil-low latency in ms, or None (not counted)."""
        if self.coil.state != 1:
            self.dropped += 1
            self.drop_reasons["coil low before the edge"] = (
                self.drop_reasons.get("coil low before the edge", 0) + 1)
            return None
        start = len(self.timeline)
        if kind == "RCD":
            self._edge_done.clear()
            self._edge_go.set()
            expected = "rdc-dd-edge"
        else:
            high, low = _CP[kind]
            t0 = time.perf_counter_ns()
            self.line.low_v = low
            self.line.high_v = high
            expected = "pilot-adc"
        mark = self.timeline.wait_first("coil", False, start, wait_s)
        if kind == "RCD":
            if not self._edge_done.wait(wait_s):
                self.dropped += 1
                self.drop_reasons["no edge"] = self.drop_reasons.get("no edge", 0) + 1
                return None
            t0 = self._edge_t0
        if mark is None or mark.thread != expected or mark.t_ns < t0:
            self.dropped += 1
            reason = ("not low in time" if mark is None else
                      f"opened by {mark.thread}" if mark.thread != expected else "early")
            self.drop_reasons[reason] = self.drop_reasons.get(reason, 0) + 1
            return None
        return (mark.t_ns - t0) / 1e6


class GcPauses:
    """Durations of the garbage collector's runs (ms) while installed: a collection holds
    the GIL, so every thread (the pilot sampler too) waits for it."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._t0 = 0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter_ns()
        else:
            self.pauses.append((int(info["generation"]), (time.perf_counter_ns() - self._t0)
                                / 1e6))

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self)

    def summary(self) -> str:
        if not self.pauses:
            return "no collections"
        worst = max(self.pauses, key=lambda p: p[1])
        gen2 = [p for g, p in self.pauses if g == 2]
        return (f"{len(self.pauses)} collections ({len(gen2)} of generation 2), longest "
                f"{worst[1]:.1f} ms (generation {worst[0]})")


class StallingHandler(logging.Handler):
    """Every record blocks until ``until`` (monotonic s): a full journald pipe."""

    def __init__(self) -> None:
        super().__init__()
        self.until = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        delay = self.until - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def _inject_gpio(bench: GpioBench, mode: str, n: int, windows: int, stall_s: float,
                 results: dict[str, dict[str, list[float]]], blocked: threading.Event,
                 handler: StallingHandler, spacing_s: float) -> None:
    rows = results[mode]
    if mode == "load":
        for kind in GPIO_KINDS:
            attempts = 0
            while len(rows[kind]) < n and attempts < n * 3:
                attempts += 1
                if not bench.rearm():
                    continue
                time.sleep(spacing_s)  # the loop's reaction to the last edge lands first
                sample = bench.fire(kind)
                if sample is not None:
                    rows[kind].append(sample)
        return
    for window in range(windows):
        if mode == "loop2s":
            blocked.clear()
            results["_requests"]["loop"].append(stall_s)  # ask the loop to block
            assert blocked.wait(10)
            end = time.monotonic() + stall_s * 0.9
            k = 0
            while time.monotonic() < end:
                kind = GPIO_KINDS[k % len(GPIO_KINDS)]
                k += 1
                if bench.rearm(0.2):
                    sample = bench.fire(kind, wait_s=0.2)
                    if sample is not None:
                        rows[kind].append(sample)
            time.sleep(stall_s * 0.2)
        else:
            # One edge per stalled window (kinds in turn): the thread that saw the edge
            # hangs in the log handler after notifying, so the window's first edge is the
            # one the stall can delay. Re-armed until the coil is high (the core may still
            # open after the last edge).
            for _ in range(100):
                if bench.rearm():
                    time.sleep(spacing_s)
                    if bench.coil.state == 1:
                        break
            else:
                continue
            handler.until = time.monotonic() + stall_s
            kind = GPIO_KINDS[window % len(GPIO_KINDS)]
            sample = bench.fire(kind)
            if sample is not None:
                rows[kind].append(sample)
            time.sleep(max(0.0, handler.until - time.monotonic()) + 0.1)


async def run_gpio(n: int = 300, windows: int = 10, stall_s: float = 2.0,
                   spacing_s: float = 0.01, gc_freeze: bool = False) -> dict[str, Any]:
    """Pin-to-pin samples per condition and kind (ms), plus load figures. ``gc_freeze``:
    ``gc.freeze()`` once the daemon runs (what a daemon does to keep the collector's full
    passes off its startup objects; the daemon does not do it yet)."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory, MockPWMPin
    from peers import MeterServer, f32_be

    previous = Device.pin_factory
    factory = MockFactory(pin_class=MockPWMPin)
    Device.pin_factory = factory
    meter = MeterServer(0x00, 0x60, unit_id=1)
    for i in range(3):
        meter.set_words(2 * i, f32_be(230.0))
    meter.set_words(0x48, f32_be(1.0))
    meter_port = meter.start_tcp()
    csms = RemoteCsms("BENCH")
    await csms.start()
    bench = GpioBench(factory)
    gc_pauses = GcPauses()
    handler = StallingHandler()
    logging.getLogger().addHandler(handler)
    results: dict[str, Any] = {m: {k: [] for k in GPIO_KINDS}
                               for m in ("load", "loop2s", "log2s")}
    results["_requests"] = {"loop": []}
    loop = asyncio.get_running_loop()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "evse.toml"
            path.write_text(GPIO_CONFIG.format(port=csms.port, meter_port=meter_port))
            daemon = Daemon(load_checked_config(str(path)))
            await daemon.start()
            try:
                assert daemon.board is not None
                bench.hw = daemon.board.connectors[0]
                await csms.wait_count("CP-GPIO-BENCH", "StatusNotification")
                bench.line.set_high(9.0)  # an EV plugged
                await csms.start_load("CP-GPIO-BENCH", 1)
                await asyncio.sleep(0.5)
                if gc_freeze:
                    gc.collect()
                    gc.freeze()
                t_start, calls_start = time.monotonic(), await csms.calls()
                gc_pauses.__enter__()
                for mode in ("load", "loop2s", "log2s"):
                    blocked = threading.Event()
                    job = loop.run_in_executor(None, _inject_gpio, bench, mode, n, windows,
                                               stall_s, results, blocked, handler, spacing_s)
                    while not job.done():
                        if results["_requests"]["loop"]:
                            block_s = results["_requests"]["loop"].pop()
                            blocked.set()
                            time.sleep(block_s)  # the event loop is blocked
                        await asyncio.sleep(0.01)
                    await job
                    if mode == "load":
                        load_s = time.monotonic() - t_start
                        load_calls = await csms.calls() - calls_start
                duration = time.monotonic() - t_start
                calls = await csms.calls() - calls_start
                await csms.stop_load()
            finally:
                if gc_pauses in gc.callbacks:
                    gc_pauses.__exit__()
                if gc_freeze:
                    gc.unfreeze()
                handler.until = 0.0
                await daemon.shutdown()
    finally:
        logging.getLogger().removeHandler(handler)
        await csms.stop()
        bench.close()
        meter.stop()
        factory.reset()
        Device.pin_factory = previous
    del results["_requests"]
    return {"results": results, "duration_s": duration,
            "calls_per_s": calls / duration if duration else 0.0,
            "load_calls_per_s": load_calls / load_s if load_s else 0.0,
            "dropped": bench.dropped, "drop_reasons": bench.drop_reasons,
            "gc": gc_pauses.summary() + (", gc.freeze() after start" if gc_freeze else "")}


def report_gpio(data: dict[str, Any], out: Callable[[str], None] = print) -> str:
    """Print the gpio table; return (and print) the ``safety_latency_gpio`` line."""
    out(f"gpio backend, pin to pin (MockFactory, MCP3008 peer; pilot 8 samples/burst, "
        f"1 ms period, debounce 2; CSMS in its own process): OCPP load "
        f"{data['load_calls_per_s']:.0f} CSMS calls/s during the load rows, "
        f"{data['calls_per_s']:.0f} over all {data['duration_s']:.1f} s (the stalled windows "
        f"included); {data['dropped']} edges not counted (coil already low or opened by "
        "another thread)")
    if data.get("gc"):
        out(f"garbage collector: {data['gc']}")
    if data.get("drop_reasons"):
        out("not counted: " + ", ".join(f"{k} {v}" for k, v in data["drop_reasons"].items()))
    out(f"{'row':<16}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    worst_p99 = worst_max = stalled_max = 0.0
    for mode, kinds in data["results"].items():
        for kind, samples in kinds.items():
            name = f"{mode}/{kind}"
            if not samples:
                out(f"{name:<16}{0:>6}{'-':>10}{'-':>10}{'-':>10}")
                continue
            p50, p99, top = statistics.median(samples), percentile(samples, 0.99), max(samples)
            out(f"{name:<16}{len(samples):>6}{p50:>10.3f}{p99:>10.3f}{top:>10.3f}")
            worst_p99, worst_max = max(worst_p99, p99), max(worst_max, top)
            if mode != "load":
                stalled_max = max(stalled_max, top)
    line = (f"safety_latency_gpio p99_ms={worst_p99:.3f} max_ms={worst_max:.3f} "
            f"stalled_max_ms={stalled_max:.3f}")
    out(line)
    return line


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--csms-child"]:
        asyncio.run(_csms_child(argv[1]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="trips per kind (default 2000)")
    parser.add_argument("--spacing-ms", type=float, default=1.0,
                        help="pause between trips, ms (the loop catches up; default 1)")
    parser.add_argument("--gpio-n", type=int, default=300,
                        help="gpio backend: edges per kind under load (default 300)")
    parser.add_argument("--windows", type=int, default=10,
                        help="gpio backend: 2 s stall windows per stalled condition "
                        "(default 10)")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="gpio backend: gc.freeze() once the daemon runs (default off: "
                        "the daemon as it is)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        # Logged as in production (the journal), to a file: the loop pays for it, the
        # safety path never logs before the open.
        logging.basicConfig(level=logging.INFO, filename=str(Path(tmp) / "evse.log"))
        data = asyncio.run(run(args.n, args.spacing_ms / 1000.0))
        gpio = asyncio.run(run_gpio(args.gpio_n, args.windows, gc_freeze=args.gc_freeze))
    sim_line = report(data)
    report_gpio(gpio)
    print(sim_line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
