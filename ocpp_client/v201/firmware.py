"""OCPP 2.0.1 Firmware management (L01–L03) and Diagnostics (N01) on the protocol-neutral
engines (:mod:`evse.firmware_update`, :mod:`evse.diagnostics`), as
:mod:`ocpp_client.v16.firmware` maps them to 1.6:

- UpdateFirmwareRequest (requestId, firmware{location, retrieveDateTime, signingCertificate?,
  signature?}) → :class:`FirmwareUpdateRequest`; the answer is decided at once (Accepted,
  AcceptedCanceled when it replaces a running update, Rejected while an image installs or
  for an unusable location, InvalidCertificate when the signingCertificate does not chain
  to a ManufacturerRootCertificate: L01.FR.02) and the update starts after it;
- the engine's statuses → FirmwareStatusNotification with the requestId (L01.FR.20), queued
  durably (Installed after the install reboot reaches the CSMS once the link is up);
- GetLogRequest DiagnosticsLog → the diagnostics archive uploaded with requestId;
  LogStatusNotification (Uploading, Uploaded, UploadFailure) from its statuses; SecurityLog
  goes to the security port (:class:`~ocpp_client.v201.security.Security201`).
"""

from __future__ import annotations

import logging
from typing import Any

import ocpp_client.v201.mapping as mapping
from evse.diagnostics import DiagnosticsStatus
from evse.domain import DiagnosticsStatusChanged, DomainEvent, FirmwareStatusChanged
from evse.file_transfer import TransferError, check_url
from evse.firmware_update import FirmwareStatus, FirmwareUpdateRequest
from evse.station import Station
from ocpp_client.v16.firmware import DEFAULT_RETRIES, DEFAULT_RETRY_INTERVAL_S
from ocpp_client.v16.meter_values import parse_timestamp
from ocpp_client.v201.security import Security201

log = logging.getLogger(__name__)


def firmware_request(request_id: int, firmware: dict[str, Any], retries: int | None,
                     retry_interval: int | None) -> FirmwareUpdateRequest:
    """UpdateFirmwareRequest fields (snake_case) → the engine's request (retries /
    retryInterval left out: the station's defaults, as for 1.6).

    Raises:
        ValueError: retrieveDateTime is not an ISO 8601 date-time.
    """
    return FirmwareUpdateRequest(
        location=str(firmware["location"]),
        retrieve_at_s=parse_timestamp(str(firmware["retrieve_date_time"])),
        retries=DEFAULT_RETRIES if retries is None else max(0, retries),
        retry_interval_s=float(DEFAULT_RETRY_INTERVAL_S if retry_interval is None
                               else max(0, retry_interval)),
        request_id=request_id,
        signature=firmware.get("signature"),
        signing_certificate=firmware.get("signing_certificate"),
    )


