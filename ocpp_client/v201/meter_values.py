"""MeterValueType / SampledValueType payloads from a meter reading (OCPP 2.0.1 Part 2
§2.32 MeterValueType, §2.43 SampledValueType; J01–J03)."""

from __future__ import annotations

from typing import Any

from hal.meter import MeterReading
from ocpp_client.v16.meter_values import iso_timestamp

_PHASES_I = ("L1", "L2", "L3")
_PHASES_V = ("L1-N", "L2-N", "L3-N")
_UNITS = {
    "Energy.Active.Import.Register": "Wh",
    "Power.Active.Import": "W",
    "Current.Import": "A",
    "Voltage": "V",
    "Current.Offered": "A",
}


def _sampled(value: float, measurand: str, context: str,
             phase: str | None = None) -> dict[str, Any]:
    sampled: dict[str, Any] = {
        "value": round(value, 3),
        "context": context,
        "measurand": measurand,
        "location": "Outlet",
        "unitOfMeasure": {"unit": _UNITS[measurand]},
    }
    if phase is not None:
        sampled["phase"] = phase
    return sampled


def meter_value(reading: MeterReading, measurands: list[str], context: str, phases: int = 3,
                offered_current_a: float | None = None,
                timestamp: float | None = None) -> dict[str, Any] | None:
    """One MeterValueType (camelCase dict) with the sampled values of ``measurands``
    (energy Wh, power W, current A per phase, voltage V per phase L-N); None when no
    measurand gives a value (a MeterValue needs at least one sampledValue)."""
    values: list[dict[str, Any]] = []
    for measurand in measurands:
        if measurand == "Energy.Active.Import.Register":
            values.append(_sampled(reading.energy_active_import_wh, measurand, context))
        elif measurand == "Power.Active.Import":
            values.append(_sampled(reading.power_active_w, measurand, context))
        elif measurand == "Current.Import":
            values += [_sampled(a, measurand, context, _PHASES_I[i])
                       for i, a in enumerate(reading.current_a[:phases])]
        elif measurand == "Voltage":
            values += [_sampled(v, measurand, context, _PHASES_V[i])
                       for i, v in enumerate(reading.voltage_v[:phases])]
        elif measurand == "Current.Offered" and offered_current_a is not None:
            values.append(_sampled(offered_current_a, measurand, context))
    if not values:
        return None
    return {"timestamp": iso_timestamp(reading.timestamp if timestamp is None else timestamp),
            "sampledValue": values}
