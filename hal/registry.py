"""Backends chosen by name from config, imported lazily.

Like python-can's ``interface = "socketcan"``: the ``[hardware] driver`` key names a board
backend and ``[connector.meter] driver`` a meter backend. A backend whose module (or a
library it needs) is missing gives one :class:`BackendError` naming the config key.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from hal.board import Board
from hal.meter import EnergyMeter
from hal.settings import ConnectorSettings, HardwareSettings, MeterSettings

#: ``[hardware] driver`` name → "module:factory"; factory(HardwareSettings,
#: Sequence[ConnectorSettings]) -> Board.
BOARD_BACKENDS: dict[str, str] = {
    "sim": "hal.sim.board:create_board",
    "gpio": "hal.gpio.board:create_board",
}

#: ``[hardware] driver`` name → "module:function"; function(hardware, connectors) -> list of
#: the outputs it drove open. Used by ``evse hw safe-off`` (systemd ExecStopPost=).
SAFE_OFF_BACKENDS: dict[str, str] = {
    "sim": "hal.sim.board:safe_off",
    "gpio": "hal.gpio.board:safe_off",
}

#: ``[connector.meter] driver`` name → "module:factory"; factory(MeterSettings) -> EnergyMeter.
#: ``sim`` meters belong to the simulated board and are built by it.
METER_BACKENDS: dict[str, str] = {
    "modbus-tcp": "hal.meters.modbus:create_meter",
    "modbus-rtu": "hal.meters.modbus:create_meter",
    "can": "hal.meters.can_bus:create_meter",
}


class BackendError(Exception):
    """A configured backend is unknown, not installed, or failed to start."""


def _load(table: Mapping[str, str], name: str, key: str) -> Callable[..., Any]:
    try:
        target = table[name]
    except KeyError:
        raise BackendError(
            f"{key} = {name!r}: unknown backend (expected one of {', '.join(sorted(table))})"
        ) from None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(f"{key} = {name!r}: backend not available ({exc})") from exc
    return cast(Callable[..., Any], getattr(module, attr))


def create_board(hardware: HardwareSettings, connectors: Sequence[ConnectorSettings]) -> Board:
    """Build the board named by ``hardware.driver`` for the ``[[connector]]`` settings.

    Raises:
        BackendError: unknown or unavailable backend, or the hardware failed to open.
    """
    factory = _load(BOARD_BACKENDS, hardware.driver, "[hardware] driver")
    return cast(Board, factory(hardware, connectors))


def safe_off(hardware: HardwareSettings, connectors: Sequence[ConnectorSettings]
             ) -> list[str]:
    """Drive every configured contactor output to its open level, touching nothing else
    (no pilot, no meter, no reader): for ``ExecStopPost=`` after the daemon died. Returns
    the outputs driven (e.g. ``["connector 1 GPIO17"]``).

    Raises:
        BackendError: unknown or unavailable backend, or an output could not be driven.
    """
    func = _load(SAFE_OFF_BACKENDS, hardware.driver, "[hardware] driver")
    try:
        return cast(list[str], func(hardware, connectors))
    except (ValueError, OSError, RuntimeError) as exc:
        raise BackendError(f"safe-off: {exc}") from exc


def create_meter(meter: MeterSettings) -> EnergyMeter:
    """Build a bus meter from the ``[connector.meter]`` settings (see METER_BACKENDS).

    Raises:
        BackendError: unknown or unavailable backend.
    """
    factory = _load(METER_BACKENDS, meter.driver, "[connector.meter] driver")
    return cast(EnergyMeter, factory(meter))
