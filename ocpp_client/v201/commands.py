"""CSMS commands of OCPP 2.0.1 applied to the core: the station-command port the 2.0.1
handlers (:mod:`.charge_point`) are given.

As in 1.6, each command is a *decision* the ``@on`` handler returns at once and an *action*
the ``@after`` hook starts once the CALLRESULT is out, so a follow-up TransactionEvent or
StatusNotification never overtakes the answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import ocpp_client.v201.mapping as mapping
from evse.authorization import AuthorizationStatus, AuthResult
from evse.clock import Clock
from evse.domain import AuthSource, IdToken, IdTokenType, MeterSample, ReadingContext, StopCause
from evse.session_machine import SessionMachine
from evse.station import Station
from ocpp_client.authorization import AuthorizationPolicy
from ocpp_client.link import LINK_ERRORS
from ocpp_client.v201.device_model import DeviceModel
from ocpp_client.v201.events import EventMapper201

log = logging.getLogger(__name__)

#: requestedMessage values of TriggerMessage this station sends (F06).
TRIGGERABLE = frozenset({"BootNotification", "Heartbeat", "MeterValues", "StatusNotification",
                         "TransactionEvent"})


def id_token_of(payload: dict[str, Any]) -> IdToken:
    """IdTokenType (snake_case dict) → core IdToken (unknown types: Central)."""
    return IdToken(str(payload["id_token"]),
                   mapping.ID_TOKEN_TYPE_OF.get(str(payload.get("type")), IdTokenType.CENTRAL))


class StationCommands201:
    """OCPP 2.0.1 CSMS commands against the Station.

    Args:
        station: the core.
        model: the device model (AuthCtrlr.AuthorizeRemoteStart).
        auth: the authorization policy.
        events: the event mapper (open transactions, remoteStartId).
        clock: the core's clock.
        authorize: authorize an IdToken as for a card.
        send_boot: send a BootNotification now (TriggerMessage).
        send_heartbeat: send a Heartbeat now (TriggerMessage).
    """

    def __init__(self, station: Station, model: DeviceModel, auth: AuthorizationPolicy,
                 events: EventMapper201, clock: Clock,
                 authorize: Callable[[IdToken], Awaitable[AuthResult]],
                 send_boot: Callable[[str], Awaitable[None]],
                 send_heartbeat: Callable[[], Awaitable[None]]) -> None:
        self.station = station
        self.model = model
        self.auth = auth
        self.events = events
        self.clock = clock
        self._authorize = authorize
        self._send_boot = send_boot
        self._send_heartbeat = send_heartbeat
        #: The daemon's hook for Reset ("Soft": restart the firmware).
        self.on_reset: Callable[[str], None] | None = None
        #: Called when a Reset is accepted (the next boot reports RemoteReset).
        self.on_reset_accepted: Callable[[], None] = lambda: None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reset_waiting = False
        #: More requestedMessage values and their senders, registered by other ports
        #: (FirmwareStatusNotification, LogStatusNotification, SignChargingStationCertificate).
        self.more_triggers: dict[str, Callable[[], Awaitable[None]]] = {}

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run ``coro`` as a task this object keeps (and :meth:`cancel_all` ends)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel_all(self) -> None:
        """Cancel every command still running."""
        for task in list(self._tasks):
            task.cancel()

    def _evse(self, evse_id: int | None) -> SessionMachine | None:
        return None if evse_id is None else self.station.evses.get(evse_id)

    # -- RequestStartTransaction (F01, F02) ---------------------------------------------
    def request_start(self, id_token: dict[str, Any], remote_start_id: int,
                      evse_id: int | None) -> tuple[bool, str | None]:
        """(accepted, transactionId of a transaction already open on the EVSE)."""
        if evse_id is not None and self._evse(evse_id) is None:
            return False, None
        token = id_token_of(id_token)
        free = [e for eid, e in self.station.evses.items()
                if (evse_id is None or eid == evse_id) and e.session is None and e.operative]
        if not free:
            return False, None
        target = free[0] if evse_id is None else self._evse(evse_id)
        assert target is not None
        self.events.remote_start_ids[target.evse_id] = remote_start_id
        open_tx = self.events.store.open.get(target.evse_id)
        if (self.model.get_bool("AuthCtrlr", "AuthorizeRemoteStart")
                and not self.auth.known_valid(token.value)):
            self.spawn(self._authorize_then_start(token, target.id))
            return True, None if open_tx is None else open_tx.transaction_id
        started = self.station.remote_start(token, target.id, AuthResult(
            AuthorizationStatus.ACCEPTED, id_token=token, source=AuthSource.REMOTE_START))
        if not started:
            self.events.remote_start_ids.pop(target.evse_id, None)
        return started, None if open_tx is None else open_tx.transaction_id

    async def _authorize_then_start(self, token: IdToken, connector_id: int) -> None:
        result = await self._authorize(token)
        if result.accepted:
            self.station.remote_start(token, connector_id, result)

    # -- RequestStopTransaction (F03) -----------------------------------------------------
    def can_stop(self, transaction_id: str) -> bool:
        """Accepted when the transaction is open here."""
        return self.events.store.by_id(transaction_id) is not None

    def request_stop(self, transaction_id: str) -> None:
        """Stop the energy and end the transaction (after the CALLRESULT)."""
        tx = self.events.store.by_id(transaction_id)
        if tx is None:
            return
        conn = self._evse(tx.evse_id)
        if conn is not None and conn.session is not None:
            self.spawn(self.station.stop_transaction(conn.id, StopCause.REMOTE))
        else:
            self.events.end_without_session(tx, mapping.Trigger.remote_stop.value,
                                            mapping.Reason.remote.value)

    # -- ChangeAvailability (G03, G04) ----------------------------------------------------
    def _targets(self, evse: dict[str, Any] | None) -> list[SessionMachine] | None:
        if evse is None or evse.get("id", 0) == 0:
            return list(self.station.evses.values())
        conn = self._evse(int(evse["id"]))
        if conn is None or evse.get("connector_id", 1) != 1:
            return None
        return [conn]

    def availability_answer(self, evse: dict[str, Any] | None) -> str:
        """"Accepted", "Scheduled" (a transaction runs on a target) or "Rejected"."""
        targets = self._targets(evse)
        if targets is None:
            return "Rejected"
        return "Scheduled" if any(c.session is not None for c in targets) else "Accepted"

    def change_availability(self, evse: dict[str, Any] | None, operative: bool) -> None:
        """Apply ChangeAvailability (after the CALLRESULT)."""
        for conn in self._targets(evse) or []:
            self.station.change_availability(conn.id, operative)

    # -- UnlockConnector (F05) ----------------------------------------------------------
    async def unlock(self, evse_id: int, connector_id: int) -> str:
        """UnlockStatusEnumType: a connector with an authorized transaction stays locked."""
        conn = self._evse(evse_id)
        if conn is None or connector_id != 1:
            return "UnknownConnector"
        if conn.session is not None:
            return "OngoingAuthorizedTransaction"
        answer = await self.station.unlock(conn.id)
        return "Unlocked" if answer == "unlocked" else "UnlockFailed"

    # -- Reset (B11, B12) ---------------------------------------------------------------
    def reset_answer(self, kind: str, evse_id: int | None) -> str:
        """"Accepted", "Scheduled" (OnIdle while a transaction runs) or "Rejected"."""
        if evse_id is not None and self._evse(evse_id) is None:
            return "Rejected"
        busy = any(c.session is not None for c in self.station.evses.values()
                   if evse_id in (None, c.evse_id))
        return "Scheduled" if kind == "OnIdle" and busy else "Accepted"

    def reset(self, kind: str, evse_id: int | None) -> None:
        """Immediate: stop the transactions (ImmediateReset), then restart; OnIdle: wait
        until no transaction runs. An EVSE reset ends that EVSE's transaction only."""
        async def do_reset() -> None:
            targets = [c for c in self.station.evses.values() if evse_id in (None, c.evse_id)]
            if kind == "OnIdle":
                while any(c.session is not None for c in targets):
                    await asyncio.sleep(0.5)
            for conn in targets:
                if conn.session is not None:
                    await self.station.stop_transaction(conn.id, StopCause.RESET_SOFT)
            if evse_id is None:
                self.on_reset_accepted()
                if self.on_reset is not None:
                    self.on_reset("Soft")
        self.spawn(do_reset())

    # -- TriggerMessage (F06) ------------------------------------------------------------
    def trigger_answer(self, requested: str, evse: dict[str, Any] | None) -> str:
        """"Accepted", "Rejected" (no such EVSE) or "NotImplemented"."""
        if evse is not None and self._evse(int(evse.get("id", 0))) is None:
            return "Rejected"
        return ("Accepted" if requested in TRIGGERABLE or requested in self.more_triggers
                else "NotImplemented")

    async def triggered(self, requested: str, evse: dict[str, Any] | None) -> None:
        """Send the message a TriggerMessage asked for (after the CALLRESULT)."""
        wanted = None if evse is None else int(evse.get("id", 0))
        try:
            if requested == "BootNotification":
                await self._send_boot("Triggered")
            elif requested == "Heartbeat":
                await self._send_heartbeat()
            elif requested == "StatusNotification":
                for conn in self.station.evses.values():
                    if wanted in (None, conn.evse_id):
                        self.events.send_status(conn.evse_id, conn.state)
            elif requested == "MeterValues":
                for conn in self.station.evses.values():
                    if wanted in (None, conn.evse_id) and conn.last_reading is not None:
                        sid = conn.session.session_id if conn.session else None
                        reading = dataclasses.replace(conn.last_reading,
                                                      timestamp=self.clock.now())
                        self.events.on_event(MeterSample(conn.id, sid, reading,
                                                         ReadingContext.TRIGGER, conn.evse_id))
            elif requested in self.more_triggers:
                await self.more_triggers[requested]()
            elif requested == "TransactionEvent":
                for evse_id, tx in list(self.events.store.open.items()):
                    if wanted in (None, evse_id):
                        self.events.triggered_update(tx)
        except LINK_ERRORS as exc:
            log.warning("triggered %s not sent: %s", requested, exc)
