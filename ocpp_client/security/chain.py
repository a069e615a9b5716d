"""Certificate chain verification to a set of trusted roots (RFC 5280 §6 path validation,
as the 1.6 security whitepaper ed. 3 asks for CertificateSigned and SignedUpdateFirmware;
OCPP 2.0.1 A02 / L01).

The library verifier (``cryptography.x509.verification``, client verifier with
per-position extension policies) is used when the installed ``cryptography`` has it
(≥ 45). The Yocto scarthgap layer ships 42.0.5, which has neither
``ExtensionPolicy`` nor ``build_client_verifier``; there a small path builder on
``Certificate.verify_directly_issued_by`` (≥ 40) does the same job:

- leaf → zero or more of the given intermediates → one of the trusted roots, each
  certificate's signature made by the next one's key and its issuer name that
  certificate's subject;
- every certificate of the path (the root too) inside its validity window at ``now``;
- every issuer (intermediates and root): basicConstraints CA=true, its pathLenConstraint
  not exceeded by the non-self-issued intermediates below it, keyUsage keyCertSign when
  keyUsage is present, and no critical extension this builder does not check;
- the end-entity's extensions are the issuing CA's choice (like the library path's
  ``ExtensionPolicy.permit_all()``);
- no certificate twice in a path, at most :data:`MAX_INTERMEDIATES` intermediates and
  :data:`MAX_SIGNATURE_CHECKS` signature checks per call (a hostile chain cannot make
  it loop or search long).

It does not check what the library's Web PKI CA policy adds (signature algorithm and
key size allow-list, AuthorityKeyIdentifier presence, name constraints — a CA with a
critical nameConstraints extension is refused rather than half-checked).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import verification

#: The library verifier with ExtensionPolicy and build_client_verifier (cryptography ≥ 45).
LIBRARY_VERIFIER: bool = (hasattr(verification, "ExtensionPolicy")
                          and hasattr(verification.PolicyBuilder, "build_client_verifier"))

#: Intermediates at most between leaf and root (the library verifier's default depth).
MAX_INTERMEDIATES = 8

#: Signature checks at most per verification (bounds the search over a hostile chain).
MAX_SIGNATURE_CHECKS = 64

# Critical extensions an issuer may carry in the fallback: the two it checks and ones
# that do not restrict what the CA may sign.
_ISSUER_CRITICAL_OK = frozenset({
    x509.BasicConstraints.oid,
    x509.KeyUsage.oid,
    x509.SubjectKeyIdentifier.oid,
    x509.AuthorityKeyIdentifier.oid,
    x509.SubjectAlternativeName.oid,
    x509.CertificatePolicies.oid,
})


class ChainError(Exception):
    """The certificate does not chain to a trusted root at the given time; the message
    says why (for a security event's techInfo; contains no secret)."""


def verify_chain(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate],
                 roots: Sequence[x509.Certificate], now: dt.datetime, *,
                 use_library: bool = LIBRARY_VERIFIER) -> list[x509.Certificate]:
    """The verified path ``[leaf, intermediate..., root]``.

    Args:
        leaf: the end-entity certificate (TLS client or firmware signing certificate).
        intermediates: untrusted certificates that may complete the path, in any order.
        roots: the trust anchors (CentralSystemRootCertificate,
            ManufacturerRootCertificate).
        now: the verification time (UTC; a naive value is taken as UTC).
        use_library: the library verifier (default when installed) or the fallback path
            builder (tests force it to check both give the same answers).

    Raises:
        ChainError: no path to a trusted root valid at ``now``, or no root given.
        RuntimeError: ``use_library`` with a ``cryptography`` older than 45.
    """
    if not roots:
        raise ChainError("no trusted root")
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    if use_library:
        if not LIBRARY_VERIFIER:
            raise RuntimeError("cryptography >= 45 needed for the library verifier")
        return _library_verify(leaf, intermediates, roots, now)
    return _PathBuilder(intermediates, roots, now).verify(leaf)


