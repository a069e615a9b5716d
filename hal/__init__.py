"""Hardware abstraction: small interfaces for the parts of a charger, and their backends.

``hal`` imports nothing else of this project (DESIGN.md, Layers).
"""

from hal.board import Board, ConnectorHardware, SimulatorControl
from hal.contactor import Contactor, InhibitCause
from hal.id_reader import IdReader
from hal.interlock import ConnectorInterlock, Interlock, InterlockEvent
from hal.lock import ConnectorLock, ConnectorLockFailure
from hal.meter import EnergyMeter, MeterReading, PowerMeterFailure
from hal.pilot import ControlPilot, PilotReading, PilotState, current_for_duty, duty_for_current
from hal.rcd import Rcd
from hal.temperature import TemperatureSensor

__all__ = [
    "Board",
    "ConnectorHardware",
    "ConnectorInterlock",
    "ConnectorLock",
    "ConnectorLockFailure",
    "Contactor",
    "ControlPilot",
    "EnergyMeter",
    "IdReader",
    "InhibitCause",
    "Interlock",
    "InterlockEvent",
    "MeterReading",
    "PilotReading",
    "PilotState",
    "PowerMeterFailure",
    "Rcd",
    "SimulatorControl",
    "TemperatureSensor",
    "current_for_duty",
    "duty_for_current",
]
