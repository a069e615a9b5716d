"""A simulated electric vehicle on one connector, following the control pilot."""

from __future__ import annotations

from dataclasses import dataclass

from hal.pilot import PilotState, current_for_duty


@dataclass
class SimEV:
    """An EV as the pilot and the meter see it.

    It reports B when plugged, C when it wants energy and the EVSE offers PWM (IEC 61851-1
    A.2), and draws min(offered current, its own max) per phase, but only while energized.
    With ``ignore_pilot`` (the over-current fault) it draws its own max whatever is offered.
    """

    plugged: bool = False
    max_current_a: float = 32.0
    phases: int = 3
    wants_energy: bool = True
    ignore_pilot: bool = False
    ventilation_needed: bool = False
    #: Stays in C when PWM is withdrawn (a misbehaving EV; IEC 61851-1 seq. 10.2 force-off).
    ignore_pwm_off: bool = False
    #: Ampacity coded by the cable's PP resistor, A; None = tethered / not read.
    cable_ampacity_a: float | None = None
    #: State of charge the EV reports, %; None = it reports none (plain IEC 61851 EVs).
    soc_percent: float | None = None
    #: Usable battery energy, Wh (how fast the reported SoC rises).
    battery_wh: float = 60_000.0

    def charged(self, energy_wh: float) -> None:
        """``energy_wh`` went into the battery: the reported SoC rises (at most 100 %)."""
        if self.soc_percent is not None and energy_wh > 0:
            self.soc_percent = min(100.0, self.soc_percent + 100.0 * energy_wh / self.battery_wh)

    def pilot_state(self, duty_percent: float) -> PilotState:
        """State this EV presents on the CP line for the EVSE's current duty."""
        if not self.plugged:
            return PilotState.A
        offered = current_for_duty(duty_percent) > 0.0
        if self.wants_energy and (offered or (self.ignore_pwm_off and duty_percent >= 100.0)):
            return PilotState.D if self.ventilation_needed else PilotState.C
        return PilotState.B

    def current_per_phase(self, duty_percent: float, energized: bool) -> float:
        """Amperes drawn on each of its phases."""
        if not (self.plugged and energized and self.wants_energy):
            return 0.0
        if self.ignore_pilot or (self.ignore_pwm_off and duty_percent >= 100.0):
            return self.max_current_a
        return min(current_for_duty(duty_percent), self.max_current_a)
