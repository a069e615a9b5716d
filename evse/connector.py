"""One connector's state machine: IEC 61851 pilot states under the OCPP session statuses.

The machine is declared as data (:data:`STATES`, :data:`TRANSITIONS`, :data:`OUTPUTS`) and
built with ``transitions``; the transition test table and the state diagram
(``docs/state-machine.md``, ``scripts/gen_state_diagram.py``) are generated from that same
data. Outputs (contactor, PWM, lock) are applied on entering a state, as :data:`OUTPUTS`
declares them.

Threading: :meth:`Connector.on_pilot_hw`, :meth:`Connector.on_rcd_trip_hw`,
:meth:`Connector.on_contactor_fault_hw` and :meth:`Connector.on_temperature_hw` run on the
thread that saw the edge (a GPIO callback, the pilot sampler, the simulator, the poller's
worker) and form the safety path: they open the contactor *first*, touching nothing but the
contactor output and immutable settings (no lock shared with the loop, no DB, no logging,
no allocation beyond the posted call), then hand the event to the asyncio loop. Every other
method runs on the loop. Timers (:mod:`evse.timers`) run on the loop's clock.

IEC 61851-1 timings kept here (values from ``[iec61851]``, see :class:`Iec61851Settings`):

* contactor open ≤ 100 ms after C→B / C→A: done on the driver thread (microseconds);
* power on ≤ 3 s after B→C once allowed: the contactor closes in the same loop turn that
  sees state C (the RCD self-test runs before the transaction starts, not at B→C);
* PWM withdrawn while the EV stays in C: contactor forced open after ``pwm_off_timeout_s``;
* PWM duty changes at most every ``duty_change_interval_s`` (stopping PWM: at once);
* state F for at least ``state_f_min_s`` after a fault;
* state D energized only with ``ventilation``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transitions import Machine

from evse.domain import ConnectorStatus, ErrorCode, StatusChanged
from evse.faults import ActiveFault, Fault, FaultLatch, Recovery
from evse.iec61851 import Iec61851Settings, MeterFailurePolicy
from evse.limits import CurrentLimit, derating_limit_a, resolve_current
from evse.sessions import Session
from evse.timers import Clock, LoopClock, Timer
from hal.board import ConnectorHardware
from hal.contactor import InhibitCause
from hal.interlock import InterlockEvent
from hal.lock import ConnectorLockFailure
from hal.meter import MeterReading, PowerMeterFailure
from hal.pilot import PilotReading, PilotState, current_for_duty

log = logging.getLogger(__name__)

S = ConnectorStatus
#: Statuses in which a transaction is running.
TRANSACTION_STATES = [S.CHARGING.value, S.SUSPENDED_EV.value, S.SUSPENDED_EVSE.value]
#: Every state, by its status value.
STATES = [s.value for s in ConnectorStatus]
_IDLE = [S.AVAILABLE.value, S.PREPARING.value, S.FINISHING.value, S.RESERVED.value]

#: The machine's transitions (``transitions`` dicts). Conditions name Connector predicates;
#: for one trigger and source the first transition whose conditions hold is taken.
TRANSITIONS: list[dict[str, Any]] = [
    # EV plugs in (pilot A → B/C/D).
    {"trigger": "plug", "source": [S.AVAILABLE.value, S.RESERVED.value], "dest": S.PREPARING.value},
    # A user is authorized before plugging in (card-then-plug, remote start before plug), or
    # a new user after a finished transaction while the EV stays plugged.
    {"trigger": "authorize", "source": [S.AVAILABLE.value, S.FINISHING.value],
     "dest": S.PREPARING.value},
    # Authorization waited longer than ConnectionTimeOut without a plug (OCPP 1.6 §9.1.6).
    {"trigger": "timeout", "source": S.PREPARING.value, "dest": S.AVAILABLE.value,
     "unless": "plugged"},
    # The transaction begins: power is offered according to EV state and current limit.
    {"trigger": "start", "source": S.PREPARING.value, "dest": S.CHARGING.value,
     "conditions": ["ev_requests_energy", "power_allowed"]},
    {"trigger": "start", "source": S.PREPARING.value, "dest": S.SUSPENDED_EVSE.value,
     "unless": "power_allowed"},
    {"trigger": "start", "source": S.PREPARING.value, "dest": S.SUSPENDED_EV.value},
    # Re-evaluate a running transaction after a pilot (B↔C) or limit change.
    {"trigger": "settle", "source": TRANSACTION_STATES, "dest": S.CHARGING.value,
     "conditions": ["ev_requests_energy", "power_allowed"]},
    {"trigger": "settle", "source": TRANSACTION_STATES, "dest": S.SUSPENDED_EVSE.value,
     "unless": "power_allowed"},
    {"trigger": "settle", "source": TRANSACTION_STATES, "dest": S.SUSPENDED_EV.value},
    # The transaction ends while the EV stays plugged / after it left.
    {"trigger": "stop", "source": TRANSACTION_STATES, "dest": S.FINISHING.value,
     "conditions": "plugged"},
    {"trigger": "stop", "source": TRANSACTION_STATES, "dest": S.AVAILABLE.value},
    # EV unplugs (pilot → A). With StopTransactionOnEVSideDisconnect = false the transaction
    # stays open, suspended by the EV, until it is stopped or the EV comes back.
    {"trigger": "unplug", "source": [S.PREPARING.value, S.FINISHING.value],
     "dest": S.AVAILABLE.value},
    {"trigger": "unplug", "source": TRANSACTION_STATES, "dest": S.SUSPENDED_EV.value,
     "unless": "stop_on_ev_disconnect"},
    {"trigger": "unplug", "source": TRANSACTION_STATES, "dest": S.AVAILABLE.value},
    # Faults: contactor opened by the safety path already; state F on the pilot.
    {"trigger": "fault", "source": [*_IDLE, *TRANSACTION_STATES, S.UNAVAILABLE.value],
     "dest": S.FAULTED.value},
    {"trigger": "recover", "source": S.FAULTED.value, "dest": S.UNAVAILABLE.value,
     "unless": "operative"},
    {"trigger": "recover", "source": S.FAULTED.value, "dest": S.FINISHING.value,
     "conditions": "plugged"},
    {"trigger": "recover", "source": S.FAULTED.value, "dest": S.AVAILABLE.value},
    # ChangeAvailability (OCPP 1.6 §5.2); busy connectors are scheduled by the Station.
    {"trigger": "disable", "source": _IDLE, "dest": S.UNAVAILABLE.value},
    {"trigger": "enable", "source": S.UNAVAILABLE.value, "dest": S.PREPARING.value,
     "conditions": "plugged"},
    {"trigger": "enable", "source": S.UNAVAILABLE.value, "dest": S.AVAILABLE.value},
    # Reservations (OCPP 1.6 §5.13).
    {"trigger": "reserve", "source": S.AVAILABLE.value, "dest": S.RESERVED.value},
    {"trigger": "unreserve", "source": S.RESERVED.value, "dest": S.AVAILABLE.value},
]

#: Every trigger of the machine, in declaration order.
TRIGGERS: list[str] = list(dict.fromkeys(t["trigger"] for t in TRANSITIONS))


@dataclass(frozen=True)
class StateOutputs:
    """What a state drives on entry.

    Attributes:
        contactor: ``"closed"`` (close when the EV asks for energy and the socket is locked),
            ``"open"`` (open at once) or ``"withdraw"`` (PWM off first; open when the EV
            leaves C, at the latest after ``pwm_off_timeout_s``; IEC 61851-1 seq. 10.2).
        pilot: ``"pwm"`` (duty for the offered current; +12 V when none can be offered or
            no EV is plugged), ``"off"`` (+12 V, 100 %) or ``"F"`` (−12 V).
        lock: ``"locked"``, ``"unlocked"`` or ``"keep"`` (left as it is).
    """

    contactor: str
    pilot: str
    lock: str


#: Outputs per state (applied on entry; the transition test and the diagram read this).
OUTPUTS: dict[str, StateOutputs] = {
    S.AVAILABLE.value: StateOutputs("withdraw", "off", "unlocked"),
    S.PREPARING.value: StateOutputs("open", "off", "keep"),
    S.CHARGING.value: StateOutputs("closed", "pwm", "locked"),
    S.SUSPENDED_EV.value: StateOutputs("open", "pwm", "locked"),
    S.SUSPENDED_EVSE.value: StateOutputs("withdraw", "off", "locked"),
    S.FINISHING.value: StateOutputs("withdraw", "off", "unlocked"),
    S.RESERVED.value: StateOutputs("open", "off", "keep"),
    S.UNAVAILABLE.value: StateOutputs("withdraw", "off", "unlocked"),
    S.FAULTED.value: StateOutputs("open", "F", "keep"),
}

#: Pilot states in which the contactor may be closed (D only with ventilation).
_ENERGY_STATES = frozenset({PilotState.C, PilotState.D})
_C_ONLY = frozenset({PilotState.C})


class Connector:
    """IEC 61851 connector + OCPP session state of one connector.

    Args:
        hw: the connector's hardware.
        max_current_a: rated current per phase, A.
        station_limit_a: callable giving the station-wide limit per phase, A.
        emit: called with each :class:`StatusChanged` (on the loop).
        ventilation: whether state D may be energized (IEC 61851-1 A.2.2).
        settings: IEC 61851 timings and fault policy (defaults: the standard's values).
        clock: the clock the timers run on (default: the running loop's).
    """

    state: str  # set by transitions
    # Trigger methods bound by ``transitions`` from TRANSITIONS (declared for the type checker).
    plug: Callable[[], bool]
    unplug: Callable[[], bool]
    authorize: Callable[[], bool]
    timeout: Callable[[], bool]
    start: Callable[[], bool]
    settle: Callable[[], bool]
    stop: Callable[[], bool]
    fault: Callable[[], bool]
    recover: Callable[[], bool]
    disable: Callable[[], bool]
    enable: Callable[[], bool]
    reserve: Callable[[], bool]
    unreserve: Callable[[], bool]

    def __init__(
        self,
        hw: ConnectorHardware,
        max_current_a: float,
        station_limit_a: Callable[[], float],
        emit: Callable[[StatusChanged], None],
        ventilation: bool = False,
        settings: Iec61851Settings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.id = hw.connector_id
        self.hw = hw
        self.max_current_a = max_current_a
        self._station_limit_a = station_limit_a
        self._emit = emit
        self.settings = settings or Iec61851Settings()
        self.clock: Clock = clock or LoopClock()
        self.ventilation = ventilation
        #: Read by the safety path: thresholds copied once, never changed afterwards.
        self._trip_c = self.settings.overtemp_trip_c
        if hw.interlock is not None:  # the board's interlock trips at the same levels
            hw.interlock.overtemp_trip_c = self.settings.overtemp_trip_c
            hw.interlock.overtemp_clear_c = (self.settings.overtemp_trip_c
                                             - self.settings.overtemp_hysteresis_c)
        self.limit_a: float | None = None
        self.pilot: PilotReading = hw.pilot.read()
        self.session: Session | None = None
        self.pending_id_tag: str | None = None
        self.pending_parent_id_tag: str | None = None
        self.error_code = ErrorCode.NO_ERROR
        self.error_info = ""
        self.operative = True
        #: StopTransactionOnEVSideDisconnect / UnlockConnectorOnEVSideDisconnect (OCPP 1.6
        #: §9.1.29 / §9.1.33), set by the Station.
        self.stop_on_ev_disconnect_flag = True
        self.unlock_on_ev_disconnect = True
        #: idTag whose card (or an UnlockConnector) releases the cable after an EV-side
        #: disconnect with UnlockConnectorOnEVSideDisconnect = false.
        self.lock_held_for: str | None = None
        self.temperature_c: float | None = None
        self.last_reading: MeterReading | None = None
        self.meter_fault: str | None = None
        self.faults = FaultLatch(self.settings)
        self._post_fn: Callable[..., object] | None = None
        self._f_since: float | None = None
        self._duty_changed_at = float("-inf")
        self._pending_duty: float | None = None
        self._unplugging = False
        self.pwm_off_timer = Timer(self.clock, "pwm_off_timeout", self._force_off)
        self.duty_timer = Timer(self.clock, "duty_change_interval", self._apply_pending_duty)
        self.state_f_timer = Timer(self.clock, "state_f_min", self._try_recover)
        self.retry_timer = Timer(self.clock, "fault_retry", self._retry_faults)
        self.overcurrent_timer = Timer(self.clock, "overcurrent", self._overcurrent_expired)
        #: Called (on the loop) when an EV is plugged in, after the state machine moved.
        self.on_plugged: Callable[[Connector], None] = lambda _c: None
        self.machine = Machine(
            model=self,
            states=STATES,
            transitions=TRANSITIONS,
            initial=S.AVAILABLE.value,
            auto_transitions=False,
            after_state_change="_state_changed",
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

    # -- predicates used by the transition table ----------------------------------------
    def plugged(self) -> bool:
        """The pilot shows an EV (any state but A; F is ours and hides the EV)."""
        return self.pilot.state is not PilotState.A

    def ev_requests_energy(self) -> bool:
        """The EV asks for energy: state C, or D where ventilation is available."""
        return self.pilot.state in self._energy_states

    def power_allowed(self) -> bool:
        """At least 6 A can be offered (IEC 61851-1: less than 6 A means pause)."""
        return self.current_limit().allows_charging

    def stop_on_ev_disconnect(self) -> bool:
        """StopTransactionOnEVSideDisconnect (OCPP 1.6 §9.1.29)."""
        return self.stop_on_ev_disconnect_flag

    def current_limit(self) -> CurrentLimit:
        """min(rating, cable PP ampacity, station limit, charging limit, derating), A."""
        cable = self.hw.pilot.cable_ampacity_a() if self.plugged() else None
        return resolve_current(
            self.max_current_a,
            self._station_limit_a(),
            cable_ampacity_a=cable,
            charging_limit_a=self.limit_a,
            derating_a=derating_limit_a(self.temperature_c, self.max_current_a, self.settings),
        )

    def offered_current_a(self) -> float:
        """The current the connector may offer now, amperes per phase."""
        return self.current_limit().current_a

    @property
    def status(self) -> ConnectorStatus:
        return ConnectorStatus(self.state)

    # -- outputs ------------------------------------------------------------------------
    def _state_changed(self) -> None:
        state = self.state
        self._apply_outputs()
        if self.state == state:  # an output failure may have moved on (and published)
            self.publish()

    def _apply_outputs(self) -> None:
        out = OUTPUTS[self.state]
        if out.contactor == "open":
            self.pwm_off_timer.cancel()
            self.hw.contactor.open()
        if self.state != S.CHARGING.value:
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
            self._release_lock_on_exit()
        elif out.lock == "locked" and not self._lock():
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
        if self.state != S.CHARGING.value and self.hw.contactor.commanded_closed:
            log.warning("connector %d: EV still in state C %.1f s after PWM off: contactor "
                        "forced open", self.id, self.settings.pwm_off_timeout_s)
            self.hw.contactor.open()

    def _offer_pwm(self) -> None:
        limit = self.current_limit()
        duty = limit.duty_percent
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
        if self._pending_duty is not None and OUTPUTS[self.state].pilot == "pwm":
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

    def _lock(self) -> bool:
        if self.hw.lock is None:
            return True
        try:
            self.hw.lock.lock()
            return True
        except ConnectorLockFailure as exc:
            self.hw.contactor.open()
            self.raise_fault(Fault.LOCK, str(exc))
            return False

    def _release_lock_on_exit(self) -> None:
        if (self._unplugging and not self.unlock_on_ev_disconnect
                and self.session is not None):
            self.lock_held_for = self.session.id_tag
        if self.lock_held_for is None:
            self._unlock()

    def release_lock(self) -> None:
        """The user presented the held idTag (or an UnlockConnector came): unlock."""
        self.lock_held_for = None
        if self.state not in TRANSACTION_STATES:
            self._unlock()

    def _unlock(self) -> None:
        if self.hw.lock is None or not self.hw.lock.locked:
            return
        try:
            self.hw.lock.unlock()
        except ConnectorLockFailure as exc:
            log.error("connector %d: unlock failed: %s", self.id, exc)

    def publish(self) -> None:
        """Emit the current status (after a change, or on request)."""
        self._emit(
            StatusChanged(self.id, self.status, self.error_code, self.error_info, time.time())
        )

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
        """Loop: a new pilot reading; drives plug / unplug / settle / pilot faults."""
        previous, self.pilot = self.pilot, reading
        bad = self._pilot_fault(reading)
        if bad is not None:
            self.raise_fault(*bad)
            return
        if self.state == S.FAULTED.value or reading.state is PilotState.F:
            return
        was_plugged = previous.state is not PilotState.A
        if not self.plugged():
            if was_plugged and self.state in (*TRANSACTION_STATES, S.PREPARING.value,
                                              S.FINISHING.value):
                self._unplugging = True
                try:
                    self.unplug()
                finally:
                    self._unplugging = False
            return
        if not was_plugged:
            if self.state in (S.AVAILABLE.value, S.RESERVED.value):
                self.plug()
            elif self.state in TRANSACTION_STATES:
                self.reevaluate()  # the EV is back to a transaction kept open
            self.on_plugged(self)
        elif self.state in TRANSACTION_STATES:
            self.reevaluate()

    def reevaluate(self) -> None:
        """Re-derive Charging / SuspendedEV / SuspendedEVSE (after a pilot or limit change)."""
        if self.state not in TRANSACTION_STATES:
            return
        target = (
            S.SUSPENDED_EVSE.value if not self.power_allowed()
            else S.CHARGING.value if self.ev_requests_energy()
            else S.SUSPENDED_EV.value
        )
        if target != self.state:
            self.settle()
        elif OUTPUTS[self.state].pilot == "pwm":
            # same state, new limit: update the duty the EV sees (rate-limited)
            self._offer_pwm()

    # -- faults -------------------------------------------------------------------------
    def raise_fault(self, fault: Fault, info: str) -> None:
        """Loop: enter (or stay in) Faulted for ``fault``; the contactor is opened again.
        The Station stops a running transaction (it is told via the StatusChanged event)."""
        self.hw.contactor.open()
        entry = self.faults.raise_fault(fault, info)
        log.error("connector %d: fault %s (%s): %s", self.id, fault.value,
                  entry.recovery.value, entry.info)
        if entry.recovery is Recovery.RETRY:
            remaining = self.retry_timer.remaining_s() or 0.0
            self.retry_timer.start(max(remaining, entry.retry_s))
        self.state_f_timer.cancel()
        self._refresh_error()
        if self.state == S.FAULTED.value:
            self.publish()
        else:
            self.fault()

    def clear_condition(self, fault: Fault) -> None:
        """Loop: the condition behind a ``CONDITION`` fault is gone."""
        if self.faults.clear(fault):
            self._refresh_error()
            self._try_recover()

    def technician_reset(self) -> None:
        """A technician cleared the connector locally (``evse fault reset``): latched faults
        and the RCD trip count go; causes still present are detected again at once."""
        self.faults.technician_reset()
        self.retry_timer.cancel()
        self.overcurrent_timer.cancel()
        with contextlib.suppress(Exception):
            self.hw.rcd.reset()
        if self.hw.rcd.tripped:
            self.raise_fault(Fault.RCD_TRIP, "residual current still present")
            return
        if self.hw.contactor.feedback_closed and not self.hw.contactor.commanded_closed:
            self.raise_fault(Fault.WELDED, "contactor still welded")
            return
        if self.temperature_c is not None and self.temperature_c >= self._trip_c:
            self.raise_fault(Fault.OVERTEMP, f"still {self.temperature_c:.1f} °C")
            return
        self._refresh_error()
        if self.state == S.FAULTED.value:
            self._try_recover()
        else:
            self.publish()

    def _retry_faults(self) -> None:
        again = False
        for entry in list(self.faults.active.values()):
            if entry.recovery is not Recovery.RETRY:
                continue
            if entry.fault is Fault.RCD_TRIP:
                if self.hw.rcd.tripped:
                    again = True
                    continue
                self.hw.rcd.reset()
            self.faults.clear(entry.fault)
        if again:
            self.retry_timer.start(self.settings.rcd_retry_s)
        self._refresh_error()
        self._try_recover()

    def _try_recover(self) -> None:
        """Leave Faulted once no fault is held and state F lasted ``state_f_min_s``."""
        if self.state != S.FAULTED.value or self.faults.active:
            return
        if self._f_since is not None:
            remaining = self._f_since + self.settings.state_f_min_s - self.clock.monotonic()
            if remaining > 1e-9:
                self.state_f_timer.start(remaining)
                return
        self._f_since = None
        self._refresh_error()
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

    def _refresh_error(self) -> None:
        current: ActiveFault | None = self.faults.current
        if current is not None:
            self.error_code, self.error_info = current.code, current.info
        elif self.meter_fault is not None:
            self.error_code = ErrorCode.POWER_METER_FAILURE
            self.error_info = f"meter: {self.meter_fault}; charging without metering"
        else:
            self.error_code, self.error_info = ErrorCode.NO_ERROR, ""

    def on_temperature(self, temperature_c: float) -> None:
        """Loop: a temperature sample, °C: HighTemperature trip / clear, derating steps."""
        self.temperature_c = temperature_c
        s = self.settings
        if temperature_c >= s.overtemp_trip_c:
            if Fault.OVERTEMP not in self.faults.active:
                self.raise_fault(Fault.OVERTEMP, f"{temperature_c:.1f} °C ≥ "
                                 f"{s.overtemp_trip_c:.0f} °C")
            return
        if (Fault.OVERTEMP in self.faults.active
                and temperature_c <= s.overtemp_trip_c - s.overtemp_hysteresis_c):
            self.clear_condition(Fault.OVERTEMP)
        self.reevaluate()

    def _check_overcurrent(self, reading: MeterReading) -> None:
        """Over-current (IEC 61851-1 A.5.4): drawing more than the announced current
        + margins for longer than ``overcurrent_time_s`` stops charging."""
        if (self.state != S.CHARGING.value or not self.hw.contactor.commanded_closed
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
        self.raise_fault(Fault.OVERCURRENT, f"EV drew more than {announced:.1f} A + margin for "
                         f"{self.settings.overcurrent_time_s:.0f} s")

    def on_meter_reading(self, reading: MeterReading) -> None:
        """Loop: a good meter reading: clears a meter fault, checks over-current."""
        self.last_reading = reading
        if self.meter_fault is not None:
            self.meter_fault = None
            if Fault.METER in self.faults.active:
                self.clear_condition(Fault.METER)
            else:
                self._refresh_error()
                self.publish()
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
            self._refresh_error()
            self.publish()

    def describe(self) -> dict[str, Any]:
        """JSON-able snapshot for ``evse status``."""
        session = None
        if self.session is not None:
            energy = (self.last_reading.energy_active_import_wh if self.last_reading
                      else self.session.meter_start_wh)
            session = {
                "session_id": self.session.session_id,
                "id_tag": self.session.id_tag,
                "start_ts": self.session.start_ts,
                "meter_start_wh": self.session.meter_start_wh,
                "energy_wh": max(0.0, energy - self.session.meter_start_wh),
            }
        reading = self.last_reading
        limit = self.current_limit()
        timers = {t.name: t.remaining_s() for t in (
            self.pwm_off_timer, self.duty_timer, self.state_f_timer, self.retry_timer,
            self.overcurrent_timer) if t.active}
        return {
            "id": self.id,
            "status": self.status.value,
            "error_code": self.error_code.value,
            "error_info": self.error_info,
            "pilot": self.pilot.state.value,
            "duty_percent": self.hw.pilot.duty_percent,
            "contactor_closed": self.hw.contactor.commanded_closed,
            "offered_current_a": limit.current_a,
            "limited_by": limit.limited_by,
            "temperature_c": self.temperature_c,
            "operative": self.operative,
            "faults": [{"fault": e.fault.value, "error_code": e.code.value, "info": e.info,
                        "recovery": e.recovery.value} for e in self.faults.active.values()],
            "rcd_trips": self.faults.rcd_trips,
            "timers_s": timers,
            "meter": None if reading is None else {
                "energy_active_import_wh": reading.energy_active_import_wh,
                "power_active_w": reading.power_active_w,
                "voltage_v": list(reading.voltage_v),
                "current_a": list(reading.current_a),
            },
            "meter_fault": self.meter_fault,
            "session": session,
        }

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
        """Worker thread: sample the temperature sensor (if any) into the safety path."""
        sensor = self.hw.temperature
        if sensor is None:
            return
        try:
            value = sensor.read_c()
        except OSError as exc:
            log.warning("connector %d: temperature sensor: %s", self.id, exc)
            return
        self.on_temperature_hw(value)


__all__ = ["OUTPUTS", "STATES", "TRANSACTION_STATES", "TRANSITIONS", "TRIGGERS", "Connector",
           "StateOutputs"]
