"""The technician's view (issue 15): ``evse status`` (text, ``--json``, ``--watch``) and
``evse fault reset`` against a real daemon (``evse run`` on the simulator, the dev CSMS on
loopback), and with no daemon at all."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from dev_csms import DevCsms

from evse.config import load_config
from evse.control import request
from evse.status_view import duration, render_status
from hal.pilot import PilotReading, PilotState
from tests.conftest import ROOT, free_port, write_config

#: The version the package declares (BootNotification's firmwareVersion): read from
#: pyproject.toml, not from the code under test.
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

RCD_RETRY_S = 120.0


def evse(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evse", *args], capture_output=True,
                          text=True, check=False, timeout=timeout)


async def run(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(evse, *args)


def config(tmp_path: Path, url: str) -> list[str]:
    """A simulator config with a cable lock, an RCD retry of 120 s and 3 trips to latch."""
    path = write_config(tmp_path, url)
    text = path.read_text().replace("phases = 3\n", "phases = 3\nlock = true\n")
    path.write_text(text + f"\n[iec61851]\nrcd_retry_s = {RCD_RETRY_S}\nrcd_max_trips = 3\n")
    return ["--config", str(path)]


@pytest.fixture
async def daemon(tmp_path: Path, csms: DevCsms) -> AsyncIterator[list[str]]:
    """``evse run`` as a subprocess on the simulator; yields the ``--config`` arguments."""
    cfg = config(tmp_path, f"ws://127.0.0.1:{csms.port}/")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "evse", "run", *cfg,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await csms.wait_for(lambda: csms.actions("StatusNotification"), timeout=20)
        yield cfg
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def control(cfg: list[str], command: str, **params: Any) -> Any:
    """One command to the daemon over its control socket (what ``evse sim ...`` sends,
    without a Python start-up per call)."""
    return asyncio.to_thread(request, load_config(cfg[1]).control_socket, command, **params)


async def wait_status(cfg: list[str], predicate: Callable[[dict[str, Any]], bool],
                      timeout: float = 10.0) -> None:
    """Until the daemon's status satisfies ``predicate`` (its meter poll and timers move on
    their own schedule)."""
    deadline = time.monotonic() + timeout
    while not predicate(status := await control(cfg, "status")):
        if time.monotonic() > deadline:
            raise AssertionError(f"status never matched; last: {status}")
        await asyncio.sleep(0.1)


async def status_text(cfg: list[str]) -> str:
    """``evse status`` as the technician runs it."""
    result = await run("status", *cfg)
    assert result.returncode == 0, result.stderr
    return result.stdout


def faults(status: dict[str, Any]) -> list[dict[str, Any]]:
    return list(status["connectors"][0]["faults"])


def connector_block(text: str, connector_id: int = 1) -> str:
    return text[text.index(f"connector {connector_id}:"):]


async def test_status_shows_station_charging_and_fault_fields(
        daemon: list[str], csms: DevCsms) -> None:
    cfg = daemon
    text = await status_text(cfg)
    station = text.splitlines()
    assert f"firmware {VERSION}" in station[0] and re.search(r"up \d", station[0])
    assert re.search(r"CSMS accepted .*/CP-TEST {2}last contact [\d.]+ s ago", text)
    assert "queue 0 message(s)" in text and "storage ok" in text
    idle = connector_block(text)
    assert "idle" in idle and "IEC A1" in idle and "CP +12.0 V" in idle
    assert "lock unlocked" in idle and "contactor open" in idle
    assert "offered none, no PWM" in idle

    # A 1-phase EV that draws at most 10 A: the EVSE offers its 32 A, the EV takes 10.
    await control(cfg, "sim.plug", connector_id=1, max_current_a=10.0, phases=1)
    await control(cfg, "sim.swipe", id_tag="DEMO01")
    await csms.wait_for(lambda: any(p["status"] == "Charging"
                                    for p in csms.actions("StatusNotification")))
    await wait_status(cfg, lambda s: (s["connectors"][0]["drawn_current_a"] or [0])[0] > 0)
    charging = connector_block(await status_text(cfg))
    assert "drawn 10.0/0.0/0.0 A" in charging
    assert "energy_transfer" in charging and "IEC C2" in charging
    # State C with PWM: +6 V plateau, −12 V negative plateau (IEC 61851-1 Table A.3).
    assert "CP +6.0 V / -12.0 V" in charging
    assert "offered 32.0 A by PWM" in charging and "duty 53.3 %" in charging
    assert "lock locked" in charging and "contactor closed" in charging
    assert "idTag DEMO01" in charging

    # A residual current trip: retried after rcd_retry_s, latched at the 3rd trip.
    await control(cfg, "sim.fault", connector_id=1, kind="rcd")
    await wait_status(cfg, faults)
    faulted = connector_block(await status_text(cfg))
    assert "faulted" in faulted and "IEC F" in faulted and "CP -12.0 V" in faulted
    assert "contactor open" in faulted and "FAULT rcd_trip: residual current trip" in faulted
    assert "recovery: retry" in faulted
    countdown = re.search(r"retry in (\d+) min (\d+) s", faulted)
    assert countdown is not None
    assert RCD_RETRY_S - 30 < int(countdown[1]) * 60 + int(countdown[2]) <= RCD_RETRY_S
    assert "tripped 1x" in faulted and "RCD trips 1 of 3" in faulted

    # Two more trips latch it for a technician; no countdown any more.
    for _ in range(2):
        await control(cfg, "sim.clear", connector_id=1, kind="rcd")
        await control(cfg, "sim.fault", connector_id=1, kind="rcd")
    await wait_status(cfg, lambda s: s["connectors"][0]["rcd_trips"] == 3)
    latched = connector_block(await status_text(cfg))
    assert "RCD trips 3 of 3" in latched and "tripped 3x" in latched
    assert "recovery: technician reset" in latched and "retry in" not in latched

    data = json.loads((await run("status", "--json", *cfg)).stdout)
    conn = data["connectors"][0]
    # Keys the README and the tests rely on are still there, with the new ones.
    for key in ("id", "state", "pilot", "iec_state", "contactor_closed", "offered_current_a",
                "limit_source", "fault", "faults", "rcd_trips", "timers_s", "meter",
                "session", "pilot_voltage_v", "drawn_current_a", "lock"):
        assert key in conn, key
    for key in ("station_id", "csms", "storage", "tasks", "load_balancing",
                "firmware_version", "uptime_s"):
        assert key in data, key
    assert data["firmware_version"] == VERSION
    assert conn["faults"][0]["recovery"] == "technician" and conn["faults"][0]["trips"] == 3


async def test_fault_reset_reports_cleared_and_still_active(daemon: list[str],
                                                            csms: DevCsms) -> None:
    cfg = daemon
    await control(cfg, "sim.plug", connector_id=1, max_current_a=32.0, phases=3)
    await control(cfg, "sim.fault", connector_id=1, kind="rcd")
    await wait_status(cfg, faults)

    # The RCD is still tripped: the reset clears, the re-check raises it again at once.
    still = await run("fault", "reset", "1", *cfg)
    assert still.returncode == 1, still.stdout + still.stderr
    assert re.search(r"connector 1: STILL ACTIVE rcd_trip: residual current still present; "
                     r"recovery retry, retry in", still.stdout), still.stdout

    await control(cfg, "sim.clear", connector_id=1, kind="rcd")
    cleared = await run("fault", "reset", "1", *cfg)
    assert cleared.returncode == 0, cleared.stdout + cleared.stderr
    assert "connector 1: cleared rcd_trip" in cleared.stdout
    assert "STILL ACTIVE" not in cleared.stdout
    await wait_status(cfg, lambda s: s["connectors"][0]["state"] != "faulted")
    assert "FAULT" not in await status_text(cfg)

    nothing = await run("fault", "reset", "0", *cfg)
    assert nothing.returncode == 0 and "connector 1: no fault held" in nothing.stdout


async def test_watch_redraws_in_place_and_ends_on_ctrl_c(daemon: list[str]) -> None:
    cfg = daemon
    # For scripts: a bounded number of refreshes, one after the other.
    bounded = await run("status", "--watch", "--count", "2", "--interval", "0.2", *cfg)
    assert bounded.returncode == 0, bounded.stderr
    assert bounded.stdout.count("station CP-TEST") == 2
    assert "\x1b[" not in bounded.stdout  # not a terminal: no escape sequences
    lines = (await run("status", "--watch", "--json", "--count", "2", "--interval", "0.2",
                       *cfg)).stdout.splitlines()
    assert [json.loads(line)["station_id"] for line in lines] == ["CP-TEST", "CP-TEST"]

    # On a terminal: every frame starts at the top left; Ctrl-C ends it cleanly.
    output = await asyncio.to_thread(watch_on_pty, cfg, frames=2)
    assert output.count("\x1b[H") >= 2 and output.count("station CP-TEST") >= 2
    assert "Traceback" not in output and "KeyboardInterrupt" not in output


def watch_on_pty(cfg: list[str], frames: int) -> str:
    """Run ``evse status --watch`` on a pseudo-terminal until it drew ``frames`` frames,
    then send SIGINT (Ctrl-C); returns everything it wrote. Asserts a clean exit 0."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "evse", "status", "--watch",
                             "--interval", "0.2", *cfg],
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 20
        while out.count(b"station CP-TEST") < frames:
            assert time.monotonic() < deadline, out
            if select.select([master], [], [], 0.5)[0]:
                out += os.read(master, 65536)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        while select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its side
                break
            if not chunk:
                break
            out += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return out.decode(errors="replace")


