"""Simulated board: pilot, contactor, RCD, meter, lock and reader driven by simulated EVs.

Listeners are called on the thread that changed the simulation (the control socket handler
or a test), the way a GPIO callback fires on the pin library's thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from hal.board import Board, ConnectorHardware
from hal.contactor import Contactor, InhibitCause
from hal.id_reader import IdReader
from hal.interlock import ConnectorInterlock, Interlock
from hal.lock import ConnectorLock, ConnectorLockFailure
from hal.meter import EnergyMeter, MeterReading, PowerMeterFailure
from hal.pilot import NOMINAL_LEVEL_V, ControlPilot, PilotReading, PilotState
from hal.power_fail import PowerFailInput
from hal.rcd import Rcd
from hal.registry import create_meter
from hal.settings import ConnectorSettings, HardwareSettings
from hal.sim.ev import SimEV
from hal.temperature import TemperatureSensor

#: Fault kinds ``evse sim fault`` can inject.
FAULT_KINDS = ("rcd", "diode", "weld", "overcurrent", "overtemp", "meter", "lock",
               "cp_short", "stuck_open")

#: Temperature the ``overtemp`` fault sets, °C (above any allowed trip level).
OVERTEMP_C = 125.0
#: Ambient temperature of the simulated connector, °C.
AMBIENT_C = 25.0

#: Nominal phase voltage of the simulated grid, volts.
NOMINAL_VOLTAGE_V = 230.0


class SimConnector:
    """The simulated hardware of one connector, sharing one lock and one EV."""

    def __init__(self, connector_id: int, max_current_a: float, phases: int) -> None:
        self.connector_id = connector_id
        self.ev = SimEV(max_current_a=max_current_a, phases=phases)
        self.faults: set[str] = set()
        self.lock = threading.RLock()
        self.duty_percent = 100.0
        self.state_f = False
        self.contactor_closed = False
        self.cable_locked = False
        self.temperature_c = AMBIENT_C
        self._energy_wh = 0.0
        #: File keeping the energy register across restarts (a real meter's register is
        #: non-volatile); None: the register starts at 0 Wh with every run.
        self.register_file: Path | None = None
        self._power_w = 0.0
        self._last_t = time.monotonic()
        self.pilot = SimPilot(self)
        self.contactor = SimContactor(self)
        self.rcd = SimRcd(self)
        self.meter = SimMeter(self)
        self.cable_lock = SimLock(self)
        self.temperature = SimTemperature(self)
        self._last_reading = self.pilot_reading()
        #: The same interlock as on a real board (event-driven: the simulator has no
        #: sampler thread to supervise).
        self.interlock = ConnectorInterlock(connector_id, self.contactor, self.pilot, self.rcd)

    def set_temperature(self, temperature_c: float) -> None:
        """The connector's temperature changed, °C; the interlock sees it at once (like a
        temperature sampler's sample)."""
        self.temperature_c = temperature_c
        self.interlock.on_temperature(temperature_c)

    # -- physics -----------------------------------------------------------------------
    def pilot_reading(self) -> PilotReading:
        if "cp_short" in self.faults:  # CP shorted to PE reads 0 V whatever is driven
            return PilotReading(PilotState.E)
        if self.state_f:
            return PilotReading(PilotState.F)
        state = self.ev.pilot_state(self.duty_percent)
        diode_fault = "diode" in self.faults and self.ev.plugged and self.duty_percent < 100.0
        return PilotReading(state, diode_fault)

    def current_per_phase(self) -> float:
        duty = 100.0 if self.state_f else self.duty_percent
        return self.ev.current_per_phase(duty, self.contactor_closed)

    def integrate(self) -> None:
        """Advance the energy register to now at the power drawn since the last change."""
        now = time.monotonic()
        added_wh = self._power_w * (now - self._last_t) / 3600.0
        self._energy_wh += added_wh
        self.ev.charged(added_wh)
        self._last_t = now

    def ev_state_of_charge(self) -> float | None:
        """The SoC the plugged EV reports, % (None: unplugged or it reports none)."""
        with self.lock:
            self.integrate()
            return self.ev.soc_percent if self.ev.plugged else None

    def changed(self) -> None:
        """Recompute power and pilot after any change; emit a pilot change if there is one."""
        with self.lock:
            self.integrate()
            amps = self.current_per_phase()
            self._power_w = amps * NOMINAL_VOLTAGE_V * self.ev.phases
            reading = self.pilot_reading()
            emit = reading != self._last_reading
            self._last_reading = reading
        if emit:
            self.pilot._emit(reading)

    def keep_register(self, path: Path) -> None:
        """Keep the energy register in ``path`` (read now, written on every reading)."""
        with self.lock:
            self.register_file = path
            # No register yet (or unreadable): it starts at 0 Wh.
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                self._energy_wh = float(json.loads(path.read_text())["energy_wh"])

    def _save_register(self) -> None:
        # Written, not fsync'd: it survives a killed daemon (the page cache does), which is
        # what the simulation needs; a real meter keeps its register itself.
        path = self.register_file
        if path is None:
            return
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps({"energy_wh": self._energy_wh}))
            os.replace(tmp, path)
        except OSError:
            pass  # a full disk must not make the simulated meter fail

    def snapshot(self) -> MeterReading:
        with self.lock:
            self.integrate()
            self._save_register()
            amps = self.current_per_phase()
            phases = self.ev.phases
            return MeterReading(
                energy_active_import_wh=self._energy_wh,
                power_active_w=self._power_w,
                voltage_v=(NOMINAL_VOLTAGE_V,) * 3,
                current_a=tuple(amps if i < phases else 0.0 for i in range(3)),
                timestamp=time.time(),
            )

    def describe(self) -> dict[str, object]:
        with self.lock:
            return {
                "plugged": self.ev.plugged,
                "ev_max_current_a": self.ev.max_current_a,
                "phases": self.ev.phases,
                "ev_wants_energy": self.ev.wants_energy,
                "ev_soc_percent": self.ev.soc_percent,
                "pilot": self.pilot_reading().state.value,
                "duty_percent": round(self.duty_percent, 2),
                "contactor_closed": self.contactor_closed,
                "energy_wh": self.snapshot().energy_active_import_wh,
                "faults": sorted(self.faults),
                "temperature_c": self.temperature_c,
            }


