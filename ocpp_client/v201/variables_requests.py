"""SetVariables and GetVariables over the device model (OCPP 2.0.1 Part 2 B05, B06).

Pure functions: request payload in (camelCase dict, as on the wire), response payload out.
The message limits raise the ``ocpp`` library's errors, which its ChargePoint turns into the
CALLERROR the specification names:

- more entries than ItemsPerMessage[GetVariables] → ``OccurrenceConstraintViolation``
  (B06.FR.16); a frame longer than BytesPerMessage[GetVariables] → ``FormatViolation``
  (B06.FR.17);
- SetVariables by the same rule with ItemsPerMessage[SetVariables] /
  BytesPerMessage[SetVariables] (the limits the station reports for that message).

Per entry (B05, B06): unknown component → UnknownComponent; unknown
variable → UnknownVariable; attribute type the variable lacks → NotSupportedAttributeType;
SetVariables on a ReadOnly attribute, or a value that does not fit the characteristics or
ConfigurationValueSize → Rejected (with ``attributeStatusInfo.reasonCode``); a stored value
whose variable needs a reboot → RebootRequired; GetVariables on a WriteOnly attribute →
Rejected. Values read are cut to ReportingValueSize.
"""

from __future__ import annotations

from typing import Any

from ocpp.exceptions import FormatViolationError, OccurrenceConstraintViolationError

from ocpp_client.v201.characteristics import InvalidValue
from ocpp_client.v201.device_model import (
    AttributeType,
    ComponentRef,
    DeviceModel,
    Mutability,
    VariableRef,
)
from ocpp_client.v201.message_size import call_frame_size

_DEVICE_DATA = "DeviceDataCtrlr"


def _limit(model: DeviceModel, variable: str, message: str) -> int:
    return model.get_int(_DEVICE_DATA, VariableRef(variable, message))


def _optional_limit(model: DeviceModel, variable: str) -> int | None:
    if model.definition(_DEVICE_DATA, variable) is None:
        return None
    value = model.get(_DEVICE_DATA, variable)
    return int(value) if value is not None else None


def check_message_limits(model: DeviceModel, action: str, entries: int,
                         payload: dict[str, Any], message_size: int | None) -> None:
    """Enforce DeviceDataCtrlr.ItemsPerMessage[action] / BytesPerMessage[action].

    Args:
        action: "SetVariables", "GetVariables" or "GetReport".
        entries: number of list entries in the request.
        message_size: bytes of the received frame; None measures ``payload`` as the
            ``ocpp`` library frames it (:func:`call_frame_size`).

    Raises:
        OccurrenceConstraintViolationError: too many entries.
        FormatViolationError: frame too long.
    """
    items = _limit(model, "ItemsPerMessage", action)
    if entries > items:
        raise OccurrenceConstraintViolationError(
            description=f"{entries} entries, ItemsPerMessage{action} is {items}")
    size = message_size if message_size is not None else call_frame_size(action, payload)
    max_bytes = _limit(model, "BytesPerMessage", action)
    if size > max_bytes:
        raise FormatViolationError(
            description=f"{size} bytes, BytesPerMessage{action} is {max_bytes}")


def _status_info(reason: str, info: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"reasonCode": reason}
    if info:
        out["additionalInfo"] = info[:512]
    return out


def _attribute_type(text: str | None) -> AttributeType:
    return AttributeType(text or AttributeType.ACTUAL.value)  # schema-valid enum value


def set_variables(model: DeviceModel, request: dict[str, Any], *,
                  message_size: int | None = None) -> dict[str, Any]:
    """Answer a SetVariablesRequest (B05); stores accepted values and notifies listeners.

    Raises:
        OccurrenceConstraintViolationError, FormatViolationError: see
            :func:`check_message_limits`.
    """
    data = request["setVariableData"]
    check_message_limits(model, "SetVariables", len(data), request, message_size)
    return {"setVariableResult": [_set_one(model, entry) for entry in data]}


def _set_one(model: DeviceModel, entry: dict[str, Any]) -> dict[str, Any]:
    component = ComponentRef.from_payload(entry["component"])
    variable = VariableRef.from_payload(entry["variable"])
    attribute_type = _attribute_type(entry.get("attributeType"))
    result: dict[str, Any] = {"attributeType": attribute_type.value,
                              "component": entry["component"],
                              "variable": entry["variable"]}

    def answer(status: str, reason: str | None = None,
               info: str | None = None) -> dict[str, Any]:
        result["attributeStatus"] = status
        if reason is not None:
            result["attributeStatusInfo"] = _status_info(reason, info)
        return result

    if not model.has_component(component):
        return answer("UnknownComponent")
    definition = model.definition(component, variable)
    if definition is None:
        return answer("UnknownVariable")
    attribute = definition.attribute(attribute_type)
    if attribute is None:
        return answer("NotSupportedAttributeType")
    if attribute.mutability is Mutability.READ_ONLY:
        return answer("Rejected", "ReadOnly")
    text = str(entry["attributeValue"])
    max_size = _optional_limit(model, "ConfigurationValueSize")
    if max_size is not None and len(text) > max_size:
        return answer("Rejected", "TooLargeElement",
                      f"at most {max_size} characters (ConfigurationValueSize)")
    try:
        model.set(component, variable, text, attribute_type)
    except InvalidValue as exc:
        return answer("Rejected", exc.reason_code, f"expected {exc.expected}")
    return answer("RebootRequired" if definition.reboot_required else "Accepted")


def get_variables(model: DeviceModel, request: dict[str, Any], *,
                  message_size: int | None = None) -> dict[str, Any]:
    """Answer a GetVariablesRequest (B06).

    Raises:
        OccurrenceConstraintViolationError, FormatViolationError: see
            :func:`check_message_limits`.
    """
    data = request["getVariableData"]
    check_message_limits(model, "GetVariables", len(data), request, message_size)
    max_size = _optional_limit(model, "ReportingValueSize")
    return {"getVariableResult": [_get_one(model, entry, max_size) for entry in data]}


def _get_one(model: DeviceModel, entry: dict[str, Any], max_size: int | None
             ) -> dict[str, Any]:
    component = ComponentRef.from_payload(entry["component"])
    variable = VariableRef.from_payload(entry["variable"])
    attribute_type = _attribute_type(entry.get("attributeType"))
    result: dict[str, Any] = {"attributeType": attribute_type.value,
                              "component": entry["component"],
                              "variable": entry["variable"]}
    if not model.has_component(component):
        result["attributeStatus"] = "UnknownComponent"
        return result
    definition = model.definition(component, variable)
    if definition is None:
        result["attributeStatus"] = "UnknownVariable"
        return result
    attribute = definition.attribute(attribute_type)
    if attribute is None:
        result["attributeStatus"] = "NotSupportedAttributeType"
        return result
    if attribute.mutability is Mutability.WRITE_ONLY:
        result["attributeStatus"] = "Rejected"
        result["attributeStatusInfo"] = _status_info("WriteOnly")
        return result
    value = model.get(component, variable, attribute_type) or ""
    result["attributeStatus"] = "Accepted"
    result["attributeValue"] = value[:max_size] if max_size is not None else value
    return result
