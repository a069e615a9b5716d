"""Version-independent security services of both adapters (1.6 security whitepaper ed. 3;
OCPP 2.0.1 A02–A04, L01, N01): the station's security stores built from ``[security]``, the
signed-firmware check with its security events, and the SecurityLog export + upload of
GetLog.

The 1.6 port (:class:`ocpp_client.v16.security.Security16`) and the 2.0.1 port
(:class:`ocpp_client.v201.security.Security201`) both use these; they add only their
version's messages and enums.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from evse.config import Config
from evse.file_transfer import TransferError, upload, with_retries
from evse.firmware_update import FirmwareUpdateRequest
from ocpp_client.security.authorization_key import AuthorizationKeyStore
from ocpp_client.security.certificate_store import CertificateStore, CertificateUse
from ocpp_client.security.charge_point_certificate import ChargePointCertificate, TlsFiles
from ocpp_client.security.events import SecurityEventType
from ocpp_client.security.firmware_signature import FirmwareVerification, verify_firmware
from ocpp_client.security.security_log import SecurityLog

logger = logging.getLogger(__name__)

#: Records a security event (event, techInfo); never raises for a full disk.
Record = Callable[[SecurityEventType, "str | None"], None]

#: GetLog upload statuses, spelled alike by 1.6 UploadLogStatus and 2.0.1
#: UploadLogStatusEnumType.
UPLOADING, UPLOADED, UPLOAD_FAILURE = "Uploading", "Uploaded", "UploadFailure"


def security_paths(config: Config) -> dict[str, Path | None]:
    """``[security]`` file paths, relative ones resolved against the config file's
    directory; None where not configured."""
    base = config.path.parent
    out: dict[str, Path | None] = {}
    for name in ("authorization_key_file", "csms_root_ca", "client_cert", "client_key"):
        text = getattr(config.security, name)
        out[name] = (base / text) if text else None
    return out


@dataclass
class SecurityStores:
    """The AuthorizationKey, the root certificate store and the charge point certificate,
    all in the state directory (commissioning files from ``[security]``)."""

    keys: AuthorizationKeyStore
    certificates: CertificateStore
    charge_point_certificate: ChargePointCertificate

    @classmethod
    def open(cls, config: Config, *, max_length: int | None,
             additional_root_check: bool) -> SecurityStores:
        """Open (create) the stores.

        Args:
            max_length: most root certificates kept (1.6 CertificateStoreMaxLength).
            additional_root_check: a new CSMS root must be signed by the current one.
        """
        paths = security_paths(config)
        cert, key = paths["client_cert"], paths["client_key"]
        return cls(
            keys=AuthorizationKeyStore(config.state_dir, paths["authorization_key_file"]),
            certificates=CertificateStore(
                config.state_dir, commissioning_csms_roots=paths["csms_root_ca"],
                max_length=max_length, additional_root_check=additional_root_check),
            charge_point_certificate=ChargePointCertificate(
                config.state_dir,
                commissioning=TlsFiles(cert, key) if cert is not None and key is not None
                else None))


async def verify_signed_firmware(path: Path, request: FirmwareUpdateRequest,
                                 certificates: CertificateStore, record: Record) -> bool:
    """The firmware engine's ``verify`` port (:class:`evse.firmware_update.FirmwareUpdate`):
    the signing certificate against the ManufacturerRootCertificate roots, then the
    signature over the downloaded file (whitepaper "Signed firmware update"; OCPP 2.0.1
    L01.FR.03). A refusal records InvalidFirmwareSigningCertificate or
    InvalidFirmwareSignature; True only for SignatureVerified (the install runs only then)."""
    try:
        result = await asyncio.to_thread(
            verify_firmware, path, request.signing_certificate or "", request.signature or "",
            certificates.roots(CertificateUse.MANUFACTURER_ROOT), dt.datetime.now(dt.UTC))
    except OSError as exc:
        logger.error("signed firmware: cannot read %s: %s", path, exc)
        return False
    event = result.security_event
    if event is not None:
        record(event, f"{result.value}: {path.name}")
    return result is FirmwareVerification.SIGNATURE_VERIFIED


def security_log_file_name(station_id: str, now: dt.datetime) -> str:
    """``<station id>-SecurityLog-<UTC time>.log`` (the GetLog answer's filename)."""
    return f"{station_id}-SecurityLog-{now.strftime('%Y%m%dT%H%M%SZ')}.log"


async def upload_security_log(log: SecurityLog, state_dir: Path, filename: str,
                              location: str, since: float | None, until: float | None,
                              retries: int, interval_s: float,
                              set_status: Callable[[str], Awaitable[None]],
                              v201_names: bool = False) -> None:
    """GetLog SecurityLog: export the entries in [since, until] (UTC epoch s) to
    ``<state_dir>/logs/<filename>``, then upload it (:func:`evse.file_transfer.upload`: FTP,
    or HTTP(S) POST multipart) with retries; ``set_status`` is told Uploading, then Uploaded
    or UploadFailure. The file is removed afterwards. ``v201_names``: the 2.0.1 spelling of
    the event types (:meth:`SecurityLog.export`)."""
    await asyncio.sleep(0)  # the GetLog answer goes first
    directory = state_dir / "logs"
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / filename
    try:
        await asyncio.to_thread(log.export, path, since, until, v201_names)
        await set_status(UPLOADING)
        try:
            await with_retries(lambda: upload(location, path), f"GetLog {filename}",
                               retries, interval_s, asyncio.sleep)
        except TransferError:
            await set_status(UPLOAD_FAILURE)
        else:
            await set_status(UPLOADED)
    finally:
        path.unlink(missing_ok=True)


__all__ = ["SecurityStores", "security_log_file_name", "security_paths",
           "upload_security_log", "verify_signed_firmware"]
