"""Checks over a DevCsms frame log of OCPP 2.0.1 TransactionEvents, judged from the CSMS's
side only: after deduplication by message unique id (a re-send must be identical), every
transaction has exactly one Started (seqNo 0) and at most one Ended, and its seqNos are
0, 1, 2, ... without gap or repeat."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Transactions201:
    """The deduplicated TransactionEvents of one station, by transactionId, in arrival
    order."""

    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    resent: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ended(self) -> list[str]:
        return [t for t, evs in self.events.items() if evs[-1]["eventType"] == "Ended"]


def analyse_201(frames: list[Any], station_id: str) -> Transactions201:
    """Deduplicate and check the TransactionEvents of ``station_id``."""
    out = Transactions201()
    seen: dict[str, str] = {}
    for frame in frames:
        if frame.station_id != station_id or frame.direction != "in":
            continue
        msg = json.loads(frame.raw)
        if msg[0] != 2 or msg[2] != "TransactionEvent":
            continue
        text = json.dumps(msg[3], sort_keys=True)
        if msg[1] in seen:
            out.resent += 1
            if seen[msg[1]] != text:
                out.errors.append(f"re-send of {msg[1]} differs")
            continue
        seen[msg[1]] = text
        event = msg[3]
        out.events.setdefault(event["transactionInfo"]["transactionId"], []).append(event)
    for tx_id, evs in out.events.items():
        seqs = sorted(e["seqNo"] for e in evs)
        if seqs != list(range(len(evs))):
            out.errors.append(f"{tx_id}: seqNo {seqs} not contiguous from 0")
        kinds = [e["eventType"] for e in sorted(evs, key=lambda e: e["seqNo"])]
        if kinds[0] != "Started" or kinds.count("Started") != 1:
            out.errors.append(f"{tx_id}: events {kinds} do not begin with one Started")
        if kinds.count("Ended") > 1 or ("Ended" in kinds and kinds[-1] != "Ended"):
            out.errors.append(f"{tx_id}: events {kinds}: Ended not once and last")
    return out
