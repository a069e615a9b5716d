"""When a transaction starts and stops: a policy the protocol adapter sets, not a rule of the core.

The points are the session's facts (IEC 61851 and authorization), in the spirit of OCPP 2.0.1
TxStartPoint / TxStopPoint (E01, E06): the OCPP 1.6 adapter sets :meth:`TxPolicy.ocpp16`
("authorized and EV connected" starts; the card, a deauthorization, or an EV-side
disconnect per StopTransactionOnEVSideDisconnect stops, OCPP 1.6 §3.6, §9.1.29); a 2.0.1
adapter builds one from its TxStartPoint / TxStopPoint variables with
:meth:`TxPolicy.any_of`.

The core today runs a transaction only once authorized (its energy is authorized), so a
start point list without :attr:`TxPoint.AUTHORIZED` still waits for an authorization before
power flows; the policy decides the instant the transaction is opened and closed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class TxPoint(enum.Enum):
    """A fact of the session a transaction's start or stop can be tied to."""

    EV_CONNECTED = "ev_connected"  # control pilot out of state A
    AUTHORIZED = "authorized"  # an IdToken accepted for this EVSE
    POWER_PATH_CLOSED = "power_path_closed"  # contactor closed
    ENERGY_TRANSFER = "energy_transfer"  # the EV draws energy (state C/D, power on)


@dataclass(frozen=True)
class TxPolicy:
    """``start``: the points that open a transaction (all of them with ``start_all``,
    else the first one reached); ``stop``: the points whose loss closes it.

    Losing :attr:`TxPoint.AUTHORIZED` means the IdToken (or one of its group) was presented
    again, or the authorization was withdrawn (deauthorized).
    """

    start: frozenset[TxPoint]
    stop: frozenset[TxPoint]
    start_all: bool = True

    @classmethod
    def ocpp16(cls, stop_on_ev_disconnect: bool = True) -> TxPolicy:
        """OCPP 1.6: authorized + EV connected → start (§3.6); the card or a
        deauthorization stops, and an EV-side disconnect when StopTransactionOnEVSideDisconnect
        is true (§9.1.29)."""
        stop = {TxPoint.AUTHORIZED}
        if stop_on_ev_disconnect:
            stop.add(TxPoint.EV_CONNECTED)
        return cls(frozenset({TxPoint.AUTHORIZED, TxPoint.EV_CONNECTED}), frozenset(stop))

    @classmethod
    def any_of(cls, start: Iterable[TxPoint], stop: Iterable[TxPoint]) -> TxPolicy:
        """OCPP 2.0.1 style: the first start point reached opens the transaction
        (TxStartPoint), the loss of any stop point closes it (TxStopPoint)."""
        return cls(frozenset(start), frozenset(stop), start_all=False)

    def should_start(self, facts: Iterable[TxPoint]) -> bool:
        """Whether a transaction opens given the ``facts`` that hold now."""
        held = set(facts)
        if self.start_all:
            return self.start <= held
        return bool(self.start & held)

    def stops_on_loss_of(self, point: TxPoint) -> bool:
        """Whether losing ``point`` closes a running transaction."""
        return point in self.stop


__all__ = ["TxPoint", "TxPolicy"]
