"""MeterValue / SampledValue payloads from a meter reading (OCPP 1.6 §7.31, §7.45)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ocpp.v16 import enums

from hal.meter import MeterReading

#: Measurands this charge point can sample (for MeterValuesSampledData validation).
SUPPORTED_MEASURANDS = (
    enums.Measurand.energy_active_import_register.value,
    enums.Measurand.power_active_import.value,
    enums.Measurand.current_import.value,
    enums.Measurand.voltage.value,
    enums.Measurand.current_offered.value,
    enums.Measurand.power_offered.value,
    enums.Measurand.soc.value,
)

#: Line-to-neutral voltage assumed for Power.Offered when the meter measures none, V.
NOMINAL_VOLTAGE_V = 230.0

_PHASES_I = ("L1", "L2", "L3")
_PHASES_V = ("L1-N", "L2-N", "L3-N")


def iso_timestamp(epoch_s: float) -> str:
    """UTC ISO 8601 with millisecond precision and 'Z' (OCPP-J dateTime)."""
    stamp = datetime.fromtimestamp(epoch_s, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> float:
    """OCPP-J dateTime (ISO 8601) → UTC epoch seconds.

    Raises:
        ValueError: not an ISO 8601 date-time.
    """
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def shift_timestamps(payload: dict[str, Any], seconds: float) -> dict[str, Any]:
    """A queued Start/StopTransaction or MeterValues payload (snake_case keys) with every
    timestamp moved by ``seconds`` (clock correction after the first CSMS time)."""
    def shift(text: str) -> str:
        return iso_timestamp(parse_timestamp(text) + seconds)

    out = dict(payload)
    if isinstance(out.get("timestamp"), str):
        out["timestamp"] = shift(out["timestamp"])
    for key in ("meter_value", "transaction_data"):
        if isinstance(out.get(key), list):
            out[key] = [{**mv, "timestamp": shift(mv["timestamp"])} if "timestamp" in mv else mv
                        for mv in out[key]]
    return out


def _value(value: float, measurand: str, unit: str, context: str,
           phase: str | None = None, location: str = "Outlet") -> dict[str, Any]:
    sampled: dict[str, Any] = {
        "value": f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}",
        "context": context,
        "format": "Raw",
        "measurand": measurand,
        "location": location,
        "unit": unit,
    }
    if phase is not None:
        sampled["phase"] = phase
    return sampled


def meter_value(
    reading: MeterReading,
    measurands: list[str],
    context: str,
    phases: int = 3,
    offered_current_a: float | None = None,
    soc_percent: float | None = None,
) -> dict[str, Any]:
    """One MeterValue (camelCase dict) with the sampled values of ``measurands``.

    Energy in Wh (register), power in W, current in A per phase, voltage in V per phase
    (L-N); ``phases`` limits per-phase values to the phases wired. Power.Offered (W) is the
    offered current per phase (A) times the measured L-N voltages of the wired phases
    (:data:`NOMINAL_VOLTAGE_V` each when not measured); SoC (Percent, location EV) only
    when the EV reports it (``soc_percent``). Measurands without a value are left out.
    """
    values: list[dict[str, Any]] = []
    for measurand in measurands:
        if measurand == enums.Measurand.energy_active_import_register.value:
            values.append(_value(reading.energy_active_import_wh, measurand, "Wh", context))
        elif measurand == enums.Measurand.power_active_import.value:
            values.append(_value(reading.power_active_w, measurand, "W", context))
        elif measurand == enums.Measurand.current_import.value:
            for i, amps in enumerate(reading.current_a[:phases]):
                values.append(_value(amps, measurand, "A", context, _PHASES_I[i]))
        elif measurand == enums.Measurand.voltage.value:
            for i, volts in enumerate(reading.voltage_v[:phases]):
                values.append(_value(volts, measurand, "V", context, _PHASES_V[i]))
        elif (measurand == enums.Measurand.current_offered.value
              and offered_current_a is not None):
            values.append(_value(offered_current_a, measurand, "A", context))
        elif (measurand == enums.Measurand.power_offered.value
              and offered_current_a is not None):
            line_v = reading.voltage_v[:phases] or (NOMINAL_VOLTAGE_V,) * phases
            values.append(_value(offered_current_a * sum(line_v), measurand, "W", context))
        elif measurand == enums.Measurand.soc.value and soc_percent is not None:
            values.append(_value(soc_percent, measurand, "Percent", context, location="EV"))
    return {"timestamp": iso_timestamp(reading.timestamp), "sampledValue": values}


def energy_value(energy_wh: float, timestamp: float, context: str) -> dict[str, Any]:
    """A MeterValue with the Energy.Active.Import.Register alone (Wh): the end value of a
    transaction closed from its last persisted reading (PowerLoss)."""
    return {"timestamp": iso_timestamp(timestamp), "sampledValue": [_value(
        energy_wh, enums.Measurand.energy_active_import_register.value, "Wh", context)]}
