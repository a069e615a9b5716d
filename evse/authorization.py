"""The authorization port: how the core asks whether an idTag may charge.

The OCPP adapter implements :class:`Authorizer` (local list, cache, Authorize.req; OCPP 1.6
§3.5). Without an adapter, :class:`DenyAll` refuses every card.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class AuthorizationStatus(enum.Enum):
    """Outcome of an authorization (OCPP 1.6 AuthorizationStatus, §7.2)."""

    ACCEPTED = "accepted"
    BLOCKED = "blocked"
    EXPIRED = "expired"
    INVALID = "invalid"
    CONCURRENT_TX = "concurrent_tx"


@dataclass(frozen=True)
class AuthResult:
    """An authorization answer; ``parent_id_tag`` groups cards of one account."""

    status: AuthorizationStatus
    parent_id_tag: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status is AuthorizationStatus.ACCEPTED


class Authorizer(Protocol):
    """Decides whether an idTag may start (or stop) a transaction."""

    async def authorize(self, id_tag: str) -> AuthResult:
        """Authorize ``id_tag``; never raises for network trouble (answers from local data)."""
        ...


class DenyAll:
    """The authorizer used before an adapter is attached: refuses every idTag."""

    async def authorize(self, id_tag: str) -> AuthResult:
        return AuthResult(AuthorizationStatus.INVALID)
