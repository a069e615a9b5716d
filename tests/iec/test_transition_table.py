"""Every state × every trigger × every predicate combination, from the machine's own data.

The expected destination is computed here from :data:`evse.connector.TRANSITIONS` by the
rule ``transitions`` documents (first transition of the trigger whose source matches and
whose conditions hold), the expected outputs from :data:`evse.connector.OUTPUTS`; the
connector is driven with the simulated hardware set up for each combination. Adding a
transition or a state extends this table by itself.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from transitions.core import MachineError

from evse.connector import OUTPUTS, STATES, TRANSITIONS, TRIGGERS
from evse.domain import ErrorCode
from hal.pilot import PilotState, duty_for_current
from tests.iec.rig import connector_rig

#: Pilot situations: EV absent (A), plugged not asking (B), asking for energy (C).
PILOTS = ("A", "B", "C")
SCENARIOS = list(itertools.product(PILOTS, (True, False), (True, False), (True, False)))


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def expected_dest(state: str, trigger: str, predicates: dict[str, bool]) -> str | None:
    """Destination per TRANSITIONS; None = no transition from ``state`` (MachineError);
    ``state`` itself when transitions exist but none has its conditions met."""
    candidates = [t for t in TRANSITIONS if t["trigger"] == trigger
                  and state in _as_list(t["source"])]
    if not candidates:
        return None
    for t in candidates:
        if all(predicates[c] for c in _as_list(t.get("conditions"))) and not any(
                predicates[c] for c in _as_list(t.get("unless"))):
            return str(t["dest"])
    return state


def test_every_predicate_is_known() -> None:
    names = {c for t in TRANSITIONS for key in ("conditions", "unless")
             for c in _as_list(t.get(key))}
    assert names <= {"plugged", "ev_requests_energy", "power_allowed", "operative",
                     "stop_on_ev_disconnect"}
    assert set(OUTPUTS) == set(STATES)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("trigger", TRIGGERS)
def test_transition(state: str, trigger: str) -> None:
    for pilot, allowed, operative, stop_on_unplug in SCENARIOS:
        rig = connector_rig(lock=True)
        conn, simc = rig.conn, rig.simc
        # The hardware as the scenario says; the EV keeps C even without PWM, so the
        # outputs of every destination can be observed.
        simc.ev.plugged = pilot != "A"
        simc.ev.wants_energy = pilot == "C"
        simc.ev.ignore_pwm_off = True
        simc.changed()
        rig.drain()
        conn.limit_a = None if allowed else 0.0
        conn.operative = operative
        conn.stop_on_ev_disconnect_flag = stop_on_unplug
        conn.machine.set_state(state)
        conn.pilot = conn.hw.pilot.read()
        assert conn.pilot.state is PilotState(pilot)
        predicates = {"plugged": pilot != "A", "ev_requests_energy": pilot == "C",
                      "power_allowed": allowed, "operative": operative,
                      "stop_on_ev_disconnect": stop_on_unplug}
        lock_before = simc.cable_locked
        rig.statuses.clear()
        dest = expected_dest(state, trigger, predicates)
        case = f"{state} --{trigger}--> {dest} with {predicates}"
        if dest is None:
            with pytest.raises(MachineError):
                getattr(conn, trigger)()
            assert conn.state == state, case
            continue
        getattr(conn, trigger)()
        rig.drain()
        assert conn.state == dest, case
        if dest == state and not rig.statuses:
            continue  # conditions unmet: nothing happened
        out = OUTPUTS[dest]
        # OCPP status and error code reported for the destination.
        assert rig.statuses[-1].status.value == dest, case
        assert rig.statuses[-1].error_code is ErrorCode.NO_ERROR, case
        # Contactor: closed only where the table says so and the EV asks for energy.
        assert conn.hw.contactor.commanded_closed == (out.contactor == "closed"
                                                      and pilot == "C"), case
        # Pilot: F, +12 V, or the IEC duty for the offered current.
        duty = conn.hw.pilot.duty_percent
        if out.pilot == "F":
            assert duty == 0.0, case
        elif out.pilot == "off" or pilot == "A" or not allowed:
            assert duty == 100.0, case
        else:
            assert duty == pytest.approx(duty_for_current(32.0), abs=0.05), case
        # Lock.
        if out.lock == "locked":
            assert simc.cable_locked, case
        elif out.lock == "unlocked":
            assert not simc.cable_locked, case
        else:
            assert simc.cable_locked == lock_before, case
