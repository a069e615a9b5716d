"""A test PKI made with ``cryptography`` in the test process (no files from outside).

Roots, intermediates and leaf certificates with EC P-256 keys (fast to generate) or RSA
2048 keys where a test needs RSA (firmware signed with RSA PKCS#1 v1.5).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Issued:
    """A certificate and (when we made the key) its private key."""

    cert: x509.Certificate
    key: PrivateKey | None

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        assert self.key is not None
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def write(self, directory: Path, stem: str) -> tuple[Path, Path | None]:
        """Write ``<stem>.pem`` (and ``<stem>.key`` 0600 when there is a key)."""
        cert_path = directory / f"{stem}.pem"
        cert_path.write_bytes(self.cert_pem)
        key_path = None
        if self.key is not None:
            key_path = directory / f"{stem}.key"
            key_path.touch(mode=0o600)
            key_path.write_bytes(self.key_pem)
        return cert_path, key_path


def _name(cn: str, o: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if o is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    return x509.Name(attrs)


def make_root(cn: str, *, key: PrivateKey | None = None,
              not_before: dt.datetime = NOW - DAY,
              not_after: dt.datetime = NOW + 365 * DAY,
              path_length: int | None = None) -> Issued:
    """A self-signed CA certificate (``path_length``: its pathLenConstraint)."""
    key = key or ec_key()
    name = _name(cn)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                     False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def issue(issuer: Issued, cn: str, *, o: str | None = None, ca: bool = False,
          key: PrivateKey | None = None, public_key: PublicKey | None = None,
          subject: x509.Name | None = None,
          ip: str | None = None, eku: list[x509.ObjectIdentifier] | None = None,
          not_before: dt.datetime = NOW - DAY,
          not_after: dt.datetime = NOW + 90 * DAY,
          path_length: int | None = None, key_cert_sign: bool = True) -> Issued:
    """A certificate signed by ``issuer`` (a CA when ``ca``, with ``path_length`` as its
    pathLenConstraint and keyUsage keyCertSign unless not ``key_cert_sign``)."""
    assert issuer.key is not None
    if public_key is None:
        key = key or ec_key()
        public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject or _name(cn, o)).issuer_name(issuer.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.cert.public_key()), critical=False)  # type: ignore[arg-type]
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, key_cert_sign, True, False,
                          False),
            critical=True)
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True)
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


SERVER_AUTH = [ExtendedKeyUsageOID.SERVER_AUTH]
CLIENT_AUTH = [ExtendedKeyUsageOID.CLIENT_AUTH]
CODE_SIGNING = [ExtendedKeyUsageOID.CODE_SIGNING]


def sign(signer: Issued, data: bytes) -> str:
    """The manufacturer's firmware signing step: RSA PKCS#1 v1.5 or ECDSA over SHA-256,
    base64 (the signature of SignedUpdateFirmware, 1.6 security whitepaper ed. 3)."""
    key = signer.key
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()
