"""Control pilot: 1 kHz PWM on a GPIO pin, CP voltage sampled through an SPI ADC.

The PWM pin drives the ±12 V CP output stage (pin high → +12 V, low → −12 V). The CP line is
scaled into the ADC range by a divider with an offset; the conversion comes from config::

    adc_v   = counts / (2**bits − 1) × adc_vref_v
    pilot_v = (adc_v − adc_offset_v) × adc_divider

A dedicated thread samples bursts of ``samples`` conversions every ``period_s``. With PWM
running, the highest sample is the positive plateau (the EV's state) and the lowest the
negative plateau (diode check: it must be ≈ −12 V, IEC 61851-1 A.2.3); with a constant
output the median is the level. Levels are classified A–F with hysteresis (IEC 61851-1
Table A.4 ranges) and a new state must be seen in ``debounce`` consecutive bursts before
listeners hear of it — on the sampling thread, without any queue in between.

Debounce is asymmetric: it protects against *closing* on noise, never delays opening. While
the debounced reading is C or D, every conversion is checked as it arrives; two consecutive
positive-plateau samples in the same band outside C/D (A, B, E, F), or two consecutive
negative-plateau samples above ``diode_max_v`` (diode fault), reach the pilot's *trip*
listeners (:meth:`hal.pilot.ControlPilot.add_trip_listener`: the board's interlock, which
inhibits the contactor) at once, mid-burst. A single noisy conversion never trips. The
debounced reading alone drives the listeners of :meth:`~hal.pilot.ControlPilot.add_listener`
(the session logic); if it never confirms the excursion (``debounce`` bursts agree with the
old reading again), it is re-emitted unchanged so the interlock lifts its inhibit and the
core may close again through the normal path.

The sampler thread needs the GIL back within a fraction of a millisecond of its wait
ending, also while the event loop thread is busy: constructing an :class:`AdcPilot` lowers
the interpreter's switch interval (:func:`sys.setswitchinterval`) to
:data:`SWITCH_INTERVAL_S` (CPython's default, 5 ms, would add up to 5 ms per GIL hand-over).

Sampling is not synchronised with the PWM edges: at low duty a burst can miss the positive
plateau, in which case the burst is not classified. Boards that need edge-synchronous
sampling use the pilot co-processor (:mod:`hal.gpio.pilot_uart`).
"""

from __future__ import annotations

import bisect
import functools
import logging
import math
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from gpiozero import PWMOutputDevice
from gpiozero.pins import Factory

from hal.pilot import ControlPilot, PilotReading, PilotState

log = logging.getLogger(__name__)

#: PWM frequency of the CP signal (IEC 61851-1 A.2.2: 1 kHz ± 0.5 %), Hz.
PWM_FREQUENCY_HZ = 1000
#: Interpreter switch interval set by :class:`AdcPilot`, s: the longest a busy thread keeps
#: the GIL from the sampler once the sampler wants it.
SWITCH_INTERVAL_S = 0.0005
#: Nice value the sampler thread asks for (Linux: a per-thread priority; lowering it needs
#: CAP_SYS_NICE or root, and without it the thread keeps the process's priority).
SAMPLER_NICE = -10
#: Chance accepted of calling F on a healthy line because bursts missed the positive plateau
#: by bad luck (unsynchronised sampling).
BLIND_F_FALSE_ALARM = 1e-9


def blind_bursts_for_f(duty_percent: float, samples: int, debounce: int) -> int:
    """Consecutive PWM bursts with no sample on the positive plateau after which the line
    counts as state F (at −12 V: not driven by us, or CP shorted to the negative rail).

    A burst of ``samples`` unsynchronised conversions misses a plateau of ``duty_percent``
    with p = (1 − duty)**samples; ``k`` misses in a row by chance: p**k ≤
    :data:`BLIND_F_FALSE_ALARM`. E.g. 26.7 % (16 A), 8 samples: 9 bursts; 10 %: 25 bursts.
    """
    miss = (1.0 - min(max(duty_percent, 1.0), 99.0) / 100.0) ** max(samples, 1)
    if miss <= 0.0:
        return max(debounce, 1)
    needed = math.ceil(math.log(BLIND_F_FALSE_ALARM) / math.log(miss))
    return max(debounce, needed)


