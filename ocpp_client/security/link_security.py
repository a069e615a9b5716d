"""What the link keeper asks before each connect to the CSMS and tells after it: one
object over the security profile, the AuthorizationKey, the CSMS roots and the charge
point certificate (1.6 security whitepaper ed. 3, "Security profiles" and
"Certificate management"; OCPP 2.0.1 A02, A05).

A pending change is tried one at a time, so a failure is blamed on the right one: first a
SecurityProfile raise (with the committed client certificate), then a certificate from
CertificateSigned. After a successful connect the tried change is committed (and a
fallback CSMS root dropped once the CSMS shows a certificate of the new root); after a
failed one it is dropped and the station reconnects as before.

Wiring (link keeper)::

    attempt = security.prepare(config_url)
    try:
        async with websockets.asyncio.client.connect(f"{attempt.url}/{station_id}", ssl=attempt.ssl,
                                      additional_headers=attempt.headers, ...) as ws:
            changes = security.connected(attempt, peer_certificate_der(ws))
            # persist changes.profile as SecurityProfile when set; log
            # ReconfigurationOfSecurityParameters for it
            ...
    except LINK_ERRORS as exc:
        event = security.failed(attempt, exc)   # queue + log it when not None
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from ocpp_client.security.authorization_key import AuthorizationKeyStore
from ocpp_client.security.certificate_store import CertificateStore
from ocpp_client.security.charge_point_certificate import ChargePointCertificate
from ocpp_client.security.connect_failures import classify_connect_failure
from ocpp_client.security.events import SecurityEventType
from ocpp_client.security.profiles import (
    SecurityConfigError,
    SecurityProfile,
    SecurityProfileSwitch,
    connection_options,
    url_for_profile,
)


@dataclass(frozen=True)
class ConnectAttempt:
    """The options of one connect and which pending change it tries."""

    url: str
    profile: SecurityProfile
    ssl: ssl.SSLContext | None
    headers: dict[str, str]
    tries_profile_raise: bool
    tries_new_certificate: bool


@dataclass(frozen=True)
class ConnectedChanges:
    """What a successful connect committed."""

    #: the new SecurityProfile to persist, or None when unchanged
    profile: SecurityProfile | None = None
    new_certificate: bool = False
    csms_root_fallback_dropped: bool = False


class LinkSecurity:
    """Security state the link keeper consults around every connect."""

    def __init__(self, station_id: str, profile: SecurityProfileSwitch,
                 keys: AuthorizationKeyStore, certificates: CertificateStore,
                 charge_point_certificate: ChargePointCertificate, *,
                 use_system_store: bool = False) -> None:
        self.station_id = station_id
        self.profile = profile
        self.keys = keys
        self.certificates = certificates
        self.charge_point_certificate = charge_point_certificate
        self.use_system_store = use_system_store

    def missing_for(self, profile: int, url: str) -> str | None:
        """Why the station cannot connect with ``profile`` (a key, root or certificate is
        missing), or None: ChangeConfiguration SecurityProfile answers Rejected when not
        None (OCPP 2.0.1 A05.FR.02/03)."""
        try:
            connection_options(profile, url_for_profile(url, profile), self.station_id,
                               self.certificates, self.keys, self.charge_point_certificate,
                               use_system_store=self.use_system_store)
        except (SecurityConfigError, ValueError, OSError) as exc:
            return str(exc)
        return None

    def prepare(self, url: str) -> ConnectAttempt:
        """Options for the next connect to ``url`` (``[ocpp] url``, scheme adjusted to a
        raised profile).

        Raises:
            SecurityConfigError: the profile lacks a key, root or certificate.
            ssl.SSLError / OSError: a certificate or key file cannot be loaded.
        """
        raising = self.profile.pending is not None
        new_cert = (not raising and self.charge_point_certificate.has_pending
                    and self.profile.active is SecurityProfile.TLS_CLIENT_CERTIFICATE)
        profile = self.profile.next_profile()
        url = url_for_profile(url, profile)
        ctx, headers = connection_options(
            profile, url, self.station_id, self.certificates, self.keys,
            self.charge_point_certificate, try_pending_certificate=new_cert,
            use_system_store=self.use_system_store)
        return ConnectAttempt(url, profile, ctx, headers, raising, new_cert)

    def connected(self, attempt: ConnectAttempt,
                  peer_certificate_der: bytes | None) -> ConnectedChanges:
        """The WebSocket opened: commit what ``attempt`` tried."""
        profile = self.profile.commit() if attempt.tries_profile_raise else None
        if attempt.tries_new_certificate:
            self.charge_point_certificate.commit()
        dropped = (attempt.ssl is not None
                   and self.certificates.commit_csms_root(peer_certificate_der))
        return ConnectedChanges(profile, attempt.tries_new_certificate, dropped)

    def failed(self, attempt: ConnectAttempt, exc: BaseException) -> SecurityEventType | None:
        """The connect failed with ``exc``: drop what ``attempt`` tried; the security event
        to log (and queue when critical), or None."""
        if attempt.tries_profile_raise:
            self.profile.fall_back()
        if attempt.tries_new_certificate:
            self.charge_point_certificate.roll_back()
        client_cert = attempt.profile is SecurityProfile.TLS_CLIENT_CERTIFICATE
        return classify_connect_failure(exc, client_certificate_sent=client_cert)


def peer_certificate_der(connection: Any) -> bytes | None:
    """The CSMS's certificate (DER) of an open ``websockets`` connection, or None for
    ``ws://``."""
    ssl_object = connection.transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return bytes(der) if der else None
