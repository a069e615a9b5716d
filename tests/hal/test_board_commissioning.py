"""The GPIO board built from TOML, `evse hw test` and `evse meter read` end to end: mock
GPIO wiring, an MCP3008 on SPI, and a pymodbus SDM630 on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from evse.cli import main
from evse.config import ConfigError, load_config
from evse.control import ControlServer
from hal.registry import create_board
from tests.hal.gpio_peers import CpLine, LockMotorPin, Mcp3008Slave, MirrorPin
from tests.hal.peers import MeterServer, f32_be

ROOT = Path(__file__).resolve().parents[2]

BOARD_TOML = """
[station]
id = "T1"
state_dir = "{state}"
[ocpp]
url = "ws://127.0.0.1:9/"
[hardware]
driver = "gpio"
pin_factory = "mock"
[[connector]]
id = 1
lock = true
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
[connector.gpio.lock]
lock_pin = 5
unlock_pin = 6
feedback_pin = 13
timeout_s = 0.2
"""


@pytest.fixture
def meter_server() -> Iterator[MeterServer]:
    server = MeterServer(0x00, 0x60, unit_id=1)
    for i, v in enumerate((230.0, 231.0, 232.0)):
        server.set_words(2 * i, f32_be(v))
        server.set_words(6 + 2 * i, f32_be(10.0 + i))
    server.set_words(0x34, f32_be(6930.0))
    server.set_words(0x48, f32_be(42.5))
    server.start_tcp()
    yield server
    server.stop()


class Wiring:
    """The board's far side: mirror contact, RDC-DD test → trip, lock motor, CP line."""

    def __init__(self, factory: MockFactory) -> None:
        self.feedback = factory.pin(23)
        self.coil = factory.pin(17, pin_class=MirrorPin, input_pin=self.feedback)
        trip = factory.pin(27)
        factory.pin(22, pin_class=MirrorPin, input_pin=trip)
        lock_fb = factory.pin(13)
        factory.pin(5, pin_class=LockMotorPin, feedback=lock_fb, engages=True)
        factory.pin(6, pin_class=LockMotorPin, feedback=lock_fb, engages=False)
        self.line = CpLine(factory.pin(18))
        self.adc = Mcp3008Slave(self.line.adc_volts)

    def close(self) -> None:
        self.adc.close()


@pytest.fixture
def config_file(tmp_path: Path, meter_server: MeterServer) -> Path:
    path = tmp_path / "evse.toml"
    path.write_text(BOARD_TOML.format(state=tmp_path / "state", port=meter_server.port))
    return path


def test_example_rpi_config_is_accepted() -> None:
    config = load_config(ROOT / "config" / "rpi-sdm630.toml")
    meter = config.connectors[0].meter
    assert (meter.driver, meter.model, meter.device) == ("modbus-rtu", "sdm630", "/dev/ttyUSB0")
    assert config.hardware.reader.driver == "pn532"


def test_cross_field_rules_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[station]\nid="X"\n[ocpp]\nurl="ws://h/"\n[hardware]\ndriver="gpio"\n'
        '[[connector]]\nid=1\n[connector.meter]\ndriver="modbus-tcp"\nmodel="ivt-s"\n'
        '[[connector]]\nid=2\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert "connector[0].meter.host" in text
    assert "connector[0].meter.model" in text
    assert "connector[1].meter.driver" in text


def test_gpio_board_from_toml(factory: MockFactory, config_file: Path) -> None:
    wiring = Wiring(factory)
    config = load_config(config_file)
    board = create_board(config.hardware, config.connectors)
    try:
        hw = board.connectors[0]
        assert hw.lock is not None
        assert hw.meter.read().energy_active_import_wh == pytest.approx(42_500.0)
        assert hw.interlock is not None
        assert hw.contactor.close() is False  # no EV (pilot A): the interlock refuses
        assert wiring.coil.state == 0
        with hw.interlock.commissioning():
            assert hw.contactor.close() is True
            assert hw.contactor.feedback_closed is True
    finally:
        board.close()
        wiring.close()
    assert wiring.coil.state == 0  # closing the board opened the contactor


def test_board_builds_the_configured_reader(factory: MockFactory, config_file: Path) -> None:
    from hal.readers.line_reader import LineReader
    from hal.readers.pn532 import Pn532Reader

    wiring = Wiring(factory)
    config = load_config(config_file)
    try:
        for driver, cls in (("pn532", Pn532Reader), ("line", LineReader)):
            reader = dataclasses.replace(config.hardware.reader, driver=driver,
                                         device="/dev/null")
            hardware = dataclasses.replace(config.hardware, reader=reader)
            board = create_board(hardware, config.connectors)
            try:
                assert [type(r) for r in board.id_readers] == [cls]
            finally:
                board.close()
    finally:
        wiring.close()


