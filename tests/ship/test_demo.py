"""The README's main command keeps working: ``scripts/demo.py`` (what ``scripts/demo`` runs
in its venv) charges one simulated EV against the dev CSMS and prints the session summary."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_demo_charges_one_ev_and_prints_the_summary() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--charge-seconds", "2"],
        capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = re.search(r"transactionId (\d+)\s+idTag DEMO01 .* energy (\d+) Wh .*"
                        r"reason EVDisconnected", result.stdout)
    assert summary is not None, result.stdout[-3000:]
    assert int(summary.group(2)) > 0
