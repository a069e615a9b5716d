"""The authorization policy: Local Authorization List, Authorization Cache, offline rules
(OCPP 1.6 §3.5; OCPP 2.0.1 C10–C14 follow the same order).

Version-independent: the adapter passes the settings (from its configuration keys), the
request to the CSMS (Authorize.req) and the mapping of the CSMS's status text to the core's
:class:`~evse.authorization.AuthorizationStatus`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ocpp.exceptions import OCPPError, UnknownCallErrorCodeError
from websockets.exceptions import WebSocketException

from evse.authorization import AuthorizationStatus, AuthResult
from evse.domain import AuthSource
from ocpp_client.auth_cache import AuthCache
from ocpp_client.id_tag_info import StoredIdTag
from ocpp_client.local_list import LocalList

log = logging.getLogger(__name__)

#: What a failed request to the CSMS raises: the link, no answer, a CALLERROR.
REQUEST_ERRORS = (OSError, asyncio.TimeoutError, WebSocketException,
                  OCPPError, UnknownCallErrorCodeError)


def parse_expiry(text: str | None) -> float | None:
    """An OCPP dateTime as UTC epoch seconds; None when absent or not a date."""
    if not text:
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    return None


@dataclass(frozen=True)
class AuthSettings:
    """The policy's switches (OCPP 1.6 §9.1 / §9.2 key names in brackets)."""

    local_list_enabled: bool  # LocalAuthListEnabled
    cache_enabled: bool  # AuthorizationCacheEnabled
    local_pre_authorize: bool  # LocalPreAuthorize
    local_authorize_offline: bool  # LocalAuthorizeOffline
    allow_offline_unknown: bool  # AllowOfflineTxForUnknownId
    local_list_max_length: int = 10_000  # LocalAuthListMaxLength
    send_local_list_max_length: int = 1000  # SendLocalListMaxLength


#: Sends Authorize.req for an idTag and returns the IdTagInfo (snake_case dict).
AuthorizeRequest = Callable[[str], Awaitable[Mapping[str, Any]]]


class AuthorizationPolicy:
    """Decides whether an idTag may charge, and keeps the list and the cache.

    Args:
        local_list: the Local Authorization List.
        cache: the Authorization Cache.
        settings: the current switches (read on every decision: the CSMS may change them).
        now: UTC epoch seconds (the core's CSMS-synchronized clock).
        status_of: CSMS status text → core status (unknown text → Invalid).
    """

    def __init__(self, local_list: LocalList, cache: AuthCache,
                 settings: Callable[[], AuthSettings], now: Callable[[], float],
                 status_of: Mapping[str, AuthorizationStatus]) -> None:
        self.local_list = local_list
        self.cache = cache
        self._settings = settings
        self._now = now
        self._status_of = status_of

    def local_entry(self, id_tag: str) -> StoredIdTag | None:
        """The Local Authorization List entry, else the cache entry, for ``id_tag``."""
        settings = self._settings()
        if settings.local_list_enabled:
            entry = self.local_list.get(id_tag)
            if entry is not None:
                return entry
        if settings.cache_enabled:
            return self.cache.get(id_tag)
        return None

    def local_source(self, id_tag: str) -> AuthSource:
        """Where :meth:`local_entry` finds ``id_tag``: the list or the cache."""
        if self._settings().local_list_enabled and self.local_list.get(id_tag) is not None:
            return AuthSource.LOCAL_LIST
        return AuthSource.CACHE

    def known_valid(self, id_tag: str) -> bool:
        """A local entry (list or cache) says Accepted and unexpired."""
        known = self.local_entry(id_tag)
        return known is not None and known.valid(self._now())

    async def authorize(self, id_tag: str, request: AuthorizeRequest | None) -> AuthResult:
        """Decide whether ``id_tag`` may charge (OCPP 1.6 §3.5).

        Order: the Local Authorization List (if enabled), then the Authorization Cache (if
        enabled), then ``request`` (Authorize.req, §4.1; None when offline):

        - online: with LocalPreAuthorize a valid local entry starts at once; otherwise (and
          for unknown, invalid or expired entries) the CSMS decides;
        - offline, or the request failing: with LocalAuthorizeOffline a local entry decides
          (Accepted, or its status — Expired past its expiryDate); an idTag with no local
          entry is accepted only with AllowOfflineTxForUnknownId.
        """
        settings = self._settings()
        now = self._now()
        known = self.local_entry(id_tag)
        if request is not None:
            if known is not None and known.valid(now) and settings.local_pre_authorize:
                return AuthResult(AuthorizationStatus.ACCEPTED, known.parent_id_tag,
                                  source=self.local_source(id_tag))
            try:
                return self.remember(id_tag, await request(id_tag))
            except REQUEST_ERRORS as exc:
                log.warning("Authorize for %s failed (%s): deciding offline", id_tag, exc)
        if settings.local_authorize_offline and known is not None:
            source = self.local_source(id_tag)
            if known.valid(now):
                return AuthResult(AuthorizationStatus.ACCEPTED, known.parent_id_tag,
                                  source=source)
            return AuthResult(self._status_of.get(known.effective_status(now),
                                                  AuthorizationStatus.INVALID), source=source)
        if known is None and settings.allow_offline_unknown:
            return AuthResult(AuthorizationStatus.ACCEPTED, source=AuthSource.OFFLINE_UNKNOWN)
        return AuthResult(AuthorizationStatus.INVALID, source=AuthSource.OFFLINE_UNKNOWN)

    def remember(self, id_tag: str, info: Mapping[str, Any]) -> AuthResult:
        """Use an IdTagInfo from the CSMS: update the cache (§3.5.2; not for idTags on the
        Local Authorization List) and map the status."""
        settings = self._settings()
        status = str(info.get("status", "Invalid"))
        parent = info.get("parent_id_tag")
        on_list = settings.local_list_enabled and self.local_list.get(id_tag) is not None
        if settings.cache_enabled and not on_list:
            self.cache.update(id_tag, status, parent, parse_expiry(info.get("expiry_date")))
        return AuthResult(self._status_of.get(status, AuthorizationStatus.INVALID), parent)

    def send_local_list(self, version: int, update_type: str,
                        entries: list[dict[str, Any]]) -> str:
        """SendLocalList.req (§5.15): the UpdateStatus value (see :mod:`ocpp_client.local_list`)."""
        settings = self._settings()
        if not settings.local_list_enabled:
            return "NotSupported"
        answer = self.local_list.update(
            version, update_type, entries, max_length=settings.local_list_max_length,
            max_send=settings.send_local_list_max_length, parse_expiry=parse_expiry)
        log.info("SendLocalList %s version %d (%d entries): %s", update_type, version,
                 len(entries), answer)
        return answer

    def local_list_version(self) -> int:
        """GetLocalListVersion.conf listVersion (§5.9): -1 when disabled, 0 when empty."""
        if not self._settings().local_list_enabled:
            return -1
        return self.local_list.reported_version()

    def clear_cache(self) -> None:
        """ClearCache (§5.4): empty the Authorization Cache."""
        self.cache.clear()
