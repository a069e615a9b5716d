"""The core's session vocabulary → OCPP 1.6 enums (OCPP 1.6 §7): every 1.6 table lives here.

* ChargePointStatus (§7.7) is derived from the session machine's state
  (:func:`status_of`), ChargePointErrorCode (§7.6) from the fault's cause;
* Reason (§7.39) from the neutral stop cause, with EmergencyStop for a ground fault
  (:func:`stop_reason`);
* ReadingContext (§7.34) and AuthorizationStatus (§7.2).
"""

from __future__ import annotations

from ocpp.v16 import enums
from ocpp.v16.enums import ChargePointErrorCode as ErrorCode
from ocpp.v16.enums import ChargePointStatus as Status

from evse.authorization import AuthorizationStatus
from evse.domain import Fault, ReadingContext, SessionStateChanged, StopCause, TransactionStopped
from evse.session_machine import (
    ENDED,
    ENERGY_TRANSFER,
    FAULTED,
    IDLE,
    OUT_OF_SERVICE,
    PENDING,
    RESERVED,
    SUSPENDED_BY_EV,
    SUSPENDED_BY_EVSE,
)

#: Session machine state → ChargePointStatus (§3.3, §7.7).
STATUS: dict[str, Status] = {
    IDLE: Status.available,
    PENDING: Status.preparing,
    ENERGY_TRANSFER: Status.charging,
    SUSPENDED_BY_EV: Status.suspended_ev,
    SUSPENDED_BY_EVSE: Status.suspended_evse,
    ENDED: Status.finishing,
    RESERVED: Status.reserved,
    OUT_OF_SERVICE: Status.unavailable,
    FAULTED: Status.faulted,
}

#: Fault cause → ChargePointErrorCode (§7.6).
ERROR_CODE: dict[Fault, ErrorCode] = {
    Fault.RCD_TRIP: ErrorCode.ground_failure,
    Fault.RCD_SELF_TEST: ErrorCode.ground_failure,
    Fault.PILOT_E: ErrorCode.ev_communication_error,
    Fault.PILOT_F: ErrorCode.ev_communication_error,
    Fault.DIODE: ErrorCode.ev_communication_error,
    Fault.VENTILATION: ErrorCode.other_error,
    Fault.WELDED: ErrorCode.power_switch_failure,
    Fault.FAILED_CLOSE: ErrorCode.power_switch_failure,
    Fault.OVERCURRENT: ErrorCode.over_current_failure,
    Fault.OVERTEMP: ErrorCode.high_temperature,
    Fault.METER: ErrorCode.power_meter_failure,
    Fault.LOCK: ErrorCode.connector_lock_failure,
    Fault.STATION: ErrorCode.other_error,
    Fault.INTERLOCK: ErrorCode.other_error,
    Fault.READER: ErrorCode.reader_failure,  # on connector 0, status stays Available
}

#: Neutral stop cause → Reason (§7.39); :attr:`StopCause.FAULT` is refined by
#: :func:`stop_reason`.
REASON: dict[StopCause, enums.Reason] = {
    StopCause.EV_DISCONNECTED: enums.Reason.ev_disconnected,
    StopCause.LOCAL_ID_TOKEN: enums.Reason.local,
    StopCause.REMOTE: enums.Reason.remote,
    StopCause.DEAUTHORIZED: enums.Reason.de_authorized,
    StopCause.POWER_LOSS: enums.Reason.power_loss,
    StopCause.REBOOT: enums.Reason.reboot,
    StopCause.RESET_HARD: enums.Reason.hard_reset,
    StopCause.RESET_SOFT: enums.Reason.soft_reset,
    StopCause.FAULT: enums.Reason.other,
    StopCause.UNLOCK_COMMAND: enums.Reason.unlock_command,
    StopCause.LOCAL: enums.Reason.local,
}

#: Faults that stop a transaction with EmergencyStop (a ground fault: the RCD).
EMERGENCY_FAULTS = frozenset({Fault.RCD_TRIP, Fault.RCD_SELF_TEST})

CONTEXT: dict[ReadingContext, enums.ReadingContext] = {
    ReadingContext.TRANSACTION_BEGIN: enums.ReadingContext.transaction_begin,
    ReadingContext.PERIODIC: enums.ReadingContext.sample_periodic,
    ReadingContext.TRANSACTION_END: enums.ReadingContext.transaction_end,
    ReadingContext.TRIGGER: enums.ReadingContext.trigger,
    ReadingContext.CLOCK_ALIGNED: enums.ReadingContext.sample_clock,
}

AUTH_STATUS: dict[str, AuthorizationStatus] = {
    enums.AuthorizationStatus.accepted.value: AuthorizationStatus.ACCEPTED,
    enums.AuthorizationStatus.blocked.value: AuthorizationStatus.BLOCKED,
    enums.AuthorizationStatus.expired.value: AuthorizationStatus.EXPIRED,
    enums.AuthorizationStatus.invalid.value: AuthorizationStatus.INVALID,
    enums.AuthorizationStatus.concurrent_tx.value: AuthorizationStatus.CONCURRENT_TX,
}


def status_of(event: SessionStateChanged) -> tuple[Status, ErrorCode]:
    """The StatusNotification status and errorCode for a session state (§4.9): a fault
    reported while charging continues (a failed meter) keeps the status, with its code."""
    code = ErrorCode.no_error if event.fault is None else ERROR_CODE[event.fault]
    return STATUS[event.state], code


def stop_reason(event: TransactionStopped) -> enums.Reason:
    """StopTransaction.req ``reason`` (§6.50): EmergencyStop when a ground fault (RCD trip,
    failed RCD self-test) stopped it, Other for any other fault."""
    if event.cause is StopCause.FAULT and event.fault in EMERGENCY_FAULTS:
        return enums.Reason.emergency_stop
    return REASON[event.cause]
