"""The core's session vocabulary → OCPP 2.0.1 enums (OCPP 2.0.1 Part 2 §3 "Datatypes"): every
2.0.1 table lives here.

* ConnectorStatusEnumType (StatusNotification, G01) and ChargingStateEnumType
  (TransactionEvent, E01–E15) from the session machine's state;
* TriggerReasonEnumType and ReasonEnumType (stoppedReason) from the neutral stop cause, with
  GroundFault / OvercurrentFault for the faults that have their own reason;
* TxStartPoint / TxStopPoint values (TxCtrlr) ↔ :class:`~evse.tx_policy.TxPoint`;
* IdTokenEnumType ↔ :class:`~evse.domain.IdTokenType`, AuthorizationStatusEnumType,
  ReadingContextEnumType;
* ChargingProfilePurposeEnumType (K01), ReserveNowStatusEnumType (H01) and
  ReservationUpdateStatusEnumType (H04).
* FirmwareStatusEnumType, UploadLogStatusEnumType and the certificate uses (L01, N01, A02–A03).
"""

from __future__ import annotations

from ocpp.v201 import enums
from ocpp.v201.enums import ChargingStateEnumType as ChargingState
from ocpp.v201.enums import ConnectorStatusEnumType as Status
from ocpp.v201.enums import ReasonEnumType as Reason
from ocpp.v201.enums import TriggerReasonEnumType as Trigger

from evse.authorization import AuthorizationStatus
from evse.charging_profiles import ProfilePurpose
from evse.diagnostics import DiagnosticsStatus
from evse.domain import Fault, IdTokenType, ReadingContext, StopCause
from evse.firmware_update import FirmwareStatus
from evse.reservations import ReservationAnswer
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
from evse.tx_policy import TxPoint
from ocpp_client.security.certificate_store import CertificateUse

#: Session machine state → connectorStatus (G01, StatusNotification).
CONNECTOR_STATUS: dict[str, Status] = {
    IDLE: Status.available,
    PENDING: Status.occupied,
    ENERGY_TRANSFER: Status.occupied,
    SUSPENDED_BY_EV: Status.occupied,
    SUSPENDED_BY_EVSE: Status.occupied,
    ENDED: Status.occupied,
    RESERVED: Status.reserved,
    OUT_OF_SERVICE: Status.unavailable,
    FAULTED: Status.faulted,
}

#: Session machine state → chargingState of a TransactionEvent (E01–E15).
CHARGING_STATE: dict[str, ChargingState] = {
    IDLE: ChargingState.idle,
    PENDING: ChargingState.ev_connected,
    ENERGY_TRANSFER: ChargingState.charging,
    SUSPENDED_BY_EV: ChargingState.suspended_ev,
    SUSPENDED_BY_EVSE: ChargingState.suspended_evse,
    ENDED: ChargingState.ev_connected,
    RESERVED: ChargingState.idle,
    OUT_OF_SERVICE: ChargingState.idle,
    FAULTED: ChargingState.idle,
}

#: Neutral stop cause → stoppedReason (ReasonEnumType); :func:`stopped_reason` refines
#: :attr:`StopCause.FAULT`. 2.0.1 knows one reset reason (ImmediateReset): an OnIdle reset
#: never stops a transaction.
STOPPED_REASON: dict[StopCause, Reason] = {
    StopCause.EV_DISCONNECTED: Reason.ev_disconnected,
    StopCause.LOCAL_ID_TOKEN: Reason.local,
    StopCause.REMOTE: Reason.remote,
    StopCause.DEAUTHORIZED: Reason.de_authorized,
    StopCause.POWER_LOSS: Reason.power_loss,
    StopCause.REBOOT: Reason.reboot,
    StopCause.RESET_HARD: Reason.immediate_reset,
    StopCause.RESET_SOFT: Reason.immediate_reset,
    StopCause.FAULT: Reason.other,
    StopCause.UNLOCK_COMMAND: Reason.other,
    StopCause.LOCAL: Reason.local,
}