def test_hw_test_passes(factory: MockFactory, config_file: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    wiring = Wiring(factory)
    try:
        assert main(["hw", "test", "--yes", "--config", str(config_file)]) == 0
    finally:
        wiring.close()
    out = capsys.readouterr().out
    for part in ("contactor", "rcd", "pilot", "lock"):
        assert f"{part}" in out
    assert "FAIL" not in out and out.count("PASS") == 4
    assert wiring.coil.state == 0


def test_hw_test_reports_welded_contactor_and_leaves_it_open(
    factory: MockFactory, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wiring = Wiring(factory)
    wiring.feedback.drive_high()
    wiring.coil.input_pin = None  # type: ignore[attr-defined]  # mirror contact stuck closed
    try:
        assert main(["hw", "test", "--yes", "--config", str(config_file)]) == 1
    finally:
        wiring.close()
    out = capsys.readouterr().out
    assert "contactor  FAIL" in out
    assert wiring.coil.state == 0


def test_hw_test_refuses_while_daemon_runs(config_file: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(config_file)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def status(params: dict[str, Any]) -> dict[str, Any]:
        return {"station_id": "T1"}

    server = ControlServer(config.control_socket, {"status": status})
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(5)
    try:
        assert main(["hw", "test", "--config", str(config_file)]) == 2
        assert "daemon is running" in capsys.readouterr().err
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_meter_read_json_and_fault(config_file: Path, meter_server: MeterServer,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["meter", "read", "--json", "--config", str(config_file)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["1"]["energy_active_import_wh"] == pytest.approx(42_500.0)
    assert data["1"]["power_active_w"] == pytest.approx(6930.0)
    assert data["1"]["voltage_v"] == pytest.approx([230.0, 231.0, 232.0])
    assert data["1"]["current_a"] == pytest.approx([10.0, 11.0, 12.0])
    assert main(["meter", "read", "--config", str(config_file)]) == 0
    assert "42500.0 Wh" in capsys.readouterr().out
    meter_server.silent = True
    assert main(["meter", "read", "--json", "--config", str(config_file)]) == 1
    assert "fault" in json.loads(capsys.readouterr().out)["1"]


def test_hw_test_refuses_to_energize_with_an_ev_plugged(
    factory: MockFactory, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wiring = Wiring(factory)
    wiring.line.high_v = 9.0  # an EV is plugged (state B)
    wiring.coil.clear_states()
    try:
        assert main(["hw", "test", "--yes", "--config", str(config_file)]) == 1
    finally:
        wiring.close()
    out = capsys.readouterr().out
    assert "contactor  FAIL  not energized: pilot reads B" in out
    assert [s.state for s in wiring.coil.states] == [False]  # never driven high


class TrippedPin(MockPWMPin):  # type: ignore[misc]
    """The RDC-DD's trip output, held active whatever pull the input is set to."""

    def _set_pull(self, value: str) -> None:
        self._pull = value
        self.drive_high()


def test_hw_test_refuses_with_rcd_tripped(
    factory: MockFactory, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    factory.pin(27, pin_class=TrippedPin)  # residual current present
    wiring = Wiring(factory)
    factory.pin(22).input_pin = None  # type: ignore[attr-defined]  # test input has no say
    wiring.coil.clear_states()
    try:
        assert main(["hw", "test", "--yes", "--config", str(config_file)]) == 1
    finally:
        wiring.close()
    out = capsys.readouterr().out
    assert "not energized: the RCD reports a trip" in out
    assert [s.state for s in wiring.coil.states] == [False]


def test_hw_test_asks_and_says_before_each_step(
    factory: MockFactory, config_file: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --yes it asks on the terminal; "n" leaves the coil untouched. Every step is
    announced before it runs: the announcement precedes the first coil change."""
    wiring = Wiring(factory)
    asked: list[str] = []
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda q: (asked.append(q), "n")[1])
    wiring.coil.clear_states()
    try:
        assert main(["hw", "test", "--config", str(config_file)]) == 1
        out = capsys.readouterr().out
        assert asked == ["Energize connector 1 now? [y/N] "]
        assert "contactor  FAIL  not energized: not confirmed" in out
        assert [s.state for s in wiring.coil.states] == [False]
        announced: list[bool] = []
        monkeypatch.setattr("builtins.input", lambda q: (
            announced.append("will CLOSE the contactor" in capsys.readouterr().out), "y")[1])
        assert main(["hw", "test", "--config", str(config_file)]) == 0
        assert announced == [True]
        lines = capsys.readouterr().out.splitlines()
        assert lines[-1].startswith("connector 1 contactor  PASS")
    finally:
        wiring.close()
    assert [s.state for s in wiring.coil.states] == [False, True, False]


def test_safe_off_drives_only_the_contactor_outputs_low(
    factory: MockFactory, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dead daemon's line still driving high (as released lines do on some kernels):
    `evse hw safe-off` drives it low, without building the board (no pilot, no meter)."""
    coil = factory.pin(17)
    coil.function = "output"
    coil.state = True  # the dead daemon's line, still driving high

    coil.clear_states()
    assert main(["hw", "safe-off", "--config", str(config_file)]) == 0
    assert [s.state for s in coil.states] == [True, False]
    assert "connector 1 GPIO17" in capsys.readouterr().out
    assert 18 not in {int(str(p).removeprefix("GPIO")) for p in factory.pins
                      if str(p).startswith("GPIO")}  # the pilot pin was never touched


def test_unit_drives_contactors_low_after_stop() -> None:
    unit = (ROOT / "systemd" / "evse.service").read_text()
    assert "ExecStopPost=/usr/bin/evse hw safe-off --config /etc/evse/evse.toml" in unit
