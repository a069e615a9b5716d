"""Charging-current resolution, derating steps, and the ``[iec61851]`` configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from evse.config import ConfigError, load_config
from evse.iec61851 import Iec61851Settings, MeterFailurePolicy, RcdSelfTest
from evse.limits import derating_limit_a, resolve_current
from hal.pilot import duty_for_current
from tests.conftest import write_config
from tests.iec.rig import connector_rig


def test_lowest_limit_wins_and_is_named() -> None:
    assert resolve_current(32.0, 40.0).limited_by == "connector"
    assert resolve_current(32.0, 20.0).current_a == 20.0
    limit = resolve_current(32.0, 40.0, cable_ampacity_a=13.0, charging_limit_a=16.0,
                            derating_a=24.0)
    assert (limit.current_a, limit.limited_by) == (13.0, "cable")
    limit = resolve_current(32.0, 40.0, cable_ampacity_a=20.0, charging_limit_a=10.0)
    assert (limit.current_a, limit.limited_by) == (10.0, "charging_limit")
    assert limit.duty_percent == pytest.approx(10.0 / 0.6)


def test_below_6_a_pauses_instead_of_a_tiny_duty() -> None:
    for amps in (0.0, 3.0, 5.99):
        limit = resolve_current(32.0, 32.0, charging_limit_a=amps)
        assert not limit.allows_charging and limit.duty_percent is None
    assert resolve_current(32.0, 32.0, charging_limit_a=6.0).duty_percent == pytest.approx(10.0)
    assert resolve_current(80.0, 80.0).duty_percent == pytest.approx(96.0)
    assert resolve_current(80.0, 80.0, charging_limit_a=63.0).duty_percent == pytest.approx(
        duty_for_current(63.0))


def test_derating_steps() -> None:
    s = Iec61851Settings()
    assert derating_limit_a(None, 32.0, s) is None
    assert derating_limit_a(59.9, 32.0, s) is None
    assert derating_limit_a(60.0, 32.0, s) == 24.0
    assert derating_limit_a(64.9, 32.0, s) == 24.0
    assert derating_limit_a(65.0, 32.0, s) == 16.0
    assert derating_limit_a(79.9, 32.0, s) == 0.0
    assert derating_limit_a(80.0, 32.0, s) == 0.0


def test_cable_ampacity_from_pp_limits_the_offer() -> None:
    rig = connector_rig()
    rig.simc.ev.cable_ampacity_a = 20.0
    rig.sim.plug(1, 32.0, 3)
    rig.drain()
    rig.conn.start()
    rig.drain()
    assert rig.conn.iec.current_limit().limited_by == "cable"
    assert rig.conn.hw.pilot.duty_percent == pytest.approx(duty_for_current(20.0), abs=0.05)


def test_iec61851_table_defaults_and_ranges(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "ws://127.0.0.1:1/"))
    assert config.iec61851 == Iec61851Settings()
    assert config.connectors[0].ventilation is False
    path = write_config(tmp_path, "ws://127.0.0.1:1/", extra=(
        '[iec61851]\npwm_off_timeout_s = 3.0\nrcd_self_test = "never"\n'
        'meter_failure = "continue"\n'))
    settings = load_config(path).iec61851
    assert settings.pwm_off_timeout_s == 3.0
    assert settings.rcd_self_test is RcdSelfTest.NEVER
    assert settings.meter_failure is MeterFailurePolicy.CONTINUE
    for bad in ("pwm_off_timeout_s = 10.0", "duty_change_interval_s = 1.0",
                "state_f_min_s = 0.1", "rcd_max_trips = 0", 'meter_failure = "ignore"',
                "pwm_of_timeout_s = 1.0"):
        path = write_config(tmp_path, "ws://127.0.0.1:1/", extra=f"[iec61851]\n{bad}\n")
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert "iec61851." in str(err.value), bad


def test_shipped_example_config_is_complete() -> None:
    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "config" / "evse.toml")
    table = (root / "config" / "evse.toml").read_text()
    for key in Iec61851Settings.__dataclass_fields__:
        assert f"\n{key} = " in table, key
    assert config.iec61851 == Iec61851Settings()
    assert "\nventilation = " in table