async def test_link_down_shows_last_error_and_next_retry(tmp_path: Path) -> None:
    cfg = config(tmp_path, f"ws://127.0.0.1:{free_port()}/")  # nothing listens there
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "evse", "run", *cfg,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not load_config(cfg[1]).control_socket.exists():
            assert time.monotonic() < deadline, "daemon did not start"
            await asyncio.sleep(0.1)
        await wait_status(cfg, lambda s: s["csms"]["next_retry_in_s"] is not None
                          and s["csms"]["next_retry_in_s"] > 0.1)
        text = await status_text(cfg)
        assert "last contact never" in text
        assert re.search(r"last error [\d.]+ s ago: .*(refused|failed)", text, re.I), text
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 15)


def test_unreachable_daemon_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    cfg = ["--config", str(write_config(tmp_path, "ws://127.0.0.1:9/"))]
    watched = evse("status", "--watch", "--count", "2", "--interval", "0.1", *cfg)
    assert watched.returncode == 2
    assert watched.stdout.count("daemon unreachable: no daemon listening") == 2
    assert "Traceback" not in watched.stdout + watched.stderr
    as_json = evse("status", "--watch", "--json", "--count", "1", *cfg)
    assert as_json.returncode == 2
    assert "no daemon listening" in json.loads(as_json.stdout)["error"]
    bad = evse("status", "--watch", "--interval", "nan", *cfg)
    assert bad.returncode == 2 and "--interval" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("seconds,text", [
    (None, "?"), (0.04, "0.0 s"), (4.25, "4.2 s"), (42, "42 s"), (192, "3 min 12 s"),
    (7500, "2 h 05 min"), (3 * 86400 + 4 * 3600, "3 d 04 h"),
])
def test_durations_read_as_a_technician_reads_them(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_an_older_daemons_answer_renders_without_new_fields() -> None:
    """The CLI may be upgraded before the daemon restarts: the answer of the daemon as it
    was before this view (no firmware, link details, voltages, lock) still renders."""
    old: dict[str, Any] = {
        "station_id": "CP-OLD",
        "csms": {"state": "accepted", "url": "ws://csms/CP-OLD", "queued": 2},
        "connectors": [{"id": 1, "state": "faulted", "pilot": "F", "contactor_closed": False,
                        "offered_current_a": 16.0, "fault": "welded",
                        "fault_info": "contactor welded", "session": None}],
    }
    text = "\n".join(render_status(old))
    assert "station CP-OLD" in text and "queue 2 message(s)" in text
    assert "connector 1: faulted" in text and "FAULT welded: contactor welded" in text


async def test_fault_reset_keeps_a_station_wide_cause_and_counts_retries() -> None:
    """On a manual clock: the retry countdown runs down with time, each trip is counted, and
    a technician reset does not hide a station-wide cause that is still there."""
    from tests.iec.rig import station_rig

    rig = await station_rig()
    conn = rig.conn()
    rig.sim.plug(1, 32.0, 3)
    rig.sim.fault(1, "cp_short")  # state E: retried after fault_retry_s (30 s by default)
    await rig.settle()
    entry = conn.describe()["faults"][0]
    assert (entry["fault"], entry["recovery"], entry["trips"]) == ("pilot_e", "retry", 1)
    assert entry["retry_in_s"] == pytest.approx(30.0)
    await rig.advance(12.0)
    assert conn.describe()["faults"][0]["retry_in_s"] == pytest.approx(18.0)
    await rig.advance(18.5)  # retried with the pilot still shorted: raised again
    entry = conn.describe()["faults"][0]
    assert entry["trips"] == 2 and entry["retry_in_s"] == pytest.approx(29.5, abs=0.6)

    rig.sim.clear(1, "cp_short")
    rig.station.raise_station_fault("supply contactor open")
    report = await rig.station.technician_reset_report(1)
    assert report is not None
    assert [f["fault"] for f in report[0]["cleared"]] == ["pilot_e"]
    assert [(f["fault"], f["info"]) for f in report[0]["active"]] == [
        ("station", "supply contactor open")]
    assert await rig.station.technician_reset_report(7) is None
    rig.station.clear_station_fault()
    await rig.advance(1.0)
    assert conn.describe()["faults"] == [] and conn.state != "faulted"
    await rig.close()


def test_adc_pilot_reports_the_plateaus_it_measured() -> None:
    """The GPIO board's pilot (MockFactory PWM pin, MCP3008 on a mock SPI peer) reports the
    CP voltages of its last burst: both plateaus while PWM runs, the level when it does not
    (within the 10-bit ADC's resolution: 3.3 V / 1023 × 8 ≈ 26 mV)."""
    from tests.hal.gpio_peers import mock_pin_factory
    from tests.hal.test_gpio import PilotRig

    with mock_pin_factory() as factory:
        rig = PilotRig(factory)
        try:
            rig.line.high_v = 9.0
            rig.wait_for(PilotReading(PilotState.B))
            deadline = time.monotonic() + 3
            while (volts := rig.pilot.line_voltages()) is None or abs(volts[0] - 9.0) > 0.05:
                assert time.monotonic() < deadline, volts
                time.sleep(0.005)
            assert volts[1] is None  # constant +12 V drive: no negative plateau
            rig.line.high_v, rig.line.low_v = 6.0, -11.5
            rig.pilot.set_duty(50.0)
            rig.wait_for(PilotReading(PilotState.C))
            while (volts := rig.pilot.line_voltages()) is None or volts[1] is None \
                    or abs(volts[0] - 6.0) > 0.05:
                assert time.monotonic() < deadline + 3, volts
                time.sleep(0.005)
            assert volts[1] == pytest.approx(-11.5, abs=0.05)
        finally:
            rig.close()
