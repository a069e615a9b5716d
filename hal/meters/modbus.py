"""Modbus RTU / TCP energy meters (pymodbus), driven by a model profile.

``[connector.meter]`` keys: ``driver`` ("modbus-tcp" or "modbus-rtu"), ``model`` (a
:data:`hal.meters.profiles.PROFILES` name or "custom" with ``[connector.meter.custom]``),
``host``/``port`` (TCP), ``device``/``baudrate``/``parity``/``stopbits``/``rs485_rts`` (RTU),
``unit_id``, ``timeout_s``, ``poll_interval_s``, ``frozen_after_s``.

Reads are blocking: call :meth:`ModbusMeter.read` from a worker thread. Two reads within
``poll_interval_s`` share one bus transaction (the RS-485 line is not hammered by several
callers); an older reading is never returned.
"""

from __future__ import annotations

import logging
import threading
import time

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException

from hal.meter import EnergyMeter, MeterReading, PowerMeterFailure
from hal.meters.plausibility import ReadingGuard
from hal.meters.profiles import (
    FC_HOLDING,
    PROFILES,
    NotAvailable,
    Profile,
    custom_profile,
    plan_reads,
)
from hal.settings import MeterSettings

log = logging.getLogger(__name__)

ModbusClient = ModbusTcpClient | ModbusSerialClient


class ModbusMeter(EnergyMeter):
    """An energy meter read over Modbus with a :class:`~hal.meters.profiles.Profile`.

    Args:
        client: a pymodbus sync client (not yet connected).
        profile: the model's register map.
        unit_id: Modbus unit (slave) id, 1–247.
        poll_interval_s: minimum time between bus transactions, s.
        guard: plausibility checks (frozen values, energy backwards).
        rs485_rts: drive RTS for RS-485 direction control (adapters without auto-direction).
    """

    def __init__(
        self,
        client: ModbusClient,
        profile: Profile,
        unit_id: int = 1,
        poll_interval_s: float = 1.0,
        guard: ReadingGuard | None = None,
        rs485_rts: bool = False,
    ) -> None:
        self._client = client
        self.profile = profile
        self.unit_id = unit_id
        self.poll_interval_s = poll_interval_s
        self._guard = guard or ReadingGuard()
        self._rs485_rts = rs485_rts
        self._plan = plan_reads(profile)
        self._lock = threading.Lock()
        self._last: MeterReading | None = None
        self._last_t = 0.0

    def _connect(self) -> None:
        if self._client.connected:
            return
        if not self._client.connect():
            raise PowerMeterFailure(f"cannot connect to meter ({self._client})")
        if self._rs485_rts and isinstance(self._client, ModbusSerialClient):
            from serial.rs485 import RS485Settings

            sock = self._client.socket
            if sock is not None:
                sock.rs485_mode = RS485Settings(rts_level_for_tx=True, rts_level_for_rx=False)

    def _read_block(self, function: int, address: int, count: int) -> list[int]:
        try:
            if function == FC_HOLDING:
                result = self._client.read_holding_registers(
                    address, count=count, device_id=self.unit_id
                )
            else:
                result = self._client.read_input_registers(
                    address, count=count, device_id=self.unit_id
                )
        except ModbusException as exc:
            self._client.close()
            raise PowerMeterFailure(f"no valid answer from unit {self.unit_id}: {exc}") from exc
        except OSError as exc:
            self._client.close()
            raise PowerMeterFailure(f"transport error: {exc}") from exc
        if result.isError():
            code = getattr(result, "exception_code", "?")
            raise PowerMeterFailure(
                f"exception response {code} from unit {self.unit_id} "
                f"(FC{function:02d} @0x{address:04X}+{count})"
            )
        registers: list[int] = list(result.registers)
        if len(registers) < count:
            raise PowerMeterFailure(f"short answer: {len(registers)} of {count} registers")
        return registers

    def _read_bus(self) -> MeterReading:
        self._connect()
        values: dict[str, float] = {}
        for function, start, count, names in self._plan:
            words = self._read_block(function, start, count)
            for name in names:
                reg = self.profile.registers[name]
                offset = reg.address - start
                try:
                    values[name] = reg.decode(words[offset : offset + reg.count])
                except NotAvailable as exc:
                    raise PowerMeterFailure(f"{name}: {exc}") from None
        voltages = tuple(values[f"voltage_l{i}"] for i in (1, 2, 3) if f"voltage_l{i}" in values)
        currents = tuple(values[f"current_l{i}"] for i in (1, 2, 3) if f"current_l{i}" in values)
        return MeterReading(
            energy_active_import_wh=values["energy_active_import"],
            power_active_w=values["power_active"],
            voltage_v=voltages,
            current_a=currents,
            timestamp=time.time(),
        )

    def read(self) -> MeterReading:
        """Read the meter (or return the reading taken less than ``poll_interval_s`` ago).

        Raises:
            PowerMeterFailure: timeout / no answer, CRC error, exception response,
                not-available marker or NaN, frozen values, or energy going backwards.
        """
        with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last_t < self.poll_interval_s:
                return self._last
            self._last = None
            reading = self._guard.check(self._read_bus())
            self._last, self._last_t = reading, now
            return reading

    def close(self) -> None:
        """Close the Modbus connection / serial port."""
        self._client.close()


def _require(meter: MeterSettings, key: str) -> str:
    value = str(getattr(meter, key))
    if not value:
        raise ValueError(f"[connector.meter] {key}: required for driver = {meter.driver!r}")
    return value


def profile_for(meter: MeterSettings) -> Profile:
    """The profile named by ``model`` (or built from ``custom``).

    Raises:
        ValueError: unknown model for a Modbus meter.
    """
    model = meter.model
    if model == "custom":
        return custom_profile(meter.custom)
    try:
        return PROFILES[model]
    except KeyError:
        raise ValueError(
            f"[connector.meter] model = {model!r}: not a Modbus model (expected one of "
            f"{', '.join([*PROFILES, 'custom'])})"
        ) from None


def create_meter(meter: MeterSettings) -> ModbusMeter:
    """Build a Modbus meter from the ``[connector.meter]`` settings.

    Raises:
        ValueError: missing ``host`` (TCP) or ``device`` (RTU), or an unknown model.
    """
    driver = meter.driver
    profile = profile_for(meter)
    client: ModbusClient
    if driver == "modbus-tcp":
        client = ModbusTcpClient(
            _require(meter, "host"), port=meter.port, timeout=meter.timeout_s, retries=0
        )
    elif driver == "modbus-rtu":
        client = ModbusSerialClient(
            _require(meter, "device"),
            baudrate=meter.baudrate,
            parity=meter.parity,
            bytesize=8,
            stopbits=meter.stopbits,
            timeout=meter.timeout_s,
            retries=0,
        )
    else:
        raise ValueError(f"[connector.meter] driver = {driver!r}: not a Modbus driver")
    return ModbusMeter(
        client,
        profile,
        unit_id=meter.unit_id,
        poll_interval_s=meter.poll_interval_s,
        guard=ReadingGuard(frozen_after_s=meter.frozen_after_s),
        rs485_rts=meter.rs485_rts,
    )
