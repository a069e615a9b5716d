"""Smoke test of the gpio rows of benchmarks/safety_latency.py: a few edges per kind, short
stall windows; the table and the summary line. No timing assertions (figures come from the
full run)."""

from __future__ import annotations

import re

from tests.script_loader import load_script


async def test_safety_latency_gpio_smoke() -> None:
    bench = load_script("benchmarks/safety_latency.py")
    data = await bench.run_gpio(n=3, windows=5, stall_s=0.3)
    for kind in bench.GPIO_KINDS:
        assert len(data["results"]["load"][kind]) == 3, kind
        assert len(data["results"]["log2s"][kind]) == 1, kind
    assert any(data["results"]["loop2s"].values())
    lines: list[str] = []
    last = bench.report_gpio(data, lines.append)
    assert lines[-1] == last
    assert re.fullmatch(r"safety_latency_gpio p99_ms=\d+\.\d+ max_ms=\d+\.\d+ "
                        r"stalled_max_ms=\d+\.\d+", last)