#: Faults with a reason of their own (the rest: Other).
FAULT_REASON: dict[Fault, Reason] = {
    Fault.RCD_TRIP: Reason.ground_fault,
    Fault.RCD_SELF_TEST: Reason.ground_fault,
    Fault.OVERCURRENT: Reason.overcurrent_fault,
}

#: Neutral stop cause → triggerReason of the TransactionEvent that ends (or stops the energy
#: of) the transaction.
STOP_TRIGGER: dict[StopCause, Trigger] = {
    StopCause.EV_DISCONNECTED: Trigger.ev_communication_lost,
    StopCause.LOCAL_ID_TOKEN: Trigger.stop_authorized,
    StopCause.REMOTE: Trigger.remote_stop,
    StopCause.DEAUTHORIZED: Trigger.deauthorized,
    StopCause.POWER_LOSS: Trigger.abnormal_condition,
    StopCause.REBOOT: Trigger.reset_command,
    StopCause.RESET_HARD: Trigger.reset_command,
    StopCause.RESET_SOFT: Trigger.reset_command,
    StopCause.FAULT: Trigger.abnormal_condition,
    StopCause.UNLOCK_COMMAND: Trigger.unlock_command,
    StopCause.LOCAL: Trigger.stop_authorized,
}

#: TxStartPoint / TxStopPoint values (TxCtrlr, E01) → the core's transaction points.
#: ParkingBayOccupancy and DataSigned have no sensor / signing meter here.
TX_POINT: dict[str, TxPoint] = {
    enums.TxStartStopPointEnumType.ev_connected.value: TxPoint.EV_CONNECTED,
    enums.TxStartStopPointEnumType.authorized.value: TxPoint.AUTHORIZED,
    enums.TxStartStopPointEnumType.power_path_closed.value: TxPoint.POWER_PATH_CLOSED,
    enums.TxStartStopPointEnumType.energy_transfer.value: TxPoint.ENERGY_TRANSFER,
}

#: The triggerReason of a TransactionEvent Started by reaching a start point.
START_TRIGGER: dict[TxPoint, Trigger] = {
    TxPoint.EV_CONNECTED: Trigger.cable_plugged_in,
    TxPoint.AUTHORIZED: Trigger.authorized,
    TxPoint.POWER_PATH_CLOSED: Trigger.charging_state_changed,
    TxPoint.ENERGY_TRANSFER: Trigger.charging_state_changed,
}

#: Core IdToken type → IdTokenEnumType.
ID_TOKEN_TYPE: dict[IdTokenType, enums.IdTokenEnumType] = {
    IdTokenType.ISO14443: enums.IdTokenEnumType.iso14443,
    IdTokenType.ISO15693: enums.IdTokenEnumType.iso15693,
    IdTokenType.KEY_CODE: enums.IdTokenEnumType.key_code,
    IdTokenType.EMAID: enums.IdTokenEnumType.e_maid,
    IdTokenType.MAC_ADDRESS: enums.IdTokenEnumType.mac_address,
    IdTokenType.CENTRAL: enums.IdTokenEnumType.central,
    IdTokenType.LOCAL: enums.IdTokenEnumType.local,
    IdTokenType.NO_AUTHORIZATION: enums.IdTokenEnumType.no_authorization,
}

#: IdTokenEnumType text → core IdToken type.
ID_TOKEN_TYPE_OF: dict[str, IdTokenType] = {v.value: k for k, v in ID_TOKEN_TYPE.items()}

