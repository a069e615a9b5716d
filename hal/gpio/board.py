"""The GPIO controller board: every connector's parts from its ``[connector.gpio]`` tables.

Pins are BCM GPIO numbers; -1 means "not wired". Settings arrive typed
(:mod:`hal.settings`, generated from ``evse/config_schema.py``, which documents every key's
unit, default and range):

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
from collections.abc import Sequence
from typing import Any

from gpiozero import MCP3008, MCP3208
from gpiozero.pins import Factory

from hal.board import Board, ConnectorHardware
from hal.gpio.contactor import GpioContactor
from hal.gpio.lock import GpioLock
from hal.gpio.pilot_adc import AdcPilot, PilotThresholds
from hal.gpio.pilot_uart import UartPilot
from hal.gpio.pins import create_pin_factory
from hal.gpio.power_fail import GpioPowerFail
from hal.gpio.rcd import GpioRcd
from hal.gpio.temperature import AdcTemperature, Ds18b20
from hal.id_reader import IdReader
from hal.interlock import ConnectorInterlock, Interlock, TemperatureSampler
from hal.pilot import ControlPilot
from hal.power_fail import PowerFailInput
from hal.readers.line_reader import LineReader
from hal.readers.normalise import UidFormat
from hal.readers.pn532 import Pn532Reader
from hal.registry import create_meter
from hal.settings import (
    ConnectorSettings,
    HardwareSettings,
    PilotSettings,
    ReaderSettings,
    TemperatureSettings,
)
from hal.temperature import TemperatureSensor

log = logging.getLogger(__name__)

ADC_CHIPS = {"mcp3008": MCP3008, "mcp3208": MCP3208}


def _pin(pin: int, where: str, required: bool = True) -> int | None:
    """A BCM pin number, or None for -1 ("not wired").

    Raises:
        ValueError: a required pin is not wired (message names the key).
    """
    if pin < 0:
        if required:
            raise ValueError(f"{where}: a GPIO pin is required")
        return None
    return pin


def _adc(chip: str, channel: int, spi_port: int, spi_device: int, factory: Factory) -> Any:
    return ADC_CHIPS[chip](channel=channel, port=spi_port, device=spi_device, pin_factory=factory)


def build_pilot(cfg: PilotSettings, factory: Factory, where: str) -> ControlPilot:
    """Pilot from ``[connector.gpio.pilot]``."""
    if cfg.mode == "uart":
        if not cfg.device:
            raise ValueError(f"{where} device: required for mode = 'uart'")
        return UartPilot(cfg.device, baudrate=cfg.baudrate)
    adc = _adc(cfg.adc_chip, cfg.adc_channel, cfg.spi_port, cfg.spi_device, factory)
    return AdcPilot(
        _pin(cfg.pwm_pin, f"{where} pwm_pin") or 0,
        adc,
        adc_vref_v=cfg.adc_vref_v,
        adc_offset_v=cfg.adc_offset_v,
        adc_divider=cfg.adc_divider,
        samples=cfg.samples,
        period_s=cfg.period_s,
        debounce=cfg.debounce,
        thresholds=PilotThresholds(hysteresis_v=cfg.hysteresis_v),
        pwm_active_high=cfg.pwm_active_high,
        pin_factory=factory,
    )


def build_temperature(cfg: TemperatureSettings, factory: Factory) -> TemperatureSensor | None:
    """Temperature sensor from ``[connector.gpio.temperature]`` (None when ``sensor = "none"``)."""
    if cfg.sensor == "ds18b20":
        return Ds18b20(cfg.w1_id)
    if cfg.sensor == "adc":
        adc = _adc(cfg.adc_chip, cfg.adc_channel, cfg.spi_port, cfg.spi_device, factory)
        return AdcTemperature(adc, cfg.offset_v, cfg.degrees_per_volt)
    return None


def build_reader(cfg: ReaderSettings) -> IdReader | None:
    """RFID reader from ``[hardware.reader]`` (None when ``driver = "none"``)."""
    if cfg.driver == "none":
        return None
    if not cfg.device:
        raise ValueError(f"[hardware.reader] device: required for driver = {cfg.driver!r}")
    fmt = UidFormat(
        uppercase=cfg.uppercase,
        reverse_bytes=cfg.reverse_bytes,
        input_format=cfg.input_format,
    )
    if cfg.driver == "pn532":
        return Pn532Reader(
            cfg.device,
            baudrate=cfg.baudrate,
            fmt=fmt,
            poll_interval_s=cfg.poll_interval_s,
            debounce_s=cfg.debounce_s,
        )
    return LineReader(cfg.device, baudrate=cfg.baudrate, fmt=fmt, debounce_s=cfg.debounce_s)


def _build_connector(conn: ConnectorSettings, factory: Factory) -> ConnectorHardware:
    cid = conn.id
    gpio = conn.gpio
    where = f"[connector {cid}] gpio"
    c_cfg = gpio.contactor
    contactor = GpioContactor(
        _pin(c_cfg.pin, f"{where}.contactor pin") or 0,
        active_high=c_cfg.active_high,
        feedback_pin=_pin(c_cfg.feedback_pin, "", required=False),
        feedback_active_high=c_cfg.feedback_active_high,
        feedback_pull_up=c_cfg.feedback_pull_up,
        fault_after_s=c_cfg.fault_after_s,
        pin_factory=factory,
    )
    r_cfg = gpio.rcd
    rcd = GpioRcd(
        _pin(r_cfg.trip_pin, f"{where}.rcd trip_pin") or 0,
        trip_active_high=r_cfg.trip_active_high,
        test_pin=_pin(r_cfg.test_pin, "", required=False),
        reset_pin=_pin(r_cfg.reset_pin, "", required=False),
        test_active_high=r_cfg.test_active_high,
        trip_window_s=r_cfg.trip_window_s,
        clear_window_s=r_cfg.clear_window_s,
        pin_factory=factory,
    )
    lock = None
    if conn.lock:
        l_cfg = gpio.lock
        lock = GpioLock(
            _pin(l_cfg.lock_pin, f"{where}.lock lock_pin") or 0,
            _pin(l_cfg.unlock_pin, f"{where}.lock unlock_pin") or 0,
            _pin(l_cfg.feedback_pin, f"{where}.lock feedback_pin") or 0,
            feedback_active_high=l_cfg.feedback_active_high,
            timeout_s=l_cfg.timeout_s,
            pin_factory=factory,
        )
    if conn.meter.driver == "sim":
        raise ValueError(
            f"[connector {cid}] meter.driver = 'sim': only the simulated board has a sim meter"
        )
    pilot = build_pilot(gpio.pilot, factory, f"{where}.pilot")
    return ConnectorHardware(
        connector_id=cid,
        pilot=pilot,
        contactor=contactor,
        rcd=rcd,
        meter=create_meter(conn.meter),
        lock=lock,
        temperature=build_temperature(gpio.temperature, factory),
        # The interlock: this connector's safety inputs wired to its contactor.
        interlock=ConnectorInterlock(conn.id, contactor, pilot, rcd,
                                     ventilation=conn.ventilation),
    )


def build_interlock(connectors: Sequence[ConnectorHardware]) -> Interlock:
    """The board's interlock over every connector, with a temperature sampler thread per
    sensor (1 s period) and the liveness supervisor; not started."""
    samplers = [TemperatureSampler(hw.temperature, hw.interlock)
                for hw in connectors if hw.temperature is not None and hw.interlock is not None]
    return Interlock([hw.interlock for hw in connectors if hw.interlock is not None], samplers)


def create_board(hardware: HardwareSettings, connectors: Sequence[ConnectorSettings]) -> Board:
    """Build the GPIO board for the ``[[connector]]`` settings. Every contactor starts open,
    and the board's interlock (:mod:`hal.interlock`) is running when this returns.

    Raises:
        ValueError: a required pin or device is missing (message names the key), or the pin
            factory is not available.
    """
    options: dict[str, Any] = {}
    if hardware.pin_factory == "pigpio":
        options = {"host": hardware.pigpio_host, "port": hardware.pigpio_port}
    factory = create_pin_factory(hardware.pin_factory, **options)
    built: list[ConnectorHardware] = []
    interlock: Interlock | None = None
    power_fail: PowerFailInput | None = None
    try:
        for conn in connectors:
            built.append(_build_connector(conn, factory))
        interlock = build_interlock(built)
        # Started before the board is handed out: from here on the interlock holds, whether
        # or not any core code ever attaches.
        interlock.start()
        readers = [r for r in [build_reader(hardware.reader)] if r is not None]
        # Optional mains-loss input (UPS / supply monitor), [hardware] power_fail_pin.
        power_pin = _pin(hardware.power_fail_pin, "", required=False)
        if power_pin is not None:
            power_fail = GpioPowerFail(power_pin, hardware.power_fail_active_high, factory)
    except Exception:
        partial = Board(connectors=built, interlock=interlock)
        with contextlib.suppress(Exception):
            partial.close()
        raise
    return Board(connectors=built, id_readers=readers, interlock=interlock,
                 power_fail=power_fail)


def safe_off(hardware: HardwareSettings, connectors: Sequence[ConnectorSettings]) -> list[str]:
    """Drive each ``[connector.gpio.contactor] pin`` to its open level and release it,
    touching no other pin (``evse hw safe-off``, systemd ``ExecStopPost=``). Every output
    is tried even when one fails.

    Returns the outputs driven. Raises:
        ValueError: a pin is missing, the pin factory is not available, or an output could
            not be driven (after trying all of them).
    """
    from gpiozero import DigitalOutputDevice

    options: dict[str, Any] = {}
    if hardware.pin_factory == "pigpio":
        options = {"host": hardware.pigpio_host, "port": hardware.pigpio_port}
    factory = create_pin_factory(hardware.pin_factory, **options)
    driven: list[str] = []
    errors: list[str] = []
    for conn in connectors:
        contactor = conn.gpio.contactor
        try:
            pin = _pin(contactor.pin, f"[connector {conn.id}] gpio.contactor.pin")
            out = DigitalOutputDevice(pin, active_high=contactor.active_high,
                                      initial_value=False, pin_factory=factory)
            out.off()
            out.close()
        except Exception as exc:  # try every connector; report all failures together
            errors.append(f"connector {conn.id}: {exc}")
            continue
        driven.append(f"connector {conn.id} GPIO{pin}")
    if errors:
        raise ValueError("; ".join(errors))
    return driven
