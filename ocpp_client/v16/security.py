"""OCPP 1.6J security extensions (the "Improved security for OCPP 1.6-J" whitepaper,
edition 3) over the protocol-neutral :mod:`ocpp_client.security` package: the port the 1.6
handlers (:mod:`.charge_point`) are given for SecurityProfile / AuthorizationKey changes,
CertificateSigned, InstallCertificate, GetInstalledCertificateIds, DeleteCertificate,
ExtendedTriggerMessage and GetLog, and the CALLs the station makes for them
(SignCertificate, SecurityEventNotification, LogStatusNotification,
SignedFirmwareStatusNotification).

As in :mod:`.commands`, each CSMS command is a *decision* returned at once (the
CALLRESULT) and an *action* started once the CALLRESULT is out (a reconnect with new
credentials, a SignCertificate, an upload).

SignedUpdateFirmware runs on the station's firmware engine (:mod:`evse.firmware_update`,
built by the daemon): the signing certificate is checked at request time
(InvalidCertificate, nothing downloaded), :meth:`Security16.verify_firmware` is the engine's
``verify`` port (the daemon passes it in through the adapter), and the engine's statuses of
a signed update go out as SignedFirmwareStatusNotification (:mod:`.events`); docs/security.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ocpp.v16 import call
from ocpp.v16.enums import (
    CertificateSignedStatus,
    CertificateStatus,
    DeleteCertificateStatus,
    GetInstalledCertificateStatus,
    TriggerMessageStatus,
    UpdateFirmwareStatus,
    UploadLogStatus,
)

from evse import __version__
from evse.clock import Clock
from evse.config import Config
from evse.file_transfer import TransferError, check_url
from evse.firmware_update import FirmwareStatus, FirmwareUpdateBusy, FirmwareUpdateRequest
from ocpp_client.configuration import ConfigurationStore
from ocpp_client.link import LINK_ERRORS
from ocpp_client.queue import Outbox
from ocpp_client.secure_link import SecureConnect
from ocpp_client.security.certificate_hash import CertificateHashData
from ocpp_client.security.certificate_store import CertificateUse as StoreUse
from ocpp_client.security.events import SecurityEventType
from ocpp_client.security.firmware_signature import verify_signing_certificate
from ocpp_client.security.link_security import LinkSecurity
from ocpp_client.security.profiles import SecurityProfile, SecurityProfileSwitch
from ocpp_client.security.security_log import SecurityLogEntry
from ocpp_client.security_events import SecurityEvents
from ocpp_client.security_services import (
    SecurityStores,
    security_log_file_name,
    security_paths,
    upload_security_log,
    verify_signed_firmware,
)
from ocpp_client.v16 import firmware as v16_firmware
from ocpp_client.v16.commands import StationCommands16
from ocpp_client.v16.meter_values import iso_timestamp, parse_timestamp

logger = logging.getLogger(__name__)

#: ExtendedTriggerMessage requestedMessage values handled like TriggerMessage.
_PLAIN_TRIGGERS = frozenset({"BootNotification", "Heartbeat", "MeterValues",
                             "StatusNotification"})
#: A clock correction larger than this is a SettingSystemTime security event, s.
LARGE_CLOCK_CORRECTION_S = 60.0


def security_event_call(entry: SecurityLogEntry) -> tuple[str, dict[str, Any]]:
    """The outbox row of a security event: 1.6 SecurityEventNotification (snake_case)."""
    payload: dict[str, Any] = {"type": entry.type.v16_name,
                               "timestamp": iso_timestamp(entry.timestamp)}
    if entry.tech_info:
        payload["tech_info"] = entry.tech_info
    return "SecurityEventNotification", payload


class Security16:
    """The 1.6 security port (see the module docstring).

    Args:
        config: the loaded configuration (``[security]``, state directory, station id).
        url: the CSMS endpoint, station id included.
        configuration: the 1.6 keys.
        db: the state database.
        outbox: the durable outbox (security events).
        clock: the station clock.
        commands: the station-command port (plain triggers).
        current_cp: the ChargePoint of the current connection (None while down).
        reconnect: close the link so new credentials take effect.
    """

    def __init__(self, config: Config, url: str, configuration: ConfigurationStore,
                 db: sqlite3.Connection, outbox: Outbox, clock: Clock,
                 commands: StationCommands16, current_cp: Callable[[], Any],
                 reconnect: Callable[[], None]) -> None:
        self.station_id = config.station_id
        self.url = url
        self.configuration = configuration
        self.commands = commands
        self._current_cp = current_cp
        self._reconnect = reconnect
        self._state_dir = config.state_dir
        stores = SecurityStores.open(
            config, max_length=configuration.get_int("CertificateStoreMaxLength"),
            additional_root_check=configuration.get_bool("AdditionalRootCertificateCheck"))
        self.keys = stores.keys
        self.certificates = stores.certificates
        self.charge_point_certificate = stores.charge_point_certificate
        self.switch = SecurityProfileSwitch(configuration.get_int("SecurityProfile"))
        self.link_security = LinkSecurity(self.station_id, self.switch, self.keys,
                                          self.certificates, self.charge_point_certificate)
        self.events = SecurityEvents(db, outbox, clock, security_event_call)
        self._use_system_store = config.security.use_system_trust_store
        self.connect = SecureConnect(self.link_security, self.events, self._store_profile,
                                     system_store=self._system_store)
        configuration.handle_change("SecurityProfile", self._change_profile)
        configuration.handle_change("AuthorizationKey", self._change_key)
        self._reconnect_after_answer = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._upload: asyncio.Task[Any] | None = None
        self._log_status: tuple[UploadLogStatus, int | None] = (UploadLogStatus.idle, None)
        #: The SignedUpdateFirmware accepted by the last answer, started after it.
        self._signed_update: FirmwareUpdateRequest | None = None

    def _system_store(self, profile: SecurityProfile) -> bool:
        # Profile 0 over wss:// without CSMS roots keeps the TLS default (system roots).
        return self._use_system_store or (
            profile is SecurityProfile.NONE
            and not self.certificates.roots(StoreUse.CSMS_ROOT))

    def _store_profile(self, profile: SecurityProfile) -> None:
        self.configuration.store("SecurityProfile", str(int(profile)))

    # -- events -----------------------------------------------------------------------
    def record(self, event: SecurityEventType, tech_info: str | None = None) -> None:
        """Record ``event`` (log; queue when due); a full or broken disk is logged, not
        raised (the caller's command goes on)."""
        try:
            self.events.record(event, tech_info)
        except sqlite3.Error as exc:
            logger.error("security event %s not stored: %s", event.value, exc)

    def clock_synchronized(self, correction_s: float) -> None:
        """A CSMS time moved the clock by ``correction_s``: SettingSystemTime when large."""
        if abs(correction_s) > LARGE_CLOCK_CORRECTION_S:
            self.record(SecurityEventType.SETTING_SYSTEM_TIME,
                        f"clock set from the Central System time by {correction_s:+.0f} s")

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel_all(self) -> None:
        """Cancel running uploads and CALLs of this port."""
        for task in list(self._tasks):
            task.cancel()

    # -- ChangeConfiguration SecurityProfile / AuthorizationKey ------------------------
    def _change_profile(self, text: str) -> str:
        """Raise only; a raise is Rejected when its key, root or certificate is missing,
        else Accepted and tried at a reconnect right after the answer."""
        try:
            profile = int(text.strip())
            SecurityProfile(profile)
        except ValueError:
            return "Rejected"
        if profile < self.switch.active:
            logger.warning("ChangeConfiguration SecurityProfile %d rejected: it may only be"
                        " raised (now %d)", profile, int(self.switch.active))
            return "Rejected"
        if profile == self.switch.active:
            return "Accepted"
        self.link_security.use_system_store = self._system_store(SecurityProfile(profile))
        missing = self.link_security.missing_for(profile, self.url)
        if missing is not None:
            logger.warning("ChangeConfiguration SecurityProfile %d rejected: %s", profile, missing)
            return "Rejected"
        self.switch.request(profile)
        self._reconnect_after_answer = True
        return "Accepted"

    def _change_key(self, text: str) -> str:
        try:
            self.keys.change(text)
        except ValueError as exc:  # the message never holds the key
            logger.warning("ChangeConfiguration AuthorizationKey rejected: %s", exc)
            return "Rejected"
        except OSError as exc:
            logger.error("ChangeConfiguration AuthorizationKey: cannot store it: %s", exc)
            return "Rejected"
        self.record(SecurityEventType.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                    "AuthorizationKey changed")
        if self.switch.active.uses_basic_auth:
            self._reconnect_after_answer = True
        return "Accepted"

    def after_change_configuration(self, key: str) -> None:
        """After the ChangeConfiguration answer: reconnect when credentials changed."""
        if self._reconnect_after_answer:
            self._reconnect_after_answer = False
            logger.info("ChangeConfiguration %s: reconnecting with the new settings", key)
            self._reconnect()

    # -- certificates -------------------------------------------------------------------
    async def sign_certificate(self) -> None:
        """SignCertificate.req with a CSR for a new key made here (whitepaper A02)."""
        cp = self._current_cp()
        if cp is None:
            return
        cpo = str(self.configuration.get("CpoName")) or None
        try:
            csr = await asyncio.to_thread(self.charge_point_certificate.create_csr,
                                          self.station_id, cpo)
        except OSError as exc:
            logger.error("SignCertificate: cannot store the new key: %s", exc)
            return
        try:
            result = await cp.call(call.SignCertificate(csr=csr))
        except LINK_ERRORS as exc:
            logger.warning("SignCertificate not sent: %s", exc)
            return
        if result is not None:
            logger.info("SignCertificate: %s", result.status)

    def certificate_signed(self, chain: str) -> CertificateSignedStatus:
        """CertificateSigned.req: validate and keep as pending (InvalidChargePointCertificate
        event when Rejected)."""
        try:
            result = self.charge_point_certificate.certificate_signed(
                chain, station_id=self.station_id,
                cpo_name=str(self.configuration.get("CpoName")) or None,
                csms_roots=self.certificates.roots(StoreUse.CSMS_ROOT))
        except OSError as exc:
            logger.error("CertificateSigned: cannot store the certificate: %s", exc)
            return CertificateSignedStatus.rejected
        if result.status.value != "Accepted":
            self.record(SecurityEventType.INVALID_CHARGE_POINT_CERTIFICATE, result.reason)
            return CertificateSignedStatus.rejected
        return CertificateSignedStatus.accepted

    def after_certificate_signed(self) -> None:
        """Profile 3: switch to the new certificate at once (a reconnect; the old one stays
        until the new one worked). Profiles 0–2 use no client certificate, so there is
        nothing to try: it becomes current at once, ready for a raise to profile 3 (the
        usual way up: SignCertificate at profile 2, then SecurityProfile 3)."""
        if not self.charge_point_certificate.has_pending:
            return
        if self.switch.active is SecurityProfile.TLS_CLIENT_CERTIFICATE:
            self._reconnect()
        else:
            self.charge_point_certificate.commit()

    def install_certificate(self, certificate_type: str, certificate: str) -> CertificateStatus:
        """InstallCertificate.req (whitepaper: Rejected, Failed or Accepted)."""
        status = self.certificates.install(StoreUse(certificate_type), certificate)
        if status.value == "Accepted":
            self.record(SecurityEventType.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                        f"{certificate_type} installed")
        return CertificateStatus(status.value)

    def installed_ids(self, certificate_type: str
                      ) -> tuple[GetInstalledCertificateStatus, list[dict[str, str]] | None]:
        """GetInstalledCertificateIds.req: (status, certificateHashData or None)."""
        ids = self.certificates.installed_ids(StoreUse(certificate_type))
        if not ids:
            return GetInstalledCertificateStatus.not_found, None
        return GetInstalledCertificateStatus.accepted, [
            {"hash_algorithm": h.hash_algorithm, "issuer_name_hash": h.issuer_name_hash,
             "issuer_key_hash": h.issuer_key_hash, "serial_number": h.serial_number}
            for h in ids]

    def delete_certificate(self, hash_data: dict[str, str]) -> DeleteCertificateStatus:
        """DeleteCertificate.req (the last CSMS root is never deleted: Failed)."""
        status = self.certificates.delete(CertificateHashData(
            hash_algorithm=hash_data["hash_algorithm"],
            issuer_name_hash=hash_data["issuer_name_hash"],
            issuer_key_hash=hash_data["issuer_key_hash"],
            serial_number=hash_data["serial_number"]))
        if status.value == "Accepted":
            self.record(SecurityEventType.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                        "certificate deleted")
        return DeleteCertificateStatus(status.value)

    # -- signed firmware ------------------------------------------------------------------
    async def verify_firmware(self, path: Path, request: FirmwareUpdateRequest) -> bool:
        """The firmware engine's ``verify`` port (:class:`evse.firmware_update.FirmwareUpdate`)
        for SignedUpdateFirmware: the signing certificate against the
        ManufacturerRootCertificate roots of the store, then the signature over the
        downloaded file (whitepaper "Signed firmware update"). A refusal records
        InvalidFirmwareSigningCertificate or InvalidFirmwareSignature; True only for
        SignatureVerified (the install command runs only then)."""
        return await verify_signed_firmware(path, request, self.certificates, self.record)

    def signed_update_firmware(self, request_id: int, firmware: dict[str, Any],
                               retries: int | None, retry_interval: int | None
                               ) -> UpdateFirmwareStatus:
        """SignedUpdateFirmware.req (whitepaper ed. 3): the answer. The signing certificate
        is checked here, against the ManufacturerRootCertificate roots: refused →
        InvalidCertificate and the security event InvalidFirmwareSigningCertificate, nothing
        is downloaded. (RevokedCertificate is never answered: no revocation list is kept.)
        An accepted request starts with :meth:`after_signed_update_firmware`."""
        self._signed_update = None
        try:
            request = v16_firmware.signed_firmware_request(request_id, firmware, retries,
                                                           retry_interval)
        except (KeyError, ValueError) as exc:
            logger.warning("SignedUpdateFirmware %d rejected: %s", request_id, exc)
            return UpdateFirmwareStatus.rejected
        certificate_ok = verify_signing_certificate(
            request.signing_certificate or "",
            self.certificates.roots(StoreUse.MANUFACTURER_ROOT),
            dt.datetime.now(dt.UTC)) is not None
        if not certificate_ok:
            self.record(SecurityEventType.INVALID_FIRMWARE_SIGNING_CERTIFICATE,
                        f"SignedUpdateFirmware {request_id}: signing certificate refused")
        status = v16_firmware.signed_update_answer(self.commands.station.firmware, request,
                                                   certificate_ok)
        if status in (UpdateFirmwareStatus.accepted, UpdateFirmwareStatus.accepted_canceled):
            self._signed_update = request
        logger.info("SignedUpdateFirmware %d: %s", request_id, status.value)
        return status

    def after_signed_update_firmware(self) -> None:
        """After an Accepted / AcceptedCanceled answer: start (or replace) the update, so
        its first SignedFirmwareStatusNotification never precedes the answer."""
        request, self._signed_update = self._signed_update, None
        engine = self.commands.station.firmware
        if request is None or engine is None:
            return
        try:
            engine.update(request)
        except FirmwareUpdateBusy as exc:  # an install began between answer and start
            logger.warning("SignedUpdateFirmware %s not started: %s", request.request_id, exc)

    def firmware_status_changed(self, status: FirmwareStatus, request_id: int | None) -> None:
        """A firmware engine status: Installed of a signed update (reported once, after
        the install reboot) records the security event FirmwareUpdated."""
        if status is FirmwareStatus.INSTALLED and request_id is not None:
            self.record(SecurityEventType.FIRMWARE_UPDATED,
                        f"signed firmware update {request_id} installed; running {__version__}")

    # -- ExtendedTriggerMessage ---------------------------------------------------------
    def trigger_answer(self, requested: str, connector_id: int | None) -> TriggerMessageStatus:
        """ExtendedTriggerMessage.req: Accepted, Rejected (no such connector) or
        NotImplemented."""
        if requested in _PLAIN_TRIGGERS:
            return TriggerMessageStatus(self.commands.trigger_answer(requested, connector_id))
        if requested in ("SignChargePointCertificate", "LogStatusNotification",
                         "FirmwareStatusNotification"):
            return TriggerMessageStatus.accepted
        return TriggerMessageStatus.not_implemented

    async def triggered(self, requested: str, connector_id: int | None) -> None:
        """Send what an accepted ExtendedTriggerMessage asked for."""
        if requested in _PLAIN_TRIGGERS:
            await self.commands.triggered(requested, connector_id)
        elif requested == "SignChargePointCertificate":
            await self.sign_certificate()
        elif requested == "LogStatusNotification":
            status, request_id = self._log_status
            await self._send_log_status(status, request_id)
        elif requested == "FirmwareStatusNotification":
            engine = self.commands.station.firmware
            await self._send(v16_firmware.triggered_signed_firmware_status_notification(
                FirmwareStatus.IDLE if engine is None else engine.status,
                None if engine is None else engine.request_id))

    # -- GetLog -------------------------------------------------------------------------
    def get_log(self, log_type: str, request_id: int, log: dict[str, Any],
                retries: int | None, retry_interval: int | None) -> tuple[str, str | None]:
        """GetLog.req: (status, filename). SecurityLog is exported and uploaded after the
        answer (:func:`evse.file_transfer.upload`: FTP, or HTTP(S) POST multipart); a
        running upload is cancelled (AcceptedCanceled). Rejected: DiagnosticsLog (not
        wired to the diagnostics archive yet) and a location whose scheme cannot be used."""
        if log_type != "SecurityLog":
            return "Rejected", None
        location = str(log["remote_location"])
        try:
            check_url(location)
        except TransferError as exc:
            logger.warning("GetLog %d rejected: %s", request_id, exc)
            return "Rejected", None
        filename = security_log_file_name(self.station_id, dt.datetime.now(dt.UTC))
        status = "Accepted"
        if self._upload is not None and not self._upload.done():
            self._upload.cancel()
            status = "AcceptedCanceled"
        since = _epoch(log.get("oldest_timestamp"))
        until = _epoch(log.get("latest_timestamp"))
        self._upload = self._spawn(self._upload_security_log(
            filename, location, request_id, since, until,
            max(0, retries or 0), max(0, retry_interval or 0)))
        return status, filename

    async def _upload_security_log(self, filename: str, location: str, request_id: int,
                                   since: float | None, until: float | None, retries: int,
                                   interval: int) -> None:
        async def set_status(status: str) -> None:
            await self._set_log_status(UploadLogStatus(status), request_id)
        try:
            await upload_security_log(self.events.log, self._state_dir, filename, location,
                                      since, until, retries, float(interval), set_status)
        finally:
            if self._log_status[0] is UploadLogStatus.uploading:
                self._log_status = (UploadLogStatus.idle, None)

    async def _set_log_status(self, status: UploadLogStatus, request_id: int) -> None:
        uploading = status is UploadLogStatus.uploading
        self._log_status = ((UploadLogStatus.uploading, request_id) if uploading
                            else (UploadLogStatus.idle, None))
        await self._send_log_status(status, request_id)

    async def _send_log_status(self, status: UploadLogStatus, request_id: int | None) -> None:
        await self._send(call.LogStatusNotification(status=status, request_id=request_id))

    async def _send(self, payload: Any) -> None:
        cp = self._current_cp()
        if cp is None:
            return
        try:
            await cp.call(payload)
        except LINK_ERRORS as exc:
            logger.warning("%s not sent: %s", type(payload).__name__, exc)


def _epoch(text: str | None) -> float | None:
    return None if text is None else parse_timestamp(text)


__all__ = ["Security16", "security_event_call", "security_paths"]
