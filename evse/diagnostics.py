"""Diagnostics upload, protocol-neutral (OCPP 1.6 §5.9 GetDiagnostics, §4.4
DiagnosticsStatusNotification; later OCPP 2.0.1 N01 GetLog / 1.6 security whitepaper GetLog).

On request the station builds a ``tar.gz`` of its logs between a start and a stop time and
uploads it to the CSMS's location (:mod:`evse.file_transfer`, with retries):

- the journal of the configured systemd units via ``journalctl --since/--until -o
  short-iso`` when ``journalctl`` is there and answers, else
- the configured log files, lines outside the window left out (a line's time is read from
  its leading ISO-8601 timestamp, taken as UTC when it has no offset; lines without one,
  such as traceback lines, go with the line before).

Secrets never leave the station: every line is passed through
`evse.text_redaction.redact` (passwords, AuthorizationKey values, URL credentials,
private keys), and files that may hold secrets or personal data (TOML configuration, keys,
certificates, the state database) are refused as sources.

Statuses in neutral names (:class:`DiagnosticsStatus`); the 1.6 mapping lives in
``ocpp_client/v16/firmware.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import io
import logging
import math
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from evse.file_transfer import (
    TransferError,
    TransferSettings,
    check_url,
    clock_sleep,
    redact_url,
    upload,
    with_retries,
)
from evse.task_set import cancel_and_wait
from evse.text_redaction import redact
from evse.timers import Clock

log = logging.getLogger(__name__)

#: Suffixes of files never put into an archive: configuration (may hold passwords), keys
#: and certificates, databases (auth list, transactions).
REFUSED_SUFFIXES = frozenset({
    ".toml", ".pem", ".key", ".crt", ".der", ".p12", ".pfx", ".db", ".sqlite", ".sqlite3",
    ".db-wal", ".db-shm",
})

#: How long ``journalctl`` may run, s.
JOURNALCTL_TIMEOUT_S = 120.0

_TIMESTAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)")


class DiagnosticsStatus(enum.Enum):
    """Progress of a diagnostics upload (OCPP 1.6 DiagnosticsStatus, §7.24)."""

    IDLE = "idle"
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    UPLOAD_FAILED = "upload_failed"


@dataclass(frozen=True)
class LogSources:
    """Where the logs are.

    Attributes:
        journal_units: systemd units whose journal is exported (``journalctl -u``).
        files: log files used when the journal is not available.
        journalctl: the ``journalctl`` program; None: never use the journal.
    """

    journal_units: tuple[str, ...] = ("evse.service",)
    files: tuple[Path, ...] = ()
    journalctl: str | None = "journalctl"


def refused_source(path: Path) -> bool:
    """True for a file that may hold secrets and so never goes into an archive."""
    name = path.name.lower()
    return any(name.endswith(suffix) for suffix in REFUSED_SUFFIXES)


def line_time(line: str) -> float | None:
    """UTC epoch s of the line's leading ISO-8601 timestamp (UTC if it has no offset),
    or None when it has none."""
    match = _TIMESTAMP.match(line)
    if match is None:
        return None
    text = match.group(1).replace(",", ".")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()


def lines_in_window(lines: Iterable[str], start_s: float | None, stop_s: float | None
                    ) -> Iterator[str]:
    """The lines whose timestamp lies in [start_s, stop_s] (None: open end); a line without
    timestamp follows the decision for the line before it (the first ones are kept)."""
    keep = True
    for line in lines:
        when = line_time(line)
        if when is not None:
            keep = (start_s is None or when >= start_s) and (stop_s is None or when <= stop_s)
        if keep:
            yield line


def _journal(sources: LogSources, start_s: float | None, stop_s: float | None,
             scratch: Path) -> Path | None:
    """The journal export as a file, or None when journalctl is missing or fails."""
    if sources.journalctl is None or not sources.journal_units:
        return None
    program = shutil.which(sources.journalctl)
    if program is None:
        return None
    argv = [program, "--no-pager", "-o", "short-iso"]
    if start_s is not None:
        argv += ["--since", f"@{math.floor(start_s)}"]
    if stop_s is not None:
        argv += ["--until", f"@{math.ceil(stop_s)}"]
    for unit in sources.journal_units:
        argv += ["-u", unit]
    raw = scratch / "journal.raw"
    try:
        with raw.open("wb") as out:
            subprocess.run(argv, stdout=out, stderr=subprocess.DEVNULL, check=True,
                           timeout=JOURNALCTL_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("journal not available for diagnostics (%s); using log files", exc)
        return None
    text = raw.read_text(errors="replace")
    if text.startswith("-- No entries --") and sources.files:
        return None
    return raw


def _add_text(tar: tarfile.TarFile, name: str, lines: Iterable[str], mtime: float) -> int:
    data = "".join(redact(line.rstrip("\n")) + "\n" for line in lines).encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))
    return len(data)


def build_archive(dest: Path, sources: LogSources, start_s: float | None,
                  stop_s: float | None, station_id: str, now_s: float) -> list[str]:
    """Write the diagnostics archive (``tar.gz``) to ``dest`` (blocking); returns its member
    names.

    Members: ``README.txt`` (station, window, sources), ``journal.log`` or
    ``logs/<file name>`` per log file. Files matching :data:`REFUSED_SUFFIXES` are skipped.

    Raises:
        OSError: the archive cannot be written.
    """
    members: list[str] = []
    used: list[str] = []
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as scratch_name, \
            tarfile.open(dest, "w:gz") as tar:
        scratch = Path(scratch_name)
        journal = _journal(sources, start_s, stop_s, scratch)
        if journal is not None:
            with journal.open(errors="replace") as f:
                _add_text(tar, "journal.log", f, now_s)
            members.append("journal.log")
            used.append(f"journal of {', '.join(sources.journal_units)}")
        else:
            for path in sources.files:
                if refused_source(path):
                    log.warning("diagnostics: %s may hold secrets; not included", path)
                    continue
                try:
                    with path.open(errors="replace") as f:
                        name = f"logs/{path.name}"
                        _add_text(tar, name, lines_in_window(f, start_s, stop_s),
                                  path.stat().st_mtime)
                except OSError as exc:
                    log.warning("diagnostics: cannot read %s: %s", path, exc)
                    continue
                members.append(name)
                used.append(str(path))

        def iso(value: float | None) -> str:
            return "-" if value is None else dt.datetime.fromtimestamp(
                value, dt.UTC).isoformat()

        readme = [f"station: {station_id}", f"created: {iso(now_s)}",
                  f"from: {iso(start_s)}", f"to: {iso(stop_s)}",
                  "sources: " + ("; ".join(used) or "none available")]
        _add_text(tar, "README.txt", readme, now_s)
        members.insert(0, "README.txt")
    return members


def archive_name(station_id: str, now_s: float) -> str:
    """``<station id>-diagnostics-<UTC time>.tar.gz`` (the GetDiagnostics.conf fileName)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now_s))
    safe_id = re.sub(r"[^A-Za-z0-9._-]", "_", station_id)
    return f"{safe_id}-diagnostics-{stamp}.tar.gz"


