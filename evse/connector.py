"""One connector's state machine: IEC 61851 pilot states under the OCPP session statuses.

The machine is declared as data (:data:`STATES`, :data:`TRANSITIONS`) and built with
``transitions``; tests and the state diagram are generated from that same table. Outputs
(contactor, PWM duty, lock) are applied on entering a state.

Threading: :meth:`Connector.on_pilot_hw` and :meth:`Connector.on_rcd_trip_hw` run on the
driver's thread and form the safety path: they open the contactor *first*, touching nothing
but the contactor output, then hand the event to the asyncio loop. Every other method runs on
the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from transitions import Machine

from evse.domain import ConnectorStatus, ErrorCode, StatusChanged
from evse.sessions import Session
from hal.board import ConnectorHardware
from hal.lock import ConnectorLockFailure
from hal.meter import MeterReading, PowerMeterFailure
from hal.pilot import MIN_CURRENT_A, PilotReading, PilotState

log = logging.getLogger(__name__)

S = ConnectorStatus
#: Statuses in which a transaction is running.
TRANSACTION_STATES = [S.CHARGING.value, S.SUSPENDED_EV.value, S.SUSPENDED_EVSE.value]
#: Every state, by its status value.
STATES = [s.value for s in ConnectorStatus]
_IDLE = [S.AVAILABLE.value, S.PREPARING.value, S.FINISHING.value, S.RESERVED.value]

#: The machine's transitions (``transitions`` dicts). Conditions name Connector predicates.
TRANSITIONS: list[dict[str, Any]] = [
    # EV plugs in (pilot A → B/C/D).
    {"trigger": "plug", "source": [S.AVAILABLE.value, S.RESERVED.value], "dest": S.PREPARING.value},
    # A user is authorized before plugging in (card-then-plug, remote start before plug).
    {"trigger": "authorize", "source": S.AVAILABLE.value, "dest": S.PREPARING.value},
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
    # EV unplugs (pilot → A).
    {"trigger": "unplug", "source": [S.PREPARING.value, S.FINISHING.value],
     "dest": S.AVAILABLE.value},
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

#: Pilot states in which the contactor may be closed (D only with ventilation).
_ENERGY_STATES = frozenset({PilotState.C, PilotState.D})


class Connector:
    """IEC 61851 connector + OCPP session state of one connector.

    Args:
        hw: the connector's hardware.
        max_current_a: rated current per phase, A.
        station_limit_a: callable giving the station-wide limit per phase, A.
        emit: called with each :class:`StatusChanged` (on the loop).
        ventilation: whether state D may be energized (IEC 61851-1 A.2.2).
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
    ) -> None:
        self.id = hw.connector_id
        self.hw = hw
        self.max_current_a = max_current_a
        self._station_limit_a = station_limit_a
        self._emit = emit
        self.ventilation = ventilation
        self.limit_a: float | None = None
        self.pilot: PilotReading = hw.pilot.read()
        self.session: Session | None = None
        self.pending_id_tag: str | None = None
        self.pending_parent_id_tag: str | None = None
        self.pending_deadline: float = 0.0
        self.error_code = ErrorCode.NO_ERROR
        self.error_info = ""
        self.operative = True
        self.last_reading: MeterReading | None = None
        self.meter_fault: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
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

    # -- predicates used by the transition table ----------------------------------------
    def plugged(self) -> bool:
        """The pilot shows an EV (any state but A; F is ours and hides the EV)."""
        return self.pilot.state is not PilotState.A

    def ev_requests_energy(self) -> bool:
        """The EV asks for energy: state C, or D where ventilation is available."""
        return self.pilot.state is PilotState.C or (
            self.pilot.state is PilotState.D and self.ventilation
        )

    def power_allowed(self) -> bool:
        """At least 6 A can be offered (IEC 61851-1: less than 6 A means pause)."""
        return self.offered_current_a() >= MIN_CURRENT_A

    def offered_current_a(self) -> float:
        """min(connector rating, station limit, charging limit), amperes per phase."""
        limits = [self.max_current_a, self._station_limit_a()]
        if self.limit_a is not None:
            limits.append(self.limit_a)
        return max(0.0, min(limits))

    @property
    def status(self) -> ConnectorStatus:
        return ConnectorStatus(self.state)

    # -- outputs ------------------------------------------------------------------------
    def _apply_outputs(self) -> None:
        state = self.state
        pilot, contactor = self.hw.pilot, self.hw.contactor
        if state == S.CHARGING.value:
            pilot.set_current(self.offered_current_a())
            if not self._lock():
                return
            if self.hw.rcd.tripped:
                contactor.open()
                return
            contactor.close()
            # Close-then-verify: if the EV left C between our decision and the close, the
            # pilot listener may have seen the contactor still open; re-check here.
            if self.hw.pilot.read().state not in self._allowed_energy_states():
                contactor.open()
        elif state == S.SUSPENDED_EV.value:
            contactor.open()
            pilot.set_current(self.offered_current_a())
        elif state == S.FAULTED.value:
            contactor.open()
            pilot.set_state_f()
        else:
            contactor.open()
            pilot.set_off()
            if state in (S.AVAILABLE.value, S.FINISHING.value, S.UNAVAILABLE.value):
                self._unlock()

    def _lock(self) -> bool:
        if self.hw.lock is None:
            return True
        try:
            self.hw.lock.lock()
            return True
        except ConnectorLockFailure as exc:
            log.error("connector %d: lock failed: %s", self.id, exc)
            self.hw.contactor.open()
            self.set_fault(ErrorCode.CONNECTOR_LOCK_FAILURE, str(exc))
            return False

    def _unlock(self) -> None:
        if self.hw.lock is None or not self.hw.lock.locked:
            return
        try:
            self.hw.lock.unlock()
        except ConnectorLockFailure as exc:
            log.error("connector %d: unlock failed: %s", self.id, exc)

    def _allowed_energy_states(self) -> frozenset[PilotState]:
        return _ENERGY_STATES if self.ventilation else frozenset({PilotState.C})

    def _state_changed(self) -> None:
        self._apply_outputs()
        self.publish()

    def publish(self) -> None:
        """Emit the current status (after a change, or on request)."""
        self._emit(
            StatusChanged(self.id, self.status, self.error_code, self.error_info, time.time())
        )

    # -- safety path (driver thread) ----------------------------------------------------
    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Register the hardware listeners; events reach :meth:`on_pilot` via ``loop``."""
        self._loop = loop
        self.hw.pilot.add_listener(self.on_pilot_hw)
        self.hw.rcd.add_trip_listener(self.on_rcd_trip_hw)
        self.hw.contactor.add_fault_listener(self.on_contactor_fault_hw)

    def on_pilot_hw(self, reading: PilotReading) -> None:
        """Driver thread: open the contactor if the pilot no longer allows energy, then
        post the reading to the loop (IEC 61851-1: open ≤ 100 ms after C→B / C→A)."""
        if reading.diode_fault or reading.state not in self._allowed_energy_states():
            self.hw.contactor.open()
        self._post(self.on_pilot, reading)

    def on_rcd_trip_hw(self) -> None:
        """Driver thread: residual current trip → contactor open at once, then tell the loop."""
        self.hw.contactor.open()
        self._post(self.set_fault, ErrorCode.GROUND_FAILURE, "residual current trip")

    def on_contactor_fault_hw(self, reason: str) -> None:
        """Driver thread: welded / failed-to-close contactor."""
        self.hw.contactor.open()
        self._post(self.set_fault, ErrorCode.POWER_SWITCH_FAILURE, f"contactor {reason}")

    def _post(self, func: Callable[..., None], *args: Any) -> None:
        if self._loop is None:
            return
        # A closed loop (shutdown) is fine: the contactor is already open.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(func, *args)

    # -- loop-side event handling -------------------------------------------------------
    def on_pilot(self, reading: PilotReading) -> None:
        """Loop: a new pilot reading; drives plug / unplug / settle / pilot faults."""
        previous, self.pilot = self.pilot, reading
        if self.state == S.FAULTED.value:
            return
        if reading.diode_fault:
            self.set_fault(ErrorCode.EV_COMMUNICATION_ERROR, "pilot diode fault")
            return
        if reading.state is PilotState.E:
            self.set_fault(ErrorCode.EV_COMMUNICATION_ERROR, "control pilot shorted (state E)")
            return
        if reading.state is PilotState.D and not self.ventilation:
            self.set_fault(ErrorCode.OTHER_ERROR, "EV requests ventilation (state D), none")
            return
        if reading.state is PilotState.F:
            return
        was_plugged = previous.state is not PilotState.A
        if not self.plugged():
            if was_plugged and self.state in (*TRANSACTION_STATES, S.PREPARING.value,
                                              S.FINISHING.value):
                self.unplug()
            return
        if not was_plugged:
            if self.state in (S.AVAILABLE.value, S.RESERVED.value):
                self.plug()
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
        elif self.state != S.SUSPENDED_EVSE.value:
            # same state, new limit: update the duty the EV sees
            self.hw.pilot.set_current(self.offered_current_a())

    def set_fault(self, code: ErrorCode, info: str) -> None:
        """Loop: enter Faulted with ``code`` (contactor already open). The Station stops a
        running transaction (it is told via the StatusChanged event)."""
        self.hw.contactor.open()
        self.error_code, self.error_info = code, info
        log.error("connector %d: fault %s: %s", self.id, code.value, info)
        if self.state == S.FAULTED.value:
            self.publish()
        else:
            self.fault()

    def clear_fault(self) -> None:
        """Loop: the fault condition is gone; leave Faulted."""
        if self.state != S.FAULTED.value:
            return
        self.error_code, self.error_info = ErrorCode.NO_ERROR, ""
        self.pilot = self.hw.pilot.read()
        self.recover()

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
        return {
            "id": self.id,
            "status": self.status.value,
            "error_code": self.error_code.value,
            "error_info": self.error_info,
            "pilot": self.pilot.state.value,
            "contactor_closed": self.hw.contactor.commanded_closed,
            "offered_current_a": self.offered_current_a(),
            "operative": self.operative,
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
        """Read the meter on a worker thread; updates ``last_reading`` / ``meter_fault``.

        Raises:
            PowerMeterFailure: the meter gave no trustworthy reading.
        """
        try:
            reading = await asyncio.to_thread(self.hw.meter.read)
        except PowerMeterFailure as exc:
            self.meter_fault = exc.reason
            raise
        self.meter_fault = None
        self.last_reading = reading
        return reading
