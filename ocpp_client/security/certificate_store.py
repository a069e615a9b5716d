"""The certificate store: the roots the station trusts, in the state directory
(1.6 security whitepaper ed. 3, "Certificate management": InstallCertificate,
GetInstalledCertificateIds, DeleteCertificate, configuration keys
CertificateStoreMaxLength and AdditionalRootCertificateCheck; OCPP 2.0.1 M03–M05).

Two uses: the CSMS roots (CentralSystemRootCertificate: the Charge Point Operator's
hierarchy, which signs the CSMS server certificate and the charge point certificate) and
the manufacturer roots (ManufacturerRootCertificate: they sign firmware signing
certificates). Each certificate is one PEM file ``<use>/<sha256 fingerprint>.pem``.

At the first start the PEM roots of ``[security] csms_root_ca`` are imported as the CSMS
roots; from then on the CSMS manages them. The system trust store is never used here.

AdditionalRootCertificateCheck = true: only one CSMS root plus a temporary *fallback* is
kept. A new CSMS root must be signed by the current one (checked in full when it is
installed); the current one becomes the fallback until the station has connected with
the new one (:meth:`CertificateStore.commit_csms_root`). Because the new root is not
self-signed, TLS verification accepts a partial chain (``tls.py``).
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization

from ocpp_client.security.certificate_hash import (
    CertificateHashData,
    certificate_hash_data,
)
from ocpp_client.security.secret_files import fsync_directory, write_secret_file

log = logging.getLogger(__name__)


class CertificateUse(enum.Enum):
    """What a stored root is for; values are the 1.6 CertificateUseEnumType names."""

    CSMS_ROOT = "CentralSystemRootCertificate"  # 2.0.1: CSMSRootCertificate
    MANUFACTURER_ROOT = "ManufacturerRootCertificate"


class InstallStatus(enum.Enum):
    """InstallCertificate.conf status (CertificateStatusEnumType)."""

    ACCEPTED = "Accepted"
    #: invalid or incorrect, or more certificates than CertificateStoreMaxLength
    REJECTED = "Rejected"
    #: valid and correct, but could not be stored
    FAILED = "Failed"


class DeleteStatus(enum.Enum):
    """DeleteCertificate.conf status (DeleteCertificateStatusEnumType)."""

    ACCEPTED = "Accepted"
    FAILED = "Failed"
    NOT_FOUND = "NotFound"


_FALLBACK_DIR = "csms_root_fallback"
_ISSUERS_DIR = "issuers"  # issuer of a cross-signed CSMS root, named by the root
_COMMISSIONED_MARKER = ".commissioning_roots_imported"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint of the DER certificate, lower-case hex (the file name)."""
    return cert.fingerprint(hashes.SHA256()).hex()


