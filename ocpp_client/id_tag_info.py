"""A stored IdTagInfo (OCPP 1.6 §7.20), as the local auth list and the cache keep it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoredIdTag:
    """An idTag with its IdTagInfo; ``expiry`` is UTC epoch seconds or None (never expires)."""

    id_tag: str
    status: str
    parent_id_tag: str | None
    expiry: float | None

    def valid(self, now: float) -> bool:
        """Accepted and not expired at ``now`` (UTC epoch s)."""
        return self.status == "Accepted" and (self.expiry is None or self.expiry > now)

    def effective_status(self, now: float) -> str:
        """The status at ``now``: an Accepted entry past its expiryDate is ``Expired``."""
        if self.status == "Accepted" and self.expiry is not None and self.expiry <= now:
            return "Expired"
        return self.status
