"""A controller board: the hardware of every connector plus station-wide parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hal.contactor import Contactor
from hal.id_reader import IdReader
from hal.interlock import ConnectorInterlock, Interlock
from hal.lock import ConnectorLock
from hal.meter import EnergyMeter
from hal.pilot import ControlPilot
from hal.power_fail import PowerFailInput
from hal.rcd import Rcd
from hal.temperature import TemperatureSensor


@dataclass
class ConnectorHardware:
    """The parts wired to one connector (``connector_id`` ≥ 1, as OCPP numbers them)."""

    connector_id: int
    pilot: ControlPilot
    contactor: Contactor
    rcd: Rcd
    meter: EnergyMeter
    lock: ConnectorLock | None = None
    #: Optional temperature sensor (socket / cable), °C, for derating.
    temperature: TemperatureSensor | None = None
    #: The board's interlock on this connector's contactor (None: a bare set of parts,
    #: e.g. built by a test; every board backend wires one).
    interlock: ConnectorInterlock | None = None
    #: The EV's state of charge, %, when the EV reports it (a digital link, the simulator);
    #: None when this connector cannot know it or the EV does not say.
    ev_state_of_charge: Callable[[], float | None] | None = None


class SimulatorControl(Protocol):
    """What a simulated board lets a technician, test or CSMS integrator drive
    (``evse sim ...``). Real boards have none."""

    def plug(self, connector_id: int, max_current_a: float, phases: int) -> None:
        """Plug an EV drawing at most ``max_current_a`` A per phase on ``phases`` phases."""

    def unplug(self, connector_id: int) -> None:
        """Unplug the EV (pilot back to state A)."""

    def swipe(self, id_tag: str) -> None:
        """Present a card with ``id_tag`` to the station's reader."""

    def ev_pause(self, connector_id: int) -> None:
        """The EV stops asking for energy (C → B)."""

    def ev_resume(self, connector_id: int) -> None:
        """The EV asks for energy again (B → C)."""

    def fault(self, connector_id: int, kind: str) -> None:
        """Inject a fault (rcd, diode, weld, overcurrent, overtemp, meter, lock); ValueError
        for an unknown kind."""

    def clear(self, connector_id: int, kind: str) -> None:
        """Remove an injected fault."""

    def describe(self) -> dict[str, object]:
        """JSON-able state of the simulated EVs, for ``evse status``."""

    def keep_meter_registers(self, directory: Path) -> None:
        """Keep each simulated meter's energy register in a file in ``directory``, so it
        survives a restart the way a real meter's non-volatile register does."""

    def power_fail(self, lost: bool) -> None:
        """The mains-loss input says the supply is lost (``lost``) or back."""


@dataclass
class Board:
    """Everything the composition root hands to the Station."""

    connectors: list[ConnectorHardware]
    id_readers: list[IdReader] = field(default_factory=list)
    simulator: SimulatorControl | None = None
    #: The board's interlock (started by the backend before the board is returned).
    interlock: Interlock | None = None
    #: The mains-loss signal (UPS / supply monitor), if wired.
    power_fail: PowerFailInput | None = None

    def close(self) -> None:
        """Open every contactor, stop the interlock's threads, then release all hardware."""
        for hw in self.connectors:
            hw.contactor.open()
        if self.interlock is not None:
            self.interlock.close()
        for hw in self.connectors:
            for part in (hw.pilot, hw.rcd, hw.meter, hw.lock, hw.temperature):
                if part is not None:
                    part.close()
            hw.contactor.close_hw()
        for reader in self.id_readers:
            reader.close()
        if self.power_fail is not None:
            self.power_fail.close()