def is_valid_at(cert: x509.Certificate, now: dt.datetime) -> bool:
    """``now`` lies within the certificate's validity period (RFC 5280 §4.1.2.5)."""
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def is_ca(cert: x509.Certificate) -> bool:
    """BasicConstraints cA = true."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``cert`` names ``issuer`` as issuer and carries its valid signature."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


class CertificateStore:
    """CSMS and manufacturer roots under ``<state_dir>/certificates``."""

    def __init__(self, state_dir: Path, *, commissioning_csms_roots: Path | None = None,
                 max_length: int | None = None, additional_root_check: bool = False,
                 clock: Callable[[], dt.datetime] = _utcnow) -> None:
        """Args:
            state_dir: the station's state directory.
            commissioning_csms_roots: ``[security] csms_root_ca``, PEM roots imported once.
            max_length: CertificateStoreMaxLength (None: unbounded).
            additional_root_check: AdditionalRootCertificateCheck.
            clock: the current UTC time (validity checks).

        Raises:
            OSError / ValueError: the commissioning roots cannot be read or parsed.
        """
        self.directory = state_dir / "certificates"
        self.max_length = max_length
        self.additional_root_check = additional_root_check
        self._clock = clock
        for sub in (*(u.name.lower() for u in CertificateUse), _FALLBACK_DIR, _ISSUERS_DIR):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        marker = self.directory / _COMMISSIONED_MARKER
        if commissioning_csms_roots is not None and not marker.exists():
            for cert in x509.load_pem_x509_certificates(commissioning_csms_roots.read_bytes()):
                self._write(self._dir(CertificateUse.CSMS_ROOT), cert)
            marker.touch()
            fsync_directory(self.directory)

    # -- reading ---------------------------------------------------------------------------
    def roots(self, use: CertificateUse) -> list[x509.Certificate]:
        """The stored roots for ``use``; for CSMS roots including a fallback."""
        certs = self._load(self._dir(use))
        if use is CertificateUse.CSMS_ROOT:
            certs += self._load(self.directory / _FALLBACK_DIR)
        return certs

    def csms_roots_pem(self) -> bytes:
        """All CSMS roots (with a fallback) as concatenated PEM, for the TLS context."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM)
                        for c in self.roots(CertificateUse.CSMS_ROOT))

    @property
    def has_fallback(self) -> bool:
        """A previous CSMS root is kept until the new one has worked."""
        return bool(self._load(self.directory / _FALLBACK_DIR))

    def __len__(self) -> int:
        """Number of stored certificates (what CertificateStoreMaxLength bounds)."""
        return sum(len(self.roots(u)) for u in CertificateUse)

    def installed_ids(self, use: CertificateUse | None = None,
                      hash_algorithm: str = "SHA256") -> list[CertificateHashData]:
        """GetInstalledCertificateIds: hash data of the roots of ``use`` (all when None).

        An empty list is answered NotFound by the adapter.
        """
        uses = list(CertificateUse) if use is None else [use]
        return [self._hash_data(c, hash_algorithm) for u in uses for c in self.roots(u)]

    # -- changing --------------------------------------------------------------------------
    def install(self, use: CertificateUse, pem: str) -> InstallStatus:
        """InstallCertificate: validate and store one PEM certificate.

        Rejected when it does not parse, is not a CA certificate, is outside its validity
        period, would exceed CertificateStoreMaxLength, or (AdditionalRootCertificateCheck,
        CSMS root) is not signed by the current CSMS root. Failed when it cannot be
        written. Installing a certificate already stored is Accepted and changes nothing.
        """
        try:
            cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return InstallStatus.REJECTED
        if not is_ca(cert) or not is_valid_at(cert, self._clock()):
            return InstallStatus.REJECTED
        known = {fingerprint(c) for c in self.roots(use)}
        if fingerprint(cert) in known:
            return InstallStatus.ACCEPTED
        try:
            if use is CertificateUse.CSMS_ROOT and self.additional_root_check:
                return self._replace_csms_root(cert)
            if self.max_length is not None and len(self) >= self.max_length:
                return InstallStatus.REJECTED
            self._write(self._dir(use), cert)
        except OSError as exc:
            log.error("InstallCertificate %s: cannot store: %s", use.value, exc)
            return InstallStatus.FAILED
        return InstallStatus.ACCEPTED

    def _replace_csms_root(self, cert: x509.Certificate) -> InstallStatus:
        active_dir = self._dir(CertificateUse.CSMS_ROOT)
        fallback_dir = self.directory / _FALLBACK_DIR
        current = self._load_paths(active_dir) + self._load_paths(fallback_dir)
        signers = [(path, old) for path, old in current if issued_by(cert, old)]
        if current and not signers:
            return InstallStatus.REJECTED
        # The root it replaces becomes the one fallback; every other CSMS root goes.
        # New files first, removals last: a power cut never leaves no root at all.
        keep = signers[0][1] if signers else None
        if keep is not None:
            # Its issuer's key names the new root in CertificateHashData even after the
            # fallback is gone.
            self._write(self.directory / _ISSUERS_DIR, keep, name=fingerprint(cert))
            self._write(fallback_dir, keep)
        self._write(active_dir, cert)
        for path, old in current:
            if (keep is not None and path.parent == fallback_dir
                    and fingerprint(old) == fingerprint(keep)):
                continue
            path.unlink(missing_ok=True)
            if keep is None or fingerprint(old) != fingerprint(keep):
                (self.directory / _ISSUERS_DIR / path.name).unlink(missing_ok=True)
        fsync_directory(active_dir)
        fsync_directory(fallback_dir)
        return InstallStatus.ACCEPTED

    def commit_csms_root(self, peer_certificate_der: bytes | None = None) -> bool:
        """The station connected: drop the fallback CSMS root (AdditionalRootCertificateCheck)
        once the CSMS has shown a certificate issued by the new root. Returns True when a
        fallback was dropped.

        Args:
            peer_certificate_der: the CSMS's certificate (``getpeercert(True)``). When
                given, the fallback is only dropped if an active (non-fallback) root issued
                it directly; a CSMS certificate under an intermediate CA cannot be told
                apart this way and keeps the fallback. None drops it unconditionally.
        """
        fallback_dir = self.directory / _FALLBACK_DIR
        if not self.has_fallback:
            return False
        if peer_certificate_der is not None:
            peer = x509.load_der_x509_certificate(peer_certificate_der)
            if not any(issued_by(peer, root)
                       for root in self._load(self._dir(CertificateUse.CSMS_ROOT))):
                return False
        for path in fallback_dir.glob("*.pem"):
            path.unlink()
        fsync_directory(fallback_dir)
        return True

    def delete(self, hash_data: CertificateHashData) -> DeleteStatus:
        """DeleteCertificate: remove the root ``hash_data`` names.

        NotFound when no stored root matches; Failed when it is the last CSMS root (the
        station could no longer verify its CSMS) or cannot be removed.
        """
        for use in CertificateUse:
            dirs = [self._dir(use)]
            if use is CertificateUse.CSMS_ROOT:
                dirs.append(self.directory / _FALLBACK_DIR)
            for directory in dirs:
                for path, cert in self._load_paths(directory):
                    try:
                        ours = self._hash_data(cert, hash_data.hash_algorithm)
                    except ValueError:
                        return DeleteStatus.NOT_FOUND  # unknown hashAlgorithm
                    if not ours.matches(hash_data):
                        continue
                    if use is CertificateUse.CSMS_ROOT and len(self.roots(use)) <= 1:
                        return DeleteStatus.FAILED
                    try:
                        path.unlink()
                        (self.directory / _ISSUERS_DIR / path.name).unlink(missing_ok=True)
                        fsync_directory(directory)
                    except OSError as exc:
                        log.error("DeleteCertificate: cannot remove %s: %s", path, exc)
                        return DeleteStatus.FAILED
                    return DeleteStatus.ACCEPTED
        return DeleteStatus.NOT_FOUND

    # -- helpers ---------------------------------------------------------------------------
    def _dir(self, use: CertificateUse) -> Path:
        return self.directory / use.name.lower()

    def _hash_data(self, cert: x509.Certificate, hash_algorithm: str) -> CertificateHashData:
        return certificate_hash_data(cert, self._issuer_of(cert), hash_algorithm)

    def _issuer_of(self, cert: x509.Certificate) -> x509.Certificate:
        # A self-signed root is its own issuer; a root cross-signed by the previous one
        # (AdditionalRootCertificateCheck) is hashed with that one while it is stored.
        if cert.issuer == cert.subject:
            return cert
        recorded = self.directory / _ISSUERS_DIR / f"{fingerprint(cert)}.pem"
        if recorded.exists():
            return x509.load_pem_x509_certificate(recorded.read_bytes())
        for use in CertificateUse:
            for other in self.roots(use):
                if other.subject == cert.issuer and issued_by(cert, other):
                    return other
        return cert

    @staticmethod
    def _write(directory: Path, cert: x509.Certificate, name: str | None = None) -> None:
        # Certificates are public; 0600 anyway keeps the whole state dir uniform.
        write_secret_file(directory / f"{name or fingerprint(cert)}.pem",
                          cert.public_bytes(serialization.Encoding.PEM))

    @staticmethod
    def _load_paths(directory: Path) -> list[tuple[Path, x509.Certificate]]:
        out = []
        for path in sorted(directory.glob("*.pem")):
            try:
                out.append((path, x509.load_pem_x509_certificate(path.read_bytes())))
            except ValueError:
                log.error("certificate store: %s is not a PEM certificate; ignored", path)
        return out

    def _load(self, directory: Path) -> list[x509.Certificate]:
        return [c for _, c in self._load_paths(directory)]
