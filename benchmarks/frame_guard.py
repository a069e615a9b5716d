#!/usr/bin/env python3
"""Frame guard cost: how long :meth:`ocpp_client.frames.FrameGuard.screen` takes per frame
from the CSMS (parse with the integer / depth limits, structure and 1.6 schema checks).

Frames over :data:`ocpp_client.frames.INLINE_FRAME_CHARS` are screened on a worker thread,
so the large cases here never stall the event loop.

Run:  python benchmarks/frame_guard.py
Lines: ``frame_guard case=… chars=… us_per_frame=…``
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ocpp.v16.enums import Action

from ocpp_client.frames import FrameError, FrameGuard, FrameRules
from ocpp_client.v16.charge_point import SPELLING_16, ChargePoint16, call_validator


def _cases() -> dict[str, str]:
    entries = [{"idTag": f"T{i:05d}", "idTagInfo": {"status": "Accepted"}} for i in range(1000)]
    deep = 100_000
    return {
        "ChangeConfiguration": json.dumps(
            [2, "u1", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "300"}]),
        "SendLocalList_1000": json.dumps(
            [2, "u2", "SendLocalList", {"listVersion": 1, "updateType": "Full",
                                        "localAuthorizationList": entries}]),
        "stray_CALLRESULT": json.dumps([3, "x", {"currentTime": "x"}]),
        "nested_100000": '[2,"h","DataTransfer",{"vendorId":"x","data":'
                         + "[" * deep + "]" * deep + "}]",
        "int_5000_digits": '[2,"h","DataTransfer",{"vendorId":' + "9" * 5000 + "}]",
    }


def main() -> None:
    routed = {name for name in dir(ChargePoint16)
              if hasattr(getattr(ChargePoint16, name), "_on_action")}
    routed_actions = {getattr(ChargePoint16, n)._on_action for n in routed}
    guard = FrameGuard(None, FrameRules(  # type: ignore[arg-type]
        known_actions={a.value for a in Action}, routed=routed_actions,
        validator=call_validator, spelling=SPELLING_16))
    for name, raw in _cases().items():
        runs = 20 if len(raw) > 10_000 else 2000
        start = time.perf_counter()
        for _ in range(runs):
            with contextlib.suppress(FrameError):
                guard.screen(raw)
        per_frame = (time.perf_counter() - start) / runs * 1e6
        print(f"frame_guard case={name} chars={len(raw)} us_per_frame={per_frame:.1f}")


if __name__ == "__main__":
    main()