class SimPilot(ControlPilot):
    """Pilot whose CP voltage is what the simulated EV presents."""

    def __init__(self, conn: SimConnector) -> None:
        super().__init__()
        self._conn = conn

    def cable_ampacity_a(self) -> float | None:
        ev = self._conn.ev
        return ev.cable_ampacity_a if ev.plugged else None

    def set_duty(self, duty_percent: float) -> None:
        if not 0.0 <= duty_percent <= 100.0:
            raise ValueError(f"duty {duty_percent} % outside 0–100 %")
        self._conn.duty_percent = duty_percent
        self._conn.state_f = False
        self._conn.changed()

    def set_off(self) -> None:
        self.set_duty(100.0)

    def set_state_f(self) -> None:
        self._conn.state_f = True
        self._conn.changed()

    @property
    def duty_percent(self) -> float:
        return 0.0 if self._conn.state_f else self._conn.duty_percent

    def read(self) -> PilotReading:
        return self._conn.pilot_reading()

    def line_voltages(self) -> tuple[float, float | None]:
        """The nominal levels of the simulated line, V; the negative plateau is −12 V while
        PWM runs, or the positive level mirrored when the EV's diode is missing."""
        reading = self._conn.pilot_reading()
        high = NOMINAL_LEVEL_V[reading.state]
        duty = self.duty_percent
        if not 0.0 < duty < 100.0 or reading.state in (PilotState.E, PilotState.F):
            return high, None
        return high, -high if reading.diode_fault else -12.0


