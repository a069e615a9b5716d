"""Reading and writing secret files (keys, passwords) with owner-only permissions.

A secret file given by the technician must be 0600 (or stricter): one that group or
others may read or write is refused, so a leaked copy is noticed at commissioning rather
than after an incident. Files the station writes are created 0600 and replaced
atomically (write to a temporary file, fsync, rename, fsync the directory), so a power cut
leaves the old or the new secret, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


class InsecureFileError(PermissionError):
    """A secret file is accessible to group or others."""


def check_secret_file(path: Path) -> None:
    """Refuse a secret file that group or others may access.

    Raises:
        InsecureFileError: mode has any group/other bit (expected 0600 or stricter).
        OSError: the file does not exist.
    """
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        raise InsecureFileError(
            f"{path}: mode {mode:04o} lets group/others access a secret; expected 0600"
            f" (chmod 600 {path})")


def read_secret_file(path: Path) -> bytes:
    """The content of ``path``, which must not be accessible to group or others.

    Raises:
        InsecureFileError: mode has any group/other bit (expected 0600 or stricter).
        OSError: the file cannot be read.
    """
    check_secret_file(path)
    return path.read_bytes()


def write_secret_file(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``, mode 0600.

    Raises:
        OSError: the directory is not writable or the disk is full (the old file stays).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make renames / unlinks in ``directory`` durable."""
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
