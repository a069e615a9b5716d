"""A failing disk never costs protection or money: the state directory is a small tmpfs that
fills up mid-session (a real ENOSPC from the kernel, under SQLite's WAL).

- the station stops offering power (Faulted, status says why) instead of charging
  unmetered or unrecorded;
- protections keep working (an over-temperature still trips);
- the StopTransaction is kept in memory and delivered once space returns, or — when the
  daemon restarts first — the session is closed with PowerLoss after the restart; never
  lost, never twice.

Needs ``mount -t tmpfs`` (root): skipped with the reason otherwise, a failure under CI
(``scripts/test`` runs as root there).
"""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dev_csms import DevCsms

from evse.daemon import Daemon, load_checked_config
from tests.conftest import write_config
from tests.offline.conftest import until

SIZE = "3m"


@pytest.fixture
def small_state_dir(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "state"
    state.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs",
                           str(state)], capture_output=True, text=True)
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs for the state dir: {done.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield state
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte; returns the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            block = b"\0" * size
            while True:
                try:
                    os.write(fd, block)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)
    return filler


async def start_daemon(tmp_path: Path, csms: DevCsms) -> Daemon:
    # The control socket outside the full file system (its directory is the state dir).
    socket = f"/tmp/evse-fulldisk-{os.getpid()}.sock"
    path = write_config(tmp_path, f"ws://127.0.0.1:{csms.port}/",
                        extra=f'control_socket = "{socket}"')
    daemon = Daemon(load_checked_config(str(path)))
    await daemon.start()
    assert daemon.station is not None
    daemon.station.storage_retry_s = 0.2
    return daemon


async def charging(daemon: Daemon, csms: DevCsms) -> Any:
    station = daemon.station
    assert station is not None and daemon.board is not None
    sim: Any = daemon.board.simulator
    await until(lambda: daemon.adapter is not None and daemon.adapter.describe()["state"]
                == "accepted")
    sim.plug(1, 16.0, 3)
    sim.swipe("DEMO01")
    conn = station.connectors[1]
    await until(lambda: conn.state == "energy_transfer")
    await csms.wait_for(lambda: csms.actions("StartTransaction"))
    await csms.wait_for(lambda: len(csms.actions("MeterValues")) >= 2)  # samples flow
    return sim


async def test_full_disk_faults_keeps_protection_and_delivers_the_stop_later(
        tmp_path: Path, small_state_dir: Path, csms: DevCsms) -> None:
    daemon = await start_daemon(tmp_path, csms)
    try:
        sim = await charging(daemon, csms)
        station = daemon.station
        assert station is not None
        conn = station.connectors[1]
        hw = conn.hw
        filler = fill(small_state_dir)
        # The next meter sample cannot be committed: no more power is offered.
        await until(lambda: conn.state == "faulted", timeout=10)
        assert not hw.contactor.commanded_closed
        status = station.describe()
        assert status["storage"]["writable"] is False
        assert "disk is full" in status["storage"]["error"]
        assert "state database not writable" in status["connectors"][0]["fault_info"]
        await csms.wait_for(lambda: any(p["status"] == "Faulted"
                                        for p in csms.actions("StatusNotification")))
        # The session ended; its stop waits in memory, not on the CSMS and not forgotten.
        await until(lambda: conn.session is None)
        await until(lambda: any("StopTransaction" in w
                                for w in station.describe()["storage"]["unsaved"]))
        assert csms.actions("StopTransaction") == []
        # Protections keep working with the disk full.
        sim.fault(1, "overtemp")
        await until(lambda: "overtemp" in [f["fault"] for f in conn.describe()["faults"]],
                    timeout=5)
        # Space returns: the stop is stored and delivered once; the station recovers.
        filler.unlink()
        stop = (await csms.wait_for(lambda: csms.actions("StopTransaction"), timeout=15))[0]
        start = csms.actions("StartTransaction")[0]
        assert stop["meterStop"] >= start["meterStart"]
        await until(lambda: station.describe()["storage"]["writable"], timeout=10)
        assert station.describe()["storage"]["unsaved"] == []
        sim.clear(1, "overtemp")
        await until(lambda: conn.state in ("ended", "idle"), timeout=10)
        await until(lambda: daemon.adapter is not None
                    and daemon.adapter.describe()["queued"] == 0, timeout=10)
        assert len(csms.actions("StopTransaction")) == 1
    finally:
        await daemon.shutdown()


async def test_full_disk_then_restart_closes_the_session_once(
        tmp_path: Path, small_state_dir: Path, csms: DevCsms) -> None:
    daemon = await start_daemon(tmp_path, csms)
    try:
        await charging(daemon, csms)
        station = daemon.station
        assert station is not None
        conn = station.connectors[1]
        filler = fill(small_state_dir)
        await until(lambda: conn.state == "faulted", timeout=10)
        await until(lambda: any("StopTransaction" in w
                                for w in station.describe()["storage"]["unsaved"]))
    finally:
        await daemon.shutdown()  # the stop could not be stored: it dies with the process
    assert csms.actions("StopTransaction") == []
    filler.unlink()
    start = csms.actions("StartTransaction")[0]
    samples = [mv["meterValue"][0]["sampledValue"][0] for mv in csms.actions("MeterValues")]
    last_sample_wh = max(float(s["value"]) for s in samples
                         if s.get("measurand", "Energy.Active.Import.Register")
                         == "Energy.Active.Import.Register")
    daemon = await start_daemon(tmp_path, csms)  # same state dir, space back
    try:
        stop = (await csms.wait_for(lambda: csms.actions("StopTransaction"), timeout=15))[0]
        assert stop["reason"] == "PowerLoss"
        # meterStop: the meter's register read at restart, not below what was billed so far.
        assert stop["meterStop"] >= max(start["meterStart"], round(last_sample_wh))
        await until(lambda: daemon.adapter is not None
                    and daemon.adapter.describe()["queued"] == 0, timeout=10)
        await asyncio.sleep(0)
        assert len(csms.actions("StopTransaction")) == 1
    finally:
        await daemon.shutdown()
