"""The session machine of one EVSE: EV and user, transaction, energy transfer — above the
IEC 61851 machine (:mod:`evse.iec_machine`).

States are the charging session's phases (:data:`SESSION_STATES`), not any protocol's
statuses; an adapter derives its own status from them (OCPP 1.6:
``ocpp_client.v16.mapping.status_of``). Each state asks the IEC machine for a supply mode
(:data:`SESSION_MODES`). The machine is declared as data (:data:`SESSION_TRANSITIONS`),
built with ``transitions`` (queued: a trigger fired from a callback runs after the current
transition), and ``docs/state-machine.md`` is generated from the same data.

The machine publishes fine-grained session events (:mod:`evse.domain`): EV connected /
disconnected, power path closed / opened, energy transfer started / suspended by the EV /
suspended by the EVSE / resumed, fault raised / cleared, and :class:`SessionStateChanged`
for every state entered. Authorization, transactions and availability are published by
the :class:`~evse.station.Station`, which owns those decisions. Everything runs on the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from transitions import Machine

from evse.domain import (
    DomainEvent,
    EnergyTransferResumed,
    EnergyTransferStarted,
    EnergyTransferSuspendedByEV,
    EnergyTransferSuspendedByEVSE,
    EvConnected,
    EvDisconnected,
    Fault,
    FaultCleared,
    FaultRaised,
    IdToken,
    PowerPathClosed,
    PowerPathOpened,
    SessionStateChanged,
)
from evse.faults import ActiveFault, Recovery
from evse.iec61851 import Iec61851Settings
from evse.iec_machine import IEC_OUTPUTS, OFFER, PAUSED, READY, STANDBY, SUPPLY, IecMachine
from evse.sessions import Session
from evse.tx_policy import TxPoint, TxPolicy
from hal.board import ConnectorHardware
from hal.meter import MeterReading
from hal.pilot import current_for_duty

log = logging.getLogger(__name__)

IDLE = "idle"  # no EV, nobody authorized
PENDING = "pending"  # EV connected and / or a user authorized, no transaction yet
ENERGY_TRANSFER = "energy_transfer"  # transaction, power path closed, EV draws
SUSPENDED_BY_EV = "suspended_by_ev"  # transaction, EV does not ask for energy
SUSPENDED_BY_EVSE = "suspended_by_evse"  # transaction, less than 6 A can be offered
ENDED = "ended"  # the transaction ended, the EV is still connected
RESERVED = "reserved"  # held for a reservation
OUT_OF_SERVICE = "out_of_service"  # put out of service (availability)
FAULTED = "faulted"  # the IEC machine holds a fault

#: Every state of the session machine.
SESSION_STATES = [IDLE, PENDING, ENERGY_TRANSFER, SUSPENDED_BY_EV, SUSPENDED_BY_EVSE, ENDED,
                  RESERVED, OUT_OF_SERVICE, FAULTED]
#: States in which a transaction is running.
TRANSACTION_STATES = [ENERGY_TRANSFER, SUSPENDED_BY_EV, SUSPENDED_BY_EVSE]
_NO_TX = [IDLE, PENDING, ENDED, RESERVED]

#: The machine's transitions (``transitions`` dicts). Conditions name predicates of
#: :class:`SessionMachine`; for one trigger and source the first transition whose conditions
#: hold is taken.
SESSION_TRANSITIONS: list[dict[str, Any]] = [
    # EV connected (pilot A → B/C/D).
    {"trigger": "plug", "source": [IDLE, RESERVED], "dest": PENDING},
    # A user is authorized before connecting (card-then-plug, remote start before plug),
    # or a new user after a finished transaction while the EV stays connected.
    {"trigger": "authorize", "source": [IDLE, ENDED, RESERVED], "dest": PENDING},
    # The authorization waited too long for an EV (e.g. OCPP 1.6 ConnectionTimeOut).
    {"trigger": "timeout", "source": PENDING, "dest": IDLE, "unless": "plugged"},
    # The transaction begins: power is offered according to EV state and current limit.
    {"trigger": "start", "source": PENDING, "dest": ENERGY_TRANSFER,
     "conditions": ["ev_requests_energy", "power_allowed"]},
    {"trigger": "start", "source": PENDING, "dest": SUSPENDED_BY_EVSE, "unless": "power_allowed"},
    {"trigger": "start", "source": PENDING, "dest": SUSPENDED_BY_EV},
    # Re-evaluate a running transaction after a pilot (B↔C) or limit change.
    {"trigger": "settle", "source": TRANSACTION_STATES, "dest": ENERGY_TRANSFER,
     "conditions": ["ev_requests_energy", "power_allowed"]},
    {"trigger": "settle", "source": TRANSACTION_STATES, "dest": SUSPENDED_BY_EVSE,
     "unless": "power_allowed"},
    {"trigger": "settle", "source": TRANSACTION_STATES, "dest": SUSPENDED_BY_EV},
    # The transaction ends while the EV stays connected / after it left.
    {"trigger": "stop", "source": TRANSACTION_STATES, "dest": ENDED, "conditions": "plugged"},
    {"trigger": "stop", "source": TRANSACTION_STATES, "dest": IDLE},
    # EV disconnected (pilot → A). When the transaction policy does not stop on an EV-side
    # disconnect, the transaction stays open, suspended by the EV, until stopped or back.
    {"trigger": "unplug", "source": [PENDING, ENDED], "dest": IDLE},
    {"trigger": "unplug", "source": TRANSACTION_STATES, "dest": SUSPENDED_BY_EV,
     "unless": "stop_on_ev_disconnect"},
    {"trigger": "unplug", "source": TRANSACTION_STATES, "dest": IDLE},
    # The IEC machine tripped / recovered.
    {"trigger": "fault", "source": [*_NO_TX, *TRANSACTION_STATES, OUT_OF_SERVICE],
     "dest": FAULTED},
    {"trigger": "recover", "source": FAULTED, "dest": OUT_OF_SERVICE, "unless": "operative"},
    {"trigger": "recover", "source": FAULTED, "dest": ENDED, "conditions": "plugged"},
    {"trigger": "recover", "source": FAULTED, "dest": IDLE},
    # Availability; an EVSE with a transaction is scheduled by the Station.
    {"trigger": "disable", "source": _NO_TX, "dest": OUT_OF_SERVICE},
    {"trigger": "enable", "source": OUT_OF_SERVICE, "dest": PENDING, "conditions": "plugged"},
    {"trigger": "enable", "source": OUT_OF_SERVICE, "dest": IDLE},
    # Reservations.
    {"trigger": "reserve", "source": IDLE, "dest": RESERVED},
    {"trigger": "unreserve", "source": RESERVED, "dest": IDLE},
]

#: Every trigger of the session machine, in declaration order.
SESSION_TRIGGERS: list[str] = list(dict.fromkeys(t["trigger"] for t in SESSION_TRANSITIONS))

#: The IEC supply mode each state requests (``faulted``: the IEC machine holds ``fault``).
SESSION_MODES: dict[str, str | None] = {
    IDLE: STANDBY,
    PENDING: READY,
    ENERGY_TRANSFER: SUPPLY,
    SUSPENDED_BY_EV: OFFER,
    SUSPENDED_BY_EVSE: PAUSED,
    ENDED: STANDBY,
    RESERVED: READY,
    OUT_OF_SERVICE: STANDBY,
    FAULTED: None,
}


class SessionMachine:
    """The session of one EVSE over its IEC 61851 machine.

    Args:
        iec: the EVSE's IEC 61851 machine (this machine becomes its listener).
        emit: called with each session event (on the loop).
        now: the UTC clock stamping events, epoch s.
        evse_id: the EVSE's id (default: its connector's id).
    """

    state: str  # set by transitions
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

    def __init__(self, iec: IecMachine, emit: Callable[[DomainEvent], None],
                 now: Callable[[], float], evse_id: int | None = None) -> None:
        self.iec = iec
        self.hw: ConnectorHardware = iec.hw
        #: The connector's id (one connector per EVSE).
        self.id = iec.id
        self.evse_id = iec.id if evse_id is None else evse_id
        self._emit = emit
        self._now = now
        self.session: Session | None = None
        #: An authorization waiting for its transaction.
        self.pending_id_token: IdToken | None = None
        self.pending_parent_id_tag: str | None = None
        self.operative = True
        #: When transactions start and stop (set by the adapter).
        self.tx_policy = TxPolicy.ocpp16()
        #: Release the cable when the EV side disconnects (e.g. OCPP 1.6
        #: UnlockConnectorOnEVSideDisconnect, §9.1.33).
        self.unlock_on_ev_disconnect = True
        #: IdToken value whose presentation (or an unlock command) releases the cable held
        #: after an EV-side disconnect with ``unlock_on_ev_disconnect`` false.
        self.lock_held_for: str | None = None
        #: The EV connection last published (EvConnected / EvDisconnected).
        self.ev_present = False
        self._energy_seen = False
        self._previous = IDLE
        #: Called (on the loop) after an EV was connected and the machine moved (the
        #: Station starts a waiting authorization from it).
        self.on_ev_connected: Callable[[SessionMachine], None] = lambda _s: None
        iec.listener = self
        self.machine = Machine(
            model=self,
            states=SESSION_STATES,
            transitions=SESSION_TRANSITIONS,
            initial=IDLE,
            auto_transitions=False,
            after_state_change="_state_changed",
            queued=True,
        )

    # -- predicates used by the transition table ----------------------------------------
    def plugged(self) -> bool:
        """An EV is connected (pilot out of A)."""
        return self.iec.plugged()

    def ev_requests_energy(self) -> bool:
        """The EV asks for energy (C, or D with ventilation)."""
        return self.iec.ev_requests_energy()

    def power_allowed(self) -> bool:
        """At least 6 A can be offered."""
        return self.iec.power_allowed()

    def stop_on_ev_disconnect(self) -> bool:
        """The transaction policy closes the transaction when the EV disconnects."""
        return self.tx_policy.stops_on_loss_of(TxPoint.EV_CONNECTED)

    # -- convenience views ----------------------------------------------------------------
    @property
    def settings(self) -> Iec61851Settings:
        return self.iec.settings

    @property
    def ventilation(self) -> bool:
        return self.iec.ventilation

    @property
    def pending_id_tag(self) -> str | None:
        """The value of the authorization waiting for its transaction."""
        return None if self.pending_id_token is None else self.pending_id_token.value

    @property
    def last_reading(self) -> MeterReading | None:
        return self.iec.last_reading

    def offered_current_a(self) -> float:
        """The current the EVSE may offer now, amperes per phase."""
        return self.iec.offered_current_a()

    def facts(self) -> set[TxPoint]:
        """The transaction points that hold now."""
        held: set[TxPoint] = set()
        if self.plugged():
            held.add(TxPoint.EV_CONNECTED)
        if self.pending_id_token is not None or self.session is not None:
            held.add(TxPoint.AUTHORIZED)
        if self.hw.contactor.commanded_closed:
            held.add(TxPoint.POWER_PATH_CLOSED)
        if self.state == ENERGY_TRANSFER:
            held.add(TxPoint.ENERGY_TRANSFER)
        return held

    # -- state changes ----------------------------------------------------------------------
    def _state_changed(self) -> None:
        previous, state = self._previous, self.state
        self._previous = state
        mode = SESSION_MODES[state]
        if mode is not None:
            self.iec.request(mode)
        self._energy_events(previous, state)
        self.publish()

    def _energy_events(self, previous: str, state: str) -> None:
        session = self.session
        if session is None or previous == state:
            return
        sid, ts = session.session_id, self._now()
        if state == ENERGY_TRANSFER:
            if self._energy_seen:
                self._emit(EnergyTransferResumed(self.evse_id, self.id, sid, ts))
            else:
                self._energy_seen = True
                self._emit(EnergyTransferStarted(self.evse_id, self.id, sid, ts))
        elif state == SUSPENDED_BY_EV:
            self._emit(EnergyTransferSuspendedByEV(self.evse_id, self.id, sid, ts))
        elif state == SUSPENDED_BY_EVSE:
            self._emit(EnergyTransferSuspendedByEVSE(self.evse_id, self.id, sid, ts))

    def begin(self, session: Session) -> None:
        """A transaction opened on this EVSE: offer power."""
        self.session = session
        self._energy_seen = False
        self.start()

    def publish(self) -> None:
        """Emit the current state and reported fault (after a change, or on request)."""
        fault, info = self.iec.reported_fault()
        self._emit(SessionStateChanged(self.evse_id, self.id, self.state, fault, info,
                                       self._now()))

    def reevaluate(self) -> None:
        """Re-derive energy transfer / suspended (after a pilot or limit change)."""
        if self.state not in TRANSACTION_STATES:
            return
        target = (
            SUSPENDED_BY_EVSE if not self.power_allowed()
            else ENERGY_TRANSFER if self.ev_requests_energy()
            else SUSPENDED_BY_EV
        )
        if target != self.state:
            self.settle()
        else:
            self.iec.update_offer()

    # -- what the IEC machine tells ---------------------------------------------------------
    def sync_ev_connection(self) -> None:
        """Publish EvConnected / EvDisconnected if the pilot disagrees with the last one."""
        connected = self.plugged()
        if connected != self.ev_present:
            self.ev_present = connected
            cls = EvConnected if connected else EvDisconnected
            self._emit(cls(self.evse_id, self.id, self._now()))

    def ev_connected(self) -> None:  # IecListener
        self.sync_ev_connection()
        if self.state in (IDLE, RESERVED):
            self.plug()
        elif self.state in TRANSACTION_STATES:
            self.reevaluate()  # the EV is back to a transaction kept open
        self.on_ev_connected(self)

    def ev_disconnected(self) -> None:  # IecListener
        self.sync_ev_connection()
        if self.state not in (*TRANSACTION_STATES, PENDING, ENDED):
            return
        goes_idle = self.state in (PENDING, ENDED) or self.stop_on_ev_disconnect()
        if goes_idle and not self.unlock_on_ev_disconnect and self.session is not None:
            # The cable stays locked until its user comes back (or an unlock command).
            self.lock_held_for = self.session.id_tag
            self.iec.keep_locked = True
        self.unplug()

    def pilot_changed(self) -> None:  # IecListener
        self.reevaluate()

    def tripped(self) -> None:  # IecListener
        if self.state != FAULTED:
            self.fault()

    def fault_reported(self) -> None:  # IecListener
        self.publish()

    def fault_raised(self, entry: ActiveFault) -> None:  # IecListener
        self._emit(FaultRaised(self.evse_id, self.id, entry.fault, entry.info,
                               entry.recovery is Recovery.TECHNICIAN, self._now()))

    def fault_cleared(self, fault: Fault) -> None:  # IecListener
        self._emit(FaultCleared(self.evse_id, self.id, fault, self._now()))

    def recovered(self) -> None:  # IecListener
        self.sync_ev_connection()
        if self.state == FAULTED:
            self.recover()

    def power_path(self, closed: bool) -> None:  # IecListener
        cls = PowerPathClosed if closed else PowerPathOpened
        self._emit(cls(self.evse_id, self.id, self._now()))

    # -- user-facing ------------------------------------------------------------------------
    def release_lock(self) -> None:
        """The user presented the IdToken the cable was held for (or an unlock command
        came): unlock unless a transaction needs the lock."""
        self.lock_held_for = None
        self.iec.keep_locked = False
        if self.state not in TRANSACTION_STATES:
            self.iec.release_lock()

    def _pilot_voltages(self) -> dict[str, float | None] | None:
        """The CP line's plateaus as the pilot driver last measured them, V (None: not
        measured by this driver)."""
        volts = self.hw.pilot.line_voltages()
        if volts is None:
            return None
        high, low = volts
        return {"positive": round(high, 2), "negative": None if low is None else round(low, 2)}

    def describe(self) -> dict[str, Any]:
        """JSON-able snapshot for ``evse status``."""
        iec = self.iec
        session = None
        if self.session is not None:
            energy = (iec.last_reading.energy_active_import_wh if iec.last_reading
                      else self.session.meter_start_wh)
            session = {
                "session_id": self.session.session_id,
                "id_tag": self.session.id_tag,
                "start_ts": self.session.start_ts,
                "meter_start_wh": self.session.meter_start_wh,
                "energy_wh": max(0.0, energy - self.session.meter_start_wh),
            }
        reading = iec.last_reading
        limit = iec.current_limit()
        fault, info = iec.reported_fault()
        return {
            "id": self.id,
            "evse_id": self.evse_id,
            "state": self.state,
            "supply_mode": iec.state,
            "fault": None if fault is None else fault.value,
            "fault_info": info,
            "pilot": iec.pilot.state.value,
            "iec_state": iec.system_state(),
            "duty_percent": self.hw.pilot.duty_percent,
            "contactor_closed": self.hw.contactor.commanded_closed,
            "offered_current_a": limit.current_a,
            "limited_by": limit.limited_by,
            "temperature_c": iec.temperature_c,
            "operative": self.operative,
            "faults": [{"fault": e.fault.value, "info": e.info, "recovery": e.recovery.value,
                        "retry_in_s": iec.retry_in_s(e),
                        "trips": iec.trip_counts.get(e.fault, 0)}
                       for e in iec.faults.active.values()],
            "rcd_trips": iec.faults.rcd_trips,
            "rcd_max_trips": iec.settings.rcd_max_trips,
            "pilot_voltage_v": self._pilot_voltages(),
            "announced_current_a": current_for_duty(self.hw.pilot.duty_percent),
            "drawn_current_a": None if reading is None else list(reading.current_a),
            "lock": None if self.hw.lock is None else (
                "locked" if self.hw.lock.locked else "unlocked"),
            "lock_held_for": self.lock_held_for,
            "timers_s": iec.timers(),
            "meter": None if reading is None else {
                "energy_active_import_wh": reading.energy_active_import_wh,
                "power_active_w": reading.power_active_w,
                "voltage_v": list(reading.voltage_v),
                "current_a": list(reading.current_a),
            },
            "meter_fault": iec.meter_fault,
            "session": session,
        }


__all__ = ["ENDED", "ENERGY_TRANSFER", "FAULTED", "IDLE", "IEC_OUTPUTS", "OUT_OF_SERVICE",
           "PENDING", "RESERVED", "SESSION_MODES", "SESSION_STATES", "SESSION_TRANSITIONS",
           "SESSION_TRIGGERS", "SUSPENDED_BY_EV", "SUSPENDED_BY_EVSE", "TRANSACTION_STATES",
           "SessionMachine"]
