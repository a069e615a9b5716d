"""The board's contactor interlock: each connector's safety inputs wired to its own contactor
inside the driver layer, like the safety MCU of other charger boards (DESIGN.md "Safety first").

No ``evse`` code needs to run for it to act. Per connector, :class:`ConnectorInterlock`:

==========================================  ======================  ======================
input (thread that sees it)                  inhibit                 cleared
==========================================  ======================  ======================
pilot not C (D only with ventilation),      PILOT_NOT_READY         by the interlock when
or a diode fault (pilot listener; leaving                           the debounced pilot
C/D: the pilot's trip listener, before                              reads C/D
debounce)
pilot E; F not driven by us; diode fault    PILOT_FAULT             ``release()`` once the
(pilot listener; IEC 61851-1 A.2.3)                                 pilot reads no fault
RCD trip edge (RCD listener)                RCD_TRIP                ``release()`` once the
                                                                    RCD reports no trip
temperature ≥ ``overtemp_trip_c``           OVERTEMP                ``release()`` once
(temperature sampler / simulator)                                   < ``overtemp_clear_c``
mirror contact stays closed after open      WELDED                  ``release()`` once the
(contactor feedback timer)                                          contact reads open
mirror contact did not follow a close       FAILED_TO_CLOSE         ``release()``
pilot sampler / co-processor heartbeat      LIVENESS                ``release()`` once
older than ``sampler_max_age_s``; the                               every input is fresh
temperature sample older than
``temperature_max_age_s`` (supervisor)
co-processor bad frame / ``E`` line         COPROCESSOR             ``release()`` once a
(pilot fault listener)                                              good frame followed
==========================================  ======================  ======================

Every trip drives the output low first (:meth:`hal.contactor.Contactor.inhibit`), then tells
the interlock's listeners (:class:`InterlockEvent`), and logs last. The core (``evse``)
decides when power is *requested*, keeps the fault latching and retry policies, and clears
an inhibit only through :meth:`ConnectorInterlock.release` when it leaves Faulted; the
release is refused while the cause is still present.

:class:`Interlock` is the board-level part: one supervisor thread checks every input's
liveness every ``check_period_s`` and :meth:`Interlock.healthy` tells the systemd watchdog
task whether the safety path lives.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from hal.contactor import Contactor, InhibitCause
from hal.pilot import ControlPilot, PilotReading, PilotState
from hal.rcd import Rcd
from hal.temperature import TemperatureSensor

log = logging.getLogger(__name__)

#: Default trip level of the over-temperature inhibit, °C (``[iec61851] overtemp_trip_c``).
DEFAULT_OVERTEMP_TRIP_C = 80.0
#: Default release level, °C (trip minus ``[iec61851] overtemp_hysteresis_c``).
DEFAULT_OVERTEMP_CLEAR_C = 70.0
#: Longest a pilot sampler / co-processor heartbeat may be silent, s. The ADC sampler cycles
#: every few ms, the co-processor sends a heartbeat every 100 ms.
DEFAULT_SAMPLER_MAX_AGE_S = 0.5
#: Longest a temperature sample may be old before the sensor counts as dead, s.
DEFAULT_TEMPERATURE_MAX_AGE_S = 5.0
#: How often the supervisor thread checks liveness, s.
DEFAULT_CHECK_PERIOD_S = 0.05

#: Causes the interlock reports to its listeners (PILOT_NOT_READY is routine, not a fault).
REPORTED = frozenset(InhibitCause) - {InhibitCause.PILOT_NOT_READY}


@dataclass(frozen=True, slots=True)
class InterlockEvent:
    """A connector's interlock set an inhibit (``active``) or saw its cause go away
    (``active = False``: :meth:`ConnectorInterlock.release` would now succeed)."""

    connector_id: int
    cause: InhibitCause
    detail: str
    active: bool


InterlockListener = Callable[[InterlockEvent], None]


class ConnectorInterlock:
    """One connector's safety inputs wired to its contactor (see the module table).

    Args:
        connector_id: the connector (≥ 1).
        contactor, pilot, rcd: the connector's parts.
        ventilation: state D may be energized (IEC 61851-1 A.2.2).
        overtemp_trip_c: temperature that inhibits, °C.
        overtemp_clear_c: temperature below which OVERTEMP may be released, °C.
        sampler_max_age_s: bound on :meth:`ControlPilot.sampler_age_s`, s.
        temperature_max_age_s: bound on the age of the last temperature sample, s (only
            checked once a :class:`TemperatureSampler` feeds this interlock).
    """

    def __init__(
        self,
        connector_id: int,
        contactor: Contactor,
        pilot: ControlPilot,
        rcd: Rcd,
        *,
        ventilation: bool = False,
        overtemp_trip_c: float = DEFAULT_OVERTEMP_TRIP_C,
        overtemp_clear_c: float = DEFAULT_OVERTEMP_CLEAR_C,
        sampler_max_age_s: float = DEFAULT_SAMPLER_MAX_AGE_S,
        temperature_max_age_s: float = DEFAULT_TEMPERATURE_MAX_AGE_S,
    ) -> None:
        self.connector_id = connector_id
        self.contactor = contactor
        self.pilot = pilot
        self.rcd = rcd
        self.ventilation = ventilation
        self.overtemp_trip_c = overtemp_trip_c
        self.overtemp_clear_c = overtemp_clear_c
        self.sampler_max_age_s = sampler_max_age_s
        self.temperature_max_age_s = temperature_max_age_s
        self.temperature_c: float | None = None
        self._temperature_at: float | None = None
        self._temperature_fed = False
        self._commissioning = False
        self._listeners: list[InterlockListener] = []
        self._liveness_reported = False
        self._gone_sent: set[InhibitCause] = set()
        self._attached = False
        #: An undebounced reading that left C/D (the pilot's trip listener), until the
        #: debounced reading confirms or re-affirms (any debounced reading clears it).
        self._early: PilotReading | None = None

    # -- wiring ---------------------------------------------------------------------------
    def attach(self) -> None:
        """Register with the parts (first in their listener lists, so the interlock acts
        before any core listener) and take the initial state from the inputs."""
        if self._attached:
            return
        self._attached = True
        self.contactor.set_interlock(self._permit, self.still_present)
        self.pilot.add_trip_listener(self._on_pilot_trip)
        self.pilot.add_listener(self._on_pilot)
        self.pilot.add_fault_listener(self._on_pilot_fault)
        self.rcd.add_trip_listener(self._on_rcd_trip)
        self.contactor.add_fault_listener(self._on_contactor_fault)
        self._on_pilot(self.pilot.read())
        if self.rcd.tripped:
            self._trip(InhibitCause.RCD_TRIP, "RCD reports a trip")

    def add_listener(self, listener: InterlockListener) -> None:
        """Register ``listener(event)``, called on the thread that saw the input, after the
        output is low. It must be quick and must not block."""
        self._listeners.append(listener)

    def _notify(self, event: InterlockEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a listener never stops the others; the output is low already
                log.exception("interlock listener failed on %s", event)

    def _trip(self, cause: InhibitCause, detail: str) -> None:
        """Output low and the inhibit booked (under the contactor's lock), then notify,
        then log: the order DESIGN.md asks for."""
        new = self.contactor.inhibit(cause, detail)
        if not new or cause not in REPORTED:
            return
        self._gone_sent.discard(cause)
        self._notify(InterlockEvent(self.connector_id, cause, detail, True))
        log.error("connector %d interlock: %s (%s): contactor inhibited",
                  self.connector_id, cause.value, detail)

    def _gone(self, cause: InhibitCause, detail: str) -> None:
        """Tell the listeners once that a held cause went away (release would succeed)."""
        if cause in self.contactor.inhibits and cause not in self._gone_sent:
            self._gone_sent.add(cause)
            self._notify(InterlockEvent(self.connector_id, cause, detail, False))

    # -- inputs ---------------------------------------------------------------------------
    def _energy_states(self) -> frozenset[PilotState]:
        if self.ventilation:
            return frozenset({PilotState.C, PilotState.D})
        return frozenset({PilotState.C})

    def _not_ready_now(self) -> str | None:
        """Why the pilot permits no close now: the debounced reading, or an early trip the
        debounce has not resolved yet."""
        early = self._early
        if early is not None:
            return f"{self._not_ready(early)} (first samples, awaiting debounce)"
        return self._not_ready(self.pilot.read())

    def _not_ready(self, reading: PilotReading) -> str | None:
        if reading.diode_fault:
            return "pilot diode fault"
        if reading.state in self._energy_states():
            return None
        if self._commissioning and reading.state is PilotState.A:
            return None
        return f"pilot in state {reading.state.value}"

    def _pilot_fault(self, reading: PilotReading) -> str | None:
        if reading.diode_fault:
            return "pilot diode fault (negative plateau not at -12 V)"
        if reading.state is PilotState.E:
            return "pilot state E (CP shorted to PE)"
        if reading.state is PilotState.F and self.pilot.duty_percent != 0.0:
            return "pilot state F not driven by the EVSE"
        return None

    def _on_pilot_trip(self, reading: PilotReading) -> None:
        """The pilot saw the line leave C/D before its debounce confirmed it: output low at
        once (PILOT_NOT_READY). The fault itself (PILOT_FAULT, reported) waits for the
        debounced reading, so a noisy conversion pair never latches a fault."""
        not_ready = self._not_ready(reading)
        if not_ready is None:
            return
        # Booked before the output goes low, so a close racing on another thread sees it
        # in its permit check after writing.
        self._early = reading
        self._trip(InhibitCause.PILOT_NOT_READY, f"{not_ready} (first samples, unconfirmed)")

    def _on_pilot(self, reading: PilotReading) -> None:
        self._early = None
        fault = self._pilot_fault(reading)
        if fault is not None:
            self._trip(InhibitCause.PILOT_FAULT, fault)
        not_ready = self._not_ready(reading)
        if not_ready is not None:
            self._trip(InhibitCause.PILOT_NOT_READY, not_ready)
        else:
            self.contactor.release_inhibit(InhibitCause.PILOT_NOT_READY)

    def _on_pilot_fault(self, detail: str) -> None:
        self._trip(InhibitCause.COPROCESSOR, detail)

    def _on_rcd_trip(self) -> None:
        self._trip(InhibitCause.RCD_TRIP, "residual current trip")

    def _on_contactor_fault(self, reason: str) -> None:
        if reason == "welded":
            self._trip(InhibitCause.WELDED, "mirror contact closed after open")
        else:
            self._trip(InhibitCause.FAILED_TO_CLOSE, "mirror contact did not follow close")

    def on_temperature(self, temperature_c: float) -> None:
        """A temperature sample, °C (sampler thread or simulator): at or above
        ``overtemp_trip_c`` the output goes low at once."""
        self.temperature_c = temperature_c
        self._temperature_at = time.monotonic()
        if temperature_c >= self.overtemp_trip_c:
            self._trip(InhibitCause.OVERTEMP,
                       f"{temperature_c:.1f} °C >= {self.overtemp_trip_c:.1f} °C")
        elif temperature_c < self.overtemp_clear_c:
            self._gone(InhibitCause.OVERTEMP, f"{temperature_c:.1f} °C")

    def feed_temperature(self) -> None:
        """Mark that a sampler feeds this interlock (its sample age is then supervised)."""
        self._temperature_fed = True
        if self._temperature_at is None:
            self._temperature_at = time.monotonic()

    # -- liveness (supervisor thread) -----------------------------------------------------
    def liveness_problem(self) -> str | None:
        """Why this connector's safety inputs are not alive, or None."""
        age = self.pilot.sampler_age_s()
        if age > self.sampler_max_age_s:
            return f"pilot sampler silent for {age:.3f} s (bound {self.sampler_max_age_s} s)"
        if self._temperature_fed and self._temperature_at is not None:
            t_age = time.monotonic() - self._temperature_at
            if t_age > self.temperature_max_age_s:
                return (f"temperature sensor silent for {t_age:.1f} s "
                        f"(bound {self.temperature_max_age_s} s)")
        return None

    def check_liveness(self) -> bool:
        """Inhibit on a liveness loss (and report it once); True while alive. Also reports
        a co-processor fault that went away (a good frame followed it)."""
        if (InhibitCause.COPROCESSOR in self.contactor.inhibits
                and self.pilot.hardware_fault() is None):
            self._gone(InhibitCause.COPROCESSOR, "good frames again")
        problem = self.liveness_problem()
        if problem is not None:
            self._trip(InhibitCause.LIVENESS, problem)
            self._liveness_reported = True
            return False
        if self._liveness_reported:
            self._liveness_reported = False
            self._gone(InhibitCause.LIVENESS, "safety inputs alive again")
        return True

    # -- contactor hooks (called under the contactor's lock) -----------------------------
    def _permit(self) -> tuple[InhibitCause, str] | None:
        if self.rcd.tripped:
            return InhibitCause.RCD_TRIP, "RCD reports a trip"
        not_ready = self._not_ready_now()
        if not_ready is not None:
            return InhibitCause.PILOT_NOT_READY, not_ready
        return None

    def still_present(self, cause: InhibitCause) -> str | None:
        """Why ``cause`` cannot be released yet, or None when it is gone."""
        if cause is InhibitCause.PILOT_NOT_READY:
            return self._not_ready_now()
        if cause is InhibitCause.PILOT_FAULT:
            return self._pilot_fault(self.pilot.read())
        if cause is InhibitCause.RCD_TRIP:
            return "RCD still reports a trip" if self.rcd.tripped else None
        if cause is InhibitCause.OVERTEMP:
            t = self.temperature_c
            if t is not None and t >= self.overtemp_clear_c:
                return f"still {t:.1f} °C (release below {self.overtemp_clear_c:.1f} °C)"
            return None
        if cause is InhibitCause.WELDED:
            closed = self.contactor.feedback_closed and not self.contactor.commanded_closed
            return "mirror contact still closed" if closed else None
        if cause is InhibitCause.LIVENESS:
            return self.liveness_problem()
        if cause is InhibitCause.COPROCESSOR:
            return self.pilot.hardware_fault()
        return None  # FAILED_TO_CLOSE: nothing to observe while open

    # -- the core's API -------------------------------------------------------------------
    @property
    def inhibits(self) -> dict[InhibitCause, str]:
        """Inhibits held now (cause → text)."""
        return dict(self.contactor.inhibits)

    def release(self, cause: InhibitCause | None = None) -> frozenset[InhibitCause]:
        """Release ``cause`` (None: every held cause) where it is gone; returns the causes
        still held afterwards (PILOT_NOT_READY included while the pilot is not in C/D)."""
        for held in list(self.contactor.inhibits):
            if cause is None or held is cause:
                self.contactor.release_inhibit(held)
        return frozenset(self.contactor.inhibits)

    @contextlib.contextmanager
    def commissioning(self) -> Iterator[None]:
        """``evse hw test``: while inside, pilot state A (no EV) also permits a close, so a
        technician can cycle the contactor with nothing plugged. Every other inhibit holds."""
        self._commissioning = True
        self._on_pilot(self.pilot.read())
        try:
            yield
        finally:
            self._commissioning = False
            self._on_pilot(self.pilot.read())


class TemperatureSampler:
    """Samples a temperature sensor every ``period_s`` on its own thread and feeds the
    connector's interlock (a sensor error leaves the sample to age: LIVENESS)."""

    def __init__(self, sensor: TemperatureSensor, interlock: ConnectorInterlock,
                 period_s: float = 1.0) -> None:
        self.sensor = sensor
        self.interlock = interlock
        self.period_s = period_s
        self._stop = threading.Event()
        self._failing = False
        interlock.feed_temperature()
        self._thread = threading.Thread(
            target=self._run, name=f"temperature-{interlock.connector_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = self.sensor.read_c()
            except Exception as exc:  # any driver error: the sample ages, LIVENESS follows
                if not self._failing:
                    self._failing = True
                    log.error("connector %d: temperature sensor: %s",
                              self.interlock.connector_id, exc)
            else:
                self.interlock.on_temperature(value)
                self._failing = False
            self._stop.wait(self.period_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.period_s + 2.0)


class Interlock:
    """The board's interlock: every connector's :class:`ConnectorInterlock`, the temperature
    samplers, and one supervisor thread checking liveness every ``check_period_s``."""

    def __init__(self, connectors: Iterable[ConnectorInterlock],
                 samplers: Iterable[TemperatureSampler] = (),
                 check_period_s: float = DEFAULT_CHECK_PERIOD_S,
                 supervise: bool = True) -> None:
        self.connectors: dict[int, ConnectorInterlock] = {c.connector_id: c
                                                          for c in connectors}
        self.samplers = list(samplers)
        self.check_period_s = check_period_s
        self._supervise = supervise
        self._stop = threading.Event()
        self._last_check = time.monotonic()
        self._alive = True
        self._thread = threading.Thread(target=self._run, name="interlock", daemon=True)

    def start(self) -> None:
        """Attach every connector's interlock, start the samplers and the supervisor."""
        for conn in self.connectors.values():
            conn.attach()
        for sampler in self.samplers:
            sampler.start()
        if self._supervise:
            self._thread.start()

    def add_listener(self, listener: InterlockListener) -> None:
        """``listener(event)`` for every connector (see :meth:`ConnectorInterlock.add_listener`)."""
        for conn in self.connectors.values():
            conn.add_listener(listener)

    def check_once(self) -> bool:
        """Check every connector's liveness now; True while all are alive."""
        alive = True
        for conn in self.connectors.values():
            alive = conn.check_liveness() and alive
        self._alive = alive
        self._last_check = time.monotonic()
        return alive

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_once()
            except Exception:  # the check must go on; a raising check counts as not alive
                self._alive = False
                log.exception("interlock supervisor: liveness check raised")
            self._stop.wait(self.check_period_s)

    def healthy(self) -> bool:
        """The safety path lives: every input fresh and the supervisor itself cycling
        (for the systemd watchdog task). Always True without a supervisor thread."""
        if not self._supervise:
            return True
        fresh = time.monotonic() - self._last_check < max(10 * self.check_period_s, 0.5)
        return self._alive and fresh

    def release(self, connector_id: int, cause: InhibitCause | None = None
                ) -> frozenset[InhibitCause]:
        """:meth:`ConnectorInterlock.release` on ``connector_id``."""
        return self.connectors[connector_id].release(cause)

    def close(self) -> None:
        """Stop the supervisor and the samplers (the contactors are opened by the board)."""
        self._stop.set()
        for sampler in self.samplers:
            sampler.stop()
        if self._thread.is_alive():
            self._thread.join(2.0)
