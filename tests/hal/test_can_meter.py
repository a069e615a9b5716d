"""CAN meters on a python-can virtual bus: real IVT-S result frames in, readings out."""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Iterator
from typing import Any

import can
import pytest

from evse.config import typed
from hal.meter import PowerMeterFailure
from hal.meters import can_bus
from hal.meters.can_bus import CanMeter
from hal.settings import MeterSettings

IDS = {"I": (0x521, 0), "U1": (0x522, 1), "W": (0x526, 5), "Wh": (0x528, 7)}



def create_meter(table: dict[str, Any]) -> CanMeter:
    """The CAN backend given a ``[connector.meter]`` table, typed as the config loader does."""
    return can_bus.create_meter(typed(MeterSettings, table))

def ivt_frame(kind: str, value: int, counter: int = 0, status: int = 0) -> can.Message:
    can_id, mux = IDS[kind]
    data = bytes([mux, (status & 0xF0) | (counter & 0x0F)]) + struct.pack(">i", value)
    return can.Message(arbitration_id=can_id, data=data, is_extended_id=False)


@pytest.fixture
def channel() -> str:
    return f"evse-test-{uuid.uuid4().hex}"


@pytest.fixture
def sensor(channel: str) -> Iterator[can.BusABC]:
    bus = can.Bus(interface="virtual", channel=channel)
    yield bus
    bus.shutdown()


def send_all(bus: can.BusABC, current_ma: int, voltage_mv: int, power_w: int, wh: int) -> None:
    for kind, value in (("I", current_ma), ("U1", voltage_mv), ("W", power_w), ("Wh", wh)):
        bus.send(ivt_frame(kind, value))


def wait_reading(meter: CanMeter, energy_wh: float, timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if meter.read().energy_active_import_wh == energy_wh:
                return
        except PowerMeterFailure:
            pass
        assert time.monotonic() < deadline, "reading never arrived"
        time.sleep(0.005)


def test_ivt_s_frames_to_reading(channel: str, sensor: can.BusABC) -> None:
    meter = create_meter(
        {"driver": "can", "model": "ivt-s", "interface": "virtual", "channel": channel,
         "timeout_s": 0.3}
    )
    try:
        with pytest.raises(PowerMeterFailure, match="no frame"):
            meter.read()
        send_all(sensor, current_ma=-125_500, voltage_mv=400_250, power_w=50_230, wh=123_456)
        wait_reading(meter, 123_456)
        r = meter.read()
        assert r.current_a == pytest.approx((-125.5,))
        assert r.voltage_v == pytest.approx((400.25,))
        assert r.power_active_w == 50_230
        # frames stop: the reading ages out instead of going stale
        deadline = time.monotonic() + 2
        with pytest.raises(PowerMeterFailure, match="missing"):
            while time.monotonic() < deadline:
                meter.read()
                time.sleep(0.01)
        send_all(sensor, current_ma=1000, voltage_mv=400_000, power_w=400, wh=123_460)
        wait_reading(meter, 123_460)
    finally:
        meter.close()


def test_ivt_s_error_status_is_a_fault(channel: str, sensor: can.BusABC) -> None:
    meter = create_meter(
        {"driver": "can", "model": "ivt-s", "interface": "virtual", "channel": channel}
    )
    try:
        send_all(sensor, 0, 400_000, 0, 10)
        wait_reading(meter, 10)
        sensor.send(ivt_frame("Wh", 11, status=0x40))  # measurement error
        deadline = time.monotonic() + 2
        with pytest.raises(PowerMeterFailure, match="error"):
            while time.monotonic() < deadline:
                meter.read()
                time.sleep(0.005)
    finally:
        meter.close()


def test_custom_signal_map(channel: str, sensor: can.BusABC) -> None:
    signals = {
        "energy_active_import": {"id": 0x100, "start": 0, "length": 4, "signed": False,
                                 "byte_order": "little", "scale": 0.1},
        "power_active": {"id": 0x100, "start": 4, "length": 2, "signed": True,
                         "byte_order": "little", "scale": 10.0},
    }
    meter = create_meter(
        {"driver": "can", "model": "custom", "interface": "virtual", "channel": channel,
         "signals": signals}
    )
    try:
        sensor.send(can.Message(arbitration_id=0x100, is_extended_id=False,
                                data=struct.pack("<Ih", 12345, -3)))
        wait_reading(meter, 1234.5)
        assert meter.read().power_active_w == -30.0
    finally:
        meter.close()
    with pytest.raises(ValueError, match="power_active"):
        create_meter({"driver": "can", "model": "custom", "interface": "virtual",
                      "channel": channel, "signals": {"energy_active_import": {"id": 1}}})
