"""The charge point certificate and its key (security profile 3): key generation and CSR
for SignCertificate, validation of CertificateSigned, and the switch at the next
reconnect (1.6 security whitepaper ed. 3, "Certificate properties" and the use cases
A02/A03 "Update Charge Point Certificate"; OCPP 2.0.1 A02).

- The key pair is generated on the station (EC secp256r1) and written 0600; it never
  leaves the station. The CSR's subject is CN = charge point identity, O = CpoName.
- CertificateSigned: the chain (leaf first) must lead to a CSMS root
  (CentralSystemRootCertificate: the Charge Point Operator's hierarchy signs the charge
  point certificate), be within its validity period, carry CN = station identity (and
  O = CpoName when one is set), and hold the public key of our pending CSR key.
  Anything else is Rejected and is an InvalidChargePointCertificate security event.
- An accepted certificate is *pending*: the link keeper connects with it next
  (:meth:`ChargePointCertificate.tls_files` with ``pending=True``); after that connect
  succeeded it calls :meth:`commit`, after it failed :meth:`roll_back`, and the old
  certificate stays in use.

Files in ``<state_dir>/certificates/charge_point``: ``csr.key`` (the key awaiting its
certificate), ``pending.pem`` + ``pending.key``, ``current.pem`` + ``current.key``.
"""

from __future__ import annotations

import datetime as dt
import enum
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ocpp_client.security.chain import ChainError, verify_chain
from ocpp_client.security.secret_files import (
    fsync_directory,
    read_secret_file,
    write_secret_file,
)


class CertificateSignedStatus(enum.Enum):
    """CertificateSigned.conf status (CertificateSignedStatusEnumType)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


@dataclass(frozen=True)
class CertificateSignedResult:
    """The answer to CertificateSigned and, when Rejected, why (for the security event's
    techInfo; contains no secret)."""

    status: CertificateSignedStatus
    reason: str = ""


@dataclass(frozen=True)
class TlsFiles:
    """Client certificate chain (PEM) and private key files for ``load_cert_chain``."""

    certfile: Path
    keyfile: Path


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ChargePointCertificate:
    """Key, CSR and certificate life cycle of the station's TLS client certificate."""

    def __init__(self, state_dir: Path, *, commissioning: TlsFiles | None = None,
                 clock: Callable[[], dt.datetime] = _utcnow) -> None:
        """Args:
            state_dir: the station's state directory.
            commissioning: ``[security] client_cert`` / ``client_key`` (used until a
                certificate from CertificateSigned has been committed).
            clock: current UTC time (validity checks).
        """
        self.directory = state_dir / "certificates" / "charge_point"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._commissioning = commissioning
        self._clock = clock
        if self._path("pending.pem").exists() and not self._path("pending.key").exists():
            # A power cut interrupted commit() between its two renames: finish it.
            os.replace(self._path("pending.pem"), self._path("current.pem"))
            fsync_directory(self.directory)

    # -- SignCertificate -------------------------------------------------------------------
    def create_csr(self, station_id: str, cpo_name: str | None) -> str:
        """A new key pair (kept 0600 as ``csr.key``) and its PEM CSR (RFC 2986) with
        CN = ``station_id`` and O = ``cpo_name`` (CpoName), for SignCertificate.req.

        A later call replaces the key awaiting a certificate.

        Raises:
            OSError: the key cannot be written.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, station_id)]
        if cpo_name:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, cpo_name))
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name(attrs))
               .sign(key, hashes.SHA256()))
        write_secret_file(self._path("csr.key"), key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")

    # -- CertificateSigned -----------------------------------------------------------------
    def certificate_signed(self, chain_pem: str, *, station_id: str, cpo_name: str | None,
                           csms_roots: list[x509.Certificate]) -> CertificateSignedResult:
        """Validate CertificateSigned.req ``certificateChain`` and keep it as pending.

        Raises:
            OSError: the pending files cannot be written (answer Rejected).
        """
        def rejected(reason: str) -> CertificateSignedResult:
            return CertificateSignedResult(CertificateSignedStatus.REJECTED, reason)

        try:
            chain = x509.load_pem_x509_certificates(chain_pem.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return rejected("certificateChain is not PEM")
        leaf = chain[0]
        key_path = self._path("csr.key")
        if not key_path.exists():
            return rejected("no pending SignCertificate key")
        key = serialization.load_pem_private_key(read_secret_file(key_path), password=None)
        if leaf.public_key() != key.public_key():
            return rejected("certificate is not for the key of our CSR")
        if _attr(leaf.subject, NameOID.COMMON_NAME) != station_id:
            return rejected("subject CN is not the charge point identity")
        if cpo_name and _attr(leaf.subject, NameOID.ORGANIZATION_NAME) != cpo_name:
            return rejected("subject O is not CpoName")
        if not csms_roots:
            return rejected("no CSMS root installed")
        now = self._clock()
        try:
            verify_chain(leaf, chain[1:], csms_roots, now)
        except ChainError as exc:
            return rejected(f"chain does not verify to a CSMS root: {exc}")
        write_secret_file(self._path("pending.pem"), chain_pem.encode("ascii"))
        os.replace(key_path, self._path("pending.key"))
        fsync_directory(self.directory)
        return CertificateSignedResult(CertificateSignedStatus.ACCEPTED)

    # -- switching -------------------------------------------------------------------------
    @property
    def has_pending(self) -> bool:
        """A certificate from CertificateSigned waits to be tried at the next connect."""
        return self._path("pending.pem").exists()

    def tls_files(self, *, pending: bool = False) -> TlsFiles | None:
        """The certificate + key to connect with: the pending one when ``pending`` (and
        one exists), else the committed one, else the commissioning files, else None."""
        if pending and self.has_pending:
            return TlsFiles(self._path("pending.pem"), self._path("pending.key"))
        if self._path("current.pem").exists():
            return TlsFiles(self._path("current.pem"), self._path("current.key"))
        return self._commissioning

    def commit(self) -> None:
        """The connect with the pending certificate succeeded: it becomes current and the
        previous one is dropped. No-op without a pending certificate."""
        if not self.has_pending:
            return
        # Key first: after a power cut between the two renames, __init__ finds
        # pending.pem without pending.key and finishes the commit.
        os.replace(self._path("pending.key"), self._path("current.key"))
        os.replace(self._path("pending.pem"), self._path("current.pem"))
        fsync_directory(self.directory)

    def roll_back(self) -> None:
        """The connect with the pending certificate failed: drop it, keep the old one."""
        for name in ("pending.pem", "pending.key"):
            self._path(name).unlink(missing_ok=True)
        fsync_directory(self.directory)

    def _path(self, name: str) -> Path:
        return self.directory / name


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None
