"""Domain vocabulary ↔ OCPP 1.6 enums (OCPP 1.6 §7)."""

from __future__ import annotations

from ocpp.v16 import enums

from evse.authorization import AuthorizationStatus
from evse.domain import ConnectorStatus, ErrorCode, ReadingContext, StopReason

STATUS: dict[ConnectorStatus, enums.ChargePointStatus] = {
    ConnectorStatus.AVAILABLE: enums.ChargePointStatus.available,
    ConnectorStatus.PREPARING: enums.ChargePointStatus.preparing,
    ConnectorStatus.CHARGING: enums.ChargePointStatus.charging,
    ConnectorStatus.SUSPENDED_EV: enums.ChargePointStatus.suspended_ev,
    ConnectorStatus.SUSPENDED_EVSE: enums.ChargePointStatus.suspended_evse,
    ConnectorStatus.FINISHING: enums.ChargePointStatus.finishing,
    ConnectorStatus.RESERVED: enums.ChargePointStatus.reserved,
    ConnectorStatus.UNAVAILABLE: enums.ChargePointStatus.unavailable,
    ConnectorStatus.FAULTED: enums.ChargePointStatus.faulted,
}

ERROR_CODE: dict[ErrorCode, enums.ChargePointErrorCode] = {
    ErrorCode.NO_ERROR: enums.ChargePointErrorCode.no_error,
    ErrorCode.GROUND_FAILURE: enums.ChargePointErrorCode.ground_failure,
    ErrorCode.POWER_SWITCH_FAILURE: enums.ChargePointErrorCode.power_switch_failure,
    ErrorCode.OVER_CURRENT_FAILURE: enums.ChargePointErrorCode.over_current_failure,
    ErrorCode.HIGH_TEMPERATURE: enums.ChargePointErrorCode.high_temperature,
    ErrorCode.CONNECTOR_LOCK_FAILURE: enums.ChargePointErrorCode.connector_lock_failure,
    ErrorCode.POWER_METER_FAILURE: enums.ChargePointErrorCode.power_meter_failure,
    ErrorCode.READER_FAILURE: enums.ChargePointErrorCode.reader_failure,
    ErrorCode.EV_COMMUNICATION_ERROR: enums.ChargePointErrorCode.ev_communication_error,
    ErrorCode.OTHER_ERROR: enums.ChargePointErrorCode.other_error,
}

REASON: dict[StopReason, enums.Reason] = {
    StopReason.LOCAL: enums.Reason.local,
    StopReason.REMOTE: enums.Reason.remote,
    StopReason.EV_DISCONNECTED: enums.Reason.ev_disconnected,
    StopReason.POWER_LOSS: enums.Reason.power_loss,
    StopReason.HARD_RESET: enums.Reason.hard_reset,
    StopReason.SOFT_RESET: enums.Reason.soft_reset,
    StopReason.REBOOT: enums.Reason.reboot,
    StopReason.EMERGENCY_STOP: enums.Reason.emergency_stop,
    StopReason.DE_AUTHORIZED: enums.Reason.de_authorized,
    StopReason.UNLOCK_COMMAND: enums.Reason.unlock_command,
    StopReason.OTHER: enums.Reason.other,
}

CONTEXT: dict[ReadingContext, enums.ReadingContext] = {
    ReadingContext.TRANSACTION_BEGIN: enums.ReadingContext.transaction_begin,
    ReadingContext.PERIODIC: enums.ReadingContext.sample_periodic,
    ReadingContext.TRANSACTION_END: enums.ReadingContext.transaction_end,
    ReadingContext.TRIGGER: enums.ReadingContext.trigger,
}

AUTH_STATUS: dict[str, AuthorizationStatus] = {
    enums.AuthorizationStatus.accepted.value: AuthorizationStatus.ACCEPTED,
    enums.AuthorizationStatus.blocked.value: AuthorizationStatus.BLOCKED,
    enums.AuthorizationStatus.expired.value: AuthorizationStatus.EXPIRED,
    enums.AuthorizationStatus.invalid.value: AuthorizationStatus.INVALID,
    enums.AuthorizationStatus.concurrent_tx.value: AuthorizationStatus.CONCURRENT_TX,
}
