"""CertificateHashData: how GetInstalledCertificateIds and DeleteCertificate name a
certificate (1.6 security whitepaper ed. 3 CertificateHashDataType; OCPP 2.0.1
CertificateHashDataType;
the fields of an OCSP CertID, RFC 6960 §4.1.1).

- ``hashAlgorithm``: SHA256 | SHA384 | SHA512;
- ``issuerNameHash``: hash of the DER encoding of the issuer's distinguished name;
- ``issuerKeyHash``: hash of the issuer's public key — the value of the BIT STRING
  subjectPublicKey in the issuer certificate (tag, length and unused-bits octet excluded);
- ``serialNumber``: the serial number in hex (lower case, no leading zeros).

Hashes are lower-case hex. Comparisons ignore case and leading zeros of the serial number,
since CSMSs differ in both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

#: HashAlgorithmEnumType values and their hashlib names.
HASH_ALGORITHMS = {"SHA256": "sha256", "SHA384": "sha384", "SHA512": "sha512"}


@dataclass(frozen=True)
class CertificateHashData:
    """One CertificateHashDataType; field names as the ``ocpp`` library's snake_case."""

    hash_algorithm: str
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str

    def matches(self, other: CertificateHashData) -> bool:
        """Same certificate (case-insensitive hashes, serial without leading zeros)."""
        return (self.hash_algorithm == other.hash_algorithm
                and self.issuer_name_hash.lower() == other.issuer_name_hash.lower()
                and self.issuer_key_hash.lower() == other.issuer_key_hash.lower()
                and _serial(self.serial_number) == _serial(other.serial_number))


def public_key_bits(key: object) -> bytes:
    """The subjectPublicKey BIT STRING value of ``key`` (what OCSP hashes).

    Raises:
        TypeError: a key type OCPP does not use (DSA, DH).
    """
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER,
                                serialization.PublicFormat.PKCS1)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(serialization.Encoding.X962,
                                serialization.PublicFormat.UncompressedPoint)
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raise TypeError(f"unsupported public key type {type(key).__name__}")


def certificate_hash_data(cert: x509.Certificate, issuer: x509.Certificate,
                          hash_algorithm: str = "SHA256") -> CertificateHashData:
    """The CertificateHashData of ``cert`` issued by ``issuer`` (``cert`` itself for a
    self-signed root).

    Raises:
        ValueError: ``hash_algorithm`` is not SHA256, SHA384 or SHA512.
    """
    try:
        name = HASH_ALGORITHMS[hash_algorithm]
    except KeyError:
        raise ValueError(f"hashAlgorithm {hash_algorithm!r}: expected one of"
                         f" {sorted(HASH_ALGORITHMS)}") from None
    return CertificateHashData(
        hash_algorithm=hash_algorithm,
        issuer_name_hash=hashlib.new(name, cert.issuer.public_bytes()).hexdigest(),
        issuer_key_hash=hashlib.new(name, public_key_bits(issuer.public_key())).hexdigest(),
        serial_number=format(cert.serial_number, "x"),
    )


def _serial(text: str) -> str:
    return text.lower().lstrip("0") or "0"
