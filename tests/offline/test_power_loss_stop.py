"""Fewer writes, same guarantees: a charging Station commits one row change per meter
*sample*, none per 1 Hz meter poll; after a power cut the PowerLoss stop takes meterStop
from the meter's own register read at restart (the simulated meter keeps it in the state
dir), or — when that register is not plausible — from the last committed sample, and its
timestamp from the alive stamp."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from evse.authorization import AuthorizationStatus, AuthResult
from evse.domain import MeterSample, StopCause, TransactionStopped
from evse.state_db import open_state_db
from evse.station import Station
from hal.board import Board
from hal.sim.board import SimBoard
from tests.conftest import EventLog
from tests.iec.rig import sim_board


def board(state: Path) -> tuple[Board, SimBoard]:
    b = sim_board()
    sim = b.simulator
    assert isinstance(sim, SimBoard)
    sim.keep_meter_registers(state)
    return b, sim


async def until(predicate: object, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


async def charging_station(state: Path, alive_interval_s: float = 60.0
                           ) -> tuple[Station, sqlite3.Connection, EventLog]:
    b, sim = board(state)
    db = open_state_db(state)
    station = Station(b, {1: 32.0}, 32.0, db, meter_poll_s=0.02)
    station.alive_interval_s = alive_interval_s
    events = EventLog(station)
    await station.start()
    sim.plug(1, 32.0, 3)
    assert station.remote_start("TAG", 1, AuthResult(AuthorizationStatus.ACCEPTED))
    conn = station.connectors[1]
    await events.wait_for(lambda: conn.state == "energy_transfer")
    return station, db, events


async def test_meter_polls_write_nothing_samples_one_change_each(tmp_path: Path) -> None:
    station, db, events = await charging_station(tmp_path)
    conn = station.connectors[1]
    try:
        before = db.total_changes
        seen = [conn.last_reading]

        def polled() -> bool:
            if conn.last_reading is not seen[-1]:
                seen.append(conn.last_reading)
            return len(seen) > 20

        await until(polled)
        assert db.total_changes == before  # 20 meter polls, not one row written
        station.sample_interval_s = 0.05
        await events.wait_for(lambda: sum(isinstance(e, MeterSample)
                                          for e in events.events) >= 4)
        # Same loop turn: every sample published so far is committed, nothing else was.
        samples = sum(isinstance(e, MeterSample) and e.context.value == "periodic"
                      for e in events.events)
        # Each sample: the session's last reading (no protocol adapter subscribed here).
        assert db.total_changes - before == samples
    finally:
        await station.close()
        db.close()


@pytest.mark.parametrize("register", ["kept", "replaced"])
async def test_power_loss_stop_from_the_meter_register_or_last_sample(
        tmp_path: Path, register: str) -> None:
    station, db, events = await charging_station(tmp_path, alive_interval_s=0.05)
    conn = station.connectors[1]
    station.sample_interval_s = 0.05
    await events.wait_for(lambda: any(isinstance(e, MeterSample) and e.context.value
                                      == "periodic" for e in events.events))
    station.sample_interval_s = 0.0
    sampled = [e for e in events.events if isinstance(e, MeterSample)][-1]
    sampled_wh = sampled.reading.energy_active_import_wh

    def committed() -> tuple[float, float]:
        wh, ts = db.execute("SELECT last_meter_wh, last_ts FROM sessions").fetchone()
        return float(wh), float(ts)

    def alive() -> float:
        return float((db.execute("SELECT ts FROM station_alive").fetchone() or (0.0,))[0])

    # Energy keeps flowing (22 kW: 6 Wh/s) and the alive stamp keeps running.
    await until(lambda: conn.last_reading is not None
                and conn.last_reading.energy_active_import_wh > sampled_wh + 3)
    await until(lambda: alive() > committed()[1])
    # Power cut: nothing is stopped or written any more.
    await station.supervisor.close()
    sample_wh, _ = committed()
    register_wh = conn.last_reading.energy_active_import_wh if conn.last_reading else 0.0
    alive_ts = alive()
    db.close()
    if register == "replaced":
        (tmp_path / "sim-meter-1.json").unlink()  # a new meter: its register starts at 0

    b, _sim = board(tmp_path)
    db = open_state_db(tmp_path)
    restarted = Station(b, {1: 32.0}, 32.0, db)
    log = EventLog(restarted)
    try:
        await restarted.start(poll=False)
        stops = [e for e in log.events if isinstance(e, TransactionStopped)]
        assert len(stops) == 1 and stops[0].cause is StopCause.POWER_LOSS
        if register == "kept":
            # The register the meter kept (at least what the last poll read; no EV now).
            assert stops[0].meter_stop_wh >= round(register_wh) > round(sample_wh)
        else:
            assert stops[0].meter_stop_wh == round(sample_wh)
        assert stops[0].timestamp == pytest.approx(alive_ts)
        assert db.execute("SELECT stop_reason FROM sessions").fetchone()[0] == "power_loss"
    finally:
        await restarted.close()
        db.close()
