"""The IEC 61851 machine of one EVSE: control pilot, PWM offer, contactor, cable lock, faults.

It knows the physics only: pilot states A–F as read, the PWM it offers, when the contactor
may close, the lock, and the faults with their latching (:mod:`evse.faults`); the pilot state
read and whether PWM is offered make the IEC 61851-1 system state (A1, B1, B2, C2, ...,
:meth:`IecMachine.system_state`). It knows
nothing of users, transactions or any protocol. The session machine above it
(:mod:`evse.session_machine`) requests a *supply mode* (:data:`IEC_STATES`); each mode's
outputs are declared as data (:data:`IEC_OUTPUTS`), and the diagram in
``docs/state-machine.md`` is generated from it. Edges it sees (EV connected / disconnected,
pilot change, fault, recovery, power path closed / opened) go up through
:class:`IecListener`.

Threading: :meth:`IecMachine.on_pilot_hw`, :meth:`IecMachine.on_rcd_trip_hw`,
:meth:`IecMachine.on_contactor_fault_hw` and :meth:`IecMachine.on_temperature_hw` run on the
thread that saw the edge (a GPIO callback, the pilot sampler, the simulator, the poller's
worker) and form the safety path: they open the contactor *first*, touching nothing but the
contactor output and immutable settings (no lock shared with the loop, no DB, no logging,
no allocation beyond the posted call), then hand the event to the asyncio loop. Blocking
hardware calls (cable lock / unlock, RCD reset and self-test) run on this EVSE's own worker
thread (:attr:`IecMachine.worker`, one thread, so they keep their order) and report back on
the loop; the loop never waits for them. Every other method runs on the loop. Timers
(:mod:`evse.timers`) run on the loop's clock.

IEC 61851-1 timings kept here (values from ``[iec61851]``, see :class:`Iec61851Settings`):

* contactor open ≤ 100 ms after C→B / C→A: done on the driver thread (microseconds);
* power on ≤ 3 s after B→C once allowed: the contactor closes in the same loop turn that
  sees state C (the socket is locked before the transaction starts);
* PWM withdrawn while the EV stays in C: contactor forced open after ``pwm_off_timeout_s``
  (Table A.6 seq. 10.2);
* PWM duty changes at most every ``duty_change_interval_s`` (stopping PWM: at once; A.5.2);
* state F for at least ``state_f_min_s`` after a fault;
* state D energized only with ``ventilation`` (A.2.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from transitions import EventData, Machine

from evse.domain import Fault
from evse.faults import ActiveFault, FaultLatch, Recovery
from evse.iec61851 import Iec61851Settings, MeterFailurePolicy
from evse.limits import CurrentLimit, derating_limit_a, resolve_current
from evse.timers import Clock, LoopClock, Timer
from hal.board import ConnectorHardware
from hal.contactor import InhibitCause
from hal.interlock import InterlockEvent
from hal.lock import ConnectorLockFailure
from hal.meter import MeterReading, PowerMeterFailure
from hal.pilot import PilotReading, PilotState, current_for_duty

log = logging.getLogger(__name__)

STANDBY, READY, OFFER, SUPPLY, PAUSED, FAULT = (
    "standby", "ready", "offer", "supply", "paused", "fault")
#: Supply modes: what the EVSE offers the EV, as the session machine requests it.
IEC_STATES = [STANDBY, READY, OFFER, SUPPLY, PAUSED, FAULT]
_REQUESTABLE = [STANDBY, READY, OFFER, SUPPLY, PAUSED]

#: The machine's transitions (``transitions`` dicts). ``to_<mode>`` are the session
#: machine's requests (refused while in ``fault``: only recovery leaves it).
IEC_TRANSITIONS: list[dict[str, Any]] = [
    *({"trigger": f"to_{mode}", "source": _REQUESTABLE, "dest": mode} for mode in _REQUESTABLE),
    # A fault: contactor opened on the driver thread already; state F on the pilot.
    {"trigger": "trip", "source": _REQUESTABLE, "dest": FAULT},
    # No fault held and state F lasted state_f_min_s.
    {"trigger": "recover", "source": FAULT, "dest": STANDBY},
]

#: Every trigger of the IEC machine, in declaration order.
IEC_TRIGGERS: list[str] = list(dict.fromkeys(t["trigger"] for t in IEC_TRANSITIONS))


@dataclass(frozen=True)
class Outputs:
    """What a supply mode drives on entry.

    Attributes:
        contactor: ``"closed"`` (close when the EV asks for energy and the socket is locked),
            ``"open"`` (open at once) or ``"withdraw"`` (PWM off first; open when the EV
            leaves C, at the latest after ``pwm_off_timeout_s``; IEC 61851-1 seq. 10.2).
        pilot: ``"pwm"`` (duty for the offered current; +12 V when none can be offered or
            no EV is plugged), ``"off"`` (+12 V, 100 %) or ``"F"`` (−12 V).
        lock: ``"locked"``, ``"unlocked"`` (unless the session keeps it locked) or
            ``"keep"`` (left as it is).
    """

    contactor: str
    pilot: str
    lock: str


#: Outputs per supply mode (applied on entry).
IEC_OUTPUTS: dict[str, Outputs] = {
    STANDBY: Outputs("withdraw", "off", "unlocked"),
    READY: Outputs("open", "off", "keep"),
    OFFER: Outputs("open", "pwm", "locked"),
    SUPPLY: Outputs("closed", "pwm", "locked"),
    PAUSED: Outputs("withdraw", "off", "locked"),
    FAULT: Outputs("open", "F", "keep"),
}

#: Pilot states in which the contactor may be closed (D only with ventilation).
_ENERGY_STATES = frozenset({PilotState.C, PilotState.D})
_C_ONLY = frozenset({PilotState.C})


class IecListener(Protocol):
    """What the IEC machine tells the machine above it (all on the loop)."""

    def ev_connected(self) -> None:
        """The pilot left state A (an EV or cable was connected)."""

    def ev_disconnected(self) -> None:
        """The pilot went back to state A."""

    def pilot_changed(self) -> None:
        """The pilot changed between B, C and D, or the offer changed (limit, derating)."""

    def tripped(self) -> None:
        """The machine entered ``fault`` (state F, contactor open)."""

    def fault_reported(self) -> None:
        """The fault to report changed while in ``fault``, or a degradation (meter)
        appeared / went."""

    def fault_raised(self, entry: ActiveFault) -> None:
        """A fault is now held."""

    def fault_cleared(self, fault: Fault) -> None:
        """A fault is no longer held."""

    def recovered(self) -> None:
        """The machine left ``fault``: no fault held, state F lasted long enough."""

    def power_path(self, closed: bool) -> None:
        """The contactor was commanded closed (True) or open (False)."""


class _NoListener:
    def ev_connected(self) -> None: ...
    def ev_disconnected(self) -> None: ...
    def pilot_changed(self) -> None: ...
    def tripped(self) -> None: ...
    def fault_reported(self) -> None: ...
    def fault_raised(self, entry: ActiveFault) -> None: ...
    def fault_cleared(self, fault: Fault) -> None: ...
    def recovered(self) -> None: ...
    def power_path(self, closed: bool) -> None: ...


class IecMachine:
    """IEC 61851 control of one EVSE's power path.

    Args:
        hw: the EVSE's hardware (pilot, contactor, RCD, meter, lock, temperature).
        max_current_a: rated current per phase, A.
        station_limit_a: callable giving the station-wide limit per phase, A.
        ventilation: whether state D may be energized (IEC 61851-1 A.2.2).
        settings: IEC 61851 timings and fault policy (defaults: the standard's values).
        clock: the clock the timers run on (default: the running loop's).
    """

    state: str  # set by transitions
    to_standby: Callable[[], bool]
    to_ready: Callable[[], bool]
    to_offer: Callable[[], bool]
    to_supply: Callable[[], bool]
    to_paused: Callable[[], bool]
    trip: Callable[[], bool]
    recover: Callable[[], bool]

    def __init__(
        self,
        hw: ConnectorHardware,
        max_current_a: float,
        station_limit_a: Callable[[], float],
        ventilation: bool = False,
        settings: Iec61851Settings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.id = hw.connector_id
        self.hw = hw
        self.max_current_a = max_current_a
        self._station_limit_a = station_limit_a
        self.settings = settings or Iec61851Settings()
        self.clock: Clock = clock or LoopClock()
        self.ventilation = ventilation
        self.listener: IecListener = _NoListener()
        #: Read by the safety path: thresholds copied once, never changed afterwards.
        self._trip_c = self.settings.overtemp_trip_c
        if hw.interlock is not None:  # the board's interlock trips at the same levels
            hw.interlock.overtemp_trip_c = self.settings.overtemp_trip_c
            hw.interlock.overtemp_clear_c = (self.settings.overtemp_trip_c
                                             - self.settings.overtemp_hysteresis_c)
        #: Charging limit per phase from above (smart charging, invalid IdToken), A.
        self.limit_a: float | None = None
        #: What sets ``limit_a`` (``evse status``): e.g. "profile 7", "load balancing".
        self.limit_source = "charging_limit"
        self.pilot: PilotReading = hw.pilot.read()
        #: The session keeps the socket locked in ``standby`` (cable held for a user).
        self.keep_locked = False
        self.temperature_c: float | None = None
        self.last_reading: MeterReading | None = None
        self.meter_fault: str | None = None
        self.faults = FaultLatch(self.settings)
        #: Times each fault was raised (its cause detected) since start or the last
        #: technician reset (``evse status``).
        self.trip_counts: dict[Fault, int] = {}
        #: Blocking hardware calls of this EVSE (lock, unlock, RCD reset / self-test).
        self.worker = ThreadPoolExecutor(max_workers=1,
                                         thread_name_prefix=f"evse{self.id}-hw")
        #: Worker jobs whose result has not been handled on the loop yet.
        self.jobs_pending = 0
        self._locking = False
        self._closed = False
        self._post_fn: Callable[..., object] | None = None
        self._f_since: float | None = None
        self._duty_changed_at = float("-inf")
        self._pending_duty: float | None = None
        self._power_path_closed = False
        self._announced: set[Fault] = set()
        self.pwm_off_timer = Timer(self.clock, "pwm_off_timeout", self._force_off)
        self.duty_timer = Timer(self.clock, "duty_change_interval", self._apply_pending_duty)
        self.state_f_timer = Timer(self.clock, "state_f_min", self._try_recover)
        self.retry_timer = Timer(self.clock, "fault_retry", self._retry_faults)
        self.overcurrent_timer = Timer(self.clock, "overcurrent", self._overcurrent_expired)
        self.machine = Machine(
            model=self,
            states=IEC_STATES,
            transitions=IEC_TRANSITIONS,
            initial=STANDBY,
            auto_transitions=False,
            after_state_change="_state_changed",
            send_event=True,
            # A trigger fired from a callback runs after the current transition, never
            # inside it.
            queued=True,
        )

    @property
    def ventilation(self) -> bool:
        """State D may be energized (IEC 61851-1 A.2.2)."""
        return self._ventilation

    @ventilation.setter
    def ventilation(self, value: bool) -> None:
        self._ventilation = value
        # Replaced whole (never mutated): the safety path reads it without a lock.
        self._energy_states = _ENERGY_STATES if value else _C_ONLY
        if self.hw.interlock is not None:
            self.hw.interlock.ventilation = value

    # -- what the machine above asks ------------------------------------------------------
    def request(self, mode: str) -> None:
        """Enter supply ``mode`` (one of :data:`IEC_STATES` but ``fault``), re-applying its
        outputs if already there; ignored while in ``fault``."""
        if self.state == FAULT:
            return
        getattr(self, f"to_{mode}")()

    def plugged(self) -> bool:
        """The pilot shows an EV (any state but A; F is ours and hides the EV)."""
        return self.pilot.state is not PilotState.A

    def ev_requests_energy(self) -> bool:
        """The EV asks for energy: state C, or D where ventilation is available."""
        return self.pilot.state in self._energy_states

    def power_allowed(self) -> bool:
        """At least 6 A can be offered (IEC 61851-1: less than 6 A means pause)."""
        return self.current_limit().allows_charging

    def current_limit(self) -> CurrentLimit:
        """min(rating, cable PP ampacity, station limit, charging limit, derating), A."""
        cable = self.hw.pilot.cable_ampacity_a() if self.plugged() else None
        return resolve_current(
            self.max_current_a,
            self._station_limit_a(),
            cable_ampacity_a=cable,
            charging_limit_a=self.limit_a,
            derating_a=derating_limit_a(self.temperature_c, self.max_current_a, self.settings),
            charging_limit_source=self.limit_source,
        )

    def offered_current_a(self) -> float:
        """The current the EVSE may offer now, amperes per phase."""
        return self.current_limit().current_a

    def system_state(self) -> str:
        """The IEC 61851-1 system state (Table A.4): the pilot state read (A–F) with 1 when
        no PWM is offered or 2 when it is, e.g. ``B1``, ``C2``; E and F stand alone."""
        state = self.pilot.state
        if state in (PilotState.E, PilotState.F):
            return state.value
        duty = self.hw.pilot.duty_percent
        return f"{state.value}{2 if 0.0 < duty < 100.0 else 1}"

    def reported_fault(self) -> tuple[Fault | None, str]:
        """The fault to report (a latched one first, else the most recent; else a meter
        that failed while charging continues) and its text."""
        current = self.faults.current
        if current is not None:
            return current.fault, current.info
        if self.meter_fault is not None:
            return Fault.METER, f"meter: {self.meter_fault}; charging without metering"
        return None, ""

    # -- outputs ------------------------------------------------------------------------
    def _state_changed(self, event: EventData) -> None:
        self._apply_outputs()
        self._sync_power_path()
        if self.state == FAULT:
            self.listener.tripped()
        elif event.transition is not None and event.transition.source == FAULT:
            self.listener.recovered()

    def _apply_outputs(self) -> None:
        out = IEC_OUTPUTS[self.state]
        if out.contactor == "open":
            self.pwm_off_timer.cancel()
            self.hw.contactor.open()
        if self.state != SUPPLY:
            self.overcurrent_timer.cancel()
        if out.pilot == "F":
            self._drive_state_f()
        elif out.pilot == "off":
            self._pwm_off()
        else:
            self._offer_pwm()
        if out.contactor == "withdraw":
            self._withdraw()
        if out.lock == "unlocked":
            if not self.keep_locked:
                self._unlock()
        elif out.lock == "locked" and self.hw.lock is not None and not self.hw.lock.locked:
            self._request_lock()  # energized when the lock reports engaged
            return
        if out.contactor == "closed":
            self._energize()

    def _energize(self) -> None:
        """Close the contactor: EV in C (D with ventilation), socket locked, RCD clear."""
        contactor = self.hw.contactor
        if not self.ev_requests_energy() or self.hw.rcd.tripped:
            contactor.open()
            return
        if self.hw.lock is not None and not self.hw.lock.locked:
            self.raise_fault(Fault.LOCK, "socket not locked: not energized")
            return
        self.pwm_off_timer.cancel()
        if not contactor.close():
            # The board's interlock refused: the event behind it (pilot change, trip,
            # interlock fault) is already posted to the loop and moves the state on.
            log.warning("connector %d: interlock refused to close: %s", self.id,
                        ", ".join(c.value for c in contactor.inhibits) or "permit")
            return
        # Close-then-verify: if the EV left C between our decision and the close, the pilot
        # listener may have seen the contactor still open; re-check here.
        if self.hw.pilot.read().state not in self._energy_states:
            contactor.open()

    def _withdraw(self) -> None:
        """PWM is off: open now if the EV already left C, else when it does (safety path),
        at the latest after ``pwm_off_timeout_s`` (IEC 61851-1 Table A.6 seq. 10.2)."""
        if not self.hw.contactor.commanded_closed:
            return
        if (self.settings.pwm_off_timeout_s <= 0
                or self.hw.pilot.read().state not in self._energy_states):
            self.pwm_off_timer.cancel()
            self.hw.contactor.open()
            return
        self.pwm_off_timer.start_if_idle(self.settings.pwm_off_timeout_s)

    def _force_off(self) -> None:
        if self.state != SUPPLY and self.hw.contactor.commanded_closed:
            log.warning("EVSE %d: EV still in state C %.1f s after PWM off: contactor "
                        "forced open", self.id, self.settings.pwm_off_timeout_s)
            self.hw.contactor.open()
        self._sync_power_path()

    def _offer_pwm(self) -> None:
        duty = self.current_limit().duty_percent
        if not self.plugged() or duty is None:
            self._pwm_off()
            return
        self._set_duty(round(duty, 1))

    def _set_duty(self, duty: float) -> None:
        """Drive ``duty`` %, at most one change per ``duty_change_interval_s`` while PWM runs
        (IEC 61851-1 A.5.2); starting PWM is immediate."""
        pilot = self.hw.pilot
        running = 0.0 < pilot.duty_percent < 100.0
        if running and abs(pilot.duty_percent - duty) < 0.05:
            self._pending_duty = None
            self.duty_timer.cancel()
            return
        now = self.clock.monotonic()
        wait = self._duty_changed_at + self.settings.duty_change_interval_s - now
        if running and wait > 0:
            self._pending_duty = duty
            self.duty_timer.start_if_idle(wait)
            return
        self._pending_duty = None
        self.duty_timer.cancel()
        pilot.set_duty(duty)
        self._duty_changed_at = now

    def _apply_pending_duty(self) -> None:
        if self._pending_duty is not None and IEC_OUTPUTS[self.state].pilot == "pwm":
            self._offer_pwm()

    def update_offer(self) -> None:
        """The offered current may have changed (limit, derating): update the duty the EV
        sees (rate-limited) in a mode that runs PWM."""
        if IEC_OUTPUTS[self.state].pilot == "pwm":
            self._offer_pwm()

    def _pwm_off(self) -> None:
        self._pending_duty = None
        self.duty_timer.cancel()
        if self.hw.pilot.duty_percent != 100.0:
            self.hw.pilot.set_off()

    def _drive_state_f(self) -> None:
        self._pending_duty = None
        self.duty_timer.cancel()
        if self._f_since is None or self.hw.pilot.duty_percent != 0.0:
            self._f_since = self.clock.monotonic()
        self.hw.pilot.set_state_f()

    def _sync_power_path(self) -> None:
        closed = self.hw.contactor.commanded_closed
        if closed != self._power_path_closed:
            self._power_path_closed = closed
            self.listener.power_path(closed)

    # -- the worker: blocking hardware calls ------------------------------------------------
    def _submit(self, job: Callable[[], Any], done: Callable[[Any], None]) -> None:
        """Run ``job`` on the worker; ``done(result)`` follows on the loop (never after
        :meth:`close`: the EVSE is shut down, its contactor open)."""
        if self._closed:
            return
        self.jobs_pending += 1

        def run() -> None:
            try:
                result = job()
            except Exception as exc:  # reported on the loop, never lost on the worker
                result = exc
            self._post(self._job_done, done, result)

        self.worker.submit(run)

    def _job_done(self, done: Callable[[Any], None], result: Any) -> None:
        self.jobs_pending -= 1
        done(result)

    async def drain_worker(self) -> None:
        """Wait until the worker ran every job submitted so far (tests, shutdown)."""
        if not self._closed:
            await asyncio.wrap_future(self.worker.submit(lambda: None))

    def _lock_hw(self) -> str | None:
        """Worker: engage the cable lock; the failure text, or None."""
        assert self.hw.lock is not None
        try:
            self.hw.lock.lock()
        except ConnectorLockFailure as exc:
            return str(exc) or "lock did not engage"
        return None

    def _request_lock(self) -> None:
        if self._locking:
            return
        self._locking = True
        self._submit(self._lock_hw, self._lock_done)

    def _lock_done(self, error: str | None) -> None:
        self._locking = False
        out = IEC_OUTPUTS[self.state]
        if error is not None:
            if out.lock == "locked":
                self.hw.contactor.open()
                self.raise_fault(Fault.LOCK, error)
            return
        if out.lock == "unlocked" and not self.keep_locked:
            self._unlock()  # released while the lock was moving
        elif out.contactor == "closed":
            self._energize()
            self._sync_power_path()

    async def lock_async(self) -> bool:
        """Engage the cable lock on the worker (no lock fitted: True at once). A lock that
        does not engage is a :attr:`Fault.LOCK` fault; returns whether it is locked."""
        if self.hw.lock is None or self.hw.lock.locked:
            return True
        if self._closed:
            return False
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._submit(self._lock_hw, future.set_result)
        error = await future
        if error is not None:
            self.hw.contactor.open()
            self.raise_fault(Fault.LOCK, error)
            return False
        return True

    def _unlock(self) -> None:
        if self.hw.lock is None or not self.hw.lock.locked:
            return
        self._submit(self._unlock_hw, self._unlock_done)

    def _unlock_hw(self) -> str | None:
        assert self.hw.lock is not None
        try:
            self.hw.lock.unlock()
        except ConnectorLockFailure as exc:
            return str(exc) or "lock did not release"
        return None

    def _unlock_done(self, error: str | None) -> None:
        if error is not None:
            log.error("EVSE %d: unlock failed: %s", self.id, error)

    async def unlock_async(self) -> str | None:
        """Release the cable lock on the worker; the failure text, or None."""
        if self.hw.lock is None:
            return None
        if self._closed:
            return "EVSE shut down"
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._submit(self._unlock_hw, future.set_result)
        return await future

    def release_lock(self) -> None:
        """The cable may go: unlock unless a mode that needs the lock is active."""
        self.keep_locked = False
        if IEC_OUTPUTS[self.state].lock != "locked":
            self._unlock()

    async def rcd_self_test_async(self) -> bool:
        """Run the RCD self-test on the worker; True when it passed."""
        if self._closed:
            return False
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._submit(self.hw.rcd.self_test, future.set_result)
        result = await future
        return result is True

    # -- safety path (driver thread) ----------------------------------------------------
    def attach(self, loop: asyncio.AbstractEventLoop | None = None,
               post: Callable[..., object] | None = None) -> None:
        """Register the hardware listeners; events reach the loop via ``loop`` (its
        ``call_soon_threadsafe``) or ``post(func, *args)`` (tests)."""
        if post is None:
            if loop is None:
                raise ValueError("attach needs a loop or a post function")
            post = loop.call_soon_threadsafe
        self._post_fn = post
        self.hw.pilot.add_listener(self.on_pilot_hw)
        self.hw.rcd.add_trip_listener(self.on_rcd_trip_hw)
        self.hw.contactor.add_fault_listener(self.on_contactor_fault_hw)
        if self.hw.interlock is not None:
            self.hw.interlock.add_listener(self.on_interlock_hw)

    def on_interlock_hw(self, event: InterlockEvent) -> None:
        """Driver thread: the interlock inhibited (output already low) or saw its cause go.
        Only causes the core has no input of its own for become a fault here."""
        if event.cause not in (InhibitCause.LIVENESS, InhibitCause.COPROCESSOR):
            return
        if event.active:
            self._post(self.raise_fault, Fault.INTERLOCK,
                       f"interlock {event.cause.value}: {event.detail}")
        else:
            self._post(self.clear_condition, Fault.INTERLOCK)

    def on_pilot_hw(self, reading: PilotReading) -> None:
        """Driver thread: open the contactor if the pilot no longer allows energy, then
        post the reading to the loop (IEC 61851-1: open ≤ 100 ms after C→B / C→A; E, F
        and a diode fault open at once)."""
        if reading.diode_fault or reading.state not in self._energy_states:
            self.hw.contactor.open()
        self._post(self.on_pilot, reading)

    def on_rcd_trip_hw(self) -> None:
        """Driver thread: residual current trip → contactor open at once, then tell the loop."""
        self.hw.contactor.open()
        self._post(self.raise_fault, Fault.RCD_TRIP, "residual current trip")

    def on_contactor_fault_hw(self, reason: str) -> None:
        """Driver thread: welded / failed-to-close contactor (mirror contact disagrees)."""
        self.hw.contactor.open()
        fault = Fault.WELDED if reason == "welded" else Fault.FAILED_CLOSE
        self._post(self.raise_fault, fault, f"contactor {reason}")

    def on_temperature_hw(self, temperature_c: float) -> None:
        """Sensor thread: at or above ``overtemp_trip_c`` open at once, then tell the loop."""
        if temperature_c >= self._trip_c:
            self.hw.contactor.open()
        self._post(self.on_temperature, temperature_c)

    def _post(self, func: Callable[..., None], *args: Any) -> None:
        post = self._post_fn
        if post is None:
            return
        # A closed loop (shutdown) is fine: the contactor is already open.
        with contextlib.suppress(RuntimeError):
            post(func, *args)

    # -- loop-side event handling -------------------------------------------------------
    def _pilot_fault(self, reading: PilotReading) -> tuple[Fault, str] | None:
        if reading.diode_fault:
            return Fault.DIODE, "pilot diode fault"
        if reading.state is PilotState.E:
            return Fault.PILOT_E, "control pilot shorted (state E)"
        if reading.state is PilotState.D and not self.ventilation:
            return Fault.VENTILATION, "EV requests ventilation (state D), none available"
        if (reading.state is PilotState.F and self.hw.pilot.duty_percent != 0.0
                and self.hw.pilot.read().state is PilotState.F):  # not a stale F of ours
            return Fault.PILOT_F, "control pilot at -12 V (state F) not driven by the EVSE"
        return None

    def on_pilot(self, reading: PilotReading) -> None:
        """Loop: a new pilot reading → pilot faults, EV connected / disconnected, change."""
        previous, self.pilot = self.pilot, reading
        self._sync_power_path()
        bad = self._pilot_fault(reading)
        if bad is not None:
            self.raise_fault(*bad)
            return
        if self.state == FAULT or reading.state is PilotState.F:
            return
        was_plugged = previous.state is not PilotState.A
        if not self.plugged():
            if was_plugged:
                self.listener.ev_disconnected()
            return
        if (self.state == SUPPLY and reading.state in self._energy_states
                and not self.hw.contactor.commanded_closed
                and (self.hw.lock is None or self.hw.lock.locked)):
            # The interlock opened on an excursion its debounce then did not confirm
            # (noise on the line): the pilot says C again, so the supply is restored.
            self._energize()
        if not was_plugged:
            self.listener.ev_connected()
        else:
            self.listener.pilot_changed()

    # -- faults -------------------------------------------------------------------------
    def raise_fault(self, fault: Fault, info: str) -> None:
        """Loop: enter (or stay in) ``fault`` for ``fault``; the contactor is opened again."""
        self.hw.contactor.open()
        self._sync_power_path()
        self.trip_counts[fault] = self.trip_counts.get(fault, 0) + 1
        entry = self.faults.raise_fault(fault, info)
        log.error("EVSE %d: fault %s (%s): %s", self.id, fault.value,
                  entry.recovery.value, entry.info)
        if entry.recovery is Recovery.RETRY:
            remaining = self.retry_timer.remaining_s() or 0.0
            self.retry_timer.start(max(remaining, entry.retry_s))
        self.state_f_timer.cancel()
        self._announce_faults()
        if self.state == FAULT:
            self.listener.fault_reported()
        else:
            self.trip()

    def _announce_faults(self) -> None:
        held = set(self.faults.active)
        for fault in [f for f in self.faults.active if f not in self._announced]:
            self.listener.fault_raised(self.faults.active[fault])
        for fault in [f for f in Fault if f in self._announced and f not in held]:
            self.listener.fault_cleared(fault)
        self._announced = held

    def clear_condition(self, fault: Fault) -> None:
        """Loop: the condition behind a ``CONDITION`` fault is gone."""
        if self.faults.clear(fault):
            self._announce_faults()
            self._try_recover()

    def technician_reset(self) -> None:
        """A technician cleared the EVSE locally (``evse fault reset``): latched faults
        and the RCD trip count go; the RCD is reset on the worker, and causes still present
        are detected again at once after that."""
        self.faults.technician_reset()
        self.trip_counts.clear()
        self.retry_timer.cancel()
        self.overcurrent_timer.cancel()
        self._announce_faults()
        self._submit(self.hw.rcd.reset, lambda _result: self._after_technician_reset())

    def _after_technician_reset(self) -> None:
        if self.hw.rcd.tripped:
            self.raise_fault(Fault.RCD_TRIP, "residual current still present")
            return
        if self.hw.contactor.feedback_closed and not self.hw.contactor.commanded_closed:
            self.raise_fault(Fault.WELDED, "contactor still welded")
            return
        if self.temperature_c is not None and self.temperature_c >= self._trip_c:
            self.raise_fault(Fault.OVERTEMP, f"still {self.temperature_c:.1f} °C")
            return
        if self.state == FAULT:
            self._try_recover()
        else:
            self.listener.fault_reported()

    def _retry_faults(self) -> None:
        again = False
        reset_rcd = False
        for entry in list(self.faults.active.values()):
            if entry.recovery is not Recovery.RETRY:
                continue
            if entry.fault is Fault.RCD_TRIP:
                if self.hw.rcd.tripped:
                    again = True
                    continue
                reset_rcd = True  # cleared once the reset ran on the worker
                continue
            self.faults.clear(entry.fault)
        if again:
            self.retry_timer.start(self.settings.rcd_retry_s)
        if reset_rcd:
            self._submit(self.hw.rcd.reset, self._rcd_reset_done)
        self._announce_faults()
        self._try_recover()

    def _rcd_reset_done(self, result: object) -> None:
        if isinstance(result, Exception):  # the RCD could not be reset: try again later
            log.error("EVSE %d: RCD reset failed: %s", self.id, result)
            self.retry_timer.start(self.settings.rcd_retry_s)
            return
        entry = self.faults.active.get(Fault.RCD_TRIP)
        if entry is not None and entry.recovery is Recovery.RETRY:
            self.faults.clear(Fault.RCD_TRIP)
        self._announce_faults()
        self._try_recover()

    def _try_recover(self) -> None:
        """Leave ``fault`` once no fault is held and state F lasted ``state_f_min_s``."""
        if self.state != FAULT or self.faults.active:
            return
        if self._f_since is not None:
            remaining = self._f_since + self.settings.state_f_min_s - self.clock.monotonic()
            if remaining > 1e-9:
                self.state_f_timer.start(remaining)
                return
        self._f_since = None
        self.hw.pilot.set_off()  # leave F: +12 V, and look at the line again
        reading = self.hw.pilot.read()
        self.pilot = reading
        bad = self._pilot_fault(reading)
        if bad is not None:
            self.raise_fault(*bad)
            return
        interlock = self.hw.interlock
        if interlock is not None:
            # Every fault is gone here: release the interlock's inhibits whose cause is gone.
            held = interlock.release() - {InhibitCause.PILOT_NOT_READY}
            if held:
                log.warning("connector %d: interlock still holds %s; retrying", self.id,
                            ", ".join(sorted(c.value for c in held)))
                self.retry_timer.start(self.settings.fault_retry_s)
                return
        self.recover()

    def on_temperature(self, temperature_c: float) -> None:
        """Loop: a temperature sample, °C: over-temperature trip / clear, derating steps."""
        self.temperature_c = temperature_c
        self._sync_power_path()
        s = self.settings
        if temperature_c >= s.overtemp_trip_c:
            if Fault.OVERTEMP not in self.faults.active:
                self.raise_fault(Fault.OVERTEMP, f"{temperature_c:.1f} °C ≥ "
                                 f"{s.overtemp_trip_c:.0f} °C")
            return
        if (Fault.OVERTEMP in self.faults.active
                and temperature_c <= s.overtemp_trip_c - s.overtemp_hysteresis_c):
            self.clear_condition(Fault.OVERTEMP)
        self.listener.pilot_changed()

    def _check_overcurrent(self, reading: MeterReading) -> None:
        """Over-current (IEC 61851-1 A.5.4): drawing more than the announced current
        + margins for longer than ``overcurrent_time_s`` stops charging."""
        if (self.state != SUPPLY or not self.hw.contactor.commanded_closed
                or not reading.current_a):
            self.overcurrent_timer.cancel()
            return
        announced = current_for_duty(self.hw.pilot.duty_percent)
        drawn = max(reading.current_a)
        if announced > 0 and drawn > self.settings.overcurrent_threshold_a(announced):
            self.overcurrent_timer.start_if_idle(self.settings.overcurrent_time_s)
        else:
            self.overcurrent_timer.cancel()

    def _overcurrent_expired(self) -> None:
        announced = current_for_duty(self.hw.pilot.duty_percent)
        self.raise_fault(Fault.OVERCURRENT, f"EV drew more than {announced:.1f} A + margin "
                         f"for {self.settings.overcurrent_time_s:.0f} s")

    def on_meter_reading(self, reading: MeterReading) -> None:
        """Loop: a good meter reading: clears a meter fault, checks over-current."""
        self.last_reading = reading
        if self.meter_fault is not None:
            self.meter_fault = None
            if Fault.METER in self.faults.active:
                self.clear_condition(Fault.METER)
            else:
                self.listener.fault_reported()
        self._check_overcurrent(reading)

    def on_meter_failure(self, reason: str) -> None:
        """Loop: the meter failed; per ``meter_failure``: fault (stop) or warn (continue)."""
        first = self.meter_fault is None
        self.meter_fault = reason
        self.overcurrent_timer.cancel()
        if self.settings.meter_failure is MeterFailurePolicy.STOP:
            if Fault.METER not in self.faults.active:
                self.raise_fault(Fault.METER, reason)
        elif first:
            self.listener.fault_reported()

    async def read_meter(self) -> MeterReading:
        """Read the meter on a worker thread; updates ``last_reading`` / meter faults.

        Raises:
            PowerMeterFailure: the meter gave no trustworthy reading.
        """
        try:
            reading = await asyncio.to_thread(self.hw.meter.read)
        except PowerMeterFailure as exc:
            self.on_meter_failure(exc.reason)
            raise
        self.on_meter_reading(reading)
        return reading

    def read_temperature_hw(self) -> None:
        """Worker thread: sample the temperature sensor (if any) into the safety path.

        Raises:
            OSError (or any driver error): the sensor is lost; the Station's supervisor
            raises a HighTemperature fault, which stops charging, and retries.
        """
        sensor = self.hw.temperature
        if sensor is None:
            return
        self.on_temperature_hw(sensor.read_c())

    def retry_in_s(self, entry: ActiveFault) -> float | None:
        """Seconds until ``entry`` is retried (its cause checked again and, if gone, the
        fault left); None for a fault that is not retried on a timer (``CONDITION``,
        ``TECHNICIAN``) or while no retry is armed (e.g. an RCD reset running)."""
        if entry.recovery is not Recovery.RETRY:
            return None
        return self.retry_timer.remaining_s()

    def timers(self) -> dict[str, float | None]:
        """Running timers and their remaining seconds (``evse status``)."""
        return {t.name: t.remaining_s() for t in (
            self.pwm_off_timer, self.duty_timer, self.state_f_timer, self.retry_timer,
            self.overcurrent_timer) if t.active}

    def close(self) -> None:
        """Open the contactor and stop the worker (jobs already queued still run)."""
        self.hw.contactor.open()
        self._closed = True
        self.worker.shutdown(wait=False)


__all__ = ["IEC_OUTPUTS", "IEC_STATES", "IEC_TRANSITIONS", "IEC_TRIGGERS", "IecListener",
           "IecMachine", "Outputs"]