class SimContactor(Contactor):
    """Contactor whose mirror contact follows the command unless welded (or stuck open).

    ``close()`` returns False when the interlock holds an inhibit (hal.contactor)."""

    def __init__(self, conn: SimConnector) -> None:
        super().__init__()
        self._conn = conn
        self._commanded = False
        self._weld_reported = False
        self._pending_fault: str | None = None

    def close(self) -> bool:
        closed = super().close()
        self._report()
        return closed

    def inhibit(self, cause: InhibitCause, detail: str = "") -> bool:
        new = super().inhibit(cause, detail)
        self._report()
        return new

    def _report(self) -> None:
        # Reported after the lock is released, like a driver's feedback timer would.
        fault, self._pending_fault = self._pending_fault, None
        if fault is not None:
            self._emit_fault(fault)

    def _drive(self, closed: bool) -> None:
        if closed:
            self._commanded = True
            if "stuck_open" in self._conn.faults:
                self._pending_fault = "failed_to_close"
                return
            self._weld_reported = False
            self._conn.contactor_closed = True
            self._conn.changed()
            return
        welded = "weld" in self._conn.faults
        was_closed = self._conn.contactor_closed
        self._commanded = False
        if not welded:
            if was_closed:
                self._conn.contactor_closed = False
                self._conn.changed()
            return
        if was_closed and not self._weld_reported:  # the mirror contact stays closed
            self._weld_reported = True
            self._pending_fault = "welded"

    def open(self) -> None:
        super().open()
        self._report()

    @property
    def commanded_closed(self) -> bool:
        return self._commanded

    @property
    def feedback_closed(self) -> bool | None:
        return self._conn.contactor_closed


class SimRcd(Rcd):
    def __init__(self, conn: SimConnector) -> None:
        super().__init__()
        self._conn = conn

    @property
    def tripped(self) -> bool:
        return "rcd" in self._conn.faults

    def self_test(self) -> bool:
        return "rcd" not in self._conn.faults

    def reset(self) -> None:
        pass


class SimMeter(EnergyMeter):
    def __init__(self, conn: SimConnector) -> None:
        self._conn = conn

    def read(self) -> MeterReading:
        if "meter" in self._conn.faults:
            raise PowerMeterFailure("simulated meter does not answer")
        return self._conn.snapshot()


class SimLock(ConnectorLock):
    def __init__(self, conn: SimConnector) -> None:
        self._conn = conn

    def lock(self) -> None:
        if "lock" in self._conn.faults:
            raise ConnectorLockFailure("simulated lock did not engage")
        self._conn.cable_locked = True

    def unlock(self) -> None:
        if "lock" in self._conn.faults:
            raise ConnectorLockFailure("simulated lock did not release")
        self._conn.cable_locked = False

    @property
    def locked(self) -> bool:
        return self._conn.cable_locked


class SimTemperature(TemperatureSensor):
    """The connector's temperature as the simulation sets it (``overtemp`` fault: hot)."""

    def __init__(self, conn: SimConnector) -> None:
        self._conn = conn

    def read_c(self) -> float:
        return self._conn.temperature_c


class SimIdReader(IdReader):
    """Reader that presents whatever ``evse sim swipe`` gives it."""

    def present(self, id_tag: str) -> None:
        self._emit(id_tag.strip().upper())


