"""File transfer for firmware images and diagnostics archives: HTTP(S) and FTP.

Downloads (OCPP 1.6 §5.19 UpdateFirmware, 2.0.1 L01) stream into a file, bounded in size;
uploads (OCPP 1.6 §5.9 GetDiagnostics, 2.0.1 N01 GetLog) send a file by HTTP(S) POST
(``multipart/form-data``, one part named ``file``), HTTP(S) PUT, or FTP ``STOR``. Only
Python's own ``urllib.request`` and ``ftplib`` are used.

Every transfer function here blocks; the ``*_with_retries`` coroutines run each attempt on
a worker thread (``asyncio.to_thread``) so the event loop never waits on the network, and
wait between attempts through an injectable ``sleep`` (tests drive it with a manual clock).

Retries (OCPP 1.6 §5.19 / §5.9 ``retries``, ``retryInterval``): ``retries`` is the number
of attempts *after* the first one (so ``retries = 0`` means one attempt); ``retryInterval``
is the wait in seconds between the end of a failed attempt and the next one.

URLs may carry credentials (``ftp://user:password@host/dir``): they are used for the
transfer and never logged; every message names the URL through :func:`redact_url`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import logging
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from evse.timers import Clock

log = logging.getLogger(__name__)

#: URL schemes this module transfers; the OCPP 1.6 SupportedFileTransferProtocols names
#: are their upper-case forms (FTP, HTTP, HTTPS).
SUPPORTED_SCHEMES: tuple[str, ...] = ("ftp", "http", "https")

#: Read / write block size, bytes.
CHUNK_BYTES = 64 * 1024

#: Default bound on a download, bytes (512 MiB: larger than any controller image we know).
DEFAULT_MAX_BYTES = 512 * 1024 * 1024

#: Default socket timeout, s: how long one connect / read / write may stall.
DEFAULT_TIMEOUT_S = 30.0


class TransferError(Exception):
    """A transfer failed: bad URL, unsupported scheme, network / server error, too large.

    The message never contains the URL's credentials.
    """


@dataclass(frozen=True)
class TransferSettings:
    """How transfers are made.

    Attributes:
        timeout_s: socket timeout per connect / read / write, s.
        max_bytes: largest download accepted, bytes; a larger one fails (and is deleted).
        http_upload_method: ``"POST"`` (multipart/form-data to the location URL) or
            ``"PUT"`` (the file body to ``<location>/<file name>``).
        ssl_context: trust settings for HTTPS (None: the system's default trust store).
    """

    timeout_s: float = DEFAULT_TIMEOUT_S
    max_bytes: int = DEFAULT_MAX_BYTES
    http_upload_method: str = "POST"
    ssl_context: ssl.SSLContext | None = None


def redact_url(url: str) -> str:
    """``url`` with its password (and user name) replaced by ``***``; for logs and errors."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"***@{host}"))


def check_url(url: str) -> str:
    """The URL's scheme (lower case) when this module can transfer it.

    Raises:
        TransferError: not a URL, no host, or a scheme outside :data:`SUPPORTED_SCHEMES`.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise TransferError(f"invalid URL {redact_url(url)}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SUPPORTED_SCHEMES:
        raise TransferError(
            f"unsupported scheme {scheme or '(none)'!r} in {redact_url(url)}; "
            f"supported: {', '.join(SUPPORTED_SCHEMES)}"
        )
    if not parts.hostname:
        raise TransferError(f"no host in {redact_url(url)}")
    return scheme


# --- download ------------------------------------------------------------------------------


def download(url: str, dest: Path, settings: TransferSettings = TransferSettings()) -> int:
    """Fetch ``url`` into ``dest`` (blocking); returns the size, bytes.

    The data goes to ``<dest>.part`` first and is renamed to ``dest`` only when complete,
    so a cut transfer never leaves a file that looks downloaded.

    Raises:
        TransferError: unsupported URL, network or server error (HTTP status ≥ 400, FTP
            error reply), timeout, or more than ``settings.max_bytes``.
    """
    scheme = check_url(url)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with part.open("wb") as out:
            if scheme == "ftp":
                size = _ftp_download(url, out, settings)
            else:
                size = _http_download(url, out, settings)
            out.flush()
            os.fsync(out.fileno())
        part.replace(dest)
    except TransferError:
        part.unlink(missing_ok=True)
        raise
    except (OSError, ftplib.Error, EOFError) as exc:
        part.unlink(missing_ok=True)
        raise TransferError(f"download of {redact_url(url)} failed: {_describe(exc)}") from None
    return size


def _http_download(url: str, out: BinaryIO, settings: TransferSettings) -> int:
    request = urllib.request.Request(url, method="GET")
    with _open(request, settings) as response:
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > settings.max_bytes:
            raise TransferError(
                f"download of {redact_url(url)}: {length} bytes exceed the limit of "
                f"{settings.max_bytes}"
            )
        size = 0
        while chunk := response.read(CHUNK_BYTES):
            size = _bounded_write(out, chunk, size, settings.max_bytes, url)
        if length is not None and length.isdigit() and size != int(length):
            raise TransferError(
                f"download of {redact_url(url)}: got {size} of {length} bytes"
            )
        return size


def _ftp_download(url: str, out: BinaryIO, settings: TransferSettings) -> int:
    parts = urllib.parse.urlsplit(url)
    *directories, name = _ftp_segments(parts.path)
    if not name:
        raise TransferError(f"no file name in {redact_url(url)}")
    size = 0

    def write(chunk: bytes) -> None:
        nonlocal size
        size = _bounded_write(out, chunk, size, settings.max_bytes, url)

    with _ftp_login(parts, settings) as ftp:
        _ftp_cwd(ftp, directories)
        ftp.retrbinary(f"RETR {name}", write, blocksize=CHUNK_BYTES)
    return size


def _ftp_segments(path: str) -> list[str]:
    """The URL path's segments, decoded (RFC 1738 §3.2.2: relative to the login directory;
    ``%2F`` at the start of a segment makes it absolute)."""
    return [urllib.parse.unquote(segment) for segment in path.split("/")[1:]]


def _ftp_cwd(ftp: ftplib.FTP, directories: list[str]) -> None:
    for directory in directories:
        if directory:
            ftp.cwd(directory)


def _bounded_write(out: BinaryIO, chunk: bytes, size: int, max_bytes: int, url: str) -> int:
    size += len(chunk)
    if size > max_bytes:
        raise TransferError(
            f"download of {redact_url(url)} exceeds the limit of {max_bytes} bytes"
        )
    out.write(chunk)
    return size


# --- upload --------------------------------------------------------------------------------


def upload(location: str, src: Path, file_name: str | None = None,
           settings: TransferSettings = TransferSettings()) -> None:
    """Send the file ``src`` to ``location`` (blocking), stored under ``file_name``
    (default: ``src.name``).

    ``location`` is the directory URL the CSMS gave (OCPP 1.6 §5.9): FTP stores the file in
    that directory (``STOR``; the path is relative to the login directory, RFC 1738);
    HTTP(S) POST sends a multipart/form-data body with one part ``file`` (filename =
    ``file_name``) to ``location`` itself; HTTP(S) PUT sends the file as the body to
    ``<location>/<file_name>``.

    Raises:
        TransferError: unsupported URL, file unreadable, network or server error (HTTP
            status ≥ 400, FTP error reply), or timeout.
    """
    scheme = check_url(location)
    name = file_name or src.name
    try:
        if scheme == "ftp":
            _ftp_upload(location, src, name, settings)
        elif settings.http_upload_method.upper() == "PUT":
            _http_put(_join(location, name), src, settings)
        else:
            _http_post(location, src, name, settings)
    except TransferError:
        raise
    except (OSError, ftplib.Error, EOFError) as exc:
        raise TransferError(
            f"upload to {redact_url(location)} failed: {_describe(exc)}"
        ) from None


def _join(location: str, name: str) -> str:
    parts = urllib.parse.urlsplit(location)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urllib.parse.urlunsplit(parts._replace(path=path + urllib.parse.quote(name)))


def _file_chunks(src: Path) -> Iterator[bytes]:
    with src.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk


def _http_put(url: str, src: Path, settings: TransferSettings) -> None:
    request = urllib.request.Request(
        url, data=_file_chunks(src), method="PUT",
        headers={"Content-Type": "application/octet-stream",
                 "Content-Length": str(src.stat().st_size)},
    )
    with _open(request, settings) as response:
        response.read()


def _http_post(url: str, src: Path, name: str, settings: TransferSettings) -> None:
    boundary = uuid.uuid4().hex
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    head = (f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + src.stat().st_size + len(tail)

    def body() -> Iterator[bytes]:
        yield head
        yield from _file_chunks(src)
        yield tail

    request = urllib.request.Request(
        url, data=body(), method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                 "Content-Length": str(length)},
    )
    with _open(request, settings) as response:
        response.read()


def _ftp_upload(location: str, src: Path, name: str, settings: TransferSettings) -> None:
    parts = urllib.parse.urlsplit(location)
    with _ftp_login(parts, settings) as ftp, src.open("rb") as f:
        _ftp_cwd(ftp, _ftp_segments(parts.path))
        ftp.storbinary(f"STOR {PurePosixPath(name).name}", f, blocksize=CHUNK_BYTES)


# --- shared --------------------------------------------------------------------------------


def _open(request: urllib.request.Request, settings: TransferSettings) -> Any:
    url = request.full_url
    try:
        return urllib.request.urlopen(
            request, timeout=settings.timeout_s, context=settings.ssl_context
        )
    except urllib.error.HTTPError as exc:
        exc.close()
        raise TransferError(
            f"{request.get_method()} {redact_url(url)}: HTTP {exc.code} {exc.reason}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise TransferError(
            f"{request.get_method()} {redact_url(url)}: {_describe(exc)}"
        ) from None


@contextlib.contextmanager
def _ftp_login(parts: urllib.parse.SplitResult, settings: TransferSettings
               ) -> Iterator[ftplib.FTP]:
    ftp = ftplib.FTP(timeout=settings.timeout_s)
    try:
        ftp.connect(parts.hostname or "", parts.port or 21)
        ftp.login(urllib.parse.unquote(parts.username or "anonymous"),
                  urllib.parse.unquote(parts.password or ""))
        yield ftp
        with contextlib.suppress(OSError, ftplib.Error, EOFError):
            ftp.quit()
    finally:
        ftp.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return f"{type(exc.reason).__name__}: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


# --- retries -------------------------------------------------------------------------------

Sleep = Callable[[float], Awaitable[None]]


async def with_retries(attempt: Callable[[], object], what: str, retries: int,
                       retry_interval_s: float, sleep: Sleep,
                       on_failure: Callable[[int, TransferError], None] | None = None) -> None:
    """Run the blocking ``attempt`` on a worker thread until it succeeds, at most
    ``1 + retries`` times, waiting ``retry_interval_s`` between attempts via ``sleep``
    (OCPP 1.6 §5.19 / §5.9 retries and retryInterval).

    ``on_failure(attempt_number, error)`` is told about each failed attempt (1-based).

    Raises:
        TransferError: the last attempt's error, when all attempts failed.
    """
    attempts = 1 + max(0, retries)
    for number in range(1, attempts + 1):
        try:
            await asyncio.to_thread(attempt)
            return
        except TransferError as exc:
            log.warning("%s: attempt %d of %d failed: %s", what, number, attempts, exc)
            if on_failure is not None:
                on_failure(number, exc)
            if number == attempts:
                raise
        await sleep(max(0.0, retry_interval_s))


def clock_sleep(clock: Clock) -> Sleep:
    """A ``sleep(seconds)`` coroutine function running on ``clock`` (``evse.timers``), so
    retry waits follow a :class:`~evse.timers.ManualClock` in tests."""

    async def sleep(delay_s: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        handle = clock.call_later(delay_s, wake)
        try:
            await future
        finally:
            handle.cancel()

    return sleep