@dataclass(frozen=True, slots=True)
class PilotThresholds:
    """Lower bounds (V) of the positive-plateau bands, IEC 61851-1 Table A.4 midpoints.

    A ≥ ``a_min_v`` > B ≥ ``b_min_v`` > C ≥ ``c_min_v`` > D ≥ ``d_min_v`` > E ≥ ``f_max_v`` > F.
    Anything between 0 V and −12 V that is not F counts as E (CP fault). ``diode_max_v``:
    while PWM runs the negative plateau must be at or below this. ``hysteresis_v`` widens the
    band of the current state.
    """

    a_min_v: float = 10.5
    b_min_v: float = 7.5
    c_min_v: float = 4.5
    d_min_v: float = 1.5
    f_max_v: float = -10.5
    diode_max_v: float = -10.5
    hysteresis_v: float = 0.4
    #: While PWM runs, a burst whose highest sample is below this saw no positive plateau
    #: (E is 0 V ± 1 V; a lower maximum is the negative plateau of a diode-less EV, or F).
    plateau_min_v: float = -3.0


_ORDER = (PilotState.A, PilotState.B, PilotState.C, PilotState.D, PilotState.E, PilotState.F)
#: States that allow energy (pilot-wise; the interlock decides on D and ventilation).
_ENERGY = (PilotState.C, PilotState.D)
#: Band index (``bisect_right`` over :func:`_bounds`) → state.
_BY_BOUND = (PilotState.F, PilotState.E, PilotState.D, PilotState.C, PilotState.B, PilotState.A)


@functools.lru_cache(maxsize=16)
def _bounds(t: PilotThresholds) -> tuple[float, ...]:
    """Ascending lower bounds of E, D, C, B, A (V), for ``bisect_right`` → :data:`_BY_BOUND`."""
    return (t.f_max_v, t.d_min_v, t.c_min_v, t.b_min_v, t.a_min_v)


@functools.lru_cache(maxsize=16)
def _bands(t: PilotThresholds) -> dict[PilotState, tuple[float, float]]:
    inf = float("inf")
    return {
        PilotState.A: (t.a_min_v, inf),
        PilotState.B: (t.b_min_v, t.a_min_v),
        PilotState.C: (t.c_min_v, t.b_min_v),
        PilotState.D: (t.d_min_v, t.c_min_v),
        PilotState.E: (t.f_max_v, t.d_min_v),
        PilotState.F: (-inf, t.f_max_v),
    }


def classify_level(
    volts: float, previous: PilotState | None, thresholds: PilotThresholds
) -> PilotState:
    """State for a positive-plateau voltage, keeping ``previous`` within its hysteresis."""
    bands = _bands(thresholds)
    if previous is not None:
        low, high = bands[previous]
        h = thresholds.hysteresis_v
        if low - h <= volts < high + h:
            return previous
    for state in _ORDER:
        low, high = bands[state]
        if low <= volts < high:
            return state
    return PilotState.E


def classify_burst(
    samples: list[float],
    pwm_running: bool,
    previous: PilotState | None,
    thresholds: PilotThresholds,
) -> PilotReading | None:
    """Classify one burst of CP voltages (V). None when PWM runs and no sample landed on the
    positive plateau."""
    if not samples:
        return None
    if not pwm_running:
        return PilotReading(classify_level(statistics.median(samples), previous, thresholds))
    high, low = max(samples), min(samples)
    if high < thresholds.plateau_min_v:
        return None
    state = classify_level(high, previous, thresholds)
    diode_fault = state in (PilotState.B, PilotState.C, PilotState.D) and (
        low > thresholds.diode_max_v
    )
    return PilotReading(state, diode_fault)


