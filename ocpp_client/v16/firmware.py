"""OCPP 1.6 Firmware Management profile ↔ the protocol-neutral engines
(:mod:`evse.firmware_update`, :mod:`evse.diagnostics`).

- UpdateFirmware.req (§5.19) → :class:`FirmwareUpdateRequest` and
  ``FirmwareUpdate.update``; FirmwareStatusNotification.req (§4.5) from the engine's
  statuses;
- GetDiagnostics.req (§5.9) → ``Diagnostics.request``; GetDiagnostics.conf with the file
  name; DiagnosticsStatusNotification.req (§4.4);
- the TriggerMessage answers (§5.17) for both notifications: the current status, Idle when
  nothing runs (§4.4 / §4.5: Idle only in a triggered notification);
- SignedUpdateFirmware.req → the engine's request and the SignedUpdateFirmware.conf
  decision; the SignedFirmwareStatusNotification statuses of the 1.6 security whitepaper;
- the ``SupportedFileTransferProtocols`` configuration value (§9.1).

Conversion only: the handlers (``@on`` / ``@after``) call these functions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ocpp.v16 import call, call_result, enums

from evse.diagnostics import Diagnostics, DiagnosticsStatus
from evse.file_transfer import SUPPORTED_SCHEMES, TransferError, check_url
from evse.firmware_update import (
    FirmwareStatus,
    FirmwareUpdate,
    FirmwareUpdateBusy,
    FirmwareUpdateRequest,
)
from ocpp_client.configuration import KeyDef
from ocpp_client.v16.meter_values import parse_timestamp

log = logging.getLogger(__name__)

#: Download / upload attempts after the first when the CSMS leaves ``retries`` out (§5.19:
#: "left to Charge Point to decide").
DEFAULT_RETRIES = 3
#: Wait between attempts when the CSMS leaves ``retryInterval`` out, s.
DEFAULT_RETRY_INTERVAL_S = 60

#: SupportedFileTransferProtocols (OCPP 1.6 §9.1.x, CSL of FTP, FTPS, HTTP, HTTPS, SOAP).
SUPPORTED_FILE_TRANSFER_PROTOCOLS = ",".join(s.upper() for s in sorted(SUPPORTED_SCHEMES))

#: Configuration keys this profile adds (for ``configuration.KEYS``).
KEY_DEFS: tuple[KeyDef, ...] = (
    KeyDef("SupportedFileTransferProtocols", str, SUPPORTED_FILE_TRANSFER_PROTOCOLS,
           readonly=True),
)

#: Neutral status → FirmwareStatusNotification.req status (OCPP 1.6 §7.26). Statuses 1.6
#: has no word for are not sent.
FIRMWARE_STATUS: dict[FirmwareStatus, enums.FirmwareStatus] = {
    FirmwareStatus.IDLE: enums.FirmwareStatus.idle,
    FirmwareStatus.DOWNLOADING: enums.FirmwareStatus.downloading,
    FirmwareStatus.DOWNLOADED: enums.FirmwareStatus.downloaded,
    FirmwareStatus.DOWNLOAD_FAILED: enums.FirmwareStatus.download_failed,
    FirmwareStatus.INSTALLING: enums.FirmwareStatus.installing,
    FirmwareStatus.INSTALLED: enums.FirmwareStatus.installed,
    FirmwareStatus.INSTALLATION_FAILED: enums.FirmwareStatus.installation_failed,
    # the image failed its check: for an unsigned 1.6 update that is a failed install
    FirmwareStatus.INVALID_SIGNATURE: enums.FirmwareStatus.installation_failed,
}

#: Neutral status → SignedFirmwareStatusNotification.req status (1.6 security whitepaper,
#: FirmwareStatusEnumType): every neutral status has a word there.
SIGNED_FIRMWARE_STATUS: dict[FirmwareStatus, enums.FirmwareStatus] = {
    FirmwareStatus.IDLE: enums.FirmwareStatus.idle,
    FirmwareStatus.DOWNLOAD_SCHEDULED: enums.FirmwareStatus.download_scheduled,
    FirmwareStatus.DOWNLOADING: enums.FirmwareStatus.downloading,
    FirmwareStatus.DOWNLOADED: enums.FirmwareStatus.downloaded,
    FirmwareStatus.DOWNLOAD_FAILED: enums.FirmwareStatus.download_failed,
    FirmwareStatus.SIGNATURE_VERIFIED: enums.FirmwareStatus.signature_verified,
    FirmwareStatus.INVALID_SIGNATURE: enums.FirmwareStatus.invalid_signature,
    FirmwareStatus.INSTALLING: enums.FirmwareStatus.installing,
    FirmwareStatus.INSTALL_REBOOTING: enums.FirmwareStatus.install_rebooting,
    FirmwareStatus.INSTALLED: enums.FirmwareStatus.installed,
    FirmwareStatus.INSTALLATION_FAILED: enums.FirmwareStatus.installation_failed,
}

#: What a triggered FirmwareStatusNotification says while the engine is in a status 1.6
#: has no word for.
_TRIGGER_STATUS: dict[FirmwareStatus, enums.FirmwareStatus] = {
    **FIRMWARE_STATUS,
    FirmwareStatus.DOWNLOAD_SCHEDULED: enums.FirmwareStatus.idle,
    FirmwareStatus.SIGNATURE_VERIFIED: enums.FirmwareStatus.downloaded,
    FirmwareStatus.INSTALL_REBOOTING: enums.FirmwareStatus.installing,
}

DIAGNOSTICS_STATUS: dict[DiagnosticsStatus, enums.DiagnosticsStatus] = {
    DiagnosticsStatus.IDLE: enums.DiagnosticsStatus.idle,
    DiagnosticsStatus.UPLOADING: enums.DiagnosticsStatus.uploading,
    DiagnosticsStatus.UPLOADED: enums.DiagnosticsStatus.uploaded,
    DiagnosticsStatus.UPLOAD_FAILED: enums.DiagnosticsStatus.upload_failed,
}


# --- firmware ------------------------------------------------------------------------------


def firmware_update_request(location: str, retrieve_date: str, retries: int | None = None,
                            retry_interval: int | None = None) -> FirmwareUpdateRequest:
    """UpdateFirmware.req fields (OCPP 1.6 §5.19, §6.xx) → the engine's request.

    Raises:
        ValueError: retrieveDate is not an ISO 8601 date-time.
    """
    return FirmwareUpdateRequest(
        location=location,
        retrieve_at_s=parse_timestamp(retrieve_date),
        retries=DEFAULT_RETRIES if retries is None else max(0, retries),
        retry_interval_s=float(DEFAULT_RETRY_INTERVAL_S if retry_interval is None
                               else max(0, retry_interval)),
    )


def update_firmware(engine: FirmwareUpdate, location: str, retrieve_date: str,
                    retries: int | None = None, retry_interval: int | None = None
                    ) -> call.FirmwareStatusNotification | None:
    """Handle UpdateFirmware.req: start the update. UpdateFirmware.conf is empty whatever
    happens; when the request cannot start (unsupported scheme, bad date) this returns the
    FirmwareStatusNotification(DownloadFailed) to send *after* the response. While an image
    is being installed the request is ignored (1.6 has no way to refuse it); the running
    update reports on."""
    try:
        engine.update(firmware_update_request(location, retrieve_date, retries,
                                              retry_interval))
    except FirmwareUpdateBusy as exc:
        log.warning("UpdateFirmware ignored: %s", exc)
        return None
    except (TransferError, ValueError) as exc:
        log.warning("UpdateFirmware refused: %s", exc)
        return call.FirmwareStatusNotification(enums.FirmwareStatus.download_failed)
    return None


def firmware_status_notification(status: FirmwareStatus
                                 ) -> call.FirmwareStatusNotification | None:
    """The FirmwareStatusNotification.req for an engine status (§4.5), or None for a status
    that 1.6 does not report (DownloadScheduled, SignatureVerified, InstallRebooting) and
    for Idle (only sent when triggered)."""
    if status is FirmwareStatus.IDLE:
        return None
    mapped = FIRMWARE_STATUS.get(status)
    return None if mapped is None else call.FirmwareStatusNotification(mapped)


def signed_firmware_status_notification(status: FirmwareStatus, request_id: int
                                        ) -> call.SignedFirmwareStatusNotification:
    """SignedFirmwareStatusNotification.req (1.6 security whitepaper) for a status."""
    return call.SignedFirmwareStatusNotification(SIGNED_FIRMWARE_STATUS[status], request_id)


def triggered_firmware_status_notification(status: FirmwareStatus
                                           ) -> call.FirmwareStatusNotification:
    """TriggerMessage(FirmwareStatusNotification) (§5.17): the current status, Idle when no
    update runs."""
    return call.FirmwareStatusNotification(_TRIGGER_STATUS[status])


def signed_firmware_request(request_id: int, firmware: dict[str, Any],
                            retries: int | None = None, retry_interval: int | None = None
                            ) -> FirmwareUpdateRequest:
    """SignedUpdateFirmware.req fields (1.6 security whitepaper ed. 3, "Signed firmware
    update"; ``firmware`` is FirmwareType with snake_case keys) → the engine's request.
    ``installDateTime`` is not honoured: the image is installed once it is verified and no
    transaction runs.

    Raises:
        ValueError: retrieveDateTime is not an ISO 8601 date-time.
        KeyError: a required FirmwareType field is missing.
    """
    return FirmwareUpdateRequest(
        location=str(firmware["location"]),
        retrieve_at_s=parse_timestamp(str(firmware["retrieve_date_time"])),
        retries=DEFAULT_RETRIES if retries is None else max(0, retries),
        retry_interval_s=float(DEFAULT_RETRY_INTERVAL_S if retry_interval is None
                               else max(0, retry_interval)),
        request_id=request_id,
        signature=str(firmware["signature"]),
        signing_certificate=str(firmware["signing_certificate"]),
    )


def signed_update_answer(engine: FirmwareUpdate | None, request: FirmwareUpdateRequest,
                         certificate_ok: bool) -> enums.UpdateFirmwareStatus:
    """SignedUpdateFirmware.conf status (whitepaper ed. 3): InvalidCertificate when the
    signing certificate does not chain to a ManufacturerRootCertificate (nothing is
    downloaded), Rejected when no engine runs, the location cannot be used or an image is
    being installed, AcceptedCanceled when a running update will be replaced, else Accepted.
    Decides only: :meth:`FirmwareUpdate.update` runs after the answer is sent."""
    if not certificate_ok:
        return enums.UpdateFirmwareStatus.invalid_certificate
    if engine is None:
        return enums.UpdateFirmwareStatus.rejected
    try:
        check_url(request.location)
    except TransferError as exc:
        log.warning("SignedUpdateFirmware %s rejected: %s", request.request_id, exc)
        return enums.UpdateFirmwareStatus.rejected
    if engine.busy and engine.status in (FirmwareStatus.INSTALLING,
                                         FirmwareStatus.INSTALL_REBOOTING):
        log.warning("SignedUpdateFirmware %s rejected: an image is being installed",
                    request.request_id)
        return enums.UpdateFirmwareStatus.rejected
    return (enums.UpdateFirmwareStatus.accepted_canceled if engine.busy
            else enums.UpdateFirmwareStatus.accepted)


def triggered_signed_firmware_status_notification(
        status: FirmwareStatus, request_id: int | None
        ) -> call.SignedFirmwareStatusNotification:
    """ExtendedTriggerMessage(FirmwareStatusNotification) (whitepaper ed. 3): the current
    status of a signed update with its requestId; Idle (no requestId) when none runs. A
    plain UpdateFirmware in progress is reported with the same words, without requestId."""
    if status is FirmwareStatus.IDLE or request_id is None:
        mapped = (enums.FirmwareStatus.idle if status is FirmwareStatus.IDLE
                  else SIGNED_FIRMWARE_STATUS[status])
        return call.SignedFirmwareStatusNotification(mapped, None)
    return call.SignedFirmwareStatusNotification(SIGNED_FIRMWARE_STATUS[status], request_id)


# --- diagnostics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DiagnosticsRequest:
    """GetDiagnostics.req fields in the engine's units."""

    location: str
    start_s: float | None
    stop_s: float | None
    retries: int
    retry_interval_s: float


def diagnostics_request(location: str, retries: int | None = None,
                        retry_interval: int | None = None, start_time: str | None = None,
                        stop_time: str | None = None) -> DiagnosticsRequest:
    """GetDiagnostics.req fields (OCPP 1.6 §5.9) → engine arguments.

    Raises:
        ValueError: startTime / stopTime is not an ISO 8601 date-time.
    """
    return DiagnosticsRequest(
        location=location,
        start_s=None if start_time is None else parse_timestamp(start_time),
        stop_s=None if stop_time is None else parse_timestamp(stop_time),
        retries=DEFAULT_RETRIES if retries is None else max(0, retries),
        retry_interval_s=float(DEFAULT_RETRY_INTERVAL_S if retry_interval is None
                               else max(0, retry_interval)),
    )


def get_diagnostics(engine: Diagnostics, location: str, retries: int | None = None,
                    retry_interval: int | None = None, start_time: str | None = None,
                    stop_time: str | None = None) -> call_result.GetDiagnostics:
    """Handle GetDiagnostics.req: start the upload, answer with the file name; without a
    file name when nothing can be uploaded (unsupported location, bad times; §5.9)."""
    try:
        args = diagnostics_request(location, retries, retry_interval, start_time, stop_time)
        name = engine.request(args.location, args.start_s, args.stop_s, args.retries,
                              args.retry_interval_s)
    except (TransferError, ValueError) as exc:
        log.warning("GetDiagnostics refused: %s", exc)
        return call_result.GetDiagnostics()
    return call_result.GetDiagnostics(file_name=name)


def diagnostics_status_notification(status: DiagnosticsStatus
                                    ) -> call.DiagnosticsStatusNotification | None:
    """The DiagnosticsStatusNotification.req for an engine status (§4.4); None for Idle
    (only sent when triggered)."""
    if status is DiagnosticsStatus.IDLE:
        return None
    return call.DiagnosticsStatusNotification(DIAGNOSTICS_STATUS[status])


def triggered_diagnostics_status_notification(status: DiagnosticsStatus
                                              ) -> call.DiagnosticsStatusNotification:
    """TriggerMessage(DiagnosticsStatusNotification) (§5.17): Uploading while an upload
    runs, else Idle."""
    return call.DiagnosticsStatusNotification(
        enums.DiagnosticsStatus.uploading if status is DiagnosticsStatus.UPLOADING
        else enums.DiagnosticsStatus.idle)
