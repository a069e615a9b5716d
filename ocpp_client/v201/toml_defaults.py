"""Defaults for 2.0.1 variables from the TOML table ``[ocpp201.variables]``.

Key syntax (quote the key in TOML: it contains dots)::

    Component[instance]@evse/connector.Variable[instance]:Attribute

Only ``Component`` and ``Variable`` are mandatory; names compare case-insensitively.

- ``[instance]``: the component or variable instance, e.g.
  ``"OCPPCommCtrlr.MessageAttempts[TransactionEvent]"``.
- ``@evse`` / ``@evse/connector``: the EVSE id (and connector id on that EVSE), e.g.
  ``"EVSE@1.Power:MaxSet"``, ``"Connector@1/1.ConnectorType"``.
- ``:Attribute``: Actual (the default when omitted), Target, MinSet or MaxSet.

Values are TOML booleans for boolean variables, integers for integer, integers or floats for
decimal, strings (or arrays of strings for MemberList / SequenceList) for the rest, and a
string or TOML offset date-time for dateTime. They are validated with the same rules as a
SetVariables from the CSMS; each error names the key, the value found and what is expected.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ocpp_client.v201.characteristics import DataType, InvalidValue, validate_value
from ocpp_client.v201.device_model import (
    AttributeKey,
    AttributeType,
    ComponentRef,
    VariableDef,
    VariableRef,
)

#: The TOML table holding the defaults.
TABLE = "ocpp201.variables"

_KEY = re.compile(
    r"^(?P<component>[A-Za-z0-9_\-]+)(?:\[(?P<component_instance>[^\]]+)\])?"
    r"(?:@(?P<evse>\d+)(?:/(?P<connector>\d+))?)?"
    r"\.(?P<variable>[A-Za-z0-9_\-]+)(?:\[(?P<variable_instance>[^\]]+)\])?"
    r"(?::(?P<attribute>[A-Za-z]+))?$"
)


class VariableDefaultsError(ValueError):
    """``[ocpp201.variables]`` is invalid; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def format_key(definition: VariableDef, attribute: AttributeType = AttributeType.ACTUAL) -> str:
    """The TOML key naming ``definition`` (``:Attribute`` only when not Actual)."""
    key = f"{definition.component}.{definition.variable}"
    return key if attribute is AttributeType.ACTUAL else f"{key}:{attribute.value}"


def parse_key(key: str) -> AttributeKey:
    """Split a key into (component, variable, attribute type).

    Raises:
        ValueError: the key does not follow the syntax (message says what is expected).
    """
    match = _KEY.match(key)
    if match is None:
        raise ValueError("expected Component[instance]@evse/connector.Variable[instance]"
                         ":Attribute (only Component.Variable required)")
    g = match.groupdict()
    attribute_text = g["attribute"] or "Actual"
    try:
        attribute = next(a for a in AttributeType
                         if a.value.casefold() == attribute_text.casefold())
    except StopIteration:
        raise ValueError(f"unknown attribute {attribute_text!r}; expected Actual, Target,"
                         " MinSet or MaxSet") from None
    if g["connector"] is not None and g["evse"] is None:
        raise ValueError("a connector id needs an EVSE id")
    component = ComponentRef(g["component"], g["component_instance"],
                             int(g["evse"]) if g["evse"] else None,
                             int(g["connector"]) if g["connector"] else None)
    return component, VariableRef(g["variable"], g["variable_instance"]), attribute


def _to_text(value: Any, data_type: DataType) -> str:
    """Turn a TOML value into wire text; ValueError when its TOML type cannot be right."""
    if data_type is DataType.BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError("a TOML boolean (true / false)")
        return "true" if value else "false"
    if data_type is DataType.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("a TOML integer")
        return str(value)
    if data_type is DataType.DECIMAL:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("a TOML number")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("a finite number (nan and inf are not values)")
        return repr(value) if isinstance(value, float) else str(value)
    if data_type is DataType.DATE_TIME:
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                raise ValueError("a date-time with a time zone offset")
            return value.isoformat()
        if not isinstance(value, str):
            raise ValueError("an RFC 3339 date-time")
        return value
    if data_type in (DataType.MEMBER_LIST, DataType.SEQUENCE_LIST) and isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise ValueError("a string or an array of strings")
        return ",".join(value)
    if not isinstance(value, str):
        raise ValueError("a TOML string")
    return value


def parse_variable_defaults(table: Mapping[str, Any],
                            definitions: Iterable[VariableDef]) -> dict[AttributeKey, str]:
    """Validate ``[ocpp201.variables]`` and return canonical default texts by attribute.

    Raises:
        VariableDefaultsError: with one line per bad key: unknown component / variable /
            attribute (with the closest valid key), a value the station sets itself, a wrong
            TOML type, or a value outside the characteristics.
    """
    defs = list(definitions)
    by_key = {d.key(): d for d in defs}
    known = [format_key(d, a.type) for d in defs for a in d.attributes]
    errors: list[str] = []
    out: dict[AttributeKey, str] = {}
    for key, value in table.items():
        where = f'{TABLE}."{key}"'
        try:
            component, variable, attribute = parse_key(key)
        except ValueError as exc:
            errors.append(f"{where}: {exc}")
            continue
        definition = by_key.get((component.key(), variable.key()))
        attr = definition.attribute(attribute) if definition is not None else None
        if definition is None or attr is None:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            errors.append(f"{where}: unknown component, variable or attribute{hint}")
            continue
        if definition.runtime and attribute is AttributeType.ACTUAL:
            errors.append(f"{where}: set by the station at run time, not configurable")
            continue
        chars = definition.characteristics
        try:
            text = _to_text(value, chars.data_type)
            canonical = validate_value(chars, text)
        except ValueError as exc:
            expected = (exc.expected if isinstance(exc, InvalidValue)
                        else f"{exc}: {chars.describe()}")
            errors.append(f"{where}: found {value!r}, expected {expected}")
            continue
        out[(definition.component, definition.variable, attribute)] = canonical
    if errors:
        raise VariableDefaultsError(errors)
    return out
