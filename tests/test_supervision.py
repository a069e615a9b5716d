"""Supervised background tasks on a running Station (simulated board, real loop and
threads): a driver bug in the meter or a lost temperature sensor faults the connector and
stops charging, the task keeps running and the connector recovers once the part works
again; the temperature is sampled on its own schedule, so a hung meter read does not hide
an over-temperature."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from evse.authorization import AuthorizationStatus, AuthResult
from evse.faults import Fault
from evse.state_db import open_state_db
from evse.station import Station
from evse.supervisor import Supervisor
from hal.meter import EnergyMeter, MeterReading
from hal.sim.board import OVERTEMP_C, SimBoard
from hal.temperature import TemperatureSensor
from tests.conftest import EventLog
from tests.iec.rig import sim_board


class BuggyMeterDriver(EnergyMeter):
    """A meter driver with a bug while ``broken`` is set (as a pymodbus client rejecting the
    ``device_id=`` keyword raises TypeError), the simulated meter otherwise."""

    def __init__(self, inner: EnergyMeter) -> None:
        self.inner = inner
        self.broken = False
        self.hang = threading.Event()  # set: read() blocks until released
        self.release = threading.Event()
        self.hanging = threading.Event()  # a read is blocked in the hang

    def read(self) -> MeterReading:
        if self.hang.is_set():
            self.hanging.set()
            self.release.wait(10.0)
        if self.broken:
            raise TypeError("read_input_registers() got an unexpected keyword 'device_id'")
        return self.inner.read()


class LosableSensor(TemperatureSensor):
    """The simulated sensor, unplugged (OSError, as a 1-Wire read of a lost DS18B20) while
    ``lost`` is set."""

    def __init__(self, inner: TemperatureSensor) -> None:
        self.inner = inner
        self.lost = False

    def read_c(self) -> float:
        if self.lost:
            raise OSError(2, "No such file or directory: /sys/bus/w1/devices/28-0000/w1_slave")
        return self.inner.read_c()


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.board = sim_board()
        hw = self.board.connectors[0]
        self.meter = BuggyMeterDriver(hw.meter)
        assert hw.temperature is not None
        self.sensor = LosableSensor(hw.temperature)
        hw.meter, hw.temperature = self.meter, self.sensor
        self.hw = hw
        sim = self.board.simulator
        assert isinstance(sim, SimBoard)
        self.sim = sim
        self.db = open_state_db(tmp)
        self.station = Station(self.board, {1: 32.0}, 32.0, self.db, meter_poll_s=0.05)
        self.station.supervisor = Supervisor(backoff_initial_s=0.05, backoff_max_s=0.2)
        self.station.temperature_poll_s = 0.05
        self.events = EventLog(self.station)
        self.conn = self.station.connectors[1]

    async def charging(self) -> None:
        await self.station.start()
        self.sim.plug(1, 32.0, 3)
        assert self.station.remote_start("TAG", 1, AuthResult(AuthorizationStatus.ACCEPTED))
        await self.events.wait_for(lambda: self.conn.state == "energy_transfer")
        assert self.hw.contactor.commanded_closed

    async def wait(self, predicate: object, timeout: float = 10.0) -> None:
        async def poll() -> None:
            while not predicate():  # type: ignore[operator]
                await asyncio.sleep(0.01)
        await asyncio.wait_for(poll(), timeout)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.meter.release.set()
    await r.station.close()
    r.db.close()


async def test_meter_driver_bug_faults_and_the_poller_recovers(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    await rig.charging()
    with caplog.at_level(logging.ERROR):
        rig.meter.broken = True
        await rig.events.wait_for(lambda: rig.conn.state == "faulted")
        assert rig.conn.iec.reported_fault()[0] is Fault.METER
        assert not rig.hw.contactor.commanded_closed
        # The transaction stopped (no charging without a working meter).
        await rig.events.wait_for(lambda: rig.conn.session is None)
        # The poller keeps trying (backoff), each failure logged with its traceback.
        await rig.wait(lambda: rig.station.supervisor.describe()[
            "meter poll connector 1"]["failures"] >= 3)
    tracebacks = [r for r in caplog.records
                  if r.exc_info and isinstance(r.exc_info[1], TypeError)]
    assert tracebacks, "no traceback logged"
    status = rig.station.describe()
    assert status["tasks"]["meter poll connector 1"]["failing"] is True
    assert "device_id" in status["tasks"]["meter poll connector 1"]["last_error"]
    # The driver works again: the fault clears (condition), readings flow again.
    rig.meter.broken = False
    before = rig.conn.last_reading
    await rig.events.wait_for(lambda: rig.conn.state in ("ended", "idle"))
    assert rig.conn.iec.reported_fault()[0] is None
    await rig.wait(lambda: rig.conn.last_reading is not before)
    assert rig.station.describe()["tasks"]["meter poll connector 1"]["failing"] is False


async def test_lost_temperature_sensor_stops_charging_and_recovers(rig: Rig) -> None:
    await rig.charging()
    rig.sensor.lost = True
    await rig.events.wait_for(lambda: rig.conn.state == "faulted")
    assert rig.conn.iec.reported_fault()[0] is Fault.OVERTEMP
    assert "temperature sensor lost" in rig.conn.iec.reported_fault()[1]
    assert not rig.hw.contactor.commanded_closed
    await rig.events.wait_for(lambda: rig.conn.session is None)
    rig.sensor.lost = False
    await rig.events.wait_for(lambda: rig.conn.state in ("ended", "idle"))
    assert rig.station.describe()["tasks"]["temperature connector 1"]["failures"] >= 1


async def test_over_temperature_trips_while_the_meter_read_hangs(rig: Rig) -> None:
    await rig.charging()
    rig.meter.hang.set()  # the next meter read blocks (a hung bus)
    assert await asyncio.to_thread(rig.meter.hanging.wait, 5.0)  # the poller is stuck in it
    rig.sim.fault(1, "overtemp")  # the sensor reads OVERTEMP_C from now on
    await rig.events.wait_for(lambda: rig.conn.state == "faulted")
    assert rig.conn.iec.reported_fault()[0] is Fault.OVERTEMP
    assert rig.conn.iec.temperature_c == OVERTEMP_C
    assert not rig.hw.contactor.commanded_closed
    assert not rig.meter.release.is_set()  # the meter read was still hanging
