"""Smoke test of benchmarks/offline_replay.py with a small N (no timing assertions)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_offline_replay_benchmark_runs_and_loses_nothing() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "offline_replay.py"), "--messages", "300"],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"offline_replay msgs_per_s=(\d+) bare_msgs_per_s=(\d+) "
                         r"ratio=([\d.]+) lost=(-?\d+)", last)
    assert match, last
    assert int(match.group(4)) == 0
