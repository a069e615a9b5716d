"""File transfer against a real HTTP server and a real FTP server on loopback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from evse.file_transfer import (
    TransferError,
    TransferSettings,
    clock_sleep,
    download,
    redact_url,
    upload,
    with_retries,
)
from evse.timers import ManualClock
from tests.features.clockdrive import drive
from tests.features.servers import FtpServer, HttpServer

IMAGE = bytes(range(256)) * 1000  # 256 kB, more than one chunk


@pytest.fixture
def http():
    with HttpServer() as server:
        server.state.files["/fw/image.bin"] = IMAGE
        yield server


def test_http_download_is_byte_exact(http: HttpServer, tmp_path: Path) -> None:
    dest = tmp_path / "dl" / "image.bin"
    assert download(http.url("/fw/image.bin"), dest) == len(IMAGE)
    assert dest.read_bytes() == IMAGE
    assert list(dest.parent.iterdir()) == [dest]


def test_http_404_fails_and_leaves_no_file(http: HttpServer, tmp_path: Path) -> None:
    dest = tmp_path / "image.bin"
    with pytest.raises(TransferError, match="404"):
        download(http.url("/fw/missing.bin"), dest)
    assert list(tmp_path.iterdir()) == []


def test_download_larger_than_the_bound_fails(http: HttpServer, tmp_path: Path) -> None:
    dest = tmp_path / "image.bin"
    with pytest.raises(TransferError, match="limit"):
        download(http.url("/fw/image.bin"), dest, TransferSettings(max_bytes=1000))
    assert list(tmp_path.iterdir()) == []


def test_unsupported_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TransferError, match="unsupported scheme 'sftp'"):
        download("sftp://host/x", tmp_path / "x")


def test_ftp_download_with_credentials_in_the_url(tmp_path: Path) -> None:
    root = tmp_path / "ftproot"
    (root / "fw").mkdir(parents=True)
    (root / "fw" / "image.bin").write_bytes(IMAGE)
    with FtpServer(root) as ftp:
        dest = tmp_path / "image.bin"
        assert download(ftp.url("/fw/image.bin"), dest) == len(IMAGE)
    assert dest.read_bytes() == IMAGE


def test_http_post_upload_is_multipart_with_file_name(http: HttpServer, tmp_path: Path
                                                      ) -> None:
    src = tmp_path / "a.tar.gz"
    src.write_bytes(IMAGE)
    upload(http.url("/upload"), src, "CP1-diag.tar.gz")
    [received] = http.state.uploads
    assert (received.method, received.path, received.file_name) == (
        "POST", "/upload", "CP1-diag.tar.gz")
    assert received.body == IMAGE


def test_http_put_upload_goes_to_location_slash_name(http: HttpServer, tmp_path: Path
                                                     ) -> None:
    src = tmp_path / "a.tar.gz"
    src.write_bytes(b"archive")
    upload(http.url("/logs"), src, "CP1 diag.tar.gz", TransferSettings(http_upload_method="PUT"))
    [received] = http.state.uploads
    assert (received.method, received.path, received.body) == (
        "PUT", "/logs/CP1%20diag.tar.gz", b"archive")


def test_ftp_upload_stores_in_the_location_directory(tmp_path: Path) -> None:
    root = tmp_path / "ftproot"
    (root / "incoming").mkdir(parents=True)
    src = tmp_path / "a.tar.gz"
    src.write_bytes(IMAGE)
    with FtpServer(root) as ftp:
        upload(ftp.url("/incoming"), src, "CP1-diag.tar.gz")
    assert (root / "incoming" / "CP1-diag.tar.gz").read_bytes() == IMAGE


async def test_retries_until_the_server_answers(http: HttpServer, tmp_path: Path) -> None:
    http.state.fail_next = 2
    clock = ManualClock()
    start = clock.monotonic()
    failures: list[int] = []
    dest = tmp_path / "image.bin"
    await drive(with_retries(lambda: download(http.url("/fw/image.bin"), dest), "download",
                             retries=3, retry_interval_s=30, sleep=clock_sleep(clock),
                             on_failure=lambda n, e: failures.append(n)), clock)
    assert dest.read_bytes() == IMAGE
    assert failures == [1, 2]
    assert http.state.requests == ["GET /fw/image.bin"] * 3
    # two waits of retryInterval between three attempts
    assert clock.monotonic() - start == 60


async def test_gives_up_after_one_plus_retries_attempts(http: HttpServer, tmp_path: Path
                                                        ) -> None:
    clock = ManualClock()
    with pytest.raises(TransferError, match="404"):
        await drive(with_retries(
            lambda: download(http.url("/fw/gone.bin"), tmp_path / "x"), "download",
            retries=2, retry_interval_s=5, sleep=clock_sleep(clock)), clock)
    assert len(http.state.requests) == 3


async def test_ftp_server_that_comes_back(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                          ) -> None:
    root = tmp_path / "ftproot"
    root.mkdir()
    (root / "image.bin").write_bytes(IMAGE)
    ftp = FtpServer(root)  # not running yet: connection refused
    clock = ManualClock()
    dest = tmp_path / "image.bin"
    caplog.set_level(logging.DEBUG)
    try:
        await drive(with_retries(lambda: download(ftp.url("/image.bin"), dest), "download",
                                 retries=1, retry_interval_s=10, sleep=clock_sleep(clock),
                                 on_failure=lambda n, e: ftp.start()), clock)
    finally:
        ftp.stop()
    assert dest.read_bytes() == IMAGE
    assert "attempt 1 of 2 failed" in caplog.text
    assert FtpServer.PASSWORD not in caplog.text and "p%40ss" not in caplog.text


def test_credentials_never_in_errors(tmp_path: Path) -> None:
    url = "ftp://user:s3cret@127.0.0.1:1/x.bin"
    with pytest.raises(TransferError) as info:
        download(url, tmp_path / "x", TransferSettings(timeout_s=2))
    assert "s3cret" not in str(info.value)
    assert redact_url(url) == "ftp://***@127.0.0.1:1/x.bin"
    assert redact_url("http://host/x") == "http://host/x"


def test_https_download_and_upload_with_a_private_ca(tmp_path: Path) -> None:
    import ssl

    from tests.security.pki import SERVER_AUTH, issue, make_root

    root = make_root("Test Root")
    leaf = issue(root, "127.0.0.1", ip="127.0.0.1", eku=SERVER_AUTH)
    cert, key = leaf.write(tmp_path, "server")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cadata=root.cert_pem.decode())
    settings = TransferSettings(ssl_context=client_ctx)
    with HttpServer(tls=server_ctx) as https:
        https.state.files["/fw.bin"] = IMAGE
        assert download(https.url("/fw.bin"), tmp_path / "fw.bin", settings) == len(IMAGE)
        upload(https.url("/up"), tmp_path / "fw.bin", "x.bin", settings)
        # the system trust store does not know the private CA: refused
        with pytest.raises(TransferError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
            download(https.url("/fw.bin"), tmp_path / "other.bin")
    assert (tmp_path / "fw.bin").read_bytes() == IMAGE
    assert https.state.uploads[0].body == IMAGE