def _library_verify(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate],
                    roots: Sequence[x509.Certificate],
                    now: dt.datetime) -> list[x509.Certificate]:
    try:
        verified = (verification.PolicyBuilder()
                    .store(verification.Store(list(roots)))
                    .time(now)
                    .max_chain_depth(MAX_INTERMEDIATES)
                    # The end-entity's extensions are the issuing CA's choice; the CA
                    # certificates still get the RFC 5280 / Web PKI checks.
                    .extension_policies(
                        ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                        ee_policy=verification.ExtensionPolicy.permit_all())
                    .build_client_verifier()
                    .verify(leaf, list(intermediates)))
    except verification.VerificationError as exc:
        raise ChainError(str(exc)) from exc
    return list(verified.chain)


class _PathBuilder:
    """Depth-first search from the leaf towards a root (fallback for cryptography < 45)."""

    def __init__(self, intermediates: Sequence[x509.Certificate],
                 roots: Sequence[x509.Certificate], now: dt.datetime) -> None:
        self._roots = list(roots)
        self._root_der = {_der(root) for root in roots}
        self._intermediates = [c for c in intermediates if _der(c) not in self._root_der]
        self._now = now
        self._checks_left = MAX_SIGNATURE_CHECKS
        self._refusals: list[str] = []

    def verify(self, leaf: x509.Certificate) -> list[x509.Certificate]:
        if not _within_validity(leaf, self._now):
            raise ChainError("certificate is outside its validity period")
        if _der(leaf) in self._root_der:
            return [leaf]  # itself a trust anchor (as the library verifier treats it)
        path = self._extend([leaf], below=0)
        if path is None:
            why = "; ".join(dict.fromkeys(self._refusals)) or "no issuer found"
            raise ChainError(f"no path to a trusted root ({why})")
        return path

    def _extend(self, path: list[x509.Certificate],
                below: int) -> list[x509.Certificate] | None:
        """``path`` completed up to a root, or None. ``below``: non-self-issued
        intermediates already in the path (for pathLenConstraint)."""
        child = path[-1]
        for candidate, trusted in [(r, True) for r in self._roots] + \
                                  [(i, False) for i in self._intermediates]:
            if candidate.subject != child.issuer or any(c == candidate for c in path):
                continue
            if not trusted and len(path) > MAX_INTERMEDIATES:
                self._refusals.append("too many intermediates")
                continue
            reason = _issuer_refusal(candidate, below, self._now)
            if reason is None:
                reason = self._signature_refusal(child, candidate)
            if reason is not None:
                self._refusals.append(reason)
                continue
            if trusted:
                return [*path, candidate]
            self_issued = candidate.subject == candidate.issuer
            found = self._extend([*path, candidate], below + (0 if self_issued else 1))
            if found is not None:
                return found
        return None

    def _signature_refusal(self, child: x509.Certificate,
                           issuer: x509.Certificate) -> str | None:
        if self._checks_left <= 0:
            return "too many candidate issuers"
        self._checks_left -= 1
        try:
            child.verify_directly_issued_by(issuer)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
            return "signature does not verify"
        return None


def _issuer_refusal(cert: x509.Certificate, below: int, now: dt.datetime) -> str | None:
    """Why ``cert`` may not issue the path below it (``below`` non-self-issued
    intermediates under it), or None (RFC 5280 §6.1.4 (k)-(n), §4.2.1.9, §4.2.1.3)."""
    if not _within_validity(cert, now):
        return "issuer outside its validity period"
    try:
        extensions = cert.extensions
        constraints = extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return "issuer has no basicConstraints"
    except (ValueError, x509.DuplicateExtension):
        return "issuer has malformed extensions"
    if not constraints.ca:
        return "issuer is not a CA"
    if constraints.path_length is not None and below > constraints.path_length:
        return "issuer's pathLenConstraint exceeded"
    try:
        key_usage = extensions.get_extension_for_class(x509.KeyUsage).value
        if not key_usage.key_cert_sign:
            return "issuer's keyUsage lacks keyCertSign"
    except x509.ExtensionNotFound:
        pass
    if any(ext.critical and ext.oid not in _ISSUER_CRITICAL_OK for ext in extensions):
        return "issuer has a critical extension that is not checked"
    return None


def _within_validity(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)
