"""Modbus meters against a pymodbus server serving each model's real register layout."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymodbus.constants import ExcCodes

from evse.config import typed
from hal.meter import PowerMeterFailure
from hal.meters import modbus
from hal.meters.modbus import ModbusMeter
from hal.settings import MeterSettings
from tests.hal.peers import (
    MeterServer,
    f32_be,
    pty_link,
    s32_be,
    s32_le_words,
    u32_be,
    u64_be,
)


def create_meter(table: dict[str, Any]) -> ModbusMeter:
    """The Modbus backend given a ``[connector.meter]`` table, typed as the config loader
    does."""
    return modbus.create_meter(typed(MeterSettings, table))

V = (230.1, 231.2, 229.3)
I = (16.0, 15.5, 0.0)  # noqa: E741
P = 7250.5
E_KWH = 1234.5


def fill_eastron(server: MeterServer, energy_kwh: float = E_KWH, power_w: float = P) -> None:
    for i in range(3):
        server.set_words(0x00 + 2 * i, f32_be(V[i]))
        server.set_words(0x06 + 2 * i, f32_be(I[i]))
    server.set_words(0x34, f32_be(power_w))
    server.set_words(0x48, f32_be(energy_kwh))


def fill_abb(server: MeterServer, energy_kwh: float = E_KWH, power_w: float = P) -> None:
    for i in range(3):
        server.set_words(0x5B00 + 2 * i, u32_be(round(V[i] * 10)))
        server.set_words(0x5B0C + 2 * i, u32_be(round(I[i] * 100)))
    server.set_words(0x5B14, s32_be(round(power_w * 100)))
    server.set_words(0x5000, u64_be(round(energy_kwh * 100)))


def fill_em340(server: MeterServer, energy_kwh: float = E_KWH, power_w: float = P) -> None:
    for i in range(3):
        server.set_words(0x00 + 2 * i, s32_le_words(round(V[i] * 10)))
        server.set_words(0x0C + 2 * i, s32_le_words(round(I[i] * 1000)))
    server.set_words(0x28, s32_le_words(round(power_w * 10)))
    server.set_words(0x34, s32_le_words(round(energy_kwh * 10)))


MODELS: dict[str, tuple[int, int, Callable[..., None]]] = {
    "sdm630": (0x00, 0x60, fill_eastron),
    "sdm72dm": (0x00, 0x60, fill_eastron),
    "abb-b23": (0x5000, 0x5B20, fill_abb),
    "em340": (0x00, 0x40, fill_em340),
}


@pytest.fixture
def tcp_meter() -> Iterator[Callable[..., tuple[MeterServer, ModbusMeter]]]:
    made: list[tuple[MeterServer, ModbusMeter]] = []

    def make(model: str, **extra: Any) -> tuple[MeterServer, ModbusMeter]:
        first, last, fill = MODELS.get(model, (0x00, 0x60, fill_eastron))
        server = MeterServer(first, last, unit_id=3)
        fill(server)
        port = server.start_tcp()
        cfg = {
            "driver": "modbus-tcp",
            "model": model,
            "host": "127.0.0.1",
            "port": port,
            "unit_id": 3,
            "timeout_s": 0.3,
            "poll_interval_s": 0.0,
            **extra,
        }
        meter = create_meter(cfg)
        made.append((server, meter))
        return server, meter

    yield make
    for server, meter in made:
        meter.close()
        server.stop()


def assert_reading(meter: ModbusMeter, energy_kwh: float = E_KWH) -> None:
    r = meter.read()
    assert r.energy_active_import_wh == pytest.approx(energy_kwh * 1000, rel=1e-6)
    assert r.power_active_w == pytest.approx(P, rel=1e-6)
    assert r.voltage_v == pytest.approx(V, rel=1e-5)
    assert r.current_a == pytest.approx(I, rel=1e-5)


@pytest.mark.parametrize("model", list(MODELS))
def test_tcp_reads_each_profile(tcp_meter: Any, model: str) -> None:
    _, meter = tcp_meter(model)
    assert_reading(meter)


def test_custom_profile_from_toml_table(tcp_meter: Any) -> None:
    custom = {
        "function": "input",
        "word_order": "big",
        "energy_active_import": {"address": 0x48, "type": "float32", "scale": 1000.0},
        "power_active": {"address": 0x34, "type": "float32"},
        "voltage_l1": {"address": 0x00, "type": "float32"},
        "current_l1": {"address": 0x06, "type": "float32"},
    }
    _, meter = tcp_meter("custom", custom=custom)
    r = meter.read()
    assert r.energy_active_import_wh == pytest.approx(E_KWH * 1000)
    assert r.voltage_v == pytest.approx(V[:1])
    assert r.current_a == pytest.approx(I[:1])


def test_timeout_is_a_fault_and_recovers(tcp_meter: Any) -> None:
    server, meter = tcp_meter("sdm630")
    assert_reading(meter)
    server.silent = True
    with pytest.raises(PowerMeterFailure, match="no valid answer"):
        meter.read()
    server.silent = False
    assert_reading(meter)


def test_exception_response_is_a_fault_and_recovers(tcp_meter: Any) -> None:
    server, meter = tcp_meter("abb-b23")
    server.exception = ExcCodes.DEVICE_BUSY
    with pytest.raises(PowerMeterFailure, match="exception response"):
        meter.read()
    server.exception = None
    assert_reading(meter)


def test_nan_is_a_fault(tcp_meter: Any) -> None:
    server, meter = tcp_meter("sdm630")
    server.set_words(0x34, f32_be(float("nan")))
    with pytest.raises(PowerMeterFailure, match="power_active"):
        meter.read()
    server.set_words(0x34, f32_be(P))
    assert_reading(meter)


def test_abb_not_available_marker_is_a_fault(tcp_meter: Any) -> None:
    server, meter = tcp_meter("abb-b23")
    server.set_words(0x5000, [0xFFFF] * 4)
    with pytest.raises(PowerMeterFailure, match="not-available"):
        meter.read()


def test_frozen_values_while_current_flows(tcp_meter: Any) -> None:
    server, meter = tcp_meter("em340", frozen_after_s=0.05)
    assert_reading(meter)
    with pytest.raises(PowerMeterFailure, match="frozen"):
        deadline_reads = 200
        for _ in range(deadline_reads):
            meter.read()
    fill_em340(server, energy_kwh=E_KWH + 0.1)
    assert meter.read().energy_active_import_wh == pytest.approx((E_KWH + 0.1) * 1000)


def test_energy_going_backwards(tcp_meter: Any) -> None:
    server, meter = tcp_meter("sdm72dm")
    assert_reading(meter)
    fill_eastron(server, energy_kwh=E_KWH - 1)
    with pytest.raises(PowerMeterFailure, match="backwards"):
        meter.read()
    fill_eastron(server, energy_kwh=E_KWH + 1)
    assert_reading(meter, energy_kwh=E_KWH + 1)


def test_poll_interval_shares_one_transaction(tcp_meter: Any) -> None:
    server, meter = tcp_meter("sdm630", poll_interval_s=60.0)
    meter.read()
    before = server.requests
    meter.read()
    assert server.requests == before


def test_missing_host_names_the_key() -> None:
    with pytest.raises(ValueError, match="host"):
        create_meter({"driver": "modbus-tcp", "model": "sdm630"})
    with pytest.raises(ValueError, match="model"):
        create_meter({"driver": "modbus-tcp", "model": "ivt-s", "host": "x"})


@pytest.mark.parametrize("model", list(MODELS))
def test_rtu_over_pty(model: str) -> None:
    first, last, fill = MODELS[model]
    with pty_link() as link:
        server = MeterServer(first, last, unit_id=1)
        fill(server)
        server.start_rtu(link.a)
        meter = create_meter(
            {
                "driver": "modbus-rtu",
                "model": model,
                "device": link.b,
                "baudrate": 9600,
                "parity": "N",
                "unit_id": 1,
                "timeout_s": 0.3,
                "poll_interval_s": 0.0,
            }
        )
        try:
            assert_reading(meter)
            server.silent = True
            with pytest.raises(PowerMeterFailure):
                meter.read()
            server.silent = False
            assert_reading(meter)
            server.exception = ExcCodes.ILLEGAL_ADDRESS
            with pytest.raises(PowerMeterFailure, match="exception response 2"):
                meter.read()
            server.exception = None
            assert_reading(meter)
        finally:
            meter.close()
            server.stop()
