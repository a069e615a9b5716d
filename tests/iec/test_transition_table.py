"""Every state × every trigger × every predicate combination, from the machines' own data.

The expected destination is computed here from :data:`evse.session_machine.SESSION_TRANSITIONS`
(and :data:`evse.iec_machine.IEC_TRANSITIONS`) by the rule ``transitions`` documents (first
transition of the trigger whose source matches and whose conditions hold), the expected
outputs from the supply mode each session state requests (:data:`SESSION_MODES`,
:data:`IEC_OUTPUTS`); the EVSE is driven with the simulated hardware set up for each
combination. Adding a transition or a state extends this table by itself.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from transitions.core import MachineError

from evse.iec_machine import FAULT, IEC_OUTPUTS, IEC_STATES, IEC_TRANSITIONS, IEC_TRIGGERS
from evse.session_machine import (
    SESSION_MODES,
    SESSION_STATES,
    SESSION_TRANSITIONS,
    SESSION_TRIGGERS,
)
from evse.tx_policy import TxPolicy
from hal.pilot import PilotState, duty_for_current
from tests.iec.rig import connector_rig

#: Pilot situations: EV absent (A), plugged not asking (B), asking for energy (C).
PILOTS = ("A", "B", "C")
SCENARIOS = list(itertools.product(PILOTS, (True, False), (True, False), (True, False)))


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def expected_dest(state: str, trigger: str, predicates: dict[str, bool],
                  table: list[dict[str, Any]] = SESSION_TRANSITIONS) -> str | None:
    """Destination per ``table``; None = no transition from ``state`` (MachineError);
    ``state`` itself when transitions exist but none has its conditions met."""
    candidates = [t for t in table if t["trigger"] == trigger
                  and state in _as_list(t["source"])]
    if not candidates:
        return None
    for t in candidates:
        if all(predicates[c] for c in _as_list(t.get("conditions"))) and not any(
                predicates[c] for c in _as_list(t.get("unless"))):
            return str(t["dest"])
    return state


def test_every_predicate_is_known() -> None:
    names = {c for t in SESSION_TRANSITIONS for key in ("conditions", "unless")
             for c in _as_list(t.get(key))}
    assert names <= {"plugged", "ev_requests_energy", "power_allowed", "operative",
                     "stop_on_ev_disconnect"}
    assert set(SESSION_MODES) == set(SESSION_STATES)
    assert set(IEC_OUTPUTS) == set(IEC_STATES)
    assert not any("conditions" in t or "unless" in t for t in IEC_TRANSITIONS)


def check_outputs(rig: Any, mode: str, pilot: str, allowed: bool, lock_before: bool,
                  case: str) -> None:
    """The hardware shows supply ``mode``'s outputs."""
    conn, simc = rig.conn, rig.simc
    out = IEC_OUTPUTS[mode]
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


def prepared_rig(pilot: str, allowed: bool) -> Any:
    rig = connector_rig(lock=True)
    simc = rig.simc
    # The hardware as the scenario says; the EV keeps C even without PWM, so the
    # outputs of every destination can be observed.
    simc.ev.plugged = pilot != "A"
    simc.ev.wants_energy = pilot == "C"
    simc.ev.ignore_pwm_off = True
    simc.changed()
    rig.drain()
    rig.conn.iec.limit_a = None if allowed else 0.0
    rig.conn.iec.pilot = rig.conn.hw.pilot.read()
    assert rig.conn.iec.pilot.state is PilotState(pilot)
    return rig


@pytest.mark.parametrize("state", IEC_STATES)
@pytest.mark.parametrize("trigger", IEC_TRIGGERS)
def test_iec_transition(state: str, trigger: str) -> None:
    for pilot, allowed in itertools.product(PILOTS, (True, False)):
        rig = prepared_rig(pilot, allowed)
        iec = rig.conn.iec
        iec.machine.set_state(state)
        lock_before = rig.simc.cable_locked
        dest = expected_dest(state, trigger, {}, IEC_TRANSITIONS)
        case = f"IEC {state} --{trigger}--> {dest} with pilot {pilot}, allowed {allowed}"
        if dest is None:
            with pytest.raises(MachineError):
                getattr(iec, trigger)()
            assert iec.state == state, case
            continue
        getattr(iec, trigger)()
        rig.drain()
        assert iec.state == dest, case
        check_outputs(rig, dest, pilot, allowed, lock_before, case)


@pytest.mark.parametrize("state", SESSION_STATES)
@pytest.mark.parametrize("trigger", SESSION_TRIGGERS)
def test_transition(state: str, trigger: str) -> None:
    for pilot, allowed, operative, stop_on_unplug in SCENARIOS:
        rig = prepared_rig(pilot, allowed)
        conn, simc = rig.conn, rig.simc
        conn.operative = operative
        conn.tx_policy = TxPolicy.ocpp16(stop_on_ev_disconnect=stop_on_unplug)
        conn.machine.set_state(state)
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
        # State and fault published for the destination.
        assert rig.statuses[-1].state == dest, case
        assert rig.statuses[-1].fault is None, case
        mode = SESSION_MODES[dest]
        if mode is None:  # faulted: the IEC machine owns the outputs (tested above)
            assert conn.iec.state != FAULT, case
            continue
        check_outputs(rig, mode, pilot, allowed, lock_before, case)