class AdcPilot(ControlPilot):
    """CP generator on a PWM pin and CP sampler on an MCP3xxx ADC channel.

    Args:
        pwm_pin: GPIO driving the CP output stage (hardware-timed PWM: see hal.gpio.pins).
        adc: a gpiozero MCP3xxx device (``raw_value``, ``bits``), e.g.
            ``MCP3008(channel=0, pin_factory=f)``.
        adc_vref_v: ADC reference voltage, V.
        adc_offset_v: ADC input voltage at 0 V on the CP line, V.
        adc_divider: CP volts per ADC volt.
        samples: conversions per burst.
        period_s: time between bursts, s.
        debounce: consecutive bursts that must agree before a change is reported (a change
            out of C/D trips the interlock earlier: see the module docstring).
        thresholds: classification bands.
        pwm_active_high: pin level that gives +12 V on the CP line.
        pin_factory: gpiozero pin factory.
        thread_nice: nice value for the sampler thread where permitted (None: leave it).
    """

    def __init__(
        self,
        pwm_pin: int | str,
        adc: Any,
        adc_vref_v: float = 3.3,
        adc_offset_v: float = 1.65,
        adc_divider: float = 8.0,
        samples: int = 16,
        period_s: float = 0.005,
        debounce: int = 3,
        thresholds: PilotThresholds | None = None,
        pwm_active_high: bool = True,
        pin_factory: Factory | None = None,
        thread_nice: int | None = SAMPLER_NICE,
    ) -> None:
        super().__init__()
        self._pwm = PWMOutputDevice(
            pwm_pin,
            active_high=pwm_active_high,
            initial_value=1.0,
            frequency=PWM_FREQUENCY_HZ,
            pin_factory=pin_factory,
        )
        self._adc = adc
        self._full_scale = float(2 ** int(adc.bits) - 1)
        self.adc_vref_v = adc_vref_v
        self.adc_offset_v = adc_offset_v
        self.adc_divider = adc_divider
        self.samples = samples
        self.period_s = period_s
        self.debounce = debounce
        self.thresholds = thresholds or PilotThresholds()
        self._duty = 100.0
        self._lock = threading.Lock()
        # Until the first bursts say otherwise: no EV (the safe assumption: no charging).
        self._reading = PilotReading(PilotState.A)
        self._candidate: PilotReading | None = None
        self._candidate_count = 0
        #: Consecutive PWM bursts with no sample on the positive plateau.
        self._blind = 0
        #: An early trip is out and the debounced reading has not caught up yet.
        self._early = False
        #: Bursts agreeing with the debounced reading since the early trip.
        self._agree = 0
        #: The state of the last positive-plateau sample outside C/D (None: in C/D).
        self._pos_prev: PilotState | None = None
        #: The last negative-plateau sample was above ``diode_max_v``.
        self._neg_bad = False
        if sys.getswitchinterval() > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._last_cycle = time.monotonic()
        self.thread_nice = thread_nice
        self._volts: tuple[float, float | None] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pilot-adc", daemon=True)
        self._thread.start()

    # -- output ----------------------------------------------------------------------
    def set_duty(self, duty_percent: float) -> None:
        if not 0.0 <= duty_percent <= 100.0:
            raise ValueError(f"duty {duty_percent} % outside 0–100 %")
        with self._lock:
            self._duty = duty_percent
            self._pwm.value = duty_percent / 100.0

    def set_off(self) -> None:
        self.set_duty(100.0)

    def set_state_f(self) -> None:
        self.set_duty(0.0)

    @property
    def duty_percent(self) -> float:
        return self._duty

    # -- sampling ----------------------------------------------------------------------
    def to_volts(self, counts: int) -> float:
        """CP line voltage for an ADC reading in counts, V."""
        adc_v = counts / self._full_scale * self.adc_vref_v
        return (adc_v - self.adc_offset_v) * self.adc_divider

    def _raise_priority(self) -> None:
        """Ask for :data:`SAMPLER_NICE` on this thread, so a busy machine hands the CPU to
        the sampler as soon as its wait ends (docs/hardware.md: grant the service
        CAP_SYS_NICE); silently kept at the process's priority where not permitted."""
        if self.thread_nice is None:
            return
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.thread_nice)
        except (OSError, AttributeError):  # not permitted, or no per-thread priority here
            log.debug("pilot sampler: no permission for nice %d", self.thread_nice)

    def _run(self) -> None:
        self._raise_priority()
        while not self._stop.is_set():
            try:
                duty = self._duty
                pwm_running = 0.0 < duty < 100.0
                samples = self._burst(pwm_running)
                # For ``evse status`` only (one tuple, replaced whole: read without a lock).
                self._volts = ((max(samples), min(samples)) if pwm_running
                               else (statistics.median(samples), None))
                reading = classify_burst(samples, pwm_running, self._reading.state,
                                         self.thresholds)
                self._blind = self._blind + 1 if reading is None and pwm_running else 0
                if self._blind >= blind_bursts_for_f(duty, self.samples, self.debounce):
                    # No positive plateau in this many bursts: the line sits at −12 V
                    # (state F not driven by us, or CP shorted to the negative rail).
                    reading = PilotReading(PilotState.F)
                self._step(reading)
                self._last_cycle = time.monotonic()
            except Exception:
                log.exception("pilot sampler: ADC read failed")
            self._stop.wait(self.period_s)

    def _burst(self, pwm_running: bool) -> list[float]:
        """One burst of conversions (V). While the debounced reading is C/D and no early
        trip is out, each conversion is checked on arrival (see the module docstring)."""
        # Per-burst constants, so the per-conversion work is a multiply-add and compares.
        gain = self.adc_vref_v * self.adc_divider / self._full_scale
        bias = -self.adc_offset_v * self.adc_divider
        adc = self._adc
        samples: list[float] = []
        append = samples.append
        current = self._reading
        watch = current.state in _ENERGY and not current.diode_fault and not self._early
        if not watch:
            for _ in range(self.samples):
                append(adc.raw_value * gain + bias)
            return samples
        t = self.thresholds
        bounds = _bounds(t)
        low, high = _bands(t)[current.state]
        low, high = low - t.hysteresis_v, high + t.hysteresis_v
        plateau_min, diode_max = t.plateau_min_v, t.diode_max_v
        for _ in range(self.samples):
            volts = adc.raw_value * gain + bias
            append(volts)
            if self._early:
                continue
            if pwm_running and volts < plateau_min:  # negative plateau: the diode check
                bad = volts > diode_max
                if bad and self._neg_bad:
                    self._trip_early(PilotReading(current.state, True))
                self._neg_bad = bad
            elif low <= volts < high:
                self._pos_prev = None
            else:
                state = _BY_BOUND[bisect.bisect_right(bounds, volts)]
                if state in _ENERGY:
                    self._pos_prev = None
                elif state is self._pos_prev:
                    self._trip_early(PilotReading(state))
                else:
                    self._pos_prev = state
        return samples

    def _trip_early(self, reading: PilotReading) -> None:
        self._early = True
        self._agree = 0
        self._emit_trip(reading)

    def _step(self, reading: PilotReading | None) -> None:
        if reading is None:
            return
        if reading == self._reading:
            self._candidate, self._candidate_count = None, 0
            if self._early:
                self._agree += 1
                if self._agree >= self.debounce:
                    # The excursion was noise: say the unchanged reading again, so the
                    # interlock lifts its inhibit and the core may close as usual.
                    self._early = False
                    self._pos_prev, self._neg_bad = None, False
                    self._emit(self._reading)
            return
        self._agree = 0
        if reading == self._candidate:
            self._candidate_count += 1
        else:
            self._candidate, self._candidate_count = reading, 1
        if self._candidate_count >= self.debounce:
            self._reading = reading
            self._candidate, self._candidate_count = None, 0
            self._early = False
            self._pos_prev, self._neg_bad = None, False
            self._emit(reading)

    def read(self) -> PilotReading:
        return self._reading

    def line_voltages(self) -> tuple[float, float | None] | None:
        """The last burst: (highest, lowest) sample while PWM runs, else (median, None), V."""
        return self._volts

    def sampler_age_s(self) -> float:
        """Seconds since the sampling thread last completed a burst."""
        return time.monotonic() - self._last_cycle

    def close(self) -> None:
        """Stop sampling, leave the CP line at +12 V (no charging allowed), release pins."""
        self._stop.set()
        self._thread.join(2)
        self._pwm.value = 1.0
        self._pwm.close()
        self._adc.close()
