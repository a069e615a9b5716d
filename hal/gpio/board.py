"""The GPIO controller board: every connector's parts from its ``[connector.gpio]`` tables.

Pins are BCM GPIO numbers; -1 means "not wired". Tables (all keys documented with units,
defaults and ranges in ``evse/config_schema.py``):

* ``[hardware]`` ``pin_factory`` (see :mod:`hal.gpio.pins`), ``[hardware.reader]`` (RFID).
* ``[connector.gpio.pilot]`` ``mode = "adc"`` (PWM pin + MCP3008/MCP3208) or ``"uart"``
  (co-processor, :mod:`hal.gpio.pilot_uart`).
* ``[connector.gpio.contactor]``, ``[connector.gpio.rcd]``, ``[connector.gpio.lock]`` (used
  when ``[[connector]] lock = true``), ``[connector.gpio.temperature]``.
* ``[connector.meter]`` is built by :func:`hal.registry.create_meter` (a bus meter; the
  ``sim`` meter only exists on the simulated board).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from gpiozero import MCP3008, MCP3208
from gpiozero.pins import Factory

from hal.board import Board, ConnectorHardware
from hal.gpio.contactor import GpioContactor
from hal.gpio.lock import GpioLock
from hal.gpio.pilot_adc import AdcPilot, PilotThresholds
from hal.gpio.pilot_uart import UartPilot
from hal.gpio.pins import create_pin_factory
from hal.gpio.rcd import GpioRcd
from hal.gpio.temperature import AdcTemperature, Ds18b20
from hal.id_reader import IdReader
from hal.interlock import ConnectorInterlock, Interlock, TemperatureSampler
from hal.pilot import ControlPilot
from hal.readers.line_reader import LineReader
from hal.readers.normalise import UidFormat
from hal.readers.pn532 import Pn532Reader
from hal.registry import create_meter
from hal.temperature import TemperatureSensor

log = logging.getLogger(__name__)

ADC_CHIPS = {"mcp3008": MCP3008, "mcp3208": MCP3208}


def _pin(table: Mapping[str, Any], key: str, where: str, required: bool = True) -> int | None:
    value = int(table.get(key, -1))
    if value < 0:
        if required:
            raise ValueError(f"{where} {key}: a GPIO pin is required")
        return None
    return value


def _adc(chip: str, channel: int, spi: Mapping[str, Any], factory: Factory) -> Any:
    return ADC_CHIPS[chip](
        channel=channel,
        port=int(spi.get("spi_port", 0)),
        device=int(spi.get("spi_device", 0)),
        pin_factory=factory,
    )


def build_pilot(cfg: Mapping[str, Any], factory: Factory, where: str) -> ControlPilot:
    """Pilot from ``[connector.gpio.pilot]``."""
    if cfg.get("mode", "adc") == "uart":
        device = str(cfg.get("device", ""))
        if not device:
            raise ValueError(f"{where} device: required for mode = 'uart'")
        return UartPilot(device, baudrate=int(cfg.get("baudrate", 115200)))
    adc = _adc(str(cfg.get("adc_chip", "mcp3008")), int(cfg.get("adc_channel", 0)), cfg, factory)
    return AdcPilot(
        _pin(cfg, "pwm_pin", where) or 0,
        adc,
        adc_vref_v=float(cfg.get("adc_vref_v", 3.3)),
        adc_offset_v=float(cfg.get("adc_offset_v", 1.65)),
        adc_divider=float(cfg.get("adc_divider", 8.0)),
        samples=int(cfg.get("samples", 16)),
        period_s=float(cfg.get("period_s", 0.005)),
        debounce=int(cfg.get("debounce", 3)),
        thresholds=PilotThresholds(hysteresis_v=float(cfg.get("hysteresis_v", 0.4))),
        pwm_active_high=bool(cfg.get("pwm_active_high", True)),
        pin_factory=factory,
    )


def build_temperature(cfg: Mapping[str, Any], factory: Factory) -> TemperatureSensor | None:
    """Temperature sensor from ``[connector.gpio.temperature]`` (None when ``sensor = "none"``)."""
    sensor = cfg.get("sensor", "none")
    if sensor == "ds18b20":
        return Ds18b20(str(cfg.get("w1_id", "")))
    if sensor == "adc":
        adc = _adc(str(cfg.get("adc_chip", "mcp3008")), int(cfg.get("adc_channel", 1)), cfg,
                   factory)
        return AdcTemperature(
            adc, float(cfg.get("offset_v", 0.5)), float(cfg.get("degrees_per_volt", 100.0))
        )
    return None


def build_reader(cfg: Mapping[str, Any]) -> IdReader | None:
    """RFID reader from ``[hardware.reader]`` (None when ``driver = "none"``)."""
    driver = cfg.get("driver", "none")
    if driver == "none":
        return None
    device = str(cfg.get("device", ""))
    if not device:
        raise ValueError(f"[hardware.reader] device: required for driver = {driver!r}")
    fmt = UidFormat(
        uppercase=bool(cfg.get("uppercase", True)),
        reverse_bytes=bool(cfg.get("reverse_bytes", False)),
        input_format=str(cfg.get("input_format", "hex")),
    )
    if driver == "pn532":
        return Pn532Reader(
            device,
            baudrate=int(cfg.get("baudrate", 115200)),
            fmt=fmt,
            poll_interval_s=float(cfg.get("poll_interval_s", 0.2)),
            debounce_s=float(cfg.get("debounce_s", 2.0)),
        )
    return LineReader(
        device,
        baudrate=int(cfg.get("baudrate", 9600)),
        fmt=fmt,
        debounce_s=float(cfg.get("debounce_s", 2.0)),
    )


def _build_connector(conn: Mapping[str, Any], factory: Factory) -> ConnectorHardware:
    cid = int(conn["id"])
    gpio = conn.get("gpio", {})
    where = f"[connector {cid}] gpio"
    c_cfg = gpio.get("contactor", {})
    contactor = GpioContactor(
        _pin(c_cfg, "pin", f"{where}.contactor") or 0,
        active_high=bool(c_cfg.get("active_high", True)),
        feedback_pin=_pin(c_cfg, "feedback_pin", "", required=False),
        feedback_active_high=bool(c_cfg.get("feedback_active_high", True)),
        feedback_pull_up=bool(c_cfg.get("feedback_pull_up", False)),
        fault_after_s=float(c_cfg.get("fault_after_s", 1.0)),
        pin_factory=factory,
    )
    r_cfg = gpio.get("rcd", {})
    rcd = GpioRcd(
        _pin(r_cfg, "trip_pin", f"{where}.rcd") or 0,
        trip_active_high=bool(r_cfg.get("trip_active_high", True)),
        test_pin=_pin(r_cfg, "test_pin", "", required=False),
        reset_pin=_pin(r_cfg, "reset_pin", "", required=False),
        test_active_high=bool(r_cfg.get("test_active_high", True)),
        trip_window_s=float(r_cfg.get("trip_window_s", 0.5)),
        clear_window_s=float(r_cfg.get("clear_window_s", 1.0)),
        pin_factory=factory,
    )
    lock = None
    if conn.get("lock", False):
        l_cfg = gpio.get("lock", {})
        lock = GpioLock(
            _pin(l_cfg, "lock_pin", f"{where}.lock") or 0,
            _pin(l_cfg, "unlock_pin", f"{where}.lock") or 0,
            _pin(l_cfg, "feedback_pin", f"{where}.lock") or 0,
            feedback_active_high=bool(l_cfg.get("feedback_active_high", True)),
            timeout_s=float(l_cfg.get("timeout_s", 1.0)),
            pin_factory=factory,
        )
    meter_cfg = conn.get("meter", {"driver": "sim"})
    if meter_cfg.get("driver", "sim") == "sim":
        raise ValueError(
            f"[connector {cid}] meter.driver = 'sim': only the simulated board has a sim meter"
        )
    pilot = build_pilot(gpio.get("pilot", {}), factory, f"{where}.pilot")
    return ConnectorHardware(
        connector_id=cid,
        pilot=pilot,
        contactor=contactor,
        rcd=rcd,
        meter=create_meter(meter_cfg),
        lock=lock,
        temperature=build_temperature(gpio.get("temperature", {}), factory),
        # The interlock: this connector's safety inputs wired to its contactor.
        interlock=ConnectorInterlock(cid, contactor, pilot, rcd,
                                     ventilation=bool(conn.get("ventilation", False))),
    )


def build_interlock(connectors: Sequence[ConnectorHardware]) -> Interlock:
    """The board's interlock over every connector, with a temperature sampler thread per
    sensor (1 s period) and the liveness supervisor; not started."""
    samplers = [TemperatureSampler(hw.temperature, hw.interlock)
                for hw in connectors if hw.temperature is not None and hw.interlock is not None]
    return Interlock([hw.interlock for hw in connectors if hw.interlock is not None], samplers)


def create_board(hardware: Mapping[str, Any], connectors: Sequence[Mapping[str, Any]]) -> Board:
    """Build the GPIO board for the ``[[connector]]`` tables. Every contactor starts open,
    and the board's interlock (:mod:`hal.interlock`) is running when this returns.

    Raises:
        ValueError: a required pin or device is missing (message names the key), or the pin
            factory is not available.
    """
    options: dict[str, Any] = {}
    if hardware.get("pin_factory") == "pigpio":
        options = {"host": hardware.get("pigpio_host", "localhost"),
                   "port": int(hardware.get("pigpio_port", 8888))}
    factory = create_pin_factory(str(hardware.get("pin_factory", "lgpio")), **options)
    built: list[ConnectorHardware] = []
    interlock: Interlock | None = None
    try:
        for conn in connectors:
            built.append(_build_connector(conn, factory))
        interlock = build_interlock(built)
        # Started before the board is handed out: from here on the interlock holds, whether
        # or not any core code ever attaches.
        interlock.start()
        readers = [r for r in [build_reader(hardware.get("reader", {}))] if r is not None]
    except Exception:
        partial = Board(connectors=built, interlock=interlock)
        with contextlib.suppress(Exception):
            partial.close()
        raise
    return Board(connectors=built, id_readers=readers, interlock=interlock)


def safe_off(hardware: Mapping[str, Any], connectors: Sequence[Mapping[str, Any]]) -> list[str]:
    """Drive each ``[connector.gpio.contactor] pin`` to its open level and release it,
    touching no other pin (``evse hw safe-off``, systemd ``ExecStopPost=``). Every output
    is tried even when one fails.

    Returns the outputs driven. Raises:
        ValueError: a pin is missing, the pin factory is not available, or an output could
            not be driven (after trying all of them).
    """
    from gpiozero import DigitalOutputDevice

    options: dict[str, Any] = {}
    if hardware.get("pin_factory") == "pigpio":
        options = {"host": hardware.get("pigpio_host", "localhost"),
                   "port": int(hardware.get("pigpio_port", 8888))}
    factory = create_pin_factory(str(hardware.get("pin_factory", "lgpio")), **options)
    driven: list[str] = []
    errors: list[str] = []
    for conn in connectors:
        cid = int(conn["id"])
        c_cfg = conn.get("gpio", {}).get("contactor", {})
        try:
            pin = _pin(c_cfg, "pin", f"[connector {cid}] gpio.contactor")
            out = DigitalOutputDevice(pin, active_high=bool(c_cfg.get("active_high", True)),
                                      initial_value=False, pin_factory=factory)
            out.off()
            out.close()
        except Exception as exc:  # try every connector; report all failures together
            errors.append(f"connector {cid}: {exc}")
            continue
        driven.append(f"connector {cid} GPIO{pin}")
    if errors:
        raise ValueError("; ".join(errors))
    return driven