class Firmware201:
    """The port of the 2.0.1 handlers for UpdateFirmware and GetLog.

    Args:
        station: the core (its ``firmware`` and ``diagnostics`` engines, set by the daemon;
            None: every request is Rejected).
        security: the security port (signing certificate check, SecurityLog, the durable
            queue).
    """

    def __init__(self, station: Station, security: Security201) -> None:
        self.station = station
        self.security = security
        self._accepted: FirmwareUpdateRequest | None = None

    # -- UpdateFirmware (L01–L03) ----------------------------------------------------------
    def update_firmware(self, request_id: int, firmware: dict[str, Any],
                        retries: int | None, retry_interval: int | None) -> str:
        """UpdateFirmwareResponse status (UpdateFirmwareStatusEnumType)."""
        self._accepted = None
        engine = self.station.firmware
        if engine is None:
            return "Rejected"
        try:
            request = firmware_request(request_id, firmware, retries, retry_interval)
            check_url(request.location)
        except (TransferError, ValueError, KeyError) as exc:
            log.warning("UpdateFirmware %d rejected: %s", request_id, exc)
            return "Rejected"
        if engine.busy and engine.status in (FirmwareStatus.INSTALLING,
                                             FirmwareStatus.INSTALL_REBOOTING):
            log.warning("UpdateFirmware %d rejected: an image is being installed", request_id)
            return "Rejected"
        if (request.signing_certificate is not None
                and not self.security.signing_certificate_ok(request.signing_certificate)):
            return "InvalidCertificate"
        self._accepted = request
        return "AcceptedCanceled" if engine.busy else "Accepted"

    def after_update_firmware(self) -> None:
        """Start the accepted update after the answer (its first status never precedes
        it)."""
        request, self._accepted = self._accepted, None
        engine = self.station.firmware
        if request is None or engine is None:
            return
        try:
            engine.update(request)
        except Exception as exc:  # an install began between answer and start
            log.warning("UpdateFirmware %s not started: %s", request.request_id, exc)

    # -- GetLog DiagnosticsLog (N01) -------------------------------------------------------
    def get_log(self, log_type: str, request_id: int, log_parameters: dict[str, Any],
                retries: int | None, retry_interval: int | None) -> tuple[str, str | None]:
        """GetLogResponse (status, filename): SecurityLog to the security port,
        DiagnosticsLog to the diagnostics engine (AcceptedCanceled when it replaces a
        running upload)."""
        if log_type == "SecurityLog":
            return self.security.get_security_log(request_id, log_parameters, retries,
                                                  retry_interval)
        engine = self.station.diagnostics
        if engine is None:
            return "Rejected", None
        running = engine.status is DiagnosticsStatus.UPLOADING
        try:
            oldest, latest = (log_parameters.get("oldest_timestamp"),
                              log_parameters.get("latest_timestamp"))
            name = engine.request(
                str(log_parameters["remote_location"]),
                None if oldest is None else parse_timestamp(oldest),
                None if latest is None else parse_timestamp(latest),
                DEFAULT_RETRIES if retries is None else max(0, retries),
                float(DEFAULT_RETRY_INTERVAL_S if retry_interval is None
                      else max(0, retry_interval)),
                request_id=request_id)
        except (TransferError, ValueError) as exc:
            log.warning("GetLog %d rejected: %s", request_id, exc)
            return "Rejected", None
        return ("AcceptedCanceled" if running else "Accepted"), name

    # -- TriggerMessage (F06) -----------------------------------------------------------
    async def triggered_firmware_status(self) -> None:
        """FirmwareStatusNotification of the current status (Idle when no update runs,
        L01.FR.25), with the running update's requestId."""
        engine = self.station.firmware
        status = FirmwareStatus.IDLE if engine is None else engine.status
        payload: dict[str, Any] = {"status": mapping.FIRMWARE_STATUS[status].value}
        request_id = None if engine is None else engine.request_id
        if status is not FirmwareStatus.IDLE and request_id is not None:
            payload["request_id"] = request_id
        self.security.queue("FirmwareStatusNotification", payload)

    async def triggered_log_status(self) -> None:
        """LogStatusNotification: Uploading (with its requestId) while a DiagnosticsLog
        upload runs, else Idle (N01.FR.18)."""
        engine = self.station.diagnostics
        if engine is not None and engine.status is DiagnosticsStatus.UPLOADING:
            self.security.queue("LogStatusNotification", {"status": "Uploading"})
        else:
            self.security.queue("LogStatusNotification", {"status": "Idle"})

    # -- the Station's subscriber ---------------------------------------------------------
    def on_event(self, event: DomainEvent) -> None:
        """Engine statuses → FirmwareStatusNotification / LogStatusNotification, queued
        (Idle is only sent when triggered)."""
        if isinstance(event, FirmwareStatusChanged) and event.status is not FirmwareStatus.IDLE:
            payload: dict[str, Any] = {"status": mapping.FIRMWARE_STATUS[event.status].value}
            if event.request_id is not None:
                payload["request_id"] = event.request_id
            self.security.queue("FirmwareStatusNotification", payload)
            if event.status is FirmwareStatus.INSTALLED and event.request_id is not None:
                self.security.record_firmware_updated(event.request_id)
        elif (isinstance(event, DiagnosticsStatusChanged) and event.request_id is not None
              and event.status is not DiagnosticsStatus.IDLE):
            self.security.queue("LogStatusNotification",
                                {"status": mapping.LOG_STATUS[event.status].value,
                                 "request_id": event.request_id})
