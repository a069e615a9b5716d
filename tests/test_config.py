"""Configuration loading: the shipped example is valid, errors name file, key and expectation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evse.config import ConfigError, load_config
from evse.daemon import load_checked_config

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = """
[station]
id = "CP1"
[ocpp]
url = "ws://127.0.0.1:9000/"
[hardware]
driver = "sim"
[[connector]]
id = 1
"""


def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "evse.toml"
    path.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "evse", "config", "check", "--config", str(path)],
        capture_output=True, text=True, check=False,
    )


def test_shipped_config_is_valid_and_complete() -> None:
    config = load_checked_config(str(ROOT / "config" / "evse.toml"))
    assert config.hardware.driver == "sim"
    assert config.ocpp_url == "ws://127.0.0.1:9000/"
    assert config.ocpp_version == "1.6"
    assert [c.id for c in config.connectors] == [1]
    # relative state_dir resolves against the config file's directory
    assert config.state_dir == (ROOT / "config" / "state").resolve()
    assert config.control_socket == config.state_dir / "control.sock"


def test_defaults_are_filled(tmp_path: Path) -> None:
    path = tmp_path / "evse.toml"
    path.write_text(MINIMAL)
    config = load_config(path)
    assert config.connectors[0].max_current_a == 32.0
    assert config.connectors[0].phases == 3
    assert config.state_dir == Path("/var/lib/evse")


def test_config_check_ok_exits_zero(tmp_path: Path) -> None:
    result = check(tmp_path, MINIMAL)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_unknown_key_names_file_key_and_closest(tmp_path: Path) -> None:
    result = check(tmp_path, MINIMAL.replace('id = "CP1"', 'id = "CP1"\nstate_dri = "x"'))
    assert result.returncode == 1
    assert str(tmp_path / "evse.toml") in result.stderr
    assert "station.state_dri: unknown key" in result.stderr
    assert "did you mean 'state_dir'" in result.stderr


def test_wrong_type_names_expected_type(tmp_path: Path) -> None:
    result = check(tmp_path, MINIMAL.replace("id = 1", 'id = 1\nphases = "three"'))
    assert result.returncode == 1
    assert "connector[0].phases: found 'three', expected type integer" in result.stderr


def test_out_of_range_names_the_range_and_unit(tmp_path: Path) -> None:
    result = check(tmp_path, MINIMAL.replace("id = 1", "id = 1\nmax_current_a = 120"))
    assert result.returncode == 1
    assert "connector[0].max_current_a: found 120, expected ≤ 80.0 A" in result.stderr


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    text = MINIMAL.replace("id = 1", "id = 1\nmax_current_a = 2\nphases = 7").replace(
        "ws://", "http://")
    with pytest.raises(ConfigError) as err:
        path = tmp_path / "evse.toml"
        path.write_text(text)
        load_config(path)
    joined = "\n".join(err.value.errors)
    assert "max_current_a: found 2" in joined
    assert "phases: found 7" in joined
    assert "ocpp.url: found 'http://127.0.0.1:9000/'" in joined


def test_unknown_ocpp_configuration_key_is_an_error(tmp_path: Path) -> None:
    text = MINIMAL.replace('url = "ws://127.0.0.1:9000/"',
                           'url = "ws://127.0.0.1:9000/"\n[ocpp.configuration]\n'
                           'MeterValueSampleIntervall = 10\nHeartbeatInterval = "x"')
    result = check(tmp_path, text)
    assert result.returncode == 1
    assert "did you mean 'MeterValueSampleInterval'" in result.stderr
    assert "ocpp.configuration.HeartbeatInterval: found 'x', expected type integer" in result.stderr


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    result = check(tmp_path, "[station\nid=")
    assert result.returncode == 1 and "not valid TOML" in result.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "evse", "config", "check", "--config", str(tmp_path / "no.toml")],
        capture_output=True, text=True, check=False,
    )
    assert missing.returncode == 1 and "file not found" in missing.stderr


def test_typed_settings_are_current_with_the_schema() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_settings.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hand_written_iec61851_settings_carry_the_schema_defaults() -> None:
    import dataclasses

    from evse.config_schema import SCHEMA
    from evse.iec61851 import Iec61851Settings

    table = SCHEMA["properties"]["iec61851"]["properties"]
    defaults = Iec61851Settings()
    assert [f.name for f in dataclasses.fields(Iec61851Settings)] == list(table)
    for name, sub in table.items():
        value = getattr(defaults, name)
        assert getattr(value, "value", value) == sub["default"], name


def test_settings_arrive_typed_with_schema_defaults(tmp_path: Path) -> None:
    path = tmp_path / "evse.toml"
    path.write_text(MINIMAL.replace("id = 1", "id = 1\nphases = 1\n[connector.gpio.pilot]\n"
                                    "adc_vref_v = 5\n[connector.meter]\ndriver = \"sim\""))
    config = load_config(path)
    conn = config.connectors[0]
    assert conn.phases == 1
    pilot = conn.gpio.pilot
    assert pilot.adc_vref_v == 5.0 and isinstance(pilot.adc_vref_v, float)  # TOML 5 → 5.0 V
    assert (pilot.adc_offset_v, pilot.pwm_pin, pilot.mode) == (1.65, 18, "adc")  # defaults
    assert config.hardware.reader.driver == "none"
    assert config.ocpp.queue_max_messages == 100_000
    assert config.system.reboot_command == ("systemctl", "reboot")


def test_driver_keyword_defaults_agree_with_the_schema() -> None:
    """Drivers keep keyword defaults for direct use (tests, benches); the board always passes
    the settings, and where a parameter has a setting's name its default must be the same.
    Pins differ by design (None = not wired, the TOML spells it -1)."""
    import dataclasses
    import inspect

    from hal.gpio.contactor import GpioContactor
    from hal.gpio.lock import GpioLock
    from hal.gpio.pilot_adc import AdcPilot
    from hal.gpio.pilot_uart import UartPilot
    from hal.gpio.rcd import GpioRcd
    from hal.gpio.temperature import AdcTemperature
    from hal.meters.can_bus import CanMeter
    from hal.meters.modbus import ModbusMeter
    from hal.readers.pn532 import Pn532Reader
    from hal.settings import (
        ContactorSettings,
        LockSettings,
        MeterSettings,
        PilotSettings,
        RcdSettings,
        ReaderSettings,
        TemperatureSettings,
    )

    pairs: list[tuple[Any, Any]] = [
        (GpioContactor, ContactorSettings), (GpioRcd, RcdSettings), (GpioLock, LockSettings),
        (AdcPilot, PilotSettings), (UartPilot, PilotSettings), (Pn532Reader, ReaderSettings),
        (ModbusMeter, MeterSettings), (CanMeter, MeterSettings),
        (AdcTemperature, TemperatureSettings),
    ]
    compared = 0
    for driver, settings in pairs:
        defaults = {f.name: f.default for f in dataclasses.fields(settings)}
        for name, param in inspect.signature(driver).parameters.items():
            if name in defaults and param.default is not inspect.Parameter.empty \
                    and not name.endswith("_pin"):
                assert param.default == defaults[name], f"{driver.__name__}({name})"
                compared += 1
    assert compared >= 25
