"""Smoke test of benchmarks/safety_latency.py: a small N, the table and the last line; no
timing assertions (the CI figure comes from the full run)."""

from __future__ import annotations

import re

from tests.script_loader import load_script


async def test_safety_latency_smoke() -> None:
    bench = load_script("benchmarks/safety_latency.py")
    data = await bench.run(n=20, spacing_s=0.001)
    for kind in bench.KINDS:
        assert len(data["results"][kind]) == 20, kind
    assert data["floor"]
    assert data["calls_per_s"] > 0 and data["meter_values"] >= 0
    lines: list[str] = []
    last = bench.report(data, lines.append)
    assert lines[-1] == last
    assert re.fullmatch(r"safety_latency p99_ms=\d+\.\d+ max_ms=\d+\.\d+ "
                        r"floor_p99_ms=\d+\.\d+", last)
    assert any(line.startswith("RCD") for line in lines)
