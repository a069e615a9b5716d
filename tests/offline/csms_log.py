"""Checks over a DevCsms frame log: the delivery guarantees of docs/offline-delivery.md,
judged from the CSMS's side only.

Dedupe rule (what a CSMS must do, and what these checks apply): CALLs with the same message
unique id are one message; a re-send must carry the identical action and payload. After
deduplication every StartTransaction is one session (no two unique ids with the same
connectorId, idTag, meterStart and timestamp), every transactionId handed out has exactly
one StopTransaction, and every transaction message carries a transactionId the CSMS issued.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Delivery:
    """The deduplicated transaction messages of one charge point, in arrival order."""

    starts: dict[str, dict[str, Any]] = field(default_factory=dict)  # unique id → payload
    transaction_ids: dict[str, int] = field(default_factory=dict)  # Start unique id → txId
    stops: dict[str, dict[str, Any]] = field(default_factory=dict)
    meter_values: dict[str, dict[str, Any]] = field(default_factory=dict)
    resent: int = 0
    calls: int = 0
    errors: list[str] = field(default_factory=list)


def analyse(frames: list[Any], station_id: str) -> Delivery:
    """Deduplicate and check the frames of ``station_id``; problems go to ``errors``."""
    out = Delivery()
    seen: dict[str, tuple[str, str]] = {}
    results: dict[str, Any] = {}
    for frame in frames:
        if frame.station_id != station_id:
            continue
        msg = json.loads(frame.raw)
        if frame.direction == "out" and msg[0] == 3:
            results[msg[1]] = msg[2]
    for frame in frames:
        if frame.station_id != station_id or frame.direction != "in":
            continue
        msg = json.loads(frame.raw)
        if msg[0] != 2:
            continue
        unique_id, action, payload = msg[1], msg[2], msg[3]
        key = (action, json.dumps(payload, sort_keys=True))
        if unique_id in seen:
            out.resent += 1
            if seen[unique_id] != key:
                out.errors.append(f"re-send of {unique_id} differs: {seen[unique_id]} vs {key}")
            continue
        seen[unique_id] = key
        out.calls += 1
        if action == "StartTransaction":
            out.starts[unique_id] = payload
            if unique_id in results:
                out.transaction_ids[unique_id] = results[unique_id]["transactionId"]
        elif action == "StopTransaction":
            out.stops[unique_id] = payload
        elif action == "MeterValues" and "transactionId" in payload:
            out.meter_values[unique_id] = payload
    _check(out)
    return out


def _check(out: Delivery) -> None:
    err = out.errors.append
    contents = [(p["connectorId"], p["idTag"], p["meterStart"], p["timestamp"])
                for p in out.starts.values()]
    if len(set(contents)) != len(contents):
        err("a StartTransaction was sent twice under different unique ids")
    issued = set(out.transaction_ids.values())
    if len(issued) != len(out.transaction_ids):
        err("two StartTransactions got the same transactionId")
    missing_answer = set(out.starts) - set(out.transaction_ids)
    if missing_answer:
        err(f"StartTransaction(s) never answered: {sorted(missing_answer)}")
    start_by_tx = {out.transaction_ids[u]: out.starts[u] for u in out.transaction_ids}
    stops_by_tx: dict[int, list[dict[str, Any]]] = {}
    for stop in out.stops.values():
        tx = stop["transactionId"]
        if tx not in issued:
            err(f"StopTransaction with transactionId {tx} the CSMS never issued")
        stops_by_tx.setdefault(tx, []).append(stop)
    for tx in issued:
        stops = stops_by_tx.get(tx, [])
        if len(stops) != 1:
            err(f"transaction {tx}: {len(stops)} StopTransaction(s), expected exactly 1")
            continue
        start, stop = start_by_tx[tx], stops[0]
        if stop["meterStop"] < start["meterStart"]:
            err(f"transaction {tx}: meterStop {stop['meterStop']} < meterStart")
        if _ts(stop["timestamp"]) < _ts(start["timestamp"]):
            err(f"transaction {tx}: stop timestamp before start: {start} {stop}")
    last: dict[int, tuple[float, float]] = {}
    for mv in out.meter_values.values():
        tx = mv["transactionId"]
        if tx not in issued:
            err(f"MeterValues with transactionId {tx} the CSMS never issued")
            continue
        for value in mv["meterValue"]:
            at = _ts(value["timestamp"])
            energy = [float(s["value"]) for s in value["sampledValue"]
                      if s.get("measurand") == "Energy.Active.Import.Register"]
            wh = energy[0] if energy else -1.0
            prev_at, prev_wh = last.get(tx, (0.0, -1.0))
            if at < prev_at or wh < prev_wh:
                err(f"transaction {tx}: meter values out of order ({at} {wh} after "
                    f"{prev_at} {prev_wh})")
            last[tx] = (at, wh)
            stop_list = stops_by_tx.get(tx)
            if stop_list and at > _ts(stop_list[0]["timestamp"]):
                err(f"transaction {tx}: meter value after the stop timestamp: {value} "
                    f"{stop_list[0]}")
            if stop_list and wh > stop_list[0]["meterStop"] + 0.5:  # meterStop: whole Wh
                err(f"transaction {tx}: meter value {wh} above meterStop")
    for payload in [*out.stops.values(), *out.meter_values.values()]:
        if payload["transactionId"] in (-1, 0):
            err(f"transactionId {payload['transactionId']} sent")
