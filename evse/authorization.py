"""The authorization port: how the core asks whether an IdToken may charge.

The OCPP adapter implements :class:`Authorizer` (local list, cache, the CSMS; OCPP 1.6 §3.5,
OCPP 2.0.1 C01). Without an adapter, :class:`DenyAll` refuses every IdToken.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from evse.domain import AuthSource, IdToken


class AuthorizationStatus(enum.Enum):
    """Outcome of an authorization."""

    ACCEPTED = "accepted"
    BLOCKED = "blocked"
    EXPIRED = "expired"
    INVALID = "invalid"
    CONCURRENT_TX = "concurrent_tx"


@dataclass(frozen=True)
class AuthResult:
    """An authorization answer for ``id_token``, decided by ``source``; ``parent_id_tag``
    groups IdTokens of one account (a card of the group may stop the others' transactions).
    """

    status: AuthorizationStatus
    parent_id_tag: str | None = None
    id_token: IdToken | None = None
    source: AuthSource = AuthSource.CSMS

    @property
    def accepted(self) -> bool:
        return self.status is AuthorizationStatus.ACCEPTED


class Authorizer(Protocol):
    """Decides whether an IdToken may start (or stop) a transaction."""

    async def authorize(self, id_token: IdToken) -> AuthResult:
        """Authorize ``id_token``; never raises for network trouble (answers from local
        data)."""
        ...


class DenyAll:
    """The authorizer used before an adapter is attached: refuses every IdToken."""

    async def authorize(self, id_token: IdToken) -> AuthResult:
        return AuthResult(AuthorizationStatus.INVALID, id_token=id_token)
