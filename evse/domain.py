"""The core's vocabulary: IdToken, fault causes, stop causes and session events.

The words are those of IEC 61851 and of the charging session, not of any protocol: an EV is
connected, a user is authorized with an IdToken, the power path closes, energy flows, a
transaction starts and stops for a cause. Each OCPP adapter derives its own view from these
events (``ocpp_client.v16.mapping`` for 1.6: StatusNotification, Start/StopTransaction,
ChargePointErrorCode, Reason); nothing here is a protocol's list renamed.

Every event carries ``evse_id`` (the EVSE: one IEC 61851 machine, one power path) and
``connector_id`` (the socket or cable of that EVSE; with one connector per EVSE, the common
AC case, both are equal unless configured). Timestamps are UTC epoch seconds (the core's
:class:`~evse.clock.Clock`), energies Wh.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hal.meter import MeterReading

if TYPE_CHECKING:
    from evse.diagnostics import DiagnosticsStatus
    from evse.firmware_update import FirmwareStatus


class IdTokenType(enum.Enum):
    """How an identifier was presented (the kinds a charge point meets in the field)."""

    ISO14443 = "iso14443"  # RFID card UID (MIFARE, DESFire), the reader's default
    ISO15693 = "iso15693"  # vicinity card
    KEY_CODE = "key_code"  # PIN pad
    EMAID = "emaid"  # e-mobility account id (ISO 15118 contract)
    MAC_ADDRESS = "mac_address"  # EV MAC address (autocharge)
    CENTRAL = "central"  # issued by the CSMS (remote start)
    LOCAL = "local"  # issued by the station itself
    NO_AUTHORIZATION = "no_authorization"  # free charging


@dataclass(frozen=True)
class IdToken:
    """An identifier of a user or account: its value (a card UID, a PIN, a contract id)
    and how it was presented."""

    value: str
    type: IdTokenType = IdTokenType.ISO14443

    def __str__(self) -> str:
        return self.value


class AuthSource(enum.Enum):
    """Who decided an authorization."""

    LOCAL_LIST = "local_list"  # the local authorization list, no network round trip
    CACHE = "cache"  # the authorization cache
    CSMS = "csms"  # asked the CSMS now
    REMOTE_START = "remote_start"  # the CSMS asked to start for this IdToken
    OFFLINE_UNKNOWN = "offline_unknown"  # offline, unknown token, allowed by policy


class Fault(enum.Enum):
    """Causes that stop an EVSE from offering power (the fault's own cause)."""

    RCD_TRIP = "rcd_trip"  # residual current device tripped
    RCD_SELF_TEST = "rcd_self_test"  # the RCD failed its self-test
    PILOT_E = "pilot_e"  # control pilot shorted (IEC 61851 state E)
    PILOT_F = "pilot_f"  # control pilot at -12 V not driven by us (state F)
    DIODE = "diode"  # EV-side pilot diode missing
    VENTILATION = "ventilation"  # EV asks for state D, no ventilation fitted
    WELDED = "welded"  # contactor stuck closed
    FAILED_CLOSE = "failed_close"  # contactor did not close
    OVERCURRENT = "overcurrent"  # EV drew more than offered (IEC 61851-1 A.5.4)
    OVERTEMP = "overtemp"  # socket / cable over temperature
    METER = "meter"  # energy meter not answering / frozen
    LOCK = "lock"  # cable lock did not engage
    STATION = "station"  # station-wide (supply, enclosure, shared RCD)
    #: The board's interlock inhibited the contactor for a cause the core has no input of
    #: its own for: a dead safety input (liveness) or a pilot co-processor fault.
    INTERLOCK = "interlock"
    #: A card reader cannot read (station-wide, EVSE 0): reported only, never stops power.
    READER = "reader"


class StopCause(enum.Enum):
    """Why a transaction ended, in the session's terms."""

    EV_DISCONNECTED = "ev_disconnected"  # the EV / cable left
    LOCAL_ID_TOKEN = "local_id_token"  # an IdToken (same or same group) presented locally
    REMOTE = "remote"  # the CSMS asked
    DEAUTHORIZED = "deauthorized"  # the authorization was withdrawn during the transaction
    POWER_LOSS = "power_loss"  # the station lost power (found at the next start)
    REBOOT = "reboot"  # the firmware restarts (shutdown of the daemon)
    RESET_HARD = "reset_hard"  # a hard reset was commanded
    RESET_SOFT = "reset_soft"  # a soft reset was commanded
    FAULT = "fault"  # a fault stopped the power path (the event names which)
    UNLOCK_COMMAND = "unlock_command"  # an unlock of the connector was commanded
    LOCAL = "local"  # stopped at the station otherwise (operator, local command)


class ReadingContext(enum.Enum):
    """Why a meter reading was taken."""

    TRANSACTION_BEGIN = "transaction_begin"
    PERIODIC = "periodic"
    TRANSACTION_END = "transaction_end"
    TRIGGER = "trigger"
    #: At a clock-aligned instant (every interval since UTC midnight).
    CLOCK_ALIGNED = "clock_aligned"


# -- events --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionStateChanged:
    """The session machine of an EVSE entered ``state`` (see
    :data:`evse.session_machine.SESSION_STATES`), or its reported fault changed.

    ``fault`` is the cause to report (a fault held, or a degradation such as a failed meter
    while charging continues), ``info`` free text. Adapters derive a protocol status from it.
    """

    evse_id: int
    connector_id: int
    state: str
    fault: Fault | None
    info: str
    timestamp: float


@dataclass(frozen=True)
class EvConnected:
    """An EV was connected (control pilot left state A)."""

    evse_id: int
    connector_id: int
    timestamp: float


@dataclass(frozen=True)
class EvDisconnected:
    """The EV was disconnected (control pilot back to state A)."""

    evse_id: int
    connector_id: int
    timestamp: float


@dataclass(frozen=True)
class Authorized:
    """A user may charge on this EVSE: ``id_token`` accepted by ``source``."""

    evse_id: int
    connector_id: int
    id_token: IdToken
    source: AuthSource
    group_id: str | None
    timestamp: float


@dataclass(frozen=True)
class Deauthorized:
    """An authorization was withdrawn (presented again, expired waiting for the EV, or the
    CSMS found the IdToken invalid); ``why`` in words."""

    evse_id: int
    connector_id: int
    id_token: IdToken
    why: str
    timestamp: float


@dataclass(frozen=True)
class PowerPathClosed:
    """The contactor was commanded closed: mains on the EV."""

    evse_id: int
    connector_id: int
    timestamp: float


@dataclass(frozen=True)
class PowerPathOpened:
    """The contactor was commanded open."""

    evse_id: int
    connector_id: int
    timestamp: float


@dataclass(frozen=True)
class EnergyTransferStarted:
    """Energy flows for the first time in a transaction."""

    evse_id: int
    connector_id: int
    session_id: int
    timestamp: float


@dataclass(frozen=True)
class EnergyTransferSuspendedByEV:
    """The EV stopped asking for energy (state C → B, or left with the transaction kept)."""

    evse_id: int
    connector_id: int
    session_id: int
    timestamp: float


@dataclass(frozen=True)
class EnergyTransferSuspendedByEVSE:
    """The EVSE cannot offer at least 6 A (limit, derating, invalid IdToken)."""

    evse_id: int
    connector_id: int
    session_id: int
    timestamp: float


@dataclass(frozen=True)
class EnergyTransferResumed:
    """Energy flows again after a suspension."""

    evse_id: int
    connector_id: int
    session_id: int
    timestamp: float


@dataclass(frozen=True)
class TransactionStarted:
    """A transaction began. ``session_id`` is the local id (assigned before any CSMS answer);
    ``meter_start_wh`` in Wh."""

    connector_id: int
    session_id: int
    id_token: IdToken
    meter_start_wh: int
    timestamp: float
    reservation_id: int | None = None
    evse_id: int = 0

    @property
    def id_tag(self) -> str:
        """The IdToken's value."""
        return self.id_token.value


@dataclass(frozen=True)
class TransactionStopped:
    """A transaction ended for ``cause`` (``fault`` names the fault when the cause is
    :attr:`StopCause.FAULT`); ``id_token`` is who stopped it, if anyone."""

    connector_id: int
    session_id: int
    id_token: IdToken | None
    meter_stop_wh: int
    timestamp: float
    cause: StopCause
    reading: MeterReading | None = None
    fault: Fault | None = None
    evse_id: int = 0

    @property
    def id_tag(self) -> str | None:
        """The IdToken's value, if any."""
        return None if self.id_token is None else self.id_token.value


@dataclass(frozen=True)
class MeterSample:
    """A meter reading of a connector, with the transaction it belongs to (if any)."""

    connector_id: int
    session_id: int | None
    reading: MeterReading
    context: ReadingContext
    evse_id: int = 0
    #: The EV's state of charge, %, when the EV reports it (None: not known).
    soc_percent: float | None = None


@dataclass(frozen=True)
class FaultRaised:
    """A fault is now held by the EVSE; ``latched``: only a technician can clear it."""

    evse_id: int
    connector_id: int
    fault: Fault
    info: str
    latched: bool
    timestamp: float


@dataclass(frozen=True)
class FaultCleared:
    """A fault is no longer held."""

    evse_id: int
    connector_id: int
    fault: Fault
    timestamp: float


@dataclass(frozen=True)
class AvailabilityChanged:
    """The EVSE was put in (``operative``) or out of service."""

    evse_id: int
    connector_id: int
    operative: bool
    timestamp: float


@dataclass(frozen=True)
class ReservationPlaced:
    """The EVSE is held for ``id_token`` until ``expiry`` (UTC epoch s)."""

    evse_id: int
    connector_id: int
    reservation_id: int
    id_token: IdToken
    expiry: float
    timestamp: float


@dataclass(frozen=True)
class ReservationUsed:
    """The reserving IdToken started a transaction on the EVSE."""

    evse_id: int
    connector_id: int
    reservation_id: int
    timestamp: float


@dataclass(frozen=True)
class ReservationExpired:
    """A reservation ran out (or was cancelled) without being used."""

    evse_id: int
    connector_id: int
    reservation_id: int
    timestamp: float
    #: How it ended: "expired", "cancelled" (by the CSMS) or "withdrawn" (its EVSE became
    #: faulted or unavailable); OCPP 2.0.1 H04 reports Expired / Removed apart.
    ended_by: str = "expired"


@dataclass(frozen=True)
class PowerSupplyChanged:
    """The mains supply was lost (``lost``; the station runs on its hold-up supply, its
    transactions were stopped) or is back."""

    lost: bool
    timestamp: float


SessionEvent = (
    SessionStateChanged | EvConnected | EvDisconnected | Authorized | Deauthorized
    | PowerPathClosed | PowerPathOpened | EnergyTransferStarted | EnergyTransferSuspendedByEV
    | EnergyTransferSuspendedByEVSE | EnergyTransferResumed | TransactionStarted
    | TransactionStopped | MeterSample | FaultRaised | FaultCleared | AvailabilityChanged
    | ReservationPlaced | ReservationUsed | ReservationExpired
    | PowerSupplyChanged
)


@dataclass(frozen=True)
class FirmwareStatusChanged:
    """The firmware update flow (:mod:`evse.firmware_update`) reached ``status``;
    ``request_id`` is the CSMS's id of the request (None for an unsigned 1.6 update)."""

    status: FirmwareStatus
    request_id: int | None
    timestamp: float


@dataclass(frozen=True)
class DiagnosticsStatusChanged:
    """The diagnostics upload (:mod:`evse.diagnostics`) reached ``status``."""

    status: DiagnosticsStatus
    request_id: int | None
    timestamp: float


#: Events of the station as a whole (not of one EVSE's session).
StationEvent = FirmwareStatusChanged | DiagnosticsStatusChanged
#: Every event the core publishes (kept as the subscribers' type name).
DomainEvent = SessionEvent | StationEvent
