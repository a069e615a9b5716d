"""Value validation against VariableCharacteristics (OCPP 2.0.1 B05.FR.07)."""

from __future__ import annotations

import pytest

from ocpp_client.v201.characteristics import (
    Characteristics,
    DataType,
    InvalidValue,
    validate_value,
)

INTERVAL = Characteristics(DataType.INTEGER, "s", 0, 3600)
PERCENT = Characteristics(DataType.DECIMAL, "Percent", 0, 100)
POINTS = Characteristics(DataType.MEMBER_LIST, values_list=("EVConnected", "Authorized",
                                                            "PowerPathClosed"))
SOURCES = Characteristics(DataType.SEQUENCE_LIST, values_list=("Heartbeat", "NTP"))
STATE = Characteristics(DataType.OPTION_LIST, values_list=("Available", "Unavailable"))
PASSWORD = Characteristics(DataType.STRING, min_limit=16, max_limit=40)


@pytest.mark.parametrize(("chars", "text", "stored"), [
    (Characteristics(DataType.BOOLEAN), "TRUE", "true"),
    (Characteristics(DataType.BOOLEAN), "false", "false"),
    (INTERVAL, "0", "0"),
    (INTERVAL, "3600", "3600"),
    (PERCENT, "12.5", "12.5"),
    (POINTS, "Authorized, EVConnected", "Authorized,EVConnected"),
    (POINTS, "", ""),
    (SOURCES, "NTP,Heartbeat", "NTP,Heartbeat"),
    (STATE, "Unavailable", "Unavailable"),
    (PASSWORD, "0123456789abcdef", "0123456789abcdef"),
    (Characteristics(DataType.DATE_TIME), "2026-01-31T12:00:00Z", "2026-01-31T12:00:00Z"),
])
def test_accepted_values_are_stored_canonically(chars: Characteristics, text: str,
                                                stored: str) -> None:
    assert validate_value(chars, text) == stored


@pytest.mark.parametrize(("chars", "text", "reason"), [
    (Characteristics(DataType.BOOLEAN), "yes", "InvalidValue"),
    (INTERVAL, "12.0", "InvalidValue"),
    (INTERVAL, "ten", "InvalidValue"),
    (INTERVAL, "-1", "ValueTooLow"),
    (INTERVAL, "3601", "ValueTooHigh"),
    (PERCENT, "nan", "InvalidValue"),
    (PERCENT, "inf", "InvalidValue"),
    (PERCENT, "-inf", "InvalidValue"),
    (PERCENT, "1e999", "InvalidValue"),
    (PERCENT, "100.01", "ValueTooHigh"),
    (POINTS, "Authorized,Plugged", "InvalidValue"),
    (POINTS, "Authorized,Authorized", "InvalidValue"),
    (SOURCES, "", "InvalidValue"),
    (STATE, "Available,Unavailable", "InvalidValue"),
    (STATE, "available", "InvalidValue"),
    (PASSWORD, "short", "ValueTooLow"),
    (PASSWORD, "x" * 41, "TooLargeElement"),
    (Characteristics(DataType.STRING), "x" * 2501, "TooLargeElement"),
    (Characteristics(DataType.DATE_TIME), "2026-01-31T12:00:00", "InvalidValue"),
    (Characteristics(DataType.DATE_TIME), "yesterday", "InvalidValue"),
])
def test_refused_values_name_the_reason(chars: Characteristics, text: str,
                                        reason: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        validate_value(chars, text)
    assert caught.value.reason_code == reason


def test_infinite_limits_are_refused_at_definition() -> None:
    with pytest.raises(ValueError):
        Characteristics(DataType.DECIMAL, max_limit=float("inf"))


def test_characteristics_payload_uses_spec_names() -> None:
    assert INTERVAL.to_payload() == {"dataType": "integer", "unit": "s", "minLimit": 0,
                                     "maxLimit": 3600, "supportsMonitoring": False}
    assert POINTS.to_payload()["valuesList"] == "EVConnected,Authorized,PowerPathClosed"
