"""docs/state-machine.md is generated from the machines: fail when it is stale."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import gen_state_diagram

from evse.iec_machine import IEC_OUTPUTS, IEC_TRANSITIONS
from evse.session_machine import SESSION_STATES, SESSION_TRANSITIONS


def test_state_diagram_is_up_to_date() -> None:
    assert gen_state_diagram.main(["--check"]) == 0, (
        "docs/state-machine.md is stale: run python scripts/gen_state_diagram.py")


def _edges(transitions: list[dict[str, object]]) -> int:
    return sum(len(t["source"]) if isinstance(t["source"], list) else 1  # type: ignore[arg-type]
               for t in transitions)


def test_diagram_has_every_transition_and_state() -> None:
    text = gen_state_diagram.render()
    session, iec = (part.split("```")[0] for part in text.split("```mermaid")[1:3])
    assert session.count(" --> ") == _edges(SESSION_TRANSITIONS) + 1  # + the initial state
    assert iec.count(" --> ") == _edges(IEC_TRANSITIONS) + 1
    for state in SESSION_STATES:
        assert f"| {state} |" in text
    for mode in IEC_OUTPUTS:
        assert f"| {mode} |" in text
