"""docs/state-machine.md is generated from the machine: fail when it is stale."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import gen_state_diagram

from evse.connector import OUTPUTS, TRANSITIONS


def test_state_diagram_is_up_to_date() -> None:
    assert gen_state_diagram.main(["--check"]) == 0, (
        "docs/state-machine.md is stale: run python scripts/gen_state_diagram.py")


def test_diagram_has_every_transition_and_state() -> None:
    text = gen_state_diagram.render()
    edges = sum(len(t["source"]) if isinstance(t["source"], list) else 1 for t in TRANSITIONS)
    mermaid = text.split("```mermaid")[1].split("```")[0]
    assert mermaid.count(" --> ") == edges + 1  # + the initial state
    for state in OUTPUTS:
        assert f"| {gen_state_diagram._NAMES[state]} |" in text
