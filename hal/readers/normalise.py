"""UIDs → idTags in the form CSMSs expect: uppercase hex, no separators (OCPP 1.6 idTag is
CiString20Type, so at most 20 characters)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEPARATORS = re.compile(r"[\s:\-.]")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")

#: OCPP 1.6 IdToken length limit (CiString20Type).
MAX_ID_TAG_LENGTH = 20


@dataclass(frozen=True, slots=True)
class UidFormat:
    """How a reader's UID becomes an idTag.

    Attributes:
        uppercase: uppercase hex digits (else lowercase).
        reverse_bytes: reverse the byte order (some readers print the UID LSB first).
        input_format: "hex" (bytes as hex digits, any of ``: - . space`` between them) or
            "decimal" (the UID as one decimal number, as many "EM/Wiegand" readers print it).
        decimal_bytes: byte length of a decimal UID (4 for a 4-byte NUID).
    """

    uppercase: bool = True
    reverse_bytes: bool = False
    input_format: str = "hex"
    decimal_bytes: int = 4


def uid_to_id_tag(uid: bytes, fmt: UidFormat = UidFormat()) -> str:
    """idTag for raw UID bytes (e.g. the NFCID1 from a PN532).

    Raises:
        ValueError: empty UID or longer than :data:`MAX_ID_TAG_LENGTH` hex digits.
    """
    if not uid:
        raise ValueError("empty UID")
    data = uid[::-1] if fmt.reverse_bytes else uid
    text = data.hex()
    text = text.upper() if fmt.uppercase else text.lower()
    if len(text) > MAX_ID_TAG_LENGTH:
        raise ValueError(f"UID {text} longer than {MAX_ID_TAG_LENGTH} characters")
    return text


def normalise_uid(text: str, fmt: UidFormat = UidFormat()) -> str:
    """idTag for a UID as a reader printed it ("04:a2:2b:1c", "04A22B1C", "0012345678").

    Raises:
        ValueError: not a UID in the configured ``input_format``.
    """
    text = text.strip()
    if fmt.input_format == "decimal":
        if not text.isdigit():
            raise ValueError(f"not a decimal UID: {text!r}")
        value = int(text)
        if value >= 1 << (8 * fmt.decimal_bytes):
            raise ValueError(f"decimal UID {text} exceeds {fmt.decimal_bytes} bytes")
        return uid_to_id_tag(value.to_bytes(fmt.decimal_bytes, "big"), fmt)
    digits = _SEPARATORS.sub("", text)
    if not digits or not _HEX.match(digits) or len(digits) % 2:
        raise ValueError(f"not a hex UID: {text!r}")
    return uid_to_id_tag(bytes.fromhex(digits), fmt)


class Debouncer:
    """Suppresses repeated reads of a card that stays on (or comes back to) the reader
    within ``hold_s`` seconds of its last read."""

    def __init__(self, hold_s: float = 2.0) -> None:
        self.hold_s = hold_s
        self._last: dict[str, float] = {}

    def accept(self, id_tag: str, now: float) -> bool:
        """True when ``id_tag`` (read at monotonic ``now``) is a new presentation."""
        last = self._last.get(id_tag)
        self._last[id_tag] = now
        for tag, seen in list(self._last.items()):
            if now - seen > self.hold_s:
                del self._last[tag]
        return last is None or now - last > self.hold_s
