"""Diagnostics archive and upload to a real HTTP / FTP server (OCPP 1.6 §5.9, §4.4)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from evse.diagnostics import (
    Diagnostics,
    LogSources,
    archive_name,
    build_archive,
    line_time,
)
from evse.diagnostics import (
    DiagnosticsStatus as D,
)
from evse.file_transfer import TransferError
from evse.timers import ManualClock
from tests.features.clockdrive import drive
from tests.features.recorder import Recorder
from tests.features.servers import FtpServer, HttpServer

NOW = 1_780_000_000.0  # 2026-05-28T20:26:40Z
LOG = """\
2026-05-28 18:00:00,000 INFO    evse.station: before the window
2026-05-28 19:00:00,000 INFO    evse.station: session started
2026-05-28 19:00:01,000 ERROR   evse.station: boom
Traceback (most recent call last):
  ValueError: x
2026-05-28T19:30:00Z INFO    ocpp: connecting to ws://CP1:hunter2@csms.example/ocpp
2026-05-28 19:31:00,000 INFO    ocpp: config password='hunter3'
2026-05-28 21:00:00,000 INFO    evse.station: after the window
"""
START = 1_779_993_600.0  # 2026-05-28T18:40:00Z
STOP = 1_779_998_400.0   # 2026-05-28T20:00:00Z


def sources(tmp_path: Path) -> LogSources:
    logs = tmp_path / "log"
    logs.mkdir()
    (logs / "evse.log").write_text(LOG)
    (logs / "evse.toml").write_text('[ocpp]\npassword = "toml-secret"\n')
    (logs / "cp.key.pem").write_text("-----BEGIN PRIVATE KEY-----\nKEYDATA\n")
    return LogSources(files=(logs / "evse.log", logs / "evse.toml", logs / "cp.key.pem"),
                      journalctl=None)


def members(data: bytes) -> dict[str, str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read().decode()  # type: ignore[union-attr]
                for m in tar.getmembers()}


def engine(tmp_path: Path, src: LogSources) -> tuple[Diagnostics, Recorder[D], ManualClock]:
    clock = ManualClock(start=NOW)
    statuses: Recorder[D] = Recorder()
    diag = Diagnostics(work_dir=tmp_path / "state" / "diagnostics", sources=src,
                       station_id="CP/1", clock=clock, wall=clock.monotonic,
                       on_status=statuses)
    return diag, statuses, clock


async def test_http_upload_of_the_window_without_secrets(tmp_path: Path) -> None:
    diag, statuses, clock = engine(tmp_path, sources(tmp_path))
    with HttpServer() as http:
        name = diag.request(http.url("/diag"), START, STOP, retries=1, retry_interval_s=10)
        assert name == "CP_1-diagnostics-20260528T202640Z.tar.gz"
        await drive(statuses.until(D.UPLOADED), clock)
        [received] = http.state.uploads
    assert received.file_name == name
    files = members(received.body)
    assert sorted(files) == ["README.txt", "logs/evse.log"]
    text = files["logs/evse.log"]
    assert "before the window" not in text and "after the window" not in text
    assert "session started" in text and "ValueError: x" in text  # traceback kept with its line
    assert "csms.example" in text
    for secret in ("hunter2", "hunter3", "toml-secret", "KEYDATA"):
        assert all(secret not in body for body in files.values())
    assert "CP/1" in files["README.txt"]
    assert statuses.items == [D.UPLOADING, D.UPLOADED]
    assert diag.status is D.IDLE
    assert list((tmp_path / "state" / "diagnostics").iterdir()) == []


async def test_ftp_upload(tmp_path: Path) -> None:
    diag, statuses, clock = engine(tmp_path, sources(tmp_path))
    root = tmp_path / "ftproot"
    (root / "diag").mkdir(parents=True)
    with FtpServer(root) as ftp:
        name = diag.request(ftp.url("/diag/"))
        await drive(statuses.until(D.UPLOADED), clock)
    files = members((root / "diag" / name).read_bytes())
    assert "session started" in files["logs/evse.log"]
    assert "before the window" in files["logs/evse.log"]  # no window asked: everything


async def test_upload_failed_after_retries(tmp_path: Path) -> None:
    diag, statuses, clock = engine(tmp_path, sources(tmp_path))
    with HttpServer() as http:
        http.state.fail_next = 100
        diag.request(http.url("/diag"), retries=2, retry_interval_s=60)
        await drive(statuses.until(D.UPLOAD_FAILED), clock)
        assert len(http.state.requests) == 3
    assert clock.monotonic() == NOW + 120
    assert statuses.items == [D.UPLOADING, D.UPLOAD_FAILED]
    assert diag.status is D.IDLE


async def test_status_is_uploading_while_the_upload_runs(tmp_path: Path) -> None:
    diag, statuses, clock = engine(tmp_path, sources(tmp_path))
    with HttpServer() as http:
        http.state.fail_next = 1
        diag.request(http.url("/diag"), retries=1, retry_interval_s=60)
        await drive(statuses.until(D.UPLOADING), clock)
        assert diag.status is D.UPLOADING
        await drive(statuses.until(D.UPLOADED), clock)


async def test_unsupported_location_is_refused(tmp_path: Path) -> None:
    diag, _, _ = engine(tmp_path, sources(tmp_path))
    with pytest.raises(TransferError):
        diag.request("scp://host/dir")


def test_journal_without_entries_falls_back_to_files(tmp_path: Path) -> None:
    # The real journalctl where installed (no entries for this unit), else none at all:
    # either way the log files are used.
    src = LogSources(journal_units=("evse-test-no-such-unit.service",),
                     files=(tmp_path / "evse.log",))
    (tmp_path / "evse.log").write_text(LOG)
    names = build_archive(tmp_path / "a.tar.gz", src, None, None, "CP1", NOW)
    assert names == ["README.txt", "logs/evse.log"]


def test_line_time() -> None:
    assert line_time("2026-05-28 19:00:00,000 INFO x") == 1_779_994_800.0
    assert line_time("2026-05-28T19:00:00+02:00 host evse[1]: x") == 1_779_994_800.0 - 7200
    assert line_time("  File x") is None


def test_archive_name() -> None:
    assert archive_name("CP1", NOW) == "CP1-diagnostics-20260528T202640Z.tar.gz"
