"""The firmware update flow, protocol-neutral (OCPP 1.6 §3.12, §5.19, §4.5; 2.0.1 L01).

::

    Idle ─update()─▶ (wait until retrieve time) ─▶ Downloading ─▶ DownloadFailed (retries used up)
                                                        │
                                                        ▼
                    Downloaded ─▶ [verify signature: SignatureVerified / InvalidSignature]
                        │
                        ▼ (wait until no transaction runs)
                    Installing ─▶ InstallationFailed (install command failed)
                        │
                        ▼ command succeeded → reboot → after the restart: Installed

The flow's state is one row of the table ``firmware_update`` in the state database, written
before each step, so after a power cut or the reboot the station picks up where it was and
reports the result (:meth:`FirmwareUpdate.resume`): Installed when the install command
succeeded before the reboot, or — if the board went down while the command ran — when the
running firmware version differs from the one before; InstallationFailed otherwise.

The engine speaks neutral names (:class:`FirmwareStatus`); each protocol adapter maps them
(OCPP 1.6: ``ocpp_client/v16/firmware.py``). Everything the engine needs from the station
comes through ports given to the constructor: install command, reboot, "is a transaction
running", a status callback, clocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
import sqlite3
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from evse.file_transfer import (
    TransferError,
    TransferSettings,
    check_url,
    clock_sleep,
    download,
    redact_url,
    with_retries,
)
from evse.sql_transaction import transaction
from evse.timers import Clock

log = logging.getLogger(__name__)


class FirmwareStatus(enum.Enum):
    """Progress of a firmware update (union of OCPP 1.6 FirmwareStatus, the 1.6 security
    whitepaper's signed statuses and OCPP 2.0.1 FirmwareStatusEnumType)."""

    IDLE = "idle"
    DOWNLOAD_SCHEDULED = "download_scheduled"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    DOWNLOAD_FAILED = "download_failed"
    SIGNATURE_VERIFIED = "signature_verified"
    INVALID_SIGNATURE = "invalid_signature"
    INSTALLING = "installing"
    INSTALL_REBOOTING = "install_rebooting"
    INSTALLED = "installed"
    INSTALLATION_FAILED = "installation_failed"


#: Statuses that end an update: afterwards the engine is idle again.
FINAL_STATUSES = frozenset({
    FirmwareStatus.DOWNLOAD_FAILED, FirmwareStatus.INVALID_SIGNATURE,
    FirmwareStatus.INSTALLATION_FAILED, FirmwareStatus.INSTALLED,
})


@dataclass(frozen=True)
class FirmwareUpdateRequest:
    """One update as the CSMS asked for it.

    Attributes:
        location: URL of the image (http, https, ftp; may carry credentials).
        retrieve_at_s: earliest download start, UTC epoch s (OCPP 1.6 retrieveDate).
        retries: attempts after the first failed download (OCPP 1.6 retries).
        retry_interval_s: wait between download attempts, s (OCPP 1.6 retryInterval).
        request_id: the CSMS's id of the request (signed update / 2.0.1), echoed in statuses.
        signature: base64 signature of the image (signed update), checked by the ``verify``
            port before install; None for an unsigned update.
        signing_certificate: PEM certificate of the signing key (signed update).
    """

    location: str
    retrieve_at_s: float
    retries: int
    retry_interval_s: float
    request_id: int | None = None
    signature: str | None = None
    signing_certificate: str | None = None


StatusCallback = Callable[[FirmwareStatus, "int | None"], None]
#: ``verify(path, request) -> True`` when the image's signature is good.
Verify = Callable[[Path, FirmwareUpdateRequest], Awaitable[bool]]

_TABLE = "firmware_update"


def migrate_firmware_update(conn: sqlite3.Connection) -> None:
    """Create the table of the pending firmware update (at most one row) if missing.

    Meant for the state database's migration list; idempotent.
    """
    conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {_TABLE} (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            location TEXT NOT NULL,
            retrieve_at REAL NOT NULL,
            retries INTEGER NOT NULL,
            retry_interval REAL NOT NULL,
            request_id INTEGER,
            signature TEXT,
            signing_certificate TEXT,
            phase TEXT NOT NULL,
            file TEXT,
            version_before TEXT
        )"""
    )


class FirmwareUpdateBusy(Exception):
    """An image is being installed (or the board is rebooting into it): a new update request
    cannot replace it now."""


class _Phase(enum.Enum):
    SCHEDULED = "scheduled"
    DOWNLOADED = "downloaded"
    INSTALLING = "installing"
    REBOOTING = "rebooting"


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
#: The engine's download files: ``<8 hex digits>-<image name>`` (and its ``.part``).
_DOWNLOAD_NAME = re.compile(r"^[0-9a-f]{8}-")


def image_file_name(location: str) -> str:
    """A safe local file name for the image at ``location``: the URL's last path segment
    with anything outside ``[A-Za-z0-9._-]`` replaced, or ``firmware.bin``."""
    name = Path(urllib.parse.unquote(urllib.parse.urlsplit(location).path)).name
    name = _SAFE_NAME.sub("_", name).lstrip(".")
    return name or "firmware.bin"


class FirmwareUpdate:
    """Runs one firmware update at a time.

    Args:
        conn: the state database (autocommit connection, ``evse.state_db``).
        download_dir: where images are stored (in the state directory); the engine deletes
            only its own files there.
        clock: timer clock (``evse.timers``) for the retrieve wait and retry intervals.
        wall: UTC epoch seconds now (``evse.clock.Clock.now``), for ``retrieve_at_s``.
        install: installs the image at the given path; raises on failure
            (``SystemActions.install_firmware``).
        reboot: stops what runs and reboots the board (the station's hard reset); raising
            means the reboot did not happen.
        transaction_running: True while any transaction runs (install waits for none).
        on_status: called with each status and the request id, on the event loop.
        running_version: the firmware version running now (compared after a reboot).
        verify: checks a signed image's signature (see ``ocpp_client.security.
            firmware_signature.verify_firmware``); None: signed requests cannot be verified
            and end InvalidSignature.
        hold_transactions: called True while waiting to install (the station should refuse
            new transactions so the wait ends), False when that is over; optional.
        transfer: timeouts, size bound, TLS settings for the download.
    """

    def __init__(self, *, conn: sqlite3.Connection, download_dir: Path, clock: Clock,
                 wall: Callable[[], float], install: Callable[[Path], Awaitable[None]],
                 reboot: Callable[[], Awaitable[None]],
                 transaction_running: Callable[[], bool], on_status: StatusCallback,
                 running_version: str | None = None, verify: Verify | None = None,
                 hold_transactions: Callable[[bool], None] | None = None,
                 transfer: TransferSettings | None = None) -> None:
        self._conn = conn
        self._dir = download_dir
        self._clock = clock
        self._sleep = clock_sleep(clock)
        self._wall = wall
        self._install = install
        self._reboot = reboot
        self._transaction_running = transaction_running
        self._on_status = on_status
        self._running_version = running_version
        self._verify = verify
        self._hold = hold_transactions
        self._transfer = transfer or TransferSettings()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._status = FirmwareStatus.IDLE
        self._request_id: int | None = None
        migrate_firmware_update(conn)

    # --- public API ----------------------------------------------------------------------

    @property
    def status(self) -> FirmwareStatus:
        """The current status: the last one reported while an update runs, else IDLE (what a
        triggered FirmwareStatusNotification reports, OCPP 1.6 §4.5 / §5.17)."""
        return self._status

    @property
    def request_id(self) -> int | None:
        """The CSMS's id of the running update (signed update / 2.0.1), None when idle or
        for an unsigned 1.6 UpdateFirmware."""
        return None if self._status is FirmwareStatus.IDLE else self._request_id

    @property
    def busy(self) -> bool:
        """True while an update is scheduled, downloading, waiting or installing."""
        return self._task is not None and not self._task.done()

    def update(self, request: FirmwareUpdateRequest) -> bool:
        """Start ``request`` (OCPP 1.6 UpdateFirmware.req). A running update is cancelled
        and replaced; returns True when that happened. Must run on the event loop.

        Raises:
            TransferError: the location's scheme is not supported (answer the CSMS
                accordingly; nothing was started).
            FirmwareUpdateBusy: an image is being installed; the running update goes on.
        """
        check_url(request.location)
        if self.busy and self._status in (FirmwareStatus.INSTALLING,
                                          FirmwareStatus.INSTALL_REBOOTING):
            raise FirmwareUpdateBusy("a firmware image is being installed")
        replaced = self.busy
        if self._task is not None:
            self._task.cancel()
        self._cleanup_files()
        with transaction(self._conn):
            self._conn.execute(f"DELETE FROM {_TABLE}")
            self._conn.execute(
                f"INSERT INTO {_TABLE} (id, location, retrieve_at, retries, retry_interval, "
                "request_id, signature, signing_certificate, phase) "
                "VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)",
                (request.location, request.retrieve_at_s, request.retries,
                 request.retry_interval_s, request.request_id, request.signature,
                 request.signing_certificate, _Phase.SCHEDULED.value))
        log.info("firmware update from %s, retrieve at %.0f (UTC s), retries %d every %g s",
                 redact_url(request.location), request.retrieve_at_s, request.retries,
                 request.retry_interval_s)
        self._start(request, _Phase.SCHEDULED, None)
        if request.retrieve_at_s > self._wall():
            self._emit(FirmwareStatus.DOWNLOAD_SCHEDULED)
        return replaced

    async def resume(self) -> None:
        """Continue an update persisted before a restart; call once at start-up, when status
        notifications can be queued. After the install reboot this reports Installed or
        InstallationFailed and clears the update."""
        row = self._conn.execute(
            f"SELECT location, retrieve_at, retries, retry_interval, request_id, signature, "
            f"signing_certificate, phase, file, version_before FROM {_TABLE}").fetchone()
        if row is None:
            return
        request = FirmwareUpdateRequest(row[0], row[1], row[2], row[3], row[4], row[5], row[6])
        phase, file, version_before = _Phase(row[7]), row[8], row[9]
        self._request_id = request.request_id
        if phase is _Phase.REBOOTING:
            self._finish(FirmwareStatus.INSTALLED)
        elif phase is _Phase.INSTALLING:
            changed = (self._running_version is not None and version_before is not None
                       and self._running_version != version_before)
            log.warning("the board restarted while the firmware install ran; running version "
                        "%s, before %s", self._running_version, version_before)
            self._finish(FirmwareStatus.INSTALLED if changed
                         else FirmwareStatus.INSTALLATION_FAILED)
        else:
            if phase is _Phase.DOWNLOADED:
                self._status = FirmwareStatus.DOWNLOADED
            self._start(request, phase, Path(file) if file else None)

    def transactions_changed(self) -> None:
        """Tell the engine a transaction ended (or started): an install waiting for the
        station to be idle re-checks :paramref:`transaction_running`."""
        self._idle.set()

    async def close(self) -> None:
        """Stop the running flow (its persisted state stays for :meth:`resume`)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # --- the flow ------------------------------------------------------------------------

    def _start(self, request: FirmwareUpdateRequest, phase: _Phase, file: Path | None) -> None:
        self._request_id = request.request_id
        self._task = asyncio.get_running_loop().create_task(
            self._run(request, phase, file), name="firmware-update")

    def _emit(self, status: FirmwareStatus) -> None:
        self._status = status
        log.info("firmware update: %s", status.value)
        try:
            self._on_status(status, self._request_id)
        except Exception:
            log.exception("firmware status callback failed")

    def _finish(self, status: FirmwareStatus) -> None:
        self._emit(status)
        self._status = FirmwareStatus.IDLE
        self._conn.execute(f"DELETE FROM {_TABLE}")
        self._cleanup_files()
        if self._hold is not None:
            self._hold(False)

    def _cleanup_files(self) -> None:
        # Only the engine's own downloads: a misconfigured directory loses nothing else.
        if self._dir.is_dir():
            for path in self._dir.iterdir():
                if _DOWNLOAD_NAME.match(path.name) and path.is_file():
                    path.unlink(missing_ok=True)

    def _set_phase(self, phase: _Phase, **columns: str | None) -> None:
        assignments = ", ".join(["phase = ?", *(f"{name} = ?" for name in columns)])
        self._conn.execute(f"UPDATE {_TABLE} SET {assignments} WHERE id = 1",
                           (phase.value, *columns.values()))

    async def _run(self, request: FirmwareUpdateRequest, phase: _Phase, file: Path | None
                   ) -> None:
        try:
            if phase is _Phase.SCHEDULED:
                file = await self._download(request)
                if file is None:
                    return
            assert file is not None
            if request.signature is not None and not await self._verified(file, request):
                return
            await self._wait_until_idle()
            await self._install_and_reboot(file)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Supervision: an unexpected error ends the update visibly, never silently.
            log.exception("firmware update failed unexpectedly")
            self._finish(FirmwareStatus.INSTALLATION_FAILED
                         if self._status in (FirmwareStatus.INSTALLING,
                                             FirmwareStatus.DOWNLOADED,
                                             FirmwareStatus.SIGNATURE_VERIFIED)
                         else FirmwareStatus.DOWNLOAD_FAILED)

    async def _download(self, request: FirmwareUpdateRequest) -> Path | None:
        delay = request.retrieve_at_s - self._wall()
        if delay > 0:
            if self._status is not FirmwareStatus.DOWNLOAD_SCHEDULED:
                self._emit(FirmwareStatus.DOWNLOAD_SCHEDULED)
            await self._sleep(delay)
        # A fresh name per request: the worker thread of a cancelled, replaced download may
        # still be writing its own file.
        file = self._dir / f"{uuid.uuid4().hex[:8]}-{image_file_name(request.location)}"
        self._emit(FirmwareStatus.DOWNLOADING)
        settings = self._transfer
        try:
            await with_retries(lambda: download(request.location, file, settings),
                               "firmware download", request.retries,
                               request.retry_interval_s, self._sleep)
        except TransferError:
            self._finish(FirmwareStatus.DOWNLOAD_FAILED)
            return None
        self._set_phase(_Phase.DOWNLOADED, file=str(file))
        self._emit(FirmwareStatus.DOWNLOADED)
        return file

    async def _verified(self, file: Path, request: FirmwareUpdateRequest) -> bool:
        ok = False
        if self._verify is None:
            log.error("signed firmware update but no signature verifier is configured")
        else:
            ok = await self._verify(file, request)
        if not ok:
            self._finish(FirmwareStatus.INVALID_SIGNATURE)
            return False
        self._emit(FirmwareStatus.SIGNATURE_VERIFIED)
        return True

    async def _wait_until_idle(self) -> None:
        if not self._transaction_running():
            return
        log.info("firmware install waits until no transaction runs")
        if self._hold is not None:
            self._hold(True)
        while self._transaction_running():
            self._idle.clear()
            await self._idle.wait()

    async def _install_and_reboot(self, file: Path) -> None:
        self._set_phase(_Phase.INSTALLING, version_before=self._running_version)
        self._emit(FirmwareStatus.INSTALLING)
        try:
            await self._install(file)
        except Exception as exc:
            log.error("firmware install failed: %s", exc)
            self._finish(FirmwareStatus.INSTALLATION_FAILED)
            return
        self._set_phase(_Phase.REBOOTING)
        self._emit(FirmwareStatus.INSTALL_REBOOTING)
        try:
            await self._reboot()
        except Exception as exc:
            # The image is installed; it becomes active with the next reboot.
            log.error("reboot after the firmware install failed: %s", exc)
            self._finish(FirmwareStatus.INSTALLED)


__all__ = [
    "FINAL_STATUSES",
    "FirmwareStatus",
    "FirmwareUpdate",
    "FirmwareUpdateBusy",
    "FirmwareUpdateRequest",
    "image_file_name",
    "migrate_firmware_update",
]