class SimBoard:
    """The :class:`hal.board.SimulatorControl` of a simulated board."""

    def __init__(self, connectors: Sequence[SimConnector], reader: SimIdReader,
                 power: SimPowerFail | None = None) -> None:
        self._connectors = {c.connector_id: c for c in connectors}
        self._reader = reader
        self._power = power or SimPowerFail()

    def connector(self, connector_id: int) -> SimConnector:
        try:
            return self._connectors[connector_id]
        except KeyError:
            raise ValueError(f"no connector {connector_id}") from None

    def plug(self, connector_id: int, max_current_a: float, phases: int,
             soc_percent: float | None = None) -> None:
        """Plug an EV; ``soc_percent``: the state of charge it reports (None: none)."""
        if phases not in (1, 2, 3):
            raise ValueError("phases must be 1, 2 or 3")
        if soc_percent is not None and not 0.0 <= soc_percent <= 100.0:
            raise ValueError("soc_percent must be 0..100")
        conn = self.connector(connector_id)
        with conn.lock:
            conn.ev.plugged = True
            conn.ev.max_current_a = max_current_a
            conn.ev.phases = phases
            conn.ev.wants_energy = True
            conn.ev.soc_percent = soc_percent
        conn.changed()

    def unplug(self, connector_id: int) -> None:
        conn = self.connector(connector_id)
        conn.ev.plugged = False
        conn.changed()

    def swipe(self, id_tag: str) -> None:
        self._reader.present(id_tag)

    def ev_pause(self, connector_id: int) -> None:
        conn = self.connector(connector_id)
        conn.ev.wants_energy = False
        conn.changed()

    def ev_resume(self, connector_id: int) -> None:
        conn = self.connector(connector_id)
        conn.ev.wants_energy = True
        conn.changed()

    def fault(self, connector_id: int, kind: str) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r} (expected one of {', '.join(FAULT_KINDS)})")
        conn = self.connector(connector_id)
        conn.faults.add(kind)
        if kind == "overcurrent":
            conn.ev.ignore_pilot = True
        elif kind == "overtemp":
            conn.set_temperature(OVERTEMP_C)
        conn.changed()
        if kind == "rcd":
            conn.rcd._emit_trip()

    def clear(self, connector_id: int, kind: str) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r} (expected one of {', '.join(FAULT_KINDS)})")
        conn = self.connector(connector_id)
        conn.faults.discard(kind)
        if kind == "overcurrent":
            conn.ev.ignore_pilot = False
        elif kind == "overtemp":
            conn.set_temperature(AMBIENT_C)
        elif kind == "weld":
            conn.contactor_closed = conn.contactor.commanded_closed
        conn.changed()

    def describe(self) -> dict[str, object]:
        return {str(cid): c.describe() for cid, c in self._connectors.items()}

    def keep_meter_registers(self, directory: Path) -> None:
        for cid, conn in self._connectors.items():
            conn.keep_register(directory / f"sim-meter-{cid}.json")

    def power_fail(self, lost: bool) -> None:
        """The simulated mains-loss input (``evse sim power-fail``)."""
        self._power.set(lost)


class SimPowerFail(PowerFailInput):
    """The simulated board's mains-loss input."""

    def __init__(self) -> None:
        super().__init__()
        self._failing = False

    @property
    def failing(self) -> bool:
        return self._failing

    def set(self, failing: bool) -> None:
        """Change the signal (edges only reach the listeners)."""
        if failing != self._failing:
            self._failing = failing
            self._emit(failing)


def create_board(hardware: HardwareSettings, connectors: Sequence[ConnectorSettings]) -> Board:
    """Build a simulated board for the ``[[connector]]`` settings (``id``, ``max_current_a``,
    ``phases``; a ``[connector.meter]`` other than ``sim`` is built by its own backend)."""
    sims = [SimConnector(c.id, c.max_current_a, c.phases) for c in connectors]
    reader = SimIdReader()
    parts = []
    for sim, cfg in zip(sims, connectors, strict=True):
        meter = sim.meter if cfg.meter.driver == "sim" else create_meter(cfg.meter)
        parts.append(
            ConnectorHardware(
                connector_id=sim.connector_id,
                pilot=sim.pilot,
                contactor=sim.contactor,
                rcd=sim.rcd,
                meter=meter,
                lock=sim.cable_lock if cfg.lock else None,
                temperature=sim.temperature,
                interlock=sim.interlock,
                ev_state_of_charge=sim.ev_state_of_charge,
            )
        )
        sim.interlock.ventilation = cfg.ventilation
    interlock = Interlock([s.interlock for s in sims], supervise=False)
    interlock.start()
    for sim in sims:
        sim.interlock.on_temperature(sim.temperature_c)
    power = SimPowerFail()
    return Board(connectors=parts, id_readers=[reader], simulator=SimBoard(sims, reader, power),
                 interlock=interlock, power_fail=power)


def safe_off(hardware: HardwareSettings, connectors: Sequence[ConnectorSettings]) -> list[str]:
    """Nothing to drive: a simulated board's contactors die with the process."""
    return []
