"""Signed firmware verification (1.6 security whitepaper ed. 3, "Secure firmware
update", SignedUpdateFirmware / SignedFirmwareStatusNotification; OCPP 2.0.1 L01).

Two steps, both before the install command may run:

1. on SignedUpdateFirmware.req: the ``signingCertificate`` (PEM) must chain to a
   ManufacturerRootCertificate and be within its validity period, else the answer is
   InvalidCertificate (security event InvalidFirmwareSigningCertificate);
2. after the download: ``signature`` (base64) must be the signature of that certificate's
   key over the SHA-256 of the file — RSA PKCS#1 v1.5 or ECDSA — giving the status
   SignatureVerified, else InvalidSignature (security event InvalidFirmwareSignature).

The file is hashed in 1 MiB chunks, so images larger than memory are fine; it takes a
second or more for hundreds of MiB on a Pi-class CPU: call it via ``asyncio.to_thread``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from ocpp_client.security.chain import ChainError, verify_chain
from ocpp_client.security.events import SecurityEventType

CHUNK_BYTES = 1 << 20


class FirmwareVerification(enum.Enum):
    """Outcome; values are the 1.6 whitepaper's status names."""

    #: signingCertificate does not chain to a manufacturer root (SignedUpdateFirmware.conf)
    INVALID_CERTIFICATE = "InvalidCertificate"
    #: the signature does not match the file (SignedFirmwareStatusNotification)
    INVALID_SIGNATURE = "InvalidSignature"
    #: the file is the manufacturer's, unchanged (SignedFirmwareStatusNotification)
    SIGNATURE_VERIFIED = "SignatureVerified"

    @property
    def security_event(self) -> SecurityEventType | None:
        """The security event this outcome raises (None when verified)."""
        return {
            FirmwareVerification.INVALID_CERTIFICATE:
                SecurityEventType.INVALID_FIRMWARE_SIGNING_CERTIFICATE,
            FirmwareVerification.INVALID_SIGNATURE:
                SecurityEventType.INVALID_FIRMWARE_SIGNATURE,
        }.get(self)


def verify_signing_certificate(signing_certificate_pem: str,
                               manufacturer_roots: list[x509.Certificate],
                               now: dt.datetime) -> x509.Certificate | None:
    """The signing certificate when it chains to one of ``manufacturer_roots`` and is
    valid at ``now`` (UTC), else None (→ InvalidCertificate).

    Intermediates may follow the leaf in the PEM text.
    """
    try:
        chain = x509.load_pem_x509_certificates(signing_certificate_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
    if not manufacturer_roots:
        return None
    try:
        verify_chain(chain[0], chain[1:], manufacturer_roots, now)
    except ChainError:
        return None
    return chain[0]


def file_sha256(path: Path) -> bytes:
    """SHA-256 digest of the file, read in :data:`CHUNK_BYTES` chunks.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.digest()


def verify_firmware_signature(path: Path, signature_b64: str,
                              signing_certificate: x509.Certificate) -> FirmwareVerification:
    """SIGNATURE_VERIFIED when ``signature_b64`` is the certificate key's RSA PKCS#1 v1.5
    or ECDSA signature over SHA-256 of the file, else INVALID_SIGNATURE.

    Raises:
        OSError: the file cannot be read.
    """
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return FirmwareVerification.INVALID_SIGNATURE
    digest = file_sha256(path)
    key = signing_certificate.public_key()
    prehashed = utils.Prehashed(hashes.SHA256())
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, digest, padding.PKCS1v15(), prehashed)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, digest, ec.ECDSA(prehashed))
        else:
            return FirmwareVerification.INVALID_SIGNATURE
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return FirmwareVerification.INVALID_SIGNATURE
    return FirmwareVerification.SIGNATURE_VERIFIED


def verify_firmware(path: Path, signing_certificate_pem: str, signature_b64: str,
                    manufacturer_roots: list[x509.Certificate],
                    now: dt.datetime) -> FirmwareVerification:
    """Both steps on a downloaded file: certificate, then signature.

    Raises:
        OSError: the file cannot be read.
    """
    cert = verify_signing_certificate(signing_certificate_pem, manufacturer_roots, now)
    if cert is None:
        return FirmwareVerification.INVALID_CERTIFICATE
    return verify_firmware_signature(path, signature_b64, cert)
