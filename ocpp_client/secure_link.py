"""The link keeper's security side (:class:`~ocpp_client.link.ConnectSecurity`): security
profiles 0–3, the AuthorizationKey, the CSMS roots and the charge point certificate
around every connect (1.6 security whitepaper ed. 3, "Security profiles", "Certificate
management"; OCPP 2.0.1 A02, A05).

Before each connect :class:`SecureConnect` asks :class:`LinkSecurity` for the URL scheme,
``ssl`` context and ``Authorization`` header; after it, it commits what the attempt tried
(a raised SecurityProfile is stored, a new client certificate becomes current) or rolls it
back and records the security event the failure stands for. A SecurityProfile raise that
cannot even be prepared (its key or certificate is missing) falls back at once. The
station keeps retrying whatever happens.
"""

from __future__ import annotations

import logging
import sqlite3
import ssl
from collections.abc import Callable
from typing import Any

from ocpp_client.link import ConnectOptions
from ocpp_client.security.events import SecurityEventType
from ocpp_client.security.link_security import (
    ConnectAttempt,
    LinkSecurity,
    peer_certificate_der,
)
from ocpp_client.security.profiles import SecurityConfigError, SecurityProfile
from ocpp_client.security_events import SecurityEvents

log = logging.getLogger(__name__)


class SecureConnect:
    """Implements :class:`~ocpp_client.link.ConnectSecurity` over :class:`LinkSecurity`.

    Args:
        security: the security state (profile switch, keys, certificates).
        events: where security events go.
        store_profile: persist a committed SecurityProfile (the configuration key).
    """

    def __init__(self, security: LinkSecurity, events: SecurityEvents,
                 store_profile: Callable[[SecurityProfile], None],
                 system_store: Callable[[SecurityProfile], bool] = lambda _p: False) -> None:
        """``system_store(profile)``: whether a connect with ``profile`` also trusts the
        operating system's roots."""
        self.security = security
        self.events = events
        self._store_profile = store_profile
        self._system_store = system_store

    def prepare(self, url: str) -> ConnectOptions:
        """Options for the next connect (see :meth:`LinkSecurity.prepare`).

        Raises:
            SecurityConfigError / OSError: the active profile lacks what it needs.
        """
        switch = self.security.profile
        self.security.use_system_store = self._system_store(switch.next_profile())
        try:
            attempt = self.security.prepare(url)
        except (SecurityConfigError, ssl.SSLError, OSError) as exc:
            if switch.pending is None:
                raise
            raised = switch.pending
            active = switch.fall_back()
            self._record(SecurityEventType.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                         f"SecurityProfile {int(raised)} cannot be used ({exc});"
                         f" staying at {int(active)}")
            self.security.use_system_store = self._system_store(active)
            attempt = self.security.prepare(url)
        return ConnectOptions(attempt.url, attempt.ssl, attempt.headers, attempt)

    def connected(self, options: ConnectOptions, ws: Any) -> None:
        """Commit what the attempt tried; a raised profile is stored and logged."""
        attempt: ConnectAttempt = options.attempt
        changes = self.security.connected(attempt, peer_certificate_der(ws))
        self.events.link_up()
        if changes.profile is not None:
            self._store_profile(changes.profile)
            self._record(SecurityEventType.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                         f"SecurityProfile {int(changes.profile)} in use")
        if changes.new_certificate:
            log.info("connected with the charge point certificate from CertificateSigned")
        if changes.csms_root_fallback_dropped:
            log.info("CSMS root replaced: the previous root was dropped")

    def failed(self, options: ConnectOptions, exc: BaseException) -> None:
        """Roll back what the attempt tried and record the failure's security event."""
        attempt: ConnectAttempt = options.attempt
        event = self.security.failed(attempt, exc)
        if event is not None:
            self._record(event, f"{attempt.url.split('://')[0]}: {_reason(exc)}")
        if attempt.tries_profile_raise:
            self._record(SecurityEventType.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                         f"SecurityProfile {int(attempt.profile)} failed to connect; back to"
                         f" {int(self.security.profile.active)}")
        if attempt.tries_new_certificate:
            self._record(SecurityEventType.INVALID_CHARGE_POINT_CERTIFICATE,
                         "connect with the certificate from CertificateSigned failed;"
                         " the previous one stays in use")

    def _record(self, event: SecurityEventType, tech_info: str) -> None:
        try:
            self.events.record(event, tech_info)
        except sqlite3.Error as exc:  # the link keeps retrying whatever the disk does
            log.error("security event %s not stored: %s", event.value, exc)


def _reason(exc: BaseException) -> str:
    """A short, secret-free description of a connect failure (the exception type and, for
    TLS, OpenSSL's reason; an HTTP status for a refused upgrade)."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        if isinstance(cur, ssl.SSLCertVerificationError):
            return f"TLS: {cur.verify_message}"
        if isinstance(cur, ssl.SSLError):
            return f"TLS: {cur.reason}"
        response = getattr(cur, "response", None)
        status = getattr(response, "status_code", None)
        if status is not None:
            return f"HTTP {status}"
        cur = cur.__cause__ or cur.__context__
    return type(exc).__name__
