"""The samples kept for StopTransaction.req transactionData (OCPP 1.6 §6.50) on a real SQLite
file: re-stamped with the outbox at the first CSMS time (only this run's unsynchronized
ones), bounded per transaction with the begin value kept."""

from __future__ import annotations

from pathlib import Path

from evse.state_db import open_state_db
from ocpp_client.v16 import transaction_data
from ocpp_client.v16.meter_values import iso_timestamp, parse_timestamp, shift_timestamps
from ocpp_client.v16.transaction_data import TransactionData


def _value(ts: float, wh: int) -> dict[str, object]:
    return {"timestamp": iso_timestamp(ts), "sampledValue": [{"value": str(wh)}]}


def test_only_this_runs_unsynchronized_values_are_restamped(tmp_path: Path) -> None:
    db = open_state_db(tmp_path)
    TransactionData(db, run_id="earlier").add(7, _value(1_800_000_000.0, 1), False)
    data = TransactionData(db, run_id="now")
    data.add(7, _value(1_800_000_010.0, 2), False)
    data.add(7, _value(1_800_000_020.0, 3), True)
    assert data.correct_timestamps(lambda v: shift_timestamps(v, 100.0)) == 1
    assert data.correct_timestamps(lambda v: shift_timestamps(v, 100.0)) == 0
    kept = data.take(7)
    assert [parse_timestamp(v["timestamp"]) for v in kept] == [
        1_800_000_000.0, 1_800_000_110.0, 1_800_000_020.0]
    assert data.take(7) == []  # taken with the StopTransaction


def test_a_long_transaction_keeps_its_begin_and_latest_values(tmp_path: Path) -> None:
    db = open_state_db(tmp_path)
    data = TransactionData(db)
    limit = transaction_data.MAX_VALUES
    for n in range(limit + 25):
        data.add(1, _value(1_800_000_000.0 + n, n))
    data.add(2, _value(1_800_000_000.0, 99))
    kept = [int(v["sampledValue"][0]["value"]) for v in data.take(1)]
    assert len(kept) == limit
    assert kept[0] == 0 and kept[1] == 26 and kept[-1] == limit + 24
    assert len(data.take(2)) == 1
