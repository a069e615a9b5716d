"""Security profiles 0–3 and what the link keeper connects with (1.6 security whitepaper
ed. 3, "Security profiles", configuration key SecurityProfile; OCPP 2.0.1 A00).

=======  =========  ===========================  ==============================
profile  scheme     CSMS authenticates itself    station authenticates itself
=======  =========  ===========================  ==============================
0        ws / wss   (as the scheme implies)      none
1        ws://      no                           HTTP Basic auth (AuthorizationKey)
2        wss://     TLS server cert, CSMS roots  HTTP Basic auth (AuthorizationKey)
3        wss://     TLS server cert, CSMS roots  TLS client certificate
=======  =========  ===========================  ==============================

SecurityProfile may only be raised. A raise is *pending* until the station has connected
with it (:class:`SecurityProfileSwitch`): the link keeper then commits it, or falls back to
the previous profile (and logs a security event) when the connect failed.

Wiring into the link keeper::

    switch = SecurityProfileSwitch(active=configured_profile)
    profile = switch.next_profile()
    url = url_for_profile(base_url, profile)
    ssl_ctx, headers = connection_options(profile, url, station_id, certificates, keys,
                                          trying_pending=...)
    async with websockets.asyncio.client.connect(f"{url}/{station_id}", ssl=ssl_ctx,
                                  additional_headers=headers, ...):
        switch.commit()   # on success; persist switch.active as SecurityProfile
    # on failure: switch.fall_back(); event = classify_connect_failure(exc)
"""

from __future__ import annotations

import enum
import ssl
from urllib.parse import urlsplit, urlunsplit

from ocpp_client.security.authorization_key import AuthorizationKeyStore
from ocpp_client.security.certificate_store import CertificateStore
from ocpp_client.security.charge_point_certificate import ChargePointCertificate
from ocpp_client.security.tls import csms_tls_context


class SecurityProfile(enum.IntEnum):
    """The SecurityProfile configuration key's values."""

    NONE = 0
    BASIC_AUTH = 1
    TLS_BASIC_AUTH = 2
    TLS_CLIENT_CERTIFICATE = 3

    @property
    def uses_tls(self) -> bool:
        """Profiles 2 and 3 require ``wss://``."""
        return self >= SecurityProfile.TLS_BASIC_AUTH

    @property
    def uses_basic_auth(self) -> bool:
        """Profiles 1 and 2 send the AuthorizationKey with HTTP Basic auth."""
        return self in (SecurityProfile.BASIC_AUTH, SecurityProfile.TLS_BASIC_AUTH)


class SecurityConfigError(ValueError):
    """The configuration cannot work with the security profile (names what is missing)."""


def check_url_scheme(profile: int, url: str) -> str | None:
    """For ``evse config check``: None when ``url``'s scheme suits ``profile``, else the
    error text (profile 1 needs ``ws://``, profiles 2 and 3 ``wss://``)."""
    p = SecurityProfile(profile)
    scheme = urlsplit(url).scheme
    if scheme not in ("ws", "wss"):
        return f"[ocpp] url {url!r}: expected a ws:// or wss:// URL"
    if p.uses_tls and scheme != "wss":
        return (f"[ocpp] url {url!r}: SecurityProfile {int(p)} uses TLS; expected a wss://"
                " URL")
    if p is SecurityProfile.BASIC_AUTH and scheme != "ws":
        return (f"[ocpp] url {url!r}: SecurityProfile 1 is HTTP Basic auth without TLS;"
                " expected a ws:// URL (or SecurityProfile 2 for wss://)")
    return None


def url_for_profile(url: str, profile: int) -> str:
    """``url`` with the scheme ``profile`` needs (for a raise from 1 to 2 or 3, which
    moves the same CSMS address from ``ws://`` to ``wss://``); profile 0 keeps it."""
    p = SecurityProfile(profile)
    if p is SecurityProfile.NONE:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="wss" if p.uses_tls else "ws"))


def connection_options(profile: int, url: str, station_id: str,
                       certificates: CertificateStore | None,
                       keys: AuthorizationKeyStore | None,
                       client_certificate: ChargePointCertificate | None = None, *,
                       try_pending_certificate: bool = False,
                       use_system_store: bool = False,
                       ) -> tuple[ssl.SSLContext | None, dict[str, str]]:
    """The ``ssl`` context (None for ``ws://``) and extra HTTP headers to open the
    WebSocket to ``url`` with ``profile``.

    Args:
        profile: SecurityProfile 0–3.
        url: the CSMS URL (its scheme must suit the profile).
        station_id: the charge point identity (Basic auth user name).
        certificates: the certificate store (CSMS roots); needed for ``wss://``.
        keys: the AuthorizationKey store; needed for profiles 1 and 2.
        client_certificate: the charge point certificate; needed for profile 3.
        try_pending_certificate: connect with the certificate from CertificateSigned
            waiting to be tried (commit or roll back after the attempt).
        use_system_store: also trust the system's roots (``[security]`` option).

    Raises:
        SecurityConfigError: scheme and profile disagree, or a key, root or certificate
            the profile needs is missing.
        ssl.SSLError / OSError: a certificate or key file cannot be loaded.
    """
    p = SecurityProfile(profile)
    problem = check_url_scheme(p, url)
    if problem:
        raise SecurityConfigError(problem)
    headers: dict[str, str] = {}
    if p.uses_basic_auth:
        key = keys.current() if keys is not None else None
        if key is None:
            raise SecurityConfigError(
                f"SecurityProfile {int(p)} needs an AuthorizationKey: set [security]"
                " authorization_key_file")
        headers["Authorization"] = key.basic_auth_header(station_id)
    if urlsplit(url).scheme != "wss":
        return None, headers
    client = None
    if p is SecurityProfile.TLS_CLIENT_CERTIFICATE:
        client = (client_certificate.tls_files(pending=try_pending_certificate)
                  if client_certificate is not None else None)
        if client is None:
            raise SecurityConfigError(
                "SecurityProfile 3 needs a charge point certificate: set [security]"
                " client_cert and client_key")
    roots = certificates.csms_roots_pem() if certificates is not None else b""
    try:
        ctx = csms_tls_context(roots, client=client, use_system_store=use_system_store)
    except ValueError as exc:
        raise SecurityConfigError(str(exc)) from exc
    return ctx, headers


class SecurityProfileSwitch:
    """The active SecurityProfile and a raise waiting for its first successful connect."""

    def __init__(self, active: int) -> None:
        self.active = SecurityProfile(active)
        self.pending: SecurityProfile | None = None

    def request(self, profile: int) -> bool:
        """ChangeConfiguration SecurityProfile: True (Accepted) for the same or a higher
        profile — a higher one becomes pending, to be tried at the next connect; False
        (Rejected) for a lower one or a value outside 0–3 (the whitepaper: it may only be
        raised)."""
        try:
            p = SecurityProfile(profile)
        except ValueError:
            return False
        if p < self.active:
            return False
        self.pending = p if p > self.active else None
        return True

    def next_profile(self) -> SecurityProfile:
        """The profile the next connect uses: the pending one, else the active one."""
        return self.pending if self.pending is not None else self.active

    def commit(self) -> SecurityProfile:
        """The connect with the pending profile succeeded: it becomes active (persist it).
        Returns the active profile."""
        if self.pending is not None:
            self.active, self.pending = self.pending, None
        return self.active

    def fall_back(self) -> SecurityProfile:
        """The connect with the pending profile failed: drop it (log a security event);
        returns the profile to reconnect with."""
        self.pending = None
        return self.active
