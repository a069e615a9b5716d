"""IEC 61851-1 duty ↔ current, and the simulated board's physics."""

from __future__ import annotations

import pytest

from hal.pilot import PilotState, current_for_duty, duty_for_current
from hal.registry import BackendError, create_board
from hal.settings import ConnectorSettings, HardwareSettings


@pytest.mark.parametrize(("amps", "duty"), [(6, 10.0), (16, 26.67), (32, 53.33), (51, 85.0),
                                            (63, 89.2), (80, 96.0)])
def test_duty_for_current_table_a7(amps: float, duty: float) -> None:
    assert duty_for_current(amps) == pytest.approx(duty, abs=0.01)
    assert current_for_duty(duty_for_current(amps)) == pytest.approx(amps, abs=0.01)


@pytest.mark.parametrize("amps", [0, 5.9, 80.1])
def test_duty_outside_range_is_refused(amps: float) -> None:
    with pytest.raises(ValueError):
        duty_for_current(amps)


def test_no_charging_for_100_and_5_percent() -> None:
    assert current_for_duty(100.0) == 0.0
    assert current_for_duty(5.0) == 0.0


def test_sim_ev_follows_pilot_and_draws_only_when_energized() -> None:
    board = create_board(HardwareSettings(driver="sim"),
                         [ConnectorSettings(id=1, max_current_a=32.0, phases=3)])
    hw, sim = board.connectors[0], board.simulator
    assert sim is not None
    seen = []
    hw.pilot.add_listener(lambda r: seen.append(r.state))
    assert hw.pilot.read().state is PilotState.A
    sim.plug(1, 16.0, 1)
    assert hw.pilot.read().state is PilotState.B
    hw.pilot.set_current(32.0)
    assert hw.pilot.read().state is PilotState.C
    assert hw.meter.read().power_active_w == 0.0  # contactor open: nothing flows
    hw.contactor.close()
    reading = hw.meter.read()
    assert reading.current_a == (16.0, 0.0, 0.0)  # min(offered 32 A, EV max 16 A), 1 phase
    assert reading.power_active_w == 16.0 * 230.0
    sim.ev_pause(1)
    assert hw.pilot.read().state is PilotState.B
    assert seen == [PilotState.B, PilotState.C, PilotState.B]
    hw.pilot.set_state_f()
    assert hw.pilot.read().state is PilotState.F
    board.close()
    assert not hw.contactor.commanded_closed


def test_unknown_backend_names_the_key() -> None:
    with pytest.raises(BackendError, match=r"\[hardware\] driver = 'plc'"):
        create_board(HardwareSettings(driver="plc"), [])  # type: ignore[arg-type]
