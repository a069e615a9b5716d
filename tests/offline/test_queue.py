"""The Outbox on a real SQLite file: order per connector, turns between connectors, batched
acknowledgements, the bound and its thinning policy, clock correction; the clock; TOML
defaults of OCPP configuration keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evse.clock import EARLIEST_PLAUSIBLE_S, Clock
from evse.state_db import open_state_db
from ocpp_client.local_list import LocalList
from ocpp_client.queue import (
    KIND_BEGIN,
    KIND_PERIODIC,
    KIND_START,
    KIND_STOP,
    Outbox,
)
from ocpp_client.v16.configuration import Configuration
from ocpp_client.v16.meter_values import iso_timestamp, parse_timestamp, shift_timestamps


def _drain(box: Outbox) -> list[tuple[int, int]]:
    out = []
    while True:
        message, _ = box.next_message()
        if message is None:
            return out
        out.append((message.connector_id, message.payload["n"]))
        box.done(message)


def test_order_per_connector_and_turns(tmp_path: Path) -> None:
    box = Outbox(open_state_db(tmp_path))
    for n in range(6):
        box.put("MeterValues", {"n": n}, 1, 1)
    for n in range(3):
        box.put("MeterValues", {"n": 100 + n}, 2, 2)
    sent = _drain(box)
    assert [n for c, n in sent if c == 1] == list(range(6))
    assert [n for c, n in sent if c == 2] == [100, 101, 102]
    assert sent[:4] == [(1, 0), (2, 100), (1, 1), (2, 101)]  # connectors take turns


def test_unflushed_acks_are_resent_identically_after_a_crash(tmp_path: Path) -> None:
    db = open_state_db(tmp_path)
    box = Outbox(db)
    for n in range(10):
        box.put("MeterValues", {"n": n}, 1, 1)
    first, _ = box.next_message()
    assert first is not None
    box.done(first)
    assert box.pending_acks == 1 and len(box) == 9
    # "Crash": a new Outbox on a new connection sees the unflushed ack's row again.
    again = Outbox(open_state_db(tmp_path))
    resent, _ = again.next_message()
    assert resent is not None and resent.unique_id == first.unique_id
    assert resent.payload == first.payload
    box.flush()
    assert len(Outbox(open_state_db(tmp_path))) == 9


def test_failed_message_blocks_only_its_connector(tmp_path: Path) -> None:
    box = Outbox(open_state_db(tmp_path))
    box.put("MeterValues", {"n": 1}, 1, 1)
    box.put("MeterValues", {"n": 2}, 2, 2)
    message, _ = box.next_message()
    assert message is not None and message.connector_id == 1
    assert box.failed(message, retry_in_s=60.0) == 1
    other, _ = box.next_message()
    assert other is not None and other.connector_id == 2
    box.done(other)
    none, wait = box.next_message()
    assert none is None and 55.0 < wait <= 60.0
    box.drop(message, "test")
    assert box.dropped == 1 and len(box) == 0


def test_bound_thins_periodic_values_of_the_longest_session_only(tmp_path: Path) -> None:
    box = Outbox(open_state_db(tmp_path), max_messages=30)
    box.put("StartTransaction", {"n": 0}, 1, 1, KIND_START)
    box.put("MeterValues", {"n": 1}, 1, 1, KIND_BEGIN)
    for n in range(2, 22):
        box.put("MeterValues", {"n": n}, 1, 1, KIND_PERIODIC)
    box.put("StartTransaction", {"n": 100}, 2, 2, KIND_START)
    for n in range(101, 106):
        box.put("MeterValues", {"n": n}, 2, 2, KIND_PERIODIC)
    box.put("StopTransaction", {"n": 199}, 2, 2, KIND_STOP)
    assert len(box) == 29
    box.put("MeterValues", {"n": 22}, 1, 1, KIND_PERIODIC)
    box.put("StopTransaction", {"n": 23}, 1, 1, KIND_STOP)
    assert len(box) <= 30 and box.thinned > 0
    sent = dict.fromkeys([n for _, n in _drain(box)])
    session1 = [n for n in sent if n < 100]
    # Start, Transaction.Begin, the first and the newest periodic value, Stop all kept.
    assert session1[:3] == [0, 1, 2] and session1[-2:] == [22, 23]
    assert all(n in sent for n in (100, 101, 102, 103, 104, 105, 199))  # short session intact


def test_bound_never_drops_start_stop(tmp_path: Path) -> None:
    box = Outbox(open_state_db(tmp_path), max_messages=100, max_bytes=200)
    for n in range(10):
        box.put("StartTransaction", {"n": n, "pad": "x" * 50}, 1, n, KIND_START)
    assert len(box) == 10 and box.thinned == 0


def test_clock_correction_rewrites_only_unsynced_rows_of_this_run(tmp_path: Path) -> None:
    box = Outbox(open_state_db(tmp_path), run_id="run-2")
    stamp = iso_timestamp(EARLIEST_PLAUSIBLE_S + 10)
    mv = {"connector_id": 1, "meter_value": [{"timestamp": stamp, "sampledValue": []}]}
    box.put("StartTransaction", {"timestamp": stamp}, 1, 1, KIND_START, clock_synced=False)
    box.put("MeterValues", mv, 1, 1, KIND_BEGIN, clock_synced=False)
    box.put("StopTransaction", {"timestamp": stamp}, 1, 1, KIND_STOP, clock_synced=True)
    assert box.correct_timestamps(lambda p: shift_timestamps(p, 3600.0)) == 2
    rows: list[dict[str, Any]] = [m.payload for m in (box.next_message()[0],)
                                  if m is not None]
    assert parse_timestamp(rows[0]["timestamp"]) == EARLIEST_PLAUSIBLE_S + 3610
    payloads = [p for _, p in sorted(
        (r[0], r[1]) for r in box._db.execute("SELECT id, payload FROM outbox"))]
    assert '"2024-01-01T01:00:10.000Z"' in payloads[1]
    assert '"2024-01-01T00:00:10.000Z"' in payloads[2]  # synced row untouched


def test_clock_never_1970_monotonic_and_corrected() -> None:
    mono = [100.0]
    clock = Clock(wall=lambda: 0.0, monotonic=lambda: mono[0])
    first = clock.now()
    assert first == EARLIEST_PLAUSIBLE_S
    corrections: list[float] = []
    clock.on_first_sync(corrections.append)
    mono[0] += 5
    assert clock.stamped_unsynced(clock.now())
    assert not clock.stamped_unsynced(first - 1)  # older: from an earlier run's data
    clock.sync(1_800_000_000.0)
    assert corrections == [1_800_000_000.0 - (EARLIEST_PLAUSIBLE_S + 5)]
    assert clock.now() == 1_800_000_000.0
    mono[0] += 1
    assert clock.now() == 1_800_000_001.0
    clock.sync(1_800_000_000.5)  # a later Heartbeat says the clock ran fast
    assert clock.now() >= 1_800_000_001.0  # never backwards
    assert corrections == [corrections[0]]  # listeners only on the first sync
    floor = Clock(floor_s=1_900_000_000.0)
    assert floor.now() >= 1_900_000_000.0


def test_toml_defaults_and_csms_override(tmp_path: Path) -> None:
    db = open_state_db(tmp_path)
    toml = {"MeterValueSampleInterval": 60, "LocalAuthorizeOffline": True}
    config = Configuration(db, toml)
    assert config.get("MeterValueSampleInterval") == 60
    assert config.get("LocalAuthorizeOffline") is True
    assert config.change("MeterValueSampleInterval", "30") == "Accepted"
    assert Configuration(db, toml).get("MeterValueSampleInterval") == 30  # survives restart
    changed = {**toml, "MeterValueSampleInterval": 90}
    assert Configuration(db, changed).get("MeterValueSampleInterval") == 90  # TOML changed
    assert Configuration(db, changed).get("LocalAuthorizeOffline") is True


def test_local_list_max_length(tmp_path: Path) -> None:
    local = LocalList(open_state_db(tmp_path))
    entries = [{"id_tag": f"T{i}", "id_tag_info": {"status": "Accepted"}} for i in range(3)]
    assert local.update(1, "Full", entries, 2, 100, lambda _: None) == "Failed"
    assert local.update(1, "Full", entries[:2], 2, 100, lambda _: None) == "Accepted"
    assert local.update(2, "Differential", entries[2:], 2, 100, lambda _: None) == "Failed"
    assert len(local) == 2 and local.version == 1
    assert local.get("t0") is not None  # idTags compare case-insensitively
