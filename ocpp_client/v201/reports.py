"""GetBaseReport and GetReport answered by NotifyReport parts (OCPP 2.0.1 Part 2 B07, B08).

Pure functions: the request payload in, a :class:`ReportAnswer` out — the response payload
and the NotifyReportRequest payloads the station sends after it, in order.

Report bases (B07): ``FullInventory`` — every variable with every attribute;
``ConfigurationInventory`` — the attributes the CSMS can write (ReadWrite, WriteOnly);
``SummaryInventory`` — AvailabilityState of ChargingStation / EVSE / Connector and every
Problem / Tripped / Overload / Fallback variable that is true. Anything else → NotSupported.

GetReport (B08): ``componentVariable`` entries select components (name and instance; a
missing ``evse`` matches the component on every EVSE, an ``evse`` without ``connectorId``
every connector of that EVSE — B08.FR.23), a missing variable selects all its variables, a
variable without instance all instances of that name. ``componentCriteria`` keep components
for which at least one criterion holds: the component's Active / Available / Enabled /
Problem variable is "true"; a component without the variable counts as Active, Available
and Enabled, never as Problem (the reading libocpp takes). Both given: both must hold.
Nothing selected → EmptyResultSet and no NotifyReport. Too many componentVariable entries →
OccurrenceConstraintViolation (B08.FR.17), a too long request → FormatViolation (B08.FR.18).

Splitting: each NotifyReport holds at most ItemsPerMessage[GetReport] reportData entries
and its CALL frame (as :func:`ocpp_client.v201.message_size.call_frame_size` measures it)
at most BytesPerMessage[GetReport] bytes — the limits the station advertises, applied to
what it sends too. One entry larger than the byte limit travels alone. ``seqNo`` counts
from 0 without gaps, ``tbc`` is true on every part but the last, ``generatedAt`` and
``requestId`` are the same on every part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ocpp_client.v201.device_model import (
    AttributeDef,
    AttributeType,
    ComponentRef,
    DeviceModel,
    Mutability,
    VariableDef,
    VariableRef,
)
from ocpp_client.v201.message_size import call_frame_size, json_size
from ocpp_client.v201.variables_requests import check_message_limits

REPORT_BASES = ("ConfigurationInventory", "FullInventory", "SummaryInventory")
CRITERIA = ("Active", "Available", "Enabled", "Problem")
_SUMMARY_FLAGS = ("problem", "tripped", "overload", "fallback")
_AVAILABILITY_COMPONENTS = ("chargingstation", "evse", "connector")


@dataclass(frozen=True)
class ReportAnswer:
    """The response to send, then the NotifyReportRequest payloads to send in order."""

    response: dict[str, Any]
    notify_reports: list[dict[str, Any]] = field(default_factory=list)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC text with ``Z`` (OCPP 2.0.1 Part 2 §2.1.3 date-time)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _attribute_payload(model: DeviceModel, definition: VariableDef, attr: AttributeDef,
                       max_value: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": attr.type.value}
    if attr.mutability is not Mutability.WRITE_ONLY:  # a WriteOnly value is never reported
        value = model.get(definition.component, definition.variable, attr.type)
        if value is not None:
            out["value"] = value[:max_value] if max_value is not None else value
    out.update(mutability=attr.mutability.value, persistent=attr.persistent,
               constant=attr.constant)
    return out


def report_entry(model: DeviceModel, definition: VariableDef,
                 attributes: Iterable[AttributeDef] | None = None, *,
                 characteristics: bool = True) -> dict[str, Any]:
    """One ReportDataType for ``definition`` (all its attributes unless given)."""
    max_value = _reporting_value_size(model)
    entry: dict[str, Any] = {
        "component": definition.component.to_payload(),
        "variable": definition.variable.to_payload(),
        "variableAttribute": [_attribute_payload(model, definition, a, max_value)
                              for a in (attributes or definition.attributes)],
    }
    if characteristics:
        entry["variableCharacteristics"] = definition.characteristics.to_payload()
    return entry


def _reporting_value_size(model: DeviceModel) -> int | None:
    if model.definition("DeviceDataCtrlr", "ReportingValueSize") is None:
        return None
    value = model.get("DeviceDataCtrlr", "ReportingValueSize")
    return int(value) if value is not None else None


def base_report_data(model: DeviceModel, report_base: str) -> list[dict[str, Any]]:
    """reportData entries of a base report (ValueError for an unknown base)."""
    out = []
    for definition in model.definitions():
        if report_base == "FullInventory":
            out.append(report_entry(model, definition))
        elif report_base == "ConfigurationInventory":
            writable = [a for a in definition.attributes
                        if a.mutability is not Mutability.READ_ONLY]
            if writable:
                out.append(report_entry(model, definition, writable))
        elif report_base == "SummaryInventory":
            actual = definition.attribute(AttributeType.ACTUAL)
            if actual is not None and _in_summary(model, definition):
                out.append(report_entry(model, definition, [actual], characteristics=False))
        else:
            raise ValueError(f"unknown report base {report_base!r}")
    return out


def _in_summary(model: DeviceModel, definition: VariableDef) -> bool:
    name = definition.variable.name.casefold()
    if name == "availabilitystate":
        return definition.component.name.casefold() in _AVAILABILITY_COMPONENTS
    if name in _SUMMARY_FLAGS:
        return model.get(definition.component, definition.variable) == "true"
    return False


def split_notify_reports(request_id: int, generated_at: datetime,
                         report_data: list[dict[str, Any]], items_per_message: int,
                         bytes_per_message: int) -> list[dict[str, Any]]:
    """NotifyReportRequest payloads carrying ``report_data`` within the limits.

    Args:
        items_per_message: most reportData entries per part (≥ 1).
        bytes_per_message: most bytes per CALL frame (see module docstring).
    """
    stamp = format_timestamp(generated_at)
    parts: list[dict[str, Any]] = []
    index = 0
    while index < len(report_data):
        part = {"requestId": request_id, "generatedAt": stamp, "seqNo": len(parts),
                "tbc": False, "reportData": []}
        size = call_frame_size("NotifyReport", part)  # "false": the longer tbc value
        chosen: list[dict[str, Any]] = []
        while index < len(report_data) and len(chosen) < max(1, items_per_message):
            extra = json_size(report_data[index]) + (1 if chosen else 0)  # "," separator
            if chosen and size + extra > bytes_per_message:
                break
            chosen.append(report_data[index])
            size += extra
            index += 1
        part["reportData"] = chosen
        parts.append(part)
    for part in parts[:-1]:
        part["tbc"] = True
    return parts


def _split(model: DeviceModel, request_id: int, generated_at: datetime,
           data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return split_notify_reports(
        request_id, generated_at, data,
        model.get_int("DeviceDataCtrlr", VariableRef("ItemsPerMessage", "GetReport")),
        model.get_int("DeviceDataCtrlr", VariableRef("BytesPerMessage", "GetReport")))


def get_base_report(model: DeviceModel, request: dict[str, Any], *,
                    generated_at: datetime) -> ReportAnswer:
    """Answer a GetBaseReportRequest (B07): Accepted plus the NotifyReport parts,
    NotSupported for an unknown reportBase, EmptyResultSet when nothing is reported."""
    base = request["reportBase"]
    if base not in REPORT_BASES:
        return ReportAnswer({"status": "NotSupported"})
    data = base_report_data(model, base)
    if not data:
        return ReportAnswer({"status": "EmptyResultSet"})
    return ReportAnswer({"status": "Accepted"},
                        _split(model, request["requestId"], generated_at, data))


def get_report(model: DeviceModel, request: dict[str, Any], *, generated_at: datetime,
               message_size: int | None = None) -> ReportAnswer:
    """Answer a GetReportRequest (B08) — see the module docstring for the selection rules.

    Raises:
        OccurrenceConstraintViolationError, FormatViolationError: the request exceeds
            ItemsPerMessage[GetReport] / BytesPerMessage[GetReport].
    """
    selections = request.get("componentVariable")
    criteria = request.get("componentCriteria")
    check_message_limits(model, "GetReport", len(selections or ()), request, message_size)
    if criteria and any(c not in CRITERIA for c in criteria):
        return ReportAnswer({"status": "NotSupported"})
    matches = _component_filter(model, criteria)
    data = []
    for definition in model.definitions():
        if not matches(definition.component):
            continue
        if selections is not None and not any(_selected(definition, s) for s in selections):
            continue
        data.append(report_entry(model, definition))
    if not data:
        return ReportAnswer({"status": "EmptyResultSet"})
    return ReportAnswer({"status": "Accepted"},
                        _split(model, request["requestId"], generated_at, data))


def _component_filter(model: DeviceModel, criteria: list[str] | None
                      ) -> Callable[[ComponentRef], bool]:
    if not criteria:
        return lambda component: True

    def matches(component: ComponentRef) -> bool:
        for criterion in criteria:
            definition = model.definition(component, criterion)
            if definition is None or definition.attribute(AttributeType.ACTUAL) is None:
                if criterion != "Problem":
                    return True
                continue
            if model.get(component, criterion) == "true":
                return True
        return False

    return matches


def _selected(definition: VariableDef, selection: dict[str, Any]) -> bool:
    wanted = ComponentRef.from_payload(selection["component"])
    have = definition.component
    if (wanted.name.casefold(), (wanted.instance or "").casefold()) != have.key()[:2]:
        return False
    if wanted.evse_id is not None:
        if wanted.evse_id != have.evse_id:
            return False
        if wanted.connector_id is not None and wanted.connector_id != have.connector_id:
            return False
    variable = selection.get("variable")
    if variable is None:
        return True
    want_var = VariableRef.from_payload(variable)
    if want_var.instance is None:
        return want_var.name.casefold() == definition.variable.name.casefold()
    return want_var.key() == definition.variable.key()
