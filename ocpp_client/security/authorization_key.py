"""The AuthorizationKey: the HTTP Basic auth password of security profiles 1 and 2
(1.6 security whitepaper ed. 3, "Security profiles" and configuration key
AuthorizationKey; OCPP-J 1.6 "Security";
OCPP 2.0.1 BasicAuthPassword).

- At commissioning it comes from ``[security] authorization_key_file`` (0600, never in
  the TOML itself); the CSMS changes it with ChangeConfiguration AuthorizationKey, and the
  new key is kept in the state directory (0600, replaced atomically) and wins from then on.
- It is write-only: GetConfiguration never shows its value (:func:`get_configuration_value`).
- It never reaches a log line: :class:`AuthorizationKey` prints as ``AuthorizationKey(***)``.

Key format: 16 to 40 printable ASCII characters (whitepaper: "minimal length 16 bytes";
2.0.1 BasicAuthPassword: 16–40). A key of exactly 40 hex digits is the 20-byte binary
key written in hex, as in the OCPP-J 1.6 example (key
``0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF`` → header
``Basic QUwxMDAwOgABAgMEBQYH////////////////`` for station ``AL1000``): its bytes are the
password. Any other key is used as its ASCII text.
"""

from __future__ import annotations

import base64
import hmac
import string
from pathlib import Path

from ocpp_client.security.secret_files import read_secret_file, write_secret_file

#: Configuration key name (1.6 whitepaper).
AUTHORIZATION_KEY = "AuthorizationKey"
#: Keys GetConfiguration lists without a value (whitepaper: AuthorizationKey is write-only).
WRITE_ONLY_KEYS = frozenset({AUTHORIZATION_KEY})
#: File name of the CSMS-set key inside the state directory.
STATE_FILE_NAME = "authorization_key"

MIN_LENGTH = 16
MAX_LENGTH = 40
_PRINTABLE = frozenset(string.ascii_letters + string.digits + string.punctuation)
_HEX = frozenset(string.hexdigits)


class AuthorizationKey:
    """A validated AuthorizationKey; its text is only reachable through :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        """Raises: ValueError: not 16–40 printable ASCII characters (the message never
        contains the value)."""
        if not MIN_LENGTH <= len(value) <= MAX_LENGTH:
            raise ValueError(f"AuthorizationKey must be {MIN_LENGTH}-{MAX_LENGTH} characters,"
                             f" got {len(value)}")
        if not set(value) <= _PRINTABLE:
            raise ValueError("AuthorizationKey must be printable ASCII without spaces")
        self._value = value

    def reveal(self) -> str:
        """The key text (only for building the Authorization header or storing it)."""
        return self._value

    def password(self) -> bytes:
        """The Basic auth password bytes: 40 hex digits decode to 20 bytes (OCPP-J 1.6
        example), any other key is its ASCII text."""
        if len(self._value) == 40 and set(self._value) <= _HEX:
            return bytes.fromhex(self._value)
        return self._value.encode("ascii")

    def basic_auth_header(self, station_id: str) -> str:
        """The ``Authorization`` header value: ``Basic base64(<station id>:<password>)``
        (RFC 7617; user = the charge point identity)."""
        raw = station_id.encode("utf-8") + b":" + self.password()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AuthorizationKey):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "AuthorizationKey(***)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("AuthorizationKey must not be pickled")


def get_configuration_value(key: str, value: str | None) -> str | None:
    """The value GetConfiguration.conf may show for ``key``: None (omitted) for a
    write-only key such as AuthorizationKey, else ``value`` unchanged."""
    return None if key in WRITE_ONLY_KEYS else value


class AuthorizationKeyStore:
    """Where the current AuthorizationKey comes from: the CSMS-set key in the state
    directory, else the commissioning file, else none."""

    def __init__(self, state_dir: Path, commissioning_file: Path | None = None) -> None:
        self._state_file = state_dir / STATE_FILE_NAME
        self._commissioning_file = commissioning_file

    def current(self) -> AuthorizationKey | None:
        """The key to send, or None when none is configured.

        Raises:
            InsecureFileError: the key file is readable by group/others.
            ValueError: the stored key is malformed (names the file, not the key).
            OSError: the file cannot be read.
        """
        for path in (self._state_file, self._commissioning_file):
            if path is None or not path.exists():
                continue
            text = read_secret_file(path).decode("ascii", errors="replace").strip()
            try:
                return AuthorizationKey(text)
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None
        return None

    def change(self, value: str) -> AuthorizationKey:
        """ChangeConfiguration AuthorizationKey: validate and store ``value`` (0600).

        Returns the new key; the caller answers Accepted and reconnects with it.

        Raises:
            ValueError: malformed key (answer Rejected); nothing is stored.
            OSError: the state directory is not writable (nothing changes).
        """
        key = AuthorizationKey(value)
        write_secret_file(self._state_file, key.reveal().encode("ascii") + b"\n")
        return key