class Diagnostics:
    """Builds and uploads diagnostics archives, one at a time.

    Args:
        work_dir: where the archive is built (in the state directory); removed after upload.
        sources: the log sources.
        station_id: names the archive.
        clock: timer clock for the retry interval (``evse.timers``).
        wall: UTC epoch seconds now (``evse.clock.Clock.now``).
        on_status: told each :class:`DiagnosticsStatus` and the request id, on the loop.
        transfer: timeouts, HTTP upload method (POST / PUT), TLS settings.
    """

    def __init__(self, *, work_dir: Path, sources: LogSources, station_id: str, clock: Clock,
                 wall: Callable[[], float],
                 on_status: Callable[[DiagnosticsStatus, int | None], None],
                 transfer: TransferSettings | None = None) -> None:
        self._dir = work_dir
        self.sources = sources
        self._station_id = station_id
        self._sleep = clock_sleep(clock)
        self._wall = wall
        self._on_status = on_status
        self._transfer = transfer or TransferSettings()
        self._task: asyncio.Task[None] | None = None
        self._status = DiagnosticsStatus.IDLE

    @property
    def status(self) -> DiagnosticsStatus:
        """UPLOADING while an upload runs, else IDLE (what a triggered
        DiagnosticsStatusNotification reports, OCPP 1.6 §4.4)."""
        return self._status

    def request(self, location: str, start_s: float | None = None,
                stop_s: float | None = None, retries: int = 0, retry_interval_s: float = 0.0,
                request_id: int | None = None) -> str:
        """Start building and uploading an archive (OCPP 1.6 GetDiagnostics.req); returns
        the file name the CSMS will receive. A running upload is cancelled first.

        Args:
            start_s / stop_s: the time window, UTC epoch s (None: open end).
            retries / retry_interval_s: OCPP 1.6 retries / retryInterval (s).

        Raises:
            TransferError: the location's scheme is not supported (nothing started).
        """
        check_url(location)
        if self._task is not None:
            self._task.cancel()
        name = archive_name(self._station_id, self._wall())
        self._task = asyncio.get_running_loop().create_task(
            self._run(location, name, start_s, stop_s, retries, retry_interval_s,
                      request_id), name="diagnostics-upload")
        return name

    async def close(self) -> None:
        """Cancel a running upload."""
        await cancel_and_wait(self._task)
        self._task = None

    def _emit(self, status: DiagnosticsStatus, request_id: int | None) -> None:
        self._status = status
        log.info("diagnostics: %s", status.value)
        try:
            self._on_status(status, request_id)
        except Exception:
            log.exception("diagnostics status callback failed")

    async def _run(self, location: str, name: str, start_s: float | None,
                   stop_s: float | None, retries: int, retry_interval_s: float,
                   request_id: int | None) -> None:
        archive = self._dir / name
        settings = self._transfer
        try:
            await asyncio.to_thread(build_archive, archive, self.sources, start_s, stop_s,
                                    self._station_id, self._wall())
            self._emit(DiagnosticsStatus.UPLOADING, request_id)
            await with_retries(lambda: upload(location, archive, name, settings),
                               f"diagnostics upload to {redact_url(location)}", retries,
                               retry_interval_s, self._sleep)
        except asyncio.CancelledError:
            raise
        except (TransferError, OSError) as exc:
            log.error("diagnostics upload failed: %s", exc)
            self._emit(DiagnosticsStatus.UPLOAD_FAILED, request_id)
        except Exception:
            log.exception("diagnostics upload failed unexpectedly")
            self._emit(DiagnosticsStatus.UPLOAD_FAILED, request_id)
        else:
            self._emit(DiagnosticsStatus.UPLOADED, request_id)
        finally:
            archive.unlink(missing_ok=True)
            self._status = DiagnosticsStatus.IDLE
