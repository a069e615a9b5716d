"""Variable characteristics and value validation (OCPP 2.0.1 Part 2 §2.1 "Device model",
VariableCharacteristicsType; B05.FR.07: a value that does not fit is Rejected).

Values travel as text (``attributeValue`` is a string). :func:`validate_value` checks a text
against a variable's characteristics and returns its canonical text (booleans lower-case,
lists without blanks) or raises :class:`InvalidValue` with an OCPP reason code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class DataType(StrEnum):
    """DataEnumType (OCPP 2.0.1 Part 2 §2.2)."""

    STRING = "string"
    DECIMAL = "decimal"
    INTEGER = "integer"
    DATE_TIME = "dateTime"
    BOOLEAN = "boolean"
    OPTION_LIST = "OptionList"
    SEQUENCE_LIST = "SequenceList"
    MEMBER_LIST = "MemberList"


#: Data types whose maxLimit / minLimit bound the length of the (CSV) text.
TEXT_TYPES = frozenset({DataType.STRING, DataType.OPTION_LIST, DataType.SEQUENCE_LIST,
                        DataType.MEMBER_LIST})

#: VariableAttributeType.value maxLength in the 2.0.1 JSON schemas (ReportingValueSize cap).
MAX_VALUE_LENGTH = 2500


class InvalidValue(ValueError):
    """A value does not fit a variable's characteristics.

    Attributes:
        reason_code: OCPP 2.0.1 reason code for ``attributeStatusInfo.reasonCode``
            (Part 2 appendix "Reason codes": InvalidValue, ValueOutOfRange, ValueTooLow,
            ValueTooHigh, TooLargeElement).
        expected: human-readable description of what is allowed.
    """

    def __init__(self, reason_code: str, expected: str) -> None:
        super().__init__(expected)
        self.reason_code = reason_code
        self.expected = expected


@dataclass(frozen=True)
class Characteristics:
    """VariableCharacteristicsType: fixed read-only parameters of a variable.

    ``min_limit`` / ``max_limit`` bound the number for integer / decimal, and the length in
    characters of the (CSV) text for string and list types (the schema's maxLimit wording;
    we read minLimit the same way, as a minimum length).
    """

    data_type: DataType
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: tuple[str, ...] | None = None
    supports_monitoring: bool = False

    def __post_init__(self) -> None:
        for limit in (self.min_limit, self.max_limit):
            if limit is not None and not math.isfinite(limit):
                raise ValueError("characteristics limits must be finite")
        if self.data_type in (DataType.OPTION_LIST, DataType.SEQUENCE_LIST,
                              DataType.MEMBER_LIST) and not self.values_list:
            raise ValueError(f"{self.data_type.value} needs a valuesList")

    def describe(self) -> str:
        """What a valid value looks like, for error messages."""
        dt = self.data_type
        if dt is DataType.BOOLEAN:
            return "true or false"
        if dt in (DataType.INTEGER, DataType.DECIMAL):
            kind = "an integer" if dt is DataType.INTEGER else "a finite decimal number"
            return kind + _range_text(self.min_limit, self.max_limit, self.unit)
        if dt is DataType.DATE_TIME:
            return "an RFC 3339 date-time with time zone, e.g. 2026-01-31T12:00:00Z"
        values = ", ".join(self.values_list or ())
        if dt is DataType.OPTION_LIST:
            return f"one of {values}"
        if dt is DataType.SEQUENCE_LIST:
            return f"an ordered comma-separated list without repeats, of {values}"
        if dt is DataType.MEMBER_LIST:
            return f"a comma-separated set (may be empty) of {values}"
        return "text" + _length_text(self.min_limit, self.max_limit)

    def to_payload(self) -> dict[str, Any]:
        """VariableCharacteristicsType as an OCPP JSON object."""
        out: dict[str, Any] = {"dataType": self.data_type.value,
                               "supportsMonitoring": self.supports_monitoring}
        if self.unit is not None:
            out["unit"] = self.unit
        if self.min_limit is not None:
            out["minLimit"] = _number(self.min_limit)
        if self.max_limit is not None:
            out["maxLimit"] = _number(self.max_limit)
        if self.values_list is not None:
            out["valuesList"] = ",".join(self.values_list)
        return out


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _range_text(low: float | None, high: float | None, unit: str | None) -> str:
    suffix = f" {unit}" if unit else ""
    if low is not None and high is not None:
        return f" in {_number(low)}..{_number(high)}{suffix}"
    if low is not None:
        return f" ≥ {_number(low)}{suffix}"
    if high is not None:
        return f" ≤ {_number(high)}{suffix}"
    return suffix and f" ({unit})"


def _length_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" of {_number(low)} to {_number(high)} characters"
    if high is not None:
        return f" of at most {_number(high)} characters"
    if low is not None:
        return f" of at least {_number(low)} characters"
    return ""


def validate_value(chars: Characteristics, text: str) -> str:
    """Check ``text`` against ``chars``; return the canonical text to store.

    Raises:
        InvalidValue: wrong format (reason InvalidValue), out of range (ValueTooLow /
            ValueTooHigh), not in the valuesList (InvalidValue), too long (TooLargeElement).
    """
    if len(text) > MAX_VALUE_LENGTH:
        raise InvalidValue("TooLargeElement",
                           f"at most {MAX_VALUE_LENGTH} characters ({chars.describe()})")
    dt = chars.data_type
    if dt is DataType.BOOLEAN:
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise InvalidValue("InvalidValue", chars.describe())
        return lowered
    if dt is DataType.INTEGER:
        try:
            number: float = int(text.strip(), 10)
        except ValueError:
            raise InvalidValue("InvalidValue", chars.describe()) from None
        _check_range(chars, number)
        return str(int(number))
    if dt is DataType.DECIMAL:
        try:
            number = float(text.strip())
        except ValueError:
            raise InvalidValue("InvalidValue", chars.describe()) from None
        if not math.isfinite(number):  # "nan", "inf", "1e999" parse but are no values
            raise InvalidValue("InvalidValue", chars.describe())
        _check_range(chars, number)
        return text.strip()
    if dt is DataType.DATE_TIME:
        try:
            stamp = datetime.fromisoformat(text.strip())
        except ValueError:
            raise InvalidValue("InvalidValue", chars.describe()) from None
        if stamp.tzinfo is None:
            raise InvalidValue("InvalidValue", chars.describe())
        return text.strip()
    _check_length(chars, text)
    if dt is DataType.STRING:
        return text
    allowed = chars.values_list or ()
    items = [item.strip() for item in text.split(",")] if text.strip() else []
    if dt is DataType.OPTION_LIST:
        if len(items) != 1 or items[0] not in allowed:
            raise InvalidValue("InvalidValue", chars.describe())
        return items[0]
    if any(item not in allowed for item in items) or len(set(items)) != len(items):
        raise InvalidValue("InvalidValue", chars.describe())
    if dt is DataType.SEQUENCE_LIST and not items:
        raise InvalidValue("InvalidValue", chars.describe())
    return ",".join(items)


def _check_range(chars: Characteristics, number: float) -> None:
    if chars.min_limit is not None and number < chars.min_limit:
        raise InvalidValue("ValueTooLow", chars.describe())
    if chars.max_limit is not None and number > chars.max_limit:
        raise InvalidValue("ValueTooHigh", chars.describe())


def _check_length(chars: Characteristics, text: str) -> None:
    if chars.max_limit is not None and len(text) > chars.max_limit:
        raise InvalidValue("TooLargeElement", chars.describe())
    if chars.min_limit is not None and len(text) < chars.min_limit:
        raise InvalidValue("ValueTooLow", chars.describe())
