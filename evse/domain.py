"""The core's vocabulary: connector status, error codes, stop reasons and domain events.

These are protocol-neutral. The OCPP adapters map them to each protocol version's enums
(``ocpp_client.v16.mapping``), which is what lets OCPP 2.0.1 arrive as a second adapter.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hal.meter import MeterReading


class ConnectorStatus(enum.Enum):
    """Session-level connector status (the OCPP 1.6 ChargePointStatus set, §7.7)."""

    AVAILABLE = "available"
    PREPARING = "preparing"
    CHARGING = "charging"
    SUSPENDED_EV = "suspended_ev"
    SUSPENDED_EVSE = "suspended_evse"
    FINISHING = "finishing"
    RESERVED = "reserved"
    UNAVAILABLE = "unavailable"
    FAULTED = "faulted"


class ErrorCode(enum.Enum):
    """Why a connector is faulted or degraded (OCPP 1.6 ChargePointErrorCode, §7.6)."""

    NO_ERROR = "no_error"
    GROUND_FAILURE = "ground_failure"
    POWER_SWITCH_FAILURE = "power_switch_failure"
    OVER_CURRENT_FAILURE = "over_current_failure"
    HIGH_TEMPERATURE = "high_temperature"
    CONNECTOR_LOCK_FAILURE = "connector_lock_failure"
    POWER_METER_FAILURE = "power_meter_failure"
    READER_FAILURE = "reader_failure"
    EV_COMMUNICATION_ERROR = "ev_communication_error"
    OTHER_ERROR = "other_error"


class StopReason(enum.Enum):
    """Why a transaction ended (OCPP 1.6 Reason, §7.39)."""

    LOCAL = "local"
    REMOTE = "remote"
    EV_DISCONNECTED = "ev_disconnected"
    POWER_LOSS = "power_loss"
    HARD_RESET = "hard_reset"
    SOFT_RESET = "soft_reset"
    REBOOT = "reboot"
    EMERGENCY_STOP = "emergency_stop"
    DE_AUTHORIZED = "de_authorized"
    UNLOCK_COMMAND = "unlock_command"
    OTHER = "other"


class ReadingContext(enum.Enum):
    """Why a meter reading was taken (OCPP 1.6 ReadingContext, §7.34)."""

    TRANSACTION_BEGIN = "transaction_begin"
    PERIODIC = "periodic"
    TRANSACTION_END = "transaction_end"
    TRIGGER = "trigger"


@dataclass(frozen=True)
class StatusChanged:
    """A connector's status or error changed. ``connector_id`` 0 is the station."""

    connector_id: int
    status: ConnectorStatus
    error_code: ErrorCode
    info: str
    timestamp: float


@dataclass(frozen=True)
class TransactionStarted:
    """A transaction began: plugged and authorized (OCPP 1.6 §4.8).

    ``session_id`` is the local id (assigned before any CSMS answer); energies in Wh;
    ``timestamp`` is UTC epoch seconds.
    """

    connector_id: int
    session_id: int
    id_tag: str
    meter_start_wh: int
    timestamp: float
    reservation_id: int | None = None


@dataclass(frozen=True)
class TransactionStopped:
    """A transaction ended (OCPP 1.6 §4.10). ``id_tag`` is who stopped it, if anyone."""

    connector_id: int
    session_id: int
    id_tag: str | None
    meter_stop_wh: int
    timestamp: float
    reason: StopReason
    reading: MeterReading | None = None


@dataclass(frozen=True)
class MeterSample:
    """A meter reading of a connector, with the transaction it belongs to (if any)."""

    connector_id: int
    session_id: int | None
    reading: MeterReading
    context: ReadingContext


DomainEvent = StatusChanged | TransactionStarted | TransactionStopped | MeterSample
