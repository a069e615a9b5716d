"""Which security event a failed connect to the CSMS is (1.6 security whitepaper ed. 3
Appendix 1; OCPP 2.0.1 A00.FR.3xx/5xx: "the Charging Station SHALL trigger an
InvalidCsmsCertificate / InvalidTLSVersion / InvalidTLSCipherSuite security event").

Maps the exceptions ``ssl`` and ``websockets`` raise from a TLS handshake or a WebSocket
opening handshake; anything that is not a security matter (refused, unreachable, timed
out) maps to None.
"""

from __future__ import annotations

import ssl

from websockets.exceptions import InvalidMessage, InvalidStatus

from ocpp_client.security.events import SecurityEventType

# OpenSSL reason codes (``SSLError.reason``) seen on the client side.
_TLS_VERSION_REASONS = frozenset({
    "UNSUPPORTED_PROTOCOL",            # the server offers only a version below our minimum
    "TLSV1_ALERT_PROTOCOL_VERSION",    # the server refused our versions
    "NO_PROTOCOLS_AVAILABLE",
    "WRONG_SSL_VERSION",
})
_TLS_CIPHER_REASONS = frozenset({
    # The server's generic handshake_failure alert: with TLS 1.2 mostly "no shared cipher
    # suite" (also sent by a server that wants a client certificate we did not send).
    "SSLV3_ALERT_HANDSHAKE_FAILURE",
    "NO_SHARED_CIPHER",
    "NO_CIPHERS_AVAILABLE",
    "NO_SUITABLE_SIGNATURE_ALGORITHM",
})
# The CSMS rejected our client certificate (security profile 3).
_CLIENT_CERT_REJECTED_REASONS = frozenset({
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    "TLSV1_ALERT_UNKNOWN_CA",
    "TLSV1_ALERT_ACCESS_DENIED",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
})
#: HTTP statuses a CSMS answers the opening handshake with when it rejects the station's
#: credentials (Basic auth password or identity).
AUTH_REJECTED_STATUSES = frozenset({401, 403})


def classify_connect_failure(exc: BaseException, *, client_certificate_sent: bool = False
                             ) -> SecurityEventType | None:
    """The security event ``exc`` (raised by ``websockets.asyncio.client.connect``) stands
    for, or None.

    With TLS 1.3 the server checks the client certificate after the client has finished
    its handshake, so a rejected certificate (security profile 3) reaches the client as a
    connection closed before any HTTP response; with ``client_certificate_sent`` that is
    taken as FAILED_TO_AUTHENTICATE_AT_CSMS (a non-critical event: a wrong guess only adds
    a log line).

    - server certificate not trusted, expired, or not for this host →
      INVALID_CSMS_CERTIFICATE;
    - the server offers only TLS < 1.2 → INVALID_TLS_VERSION;
    - no acceptable cipher suite → INVALID_TLS_CIPHER_SUITE;
    - HTTP 401/403 to the upgrade, or the CSMS rejecting our client certificate →
      FAILED_TO_AUTHENTICATE_AT_CSMS.
    """
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return SecurityEventType.INVALID_CSMS_CERTIFICATE
        if isinstance(cause, ssl.SSLError):
            reason = cause.reason or ""
            if reason in _TLS_VERSION_REASONS:
                return SecurityEventType.INVALID_TLS_VERSION
            if reason in _TLS_CIPHER_REASONS:
                return SecurityEventType.INVALID_TLS_CIPHER_SUITE
            if reason in _CLIENT_CERT_REJECTED_REASONS:
                return SecurityEventType.FAILED_TO_AUTHENTICATE_AT_CSMS
        if (isinstance(cause, InvalidStatus)
                and cause.response.status_code in AUTH_REJECTED_STATUSES):
            return SecurityEventType.FAILED_TO_AUTHENTICATE_AT_CSMS
        if client_certificate_sent and _closed_before_response(cause, exc):
            return SecurityEventType.FAILED_TO_AUTHENTICATE_AT_CSMS
    return None


def _closed_before_response(cause: BaseException, raised: BaseException) -> bool:
    """The CSMS closed the connection before its HTTP response: websockets >= 14 raises
    InvalidMessage from EOFError / ConnectionError, the 13.x asyncio client (Yocto
    scarthgap ships 13.1) the bare EOFError."""
    if isinstance(cause, InvalidMessage):
        return isinstance(cause.__cause__, EOFError | ConnectionError)
    return cause is raised and isinstance(raised, EOFError)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes / contexts (websockets may wrap the TLS error)."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen
