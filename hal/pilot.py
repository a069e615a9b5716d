"""Control pilot (CP) interface and the IEC 61851-1 duty ↔ current relation.

The pilot is the EVSE's side of the CP line: a ±12 V, 1 kHz PWM generator plus a sampler of
the line voltage. The EV pulls the positive plateau down through a resistor and diode, which
gives the states A–F (IEC 61851-1 Table A.3):

========  ==========  ======================================
state     +plateau    meaning
========  ==========  ======================================
A         +12 V       no EV connected
B         +9 V        EV connected, not ready for energy
C         +6 V        EV ready, charging (no ventilation)
D         +3 V        EV ready, charging, ventilation needed
E         0 V         CP shorted to PE / EVSE fault
F         −12 V       EVSE not available (driven by the EVSE)
========  ==========  ======================================
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass


class PilotState(enum.Enum):
    """IEC 61851-1 control pilot state as seen on the CP line."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    E = "E"
    F = "F"


#: Nominal positive-plateau level of each state (IEC 61851-1 Table A.3), volts.
NOMINAL_LEVEL_V: dict[PilotState, float] = {
    PilotState.A: 12.0, PilotState.B: 9.0, PilotState.C: 6.0, PilotState.D: 3.0,
    PilotState.E: 0.0, PilotState.F: -12.0,
}

#: Lowest current a PWM duty can announce (IEC 61851-1 Table A.7), amperes.
MIN_CURRENT_A = 6.0
#: Highest current a PWM duty can announce (IEC 61851-1 Table A.7), amperes.
MAX_CURRENT_A = 80.0


def duty_for_current(current_a: float) -> float:
    """PWM duty cycle (percent) that announces ``current_a`` amperes to the EV.

    IEC 61851-1 Table A.7: 6–51 A → duty = I / 0.6; 51–80 A → duty = I / 2.5 + 64.

    Raises:
        ValueError: ``current_a`` is outside 6–80 A (below 6 A the EVSE must pause instead).
    """
    if not MIN_CURRENT_A <= current_a <= MAX_CURRENT_A:
        raise ValueError(f"pilot current {current_a} A outside {MIN_CURRENT_A}–{MAX_CURRENT_A} A")
    if current_a <= 51.0:
        return current_a / 0.6
    return current_a / 2.5 + 64.0


def current_for_duty(duty_percent: float) -> float:
    """Current (amperes) an EV may draw for a PWM duty (percent); 0.0 where no charging is allowed.

    Inverse of :func:`duty_for_current` over 10–96 % (IEC 61851-1 Table A.8); 5 % means
    digital communication and 100 % (constant +12 V) means no charging, both give 0.0 here.
    """
    if 10.0 <= duty_percent <= 85.0:
        return round(duty_percent * 0.6, 2)
    if 85.0 < duty_percent <= 96.0:
        return round((duty_percent - 64.0) * 2.5, 2)
    return 0.0


@dataclass(frozen=True, slots=True)
class PilotReading:
    """One classified pilot sample: the state and whether the diode check failed.

    ``diode_fault`` is True when PWM runs and the negative plateau is not ≈ −12 V
    (the EV's diode is missing or shorted; IEC 61851-1 A.2.3).
    """

    state: PilotState
    diode_fault: bool = False


PilotListener = Callable[[PilotReading], None]
#: ``listener(text)``: the pilot hardware itself failed (co-processor error, corrupt frame).
PilotFaultListener = Callable[[str], None]


class ControlPilot(ABC):
    """Drives the CP line and reports its state.

    Listeners are called on the driver's own thread (the sampling thread, a GPIO callback or
    the simulator) on every change of state or diode fault; they must be quick and must not
    block. The safety path relies on that.
    """

    def __init__(self) -> None:
        self._listeners: list[PilotListener] = []
        self._fault_listeners: list[PilotFaultListener] = []
        self._trip_listeners: list[PilotListener] = []

    def add_listener(self, listener: PilotListener) -> None:
        """Register ``listener(reading)``, called on the driver's thread on every change."""
        self._listeners.append(listener)

    def _emit(self, reading: PilotReading) -> None:
        for listener in self._listeners:
            listener(reading)

    def add_trip_listener(self, listener: PilotListener) -> None:
        """Register ``listener(reading)`` for the safe direction *before* debounce: called on
        the driver's thread as soon as the line shows that the EV left C/D (a state A, B, E
        or F, or a diode fault) while the debounced reading still says C/D. Debounce only
        protects against *closing* on noise (IEC 61851-1 A.2.3: E, F and a diode fault open
        at once). The reading may yet turn out to be noise: then the driver re-emits the
        unchanged debounced reading to the :meth:`add_listener` listeners. Drivers that
        report every change at once (no debounce) never call it."""
        self._trip_listeners.append(listener)

    def _emit_trip(self, reading: PilotReading) -> None:
        for listener in self._trip_listeners:
            listener(reading)

    def add_fault_listener(self, listener: PilotFaultListener) -> None:
        """Register ``listener(text)``, called on the driver's thread when the pilot hardware
        reports a fault of its own (a co-processor ``E`` line or a corrupt frame)."""
        self._fault_listeners.append(listener)

    def _emit_fault(self, text: str) -> None:
        for listener in self._fault_listeners:
            listener(text)

    def hardware_fault(self) -> str | None:
        """The pilot hardware's own fault while it lasts (e.g. no good co-processor frame
        since its last error), or None. Default: None."""
        return None

    def set_current(self, current_a: float) -> None:
        """Offer ``current_a`` amperes with the IEC duty (6–80 A; raises ValueError outside)."""
        self.set_duty(duty_for_current(current_a))

    @abstractmethod
    def set_duty(self, duty_percent: float) -> None:
        """Run 1 kHz PWM with ``duty_percent`` (0–100) on the CP line."""

    @abstractmethod
    def set_off(self) -> None:
        """Constant +12 V on the CP line: EVSE ready, no charging allowed (duty 100 %)."""

    @abstractmethod
    def set_state_f(self) -> None:
        """Constant −12 V on the CP line: state F, EVSE not available / fault."""

    @property
    @abstractmethod
    def duty_percent(self) -> float:
        """Duty cycle in percent currently driven; 100.0 for constant +12 V, 0.0 for state F."""

    @abstractmethod
    def read(self) -> PilotReading:
        """The latest classified pilot reading."""

    def line_voltages(self) -> tuple[float, float | None] | None:
        """The CP line as last measured, V: (positive plateau, negative plateau while PWM
        runs, else None), for the technician's view (``evse status``). None when the driver
        measures no voltage (e.g. a co-processor that reports states only). Default: None.

        Informational only: no safety decision reads it (they use :meth:`read`).
        """
        return None

    def cable_ampacity_a(self) -> float | None:
        """Ampacity of a plugged cable from its PP resistor (IEC 61851-1 Annex B.5), A;
        None when no PP is read (tethered cable, or no cable plugged). Default: None."""
        return None

    def sampler_age_s(self) -> float:
        """Seconds since the pilot sampler last completed a cycle (monotonic clock).

        The safety liveness check (systemd watchdog) fails when this grows past its bound:
        a stuck sampler must stop the watchdog pings. Event-driven drivers (the simulator)
        have no sampler and return 0.0.
        """
        return 0.0

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the hardware; leaves the CP line at a safe level where possible."""
