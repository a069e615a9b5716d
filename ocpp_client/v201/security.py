"""OCPP 2.0.1 Security (A02–A04) and the SecurityLog of GetLog (N01) over the shared security
services (:mod:`ocpp_client.security_services`, :mod:`ocpp_client.security`,
:mod:`ocpp_client.security_events`): the port the 2.0.1 handlers are given for
CertificateSigned, InstallCertificate, GetInstalledCertificateIds, DeleteCertificate and
GetLog SecurityLog, and the CALLs the station makes for them (SignCertificate,
SecurityEventNotification, LogStatusNotification).

Security events and LogStatusNotification go through the durable outbox (the same commit as
the security log row for an event), so a status reached while offline still arrives.

The link keeper connects through the shared :class:`~ocpp_client.secure_link.SecureConnect`
with SecurityCtrlr.SecurityProfile (A00: 1 Basic auth over ws://, 2 Basic auth over wss://, 3
TLS client certificate; 0, below the specification's range, is this station's "as the URL
says, no credentials" as in 1.6) and the ``[security]`` files. At profile 3 a certificate from
CertificateSigned is tried at a reconnect right after the answer and kept only when the CSMS
accepts it (A02.FR.09); below 3 it becomes current at once. A new BasicAuthPassword (A01,
SetVariables, WriteOnly) becomes the AuthorizationKey (stored as the key file, never in the
device model table) and, at profiles 1–2, the station reconnects with it.
SetNetworkProfile and the fallback: :mod:`.network_profiles`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from ocpp.v201 import call

import ocpp_client.v201.mapping as mapping
from evse.clock import Clock
from evse.config import Config
from evse.file_transfer import TransferError, check_url
from evse.firmware_update import FirmwareUpdateRequest
from ocpp_client.link import LINK_ERRORS
from ocpp_client.queue import Outbox
from ocpp_client.secure_link import SecureConnect
from ocpp_client.security.certificate_hash import CertificateHashData
from ocpp_client.security.certificate_store import CertificateUse
from ocpp_client.security.events import SecurityEventType
from ocpp_client.security.firmware_signature import verify_signing_certificate
from ocpp_client.security.link_security import LinkSecurity
from ocpp_client.security.profiles import SecurityProfile, SecurityProfileSwitch
from ocpp_client.security.security_log import SecurityLogEntry
from ocpp_client.security_events import SecurityEvents
from ocpp_client.security_services import (
    SecurityStores,
    security_log_file_name,
    upload_security_log,
    verify_signed_firmware,
)
from ocpp_client.v16.meter_values import iso_timestamp, parse_timestamp
from ocpp_client.v201.device_model import DeviceModel
from ocpp_client.v201.network_profiles import NetworkProfiles

logger = logging.getLogger(__name__)

#: Queues a CALL durably: (action, snake_case payload).
Queue = Callable[[str, dict[str, Any]], None]


def security_event_call(entry: SecurityLogEntry) -> tuple[str, dict[str, Any]]:
    """The outbox row of a security event: SecurityEventNotification (A04, 2.0.1 type
    spelling)."""
    payload: dict[str, Any] = {"type": entry.type.v201_name,
                               "timestamp": iso_timestamp(entry.timestamp)}
    if entry.tech_info:
        payload["tech_info"] = entry.tech_info[:255]
    return "SecurityEventNotification", payload


def hash_data_payload(h: CertificateHashData) -> dict[str, str]:
    """CertificateHashDataType (snake_case)."""
    return {"hash_algorithm": h.hash_algorithm, "issuer_name_hash": h.issuer_name_hash,
            "issuer_key_hash": h.issuer_key_hash, "serial_number": h.serial_number}


class Security201:
    """The 2.0.1 security port (see the module docstring).

    Args:
        config: the loaded configuration (``[security]``, state directory, station id).
        db: the state database.
        outbox: the durable outbox (security events, LogStatusNotification).
        clock: the station clock.
        model: the device model (SecurityCtrlr).
        current_cp: the ChargePoint of the current connection (None while down).
        reconnect: close the link so new credentials take effect.
    """

    def __init__(self, config: Config, db: sqlite3.Connection, outbox: Outbox, clock: Clock,
                 model: DeviceModel, current_cp: Callable[[], Any],
                 reconnect: Callable[[], None] = lambda: None) -> None:
        self.station_id = config.station_id
        self.model = model
        self._state_dir = config.state_dir
        self._outbox = outbox
        self._clock = clock
        self._current_cp = current_cp
        self._reconnect = reconnect
        self._reconnect_after_answer = False
        stores = SecurityStores.open(config, max_length=None, additional_root_check=False)
        self.keys = stores.keys
        self.certificates = stores.certificates
        self.charge_point_certificate = stores.charge_point_certificate
        self.events = SecurityEvents(db, outbox, clock, security_event_call)
        self.switch = SecurityProfileSwitch(model.get_int("SecurityCtrlr", "SecurityProfile"))
        self.link_security = LinkSecurity(self.station_id, self.switch, self.keys,
                                          self.certificates, self.charge_point_certificate)
        use_system_store = config.security.use_system_trust_store

        def system_store(profile: SecurityProfile) -> bool:
            # Profile 0 over wss:// without CSMS roots keeps the TLS default (system roots).
            return use_system_store or (profile is SecurityProfile.NONE
                                        and not self.certificates.roots(
                                            CertificateUse.CSMS_ROOT))

        commissioning = SecureConnect(self.link_security, self.events, self._store_profile,
                                      system_store=system_store)
        #: The link keeper's security side (:class:`~ocpp_client.link.ConnectSecurity`):
        #: the network profiles (B09, B10), slot 1 by default the commissioning one.
        self.connect = self.network = NetworkProfiles(
            db, self.station_id, model, commissioning,
            slot_link=lambda switch: LinkSecurity(
                self.station_id, switch, self.keys, self.certificates,
                self.charge_point_certificate),
            connect_for=lambda link: SecureConnect(link, self.events, lambda _p: None,
                                                   system_store=system_store))
        self._tasks: set[asyncio.Task[Any]] = set()
        self._upload: asyncio.Task[Any] | None = None
        model.provide("SecurityCtrlr", "CertificateEntries", lambda: str(len(self.certificates)))
        model.on_variable_change("SecurityCtrlr", "BasicAuthPassword", self._password_changed)

    def _store_profile(self, profile: SecurityProfile) -> None:
        self.model.set("SecurityCtrlr", "SecurityProfile", str(int(profile)))

    def _password_changed(self, value: str | None) -> None:
        """SetVariables BasicAuthPassword (A01): the new AuthorizationKey; a reconnect with
        it once the answer is out (profiles 1 and 2)."""
        if value is None:
            return
        try:
            self.keys.change(value)
        except (ValueError, OSError) as exc:  # the message never holds the key
            logger.error("BasicAuthPassword not applied: %s", exc)
            return
        self.record(SecurityEventType.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                    "BasicAuthPassword changed")
        if self.switch.active.uses_basic_auth:
            self._reconnect_after_answer = True

    def after_set_variables(self) -> None:
        """After the SetVariables answer: reconnect when the password changed."""
        if self._reconnect_after_answer:
            self._reconnect_after_answer = False
            logger.info("BasicAuthPassword changed: reconnecting with it")
            self._reconnect()

    def set_network_profile(self, slot: int, connection_data: dict[str, Any]) -> str:
        """SetNetworkProfileRequest (B09): see :meth:`NetworkProfiles.set_network_profile`;
        an accepted profile is a ReconfigurationOfSecurityParameters event."""
        status = self.network.set_network_profile(slot, connection_data,
                                                  int(self.switch.active))
        if status == "Accepted":
            self.record(SecurityEventType.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                        f"network profile slot {slot} set")
        return status

    # -- events -----------------------------------------------------------------------
    def record(self, event: SecurityEventType, tech_info: str | None = None) -> None:
        """Record ``event`` (log; queue SecurityEventNotification when critical); a full or
        broken disk is logged, not raised."""
        try:
            self.events.record(event, tech_info)
        except sqlite3.Error as exc:
            logger.error("security event %s not stored: %s", event.value, exc)

    def queue(self, action: str, payload: dict[str, Any]) -> None:
        """Queue a station-wide CALL durably (FirmwareStatusNotification,
        LogStatusNotification)."""
        self._outbox.put(action, payload, 0, None, clock_synced=self._clock.synced)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel_all(self) -> None:
        """Cancel running uploads and CALLs of this port."""
        for task in list(self._tasks):
            task.cancel()

    # -- certificates (A02, A03, M03–M05) ------------------------------------------------
    def _organization(self) -> str | None:
        return self.model.get("SecurityCtrlr", "OrganizationName") or None

    async def sign_certificate(self) -> None:
        """SignCertificateRequest with a CSR for a new key made here (A02), certificateType
        ChargingStationCertificate."""
        cp = self._current_cp()
        if cp is None:
            return
        try:
            csr = await asyncio.to_thread(self.charge_point_certificate.create_csr,
                                          self.station_id, self._organization())
        except OSError as exc:
            logger.error("SignCertificate: cannot store the new key: %s", exc)
            return
        try:
            result = await cp.call(call.SignCertificate(
                csr=csr, certificate_type="ChargingStationCertificate"))
        except LINK_ERRORS as exc:
            logger.warning("SignCertificate not sent: %s", exc)
            return
        if result is not None:
            logger.info("SignCertificate: %s", result.status)

    def certificate_signed(self, chain: str, certificate_type: str | None) -> str:
        """CertificateSignedRequest (A02.FR.05–FR.08): "Accepted" (kept, then current) or
        "Rejected" (InvalidChargingStationCertificate event). V2GCertificate: Rejected (no
        ISO 15118 here)."""
        if certificate_type not in (None, "ChargingStationCertificate"):
            return "Rejected"
        try:
            result = self.charge_point_certificate.certificate_signed(
                chain, station_id=self.station_id, cpo_name=self._organization(),
                csms_roots=self.certificates.roots(CertificateUse.CSMS_ROOT))
        except OSError as exc:
            logger.error("CertificateSigned: cannot store the certificate: %s", exc)
            return "Rejected"
        if result.status.value != "Accepted":
            self.record(SecurityEventType.INVALID_CHARGE_POINT_CERTIFICATE, result.reason)
            return "Rejected"
        return "Accepted"

    def after_certificate_signed(self) -> None:
        """Profile 3: reconnect with the new certificate at once (the old one stays until
        the new one worked, A02.FR.09); profiles 0–2 use no client certificate, so it
        becomes current at once."""
        if not self.charge_point_certificate.has_pending:
            return
        if self.switch.active is SecurityProfile.TLS_CLIENT_CERTIFICATE:
            self._reconnect()
        else:
            self.charge_point_certificate.commit()
            self.record(SecurityEventType.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                        "charging station certificate replaced")

    def install_certificate(self, certificate_type: str, certificate: str) -> str:
        """InstallCertificateRequest (M05): Accepted, Rejected or Failed."""
        use = mapping.CERTIFICATE_USE.get(certificate_type)
        if use is None:
            return "Rejected"
        status = self.certificates.install(use, certificate).value
        if status == "Accepted":
            self.record(SecurityEventType.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                        f"{certificate_type} installed")
        return status

    def installed_ids(self, certificate_types: list[str] | None
                      ) -> tuple[str, list[dict[str, Any]] | None]:
        """GetInstalledCertificateIdsRequest (M03): (status, certificateHashDataChain)."""
        uses = (list(mapping.CERTIFICATE_TYPE) if not certificate_types else
                [mapping.CERTIFICATE_USE[t] for t in certificate_types
                 if t in mapping.CERTIFICATE_USE])
        chain = [{"certificate_type": mapping.CERTIFICATE_TYPE[use],
                  "certificate_hash_data": hash_data_payload(h)}
                 for use in uses for h in self.certificates.installed_ids(use)]
        return ("Accepted", chain) if chain else ("NotFound", None)

    def delete_certificate(self, hash_data: dict[str, str]) -> str:
        """DeleteCertificateRequest (M04): Accepted, Failed (the last CSMS root) or
        NotFound."""
        status = self.certificates.delete(CertificateHashData(
            hash_algorithm=str(hash_data["hash_algorithm"]),
            issuer_name_hash=hash_data["issuer_name_hash"],
            issuer_key_hash=hash_data["issuer_key_hash"],
            serial_number=hash_data["serial_number"])).value
        if status == "Accepted":
            self.record(SecurityEventType.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                        "certificate deleted")
        return status

    # -- signed firmware (L01) -----------------------------------------------------------
    def signing_certificate_ok(self, pem: str) -> bool:
        """L01.FR.02: the signingCertificate chains to a ManufacturerRootCertificate (else
        InvalidCertificate and the InvalidFirmwareSigningCertificate event)."""
        ok = verify_signing_certificate(
            pem, self.certificates.roots(CertificateUse.MANUFACTURER_ROOT),
            dt.datetime.now(dt.UTC)) is not None
        if not ok:
            self.record(SecurityEventType.INVALID_FIRMWARE_SIGNING_CERTIFICATE,
                        "UpdateFirmware: signing certificate refused")
        return ok

    def record_firmware_updated(self, request_id: int) -> None:
        """A signed or unsigned update reported Installed (after its reboot): the
        FirmwareUpdated security event (A04, Appendix "Security events")."""
        self.record(SecurityEventType.FIRMWARE_UPDATED,
                    f"firmware update {request_id} installed")

    async def verify_firmware(self, path: Any, request: FirmwareUpdateRequest) -> bool:
        """The firmware engine's ``verify`` port (see
        :func:`ocpp_client.security_services.verify_signed_firmware`)."""
        return await verify_signed_firmware(path, request, self.certificates, self.record)

    # -- GetLog SecurityLog (N01) --------------------------------------------------------
    def get_security_log(self, request_id: int, log: dict[str, Any], retries: int | None,
                         retry_interval: int | None) -> tuple[str, str | None]:
        """GetLogRequest logType SecurityLog: (status, filename); the export is uploaded
        after the answer, LogStatusNotification with requestId follows. A running upload is
        cancelled (AcceptedCanceled); a location whose scheme cannot be used is Rejected."""
        location = str(log["remote_location"])
        try:
            check_url(location)
            since = _epoch(log.get("oldest_timestamp"))
            until = _epoch(log.get("latest_timestamp"))
        except (TransferError, ValueError) as exc:
            logger.warning("GetLog %d rejected: %s", request_id, exc)
            return "Rejected", None
        filename = security_log_file_name(self.station_id, dt.datetime.now(dt.UTC))
        status = "Accepted"
        if self._upload is not None and not self._upload.done():
            self._upload.cancel()
            status = "AcceptedCanceled"

        async def set_status(text: str) -> None:
            self.queue("LogStatusNotification", {"status": text, "request_id": request_id})

        self._upload = self._spawn(upload_security_log(
            self.events.log, self._state_dir, filename, location, since, until,
            max(0, retries or 0), float(max(0, retry_interval or 0)), set_status,
            v201_names=True))
        return status, filename


def _epoch(text: str | None) -> float | None:
    return None if text is None else parse_timestamp(text)