#: AuthorizationStatusEnumType text → core status; the statuses 2.0.1 adds (NoCredit,
#: NotAllowedTypeEVSE, NotAtThisLocation, NotAtThisTime, Unknown) refuse as Invalid does.
AUTH_STATUS: dict[str, AuthorizationStatus] = {
    enums.AuthorizationStatusEnumType.accepted.value: AuthorizationStatus.ACCEPTED,
    enums.AuthorizationStatusEnumType.blocked.value: AuthorizationStatus.BLOCKED,
    enums.AuthorizationStatusEnumType.expired.value: AuthorizationStatus.EXPIRED,
    enums.AuthorizationStatusEnumType.invalid.value: AuthorizationStatus.INVALID,
    enums.AuthorizationStatusEnumType.concurrent_tx.value: AuthorizationStatus.CONCURRENT_TX,
}

#: Why a reading was taken → ReadingContextEnumType (Sample.Clock is the adapter's own:
#: aligned data, J01).
CONTEXT: dict[ReadingContext, enums.ReadingContextEnumType] = {
    ReadingContext.TRANSACTION_BEGIN: enums.ReadingContextEnumType.transaction_begin,
    ReadingContext.PERIODIC: enums.ReadingContextEnumType.sample_periodic,
    ReadingContext.TRANSACTION_END: enums.ReadingContextEnumType.transaction_end,
    ReadingContext.TRIGGER: enums.ReadingContextEnumType.trigger,
}

#: SendLocalList answer of the shared local list (1.6 UpdateStatus words) → 2.0.1
#: SendLocalListStatusEnumType (2.0.1 has no NotSupported: Failed).
SEND_LOCAL_LIST_STATUS: dict[str, enums.SendLocalListStatusEnumType] = {
    "Accepted": enums.SendLocalListStatusEnumType.accepted,
    "Failed": enums.SendLocalListStatusEnumType.failed,
    "NotSupported": enums.SendLocalListStatusEnumType.failed,
    "VersionMismatch": enums.SendLocalListStatusEnumType.version_mismatch,
}


def tx_points(values: list[str]) -> frozenset[TxPoint]:
    """TxStartPoint / TxStopPoint list → core points (values without a point are ignored)."""
    return frozenset(TX_POINT[v] for v in values if v in TX_POINT)


def stopped_reason(cause: StopCause, fault: Fault | None) -> Reason:
    """stoppedReason of TransactionEvent Ended (E06, E07)."""
    if cause is StopCause.FAULT and fault in FAULT_REASON:
        return FAULT_REASON[fault]
    return STOPPED_REASON[cause]


# -- Smart Charging (K01–K10) and Reservation (H01–H04) ----------------------------------

#: ChargingProfilePurposeEnumType (2.0.1) → the core's purpose. ChargingStationExternalConstraints
#: is set by the station's own external limits, never by the CSMS (K01.FR.22): not here.
PROFILE_PURPOSE: dict[str, ProfilePurpose] = {
    enums.ChargingProfilePurposeEnumType.charging_station_max_profile.value:
        ProfilePurpose.STATION_MAXIMUM,
    enums.ChargingProfilePurposeEnumType.tx_default_profile.value: ProfilePurpose.TX_DEFAULT,
    enums.ChargingProfilePurposeEnumType.tx_profile.value: ProfilePurpose.TX,
}
PROFILE_PURPOSE_NAME: dict[ProfilePurpose, str] = {v: k for k, v in PROFILE_PURPOSE.items()}

#: The same purposes as OCPP 1.6 spells them (ChargingProfilePurposeType), for the shared
#: profile conversion in :mod:`ocpp_client.v16.smart_charging`.
PURPOSE_16: dict[str, str] = {
    enums.ChargingProfilePurposeEnumType.charging_station_max_profile.value:
        "ChargePointMaxProfile",
    enums.ChargingProfilePurposeEnumType.tx_default_profile.value: "TxDefaultProfile",
    enums.ChargingProfilePurposeEnumType.tx_profile.value: "TxProfile",
}

#: The reservation engine's answer → ReserveNowStatusEnumType (H01).
RESERVE_NOW_STATUS: dict[ReservationAnswer, enums.ReserveNowStatusEnumType] = {
    ReservationAnswer.ACCEPTED: enums.ReserveNowStatusEnumType.accepted,
    ReservationAnswer.OCCUPIED: enums.ReserveNowStatusEnumType.occupied,
    ReservationAnswer.FAULTED: enums.ReserveNowStatusEnumType.faulted,
    ReservationAnswer.UNAVAILABLE: enums.ReserveNowStatusEnumType.unavailable,
    ReservationAnswer.REJECTED: enums.ReserveNowStatusEnumType.rejected,
}

#: How a reservation ended without a transaction (ReservationEventKind value) →
#: ReservationUpdateStatusEnumType (H04). A CancelReservation of the CSMS is answered, not
#: reported; a used reservation goes into the TransactionEvent.
RESERVATION_UPDATE_STATUS: dict[str, enums.ReservationUpdateStatusEnumType] = {
    "expired": enums.ReservationUpdateStatusEnumType.expired,
    "withdrawn": enums.ReservationUpdateStatusEnumType.removed,
}

# --- Firmware (L01–L03), Diagnostics (N01), Security (A02–A04) -------------------------------

#: Neutral firmware status → FirmwareStatusEnumType (FirmwareStatusNotification, L01): every
#: neutral status has a 2.0.1 word.
FIRMWARE_STATUS: dict[FirmwareStatus, enums.FirmwareStatusEnumType] = {
    FirmwareStatus.IDLE: enums.FirmwareStatusEnumType.idle,
    FirmwareStatus.DOWNLOAD_SCHEDULED: enums.FirmwareStatusEnumType.download_scheduled,
    FirmwareStatus.DOWNLOADING: enums.FirmwareStatusEnumType.downloading,
    FirmwareStatus.DOWNLOADED: enums.FirmwareStatusEnumType.downloaded,
    FirmwareStatus.DOWNLOAD_FAILED: enums.FirmwareStatusEnumType.download_failed,
    FirmwareStatus.SIGNATURE_VERIFIED: enums.FirmwareStatusEnumType.signature_verified,
    FirmwareStatus.INVALID_SIGNATURE: enums.FirmwareStatusEnumType.invalid_signature,
    FirmwareStatus.INSTALLING: enums.FirmwareStatusEnumType.installing,
    FirmwareStatus.INSTALL_REBOOTING: enums.FirmwareStatusEnumType.install_rebooting,
    FirmwareStatus.INSTALLED: enums.FirmwareStatusEnumType.installed,
    FirmwareStatus.INSTALLATION_FAILED: enums.FirmwareStatusEnumType.installation_failed,
}

#: Neutral diagnostics upload status → UploadLogStatusEnumType (LogStatusNotification, N01).
LOG_STATUS: dict[DiagnosticsStatus, enums.UploadLogStatusEnumType] = {
    DiagnosticsStatus.IDLE: enums.UploadLogStatusEnumType.idle,
    DiagnosticsStatus.UPLOADING: enums.UploadLogStatusEnumType.uploading,
    DiagnosticsStatus.UPLOADED: enums.UploadLogStatusEnumType.uploaded,
    DiagnosticsStatus.UPLOAD_FAILED: enums.UploadLogStatusEnumType.upload_failure,
}

#: InstallCertificateUseEnumType / GetCertificateIdUseEnumType → the certificate store's
#: use. V2GRootCertificate, MORootCertificate and V2GCertificateChain (ISO 15118) have no
#: store here: InstallCertificate Rejected, GetInstalledCertificateIds NotFound.
CERTIFICATE_USE: dict[str, CertificateUse] = {
    enums.InstallCertificateUseEnumType.csms_root_certificate.value: CertificateUse.CSMS_ROOT,
    enums.InstallCertificateUseEnumType.manufacturer_root_certificate.value:
        CertificateUse.MANUFACTURER_ROOT,
}

#: The store's use → GetCertificateIdUseEnumType (certificateHashDataChain.certificateType).
CERTIFICATE_TYPE: dict[CertificateUse, str] = {v: k for k, v in CERTIFICATE_USE.items()}
