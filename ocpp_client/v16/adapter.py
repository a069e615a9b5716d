"""The OCPP 1.6J adapter: keeps the CSMS link, maps domain events to CALLs and CSMS
commands to Station commands, and authorizes idTags for the core.

Link keeping (OCPP 1.6 §4.2, §4.6): connect to ``<url>/<station id>`` with subprotocol
``ocpp1.6``, BootNotification until Accepted (retrying after ``interval`` while Pending or
Rejected), then StatusNotification for every connector, Heartbeat every HeartbeatInterval,
WebSocket pings every WebSocketPingInterval, and the transaction queue. On loss: reconnect
forever with the ``websockets`` library's exponential backoff (jittered first delay).

Offline operation (docs/offline-delivery.md): transaction messages go through the durable
:class:`~ocpp_client.queue.Outbox`; StatusNotification / Heartbeat are never queued (the
current status of every connector is sent once after each reconnect). One CALL is
outstanding at a time (OCPP-J §4.1.1): the live sender and the queue sender share the
``ocpp`` library's FIFO call lock, so a live message waits for at most one queued CALL, and
connectors take turns in the queue so a backlog on one does not starve a live session on
another. Timestamps come from the core's :class:`~evse.clock.Clock`, which the CSMS time
(BootNotification / Heartbeat ``currentTime``) synchronizes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import websockets
from ocpp.exceptions import OCPPError
from ocpp.v16 import call
from ocpp.v16.enums import RegistrationStatus
from websockets.client import backoff

from evse import __version__
from evse.authorization import AuthorizationStatus, AuthResult
from evse.config import Config
from evse.domain import (
    AuthSource,
    DomainEvent,
    IdToken,
    IdTokenType,
    MeterSample,
    ReadingContext,
    SessionStateChanged,
    StopCause,
    TransactionStarted,
    TransactionStopped,
)
from evse.state_db import transaction
from evse.station import Station
from evse.tx_policy import TxPolicy
from ocpp_client.auth_cache import AuthCache
from ocpp_client.id_tag_info import StoredIdTag
from ocpp_client.local_list import LocalList
from ocpp_client.queue import (
    KIND_BEGIN,
    KIND_OTHER,
    KIND_PERIODIC,
    KIND_START,
    KIND_STOP,
    Outbox,
    QueuedMessage,
    TransactionIds,
)
from ocpp_client.v16 import mapping
from ocpp_client.v16.charge_point import ChargePoint16
from ocpp_client.v16.configuration import Configuration, check_toml_defaults
from ocpp_client.v16.meter_values import iso_timestamp, meter_value, shift_timestamps

log = logging.getLogger(__name__)

#: The CALL dataclass for each queued action.
_CALLS: dict[str, Any] = {
    "StartTransaction": call.StartTransaction,
    "StopTransaction": call.StopTransaction,
    "MeterValues": call.MeterValues,
}

_LINK_ERRORS = (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException)

_KIND = {
    ReadingContext.TRANSACTION_BEGIN: KIND_BEGIN,
    ReadingContext.PERIODIC: KIND_PERIODIC,
}


def check_config(config: Config) -> list[str]:
    """Adapter-specific config problems (``[ocpp.configuration]`` keys), file-prefixed."""
    return [f"{config.path}: {e}" for e in check_toml_defaults(config.ocpp["configuration"])]


def _parse_expiry(text: str | None) -> float | None:
    if not text:
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    return None


class Ocpp16Adapter:
    """Attach OCPP 1.6J to a :class:`Station`.

    Args:
        station: the core.
        config: the loaded configuration (``[ocpp]``, ``[station]``).
        db: the state database (queue, transaction ids, cache, configuration keys).
    """

    def __init__(self, station: Station, config: Config, db: sqlite3.Connection) -> None:
        self.station = station
        self.config = config
        self.url = config.ocpp_url.rstrip("/") + "/" + config.station_id
        self.configuration = Configuration(
            db, config.ocpp["configuration"],
            fixed={"NumberOfConnectors": len(station.connectors)},
        )
        self.clock = station.clock
        self.outbox = Outbox(
            db,
            max_messages=int(config.ocpp.get("queue_max_messages", 100_000)),
            max_bytes=int(float(config.ocpp.get("queue_max_mb", 64.0)) * 1024 * 1024),
            run_id=self.clock.run_id,
        )
        self.transactions = TransactionIds(db)
        self.cache = AuthCache(db)
        self.local_list = LocalList(db)
        self._db = db
        self.cp: ChargePoint16 | None = None
        #: disconnected, connecting, booting, pending, rejected, accepted
        self.link_state = "disconnected"
        self.on_reset: Callable[[str], None] | None = None
        self._online = asyncio.Event()
        self._live: asyncio.Queue[Any] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        station.authorizer = self
        self.clock.on_first_sync(self._clock_corrected)
        station.subscribe(self._on_event)
        self.configuration.on_change(lambda _k, _v: self._apply_configuration())
        self._apply_configuration()

    def _apply_configuration(self) -> None:
        self.station.connection_timeout_s = float(self.configuration.get_int("ConnectionTimeOut"))
        self.station.sample_interval_s = float(
            self.configuration.get_int("MeterValueSampleInterval"))
        # OCPP 1.6's transaction rule (§3.6, §9.1.29): authorized + EV connected starts;
        # the card, a deauthorization or (per the key) an EV-side disconnect stops.
        self.station.tx_policy = TxPolicy.ocpp16(self.configuration.get_bool(
            "StopTransactionOnEVSideDisconnect"))
        self.station.unlock_on_ev_disconnect = self.configuration.get_bool(
            "UnlockConnectorOnEVSideDisconnect")

    @property
    def online(self) -> bool:
        """Booted (Accepted) and connected."""
        return self._online.is_set()

    def describe(self) -> dict[str, Any]:
        """JSON-able link state for ``evse status``."""
        return {"state": self.link_state, "url": self.url, "queued": len(self.outbox),
                "queued_bytes": self.outbox.size_bytes, "dropped": self.outbox.dropped,
                "thinned": self.outbox.thinned, "clock_synced": self.clock.synced}

    def transaction_ref(self, session_id: int) -> str | None:
        """The transactionId the CSMS gave local session ``session_id``, as text."""
        transaction_id = self.transactions.transaction_id(session_id)
        return None if transaction_id is None else str(transaction_id)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- domain events → CALLs ----------------------------------------------------------
    def _on_event(self, event: DomainEvent) -> None:
        # Timestamps this run stamped before its first CSMS time get corrected later; an
        # interrupted session's stop time comes from the DB and is kept as persisted.
        synced = self.clock.synced or (
            isinstance(event, TransactionStopped)
            and not self.clock.stamped_unsynced(event.timestamp))
        if isinstance(event, SessionStateChanged):
            if self.online:
                self._live.put_nowait(self._status_call(event))
        elif isinstance(event, TransactionStarted):
            self.outbox.put("StartTransaction", {
                "connector_id": event.connector_id,
                "id_tag": event.id_tag,
                "meter_start": event.meter_start_wh,
                "timestamp": iso_timestamp(event.timestamp),
            }, event.connector_id, event.session_id, KIND_START, synced)
        elif isinstance(event, MeterSample):
            self._queue_meter_values(event)
        elif isinstance(event, TransactionStopped):
            payload: dict[str, Any] = {
                "meter_stop": event.meter_stop_wh,
                "timestamp": iso_timestamp(event.timestamp),
                "reason": mapping.stop_reason(event).value,
            }
            if event.id_tag:
                payload["id_tag"] = event.id_tag
            measurands = self.configuration.get_list("StopTxnSampledData")
            if event.reading is not None and measurands:
                phases = self._phases(event.connector_id)
                payload["transaction_data"] = [meter_value(
                    event.reading, measurands,
                    mapping.CONTEXT[ReadingContext.TRANSACTION_END].value, phases)]
            self.outbox.put("StopTransaction", payload, event.connector_id, event.session_id,
                            KIND_STOP, synced)

    def _phases(self, connector_id: int) -> int:
        for conn in self.config.connectors:
            if conn.id == connector_id:
                return conn.phases
        return 3

    def _queue_meter_values(self, event: MeterSample) -> None:
        measurands = self.configuration.get_list("MeterValuesSampledData")
        if not measurands:
            return
        conn = self.station.connectors.get(event.connector_id)
        value = meter_value(event.reading, measurands, mapping.CONTEXT[event.context].value,
                            self._phases(event.connector_id),
                            conn.offered_current_a() if conn else None)
        payload = {"connector_id": event.connector_id, "meter_value": [value]}
        if event.session_id is None:
            if self.online:
                self._live.put_nowait(call.MeterValues(**payload))
            return
        self.outbox.put("MeterValues", payload, event.connector_id, event.session_id,
                        _KIND.get(event.context, KIND_OTHER), self.clock.synced)

    def _status_call(self, event: SessionStateChanged) -> call.StatusNotification:
        status, error_code = mapping.status_of(event)
        return call.StatusNotification(
            connector_id=event.connector_id,
            error_code=error_code,
            status=status,
            info=event.info[:50] or None,
            # The core's clock, not the event's system time (which may say 1970).
            timestamp=iso_timestamp(self.clock.now()),
        )

    # -- authorization port ---------------------------------------------------------------
    def _local_entry(self, id_tag: str) -> StoredIdTag | None:
        """The Local Authorization List entry, else the cache entry, for ``id_tag``."""
        if self.configuration.get_bool("LocalAuthListEnabled"):
            entry = self.local_list.get(id_tag)
            if entry is not None:
                return entry
        if self.configuration.get_bool("AuthorizationCacheEnabled"):
            return self.cache.get(id_tag)
        return None

    def _local_source(self, id_tag: str) -> AuthSource:
        """Where :meth:`_local_entry` found ``id_tag``: the list or the cache."""
        if (self.configuration.get_bool("LocalAuthListEnabled")
                and self.local_list.get(id_tag) is not None):
            return AuthSource.LOCAL_LIST
        return AuthSource.CACHE

    async def authorize(self, id_token: IdToken | str) -> AuthResult:
        """Decide whether ``id_token`` may charge (OCPP 1.6 §3.5; 1.6 knows only the
        idTag value). The answer carries the IdToken and who decided."""
        token = (id_token if isinstance(id_token, IdToken)
                 else IdToken(id_token, IdTokenType.ISO14443))
        result = await self._decide(token.value)
        return dataclasses.replace(result, id_token=token)

    async def _decide(self, id_tag: str) -> AuthResult:
        """Decide whether ``id_tag`` may charge (OCPP 1.6 §3.5).

        Order: the Local Authorization List (if ``LocalAuthListEnabled``), then the
        Authorization Cache (if ``AuthorizationCacheEnabled``), then Authorize.req (§4.1):

        - online: with ``LocalPreAuthorize`` a valid local entry starts at once; otherwise
          (and for unknown, invalid or expired entries) Authorize.req decides;
        - offline, or Authorize.req failing: with ``LocalAuthorizeOffline`` a local entry
          decides (Accepted, or its status — Expired past its expiryDate); an idTag with no
          local entry is accepted only with ``AllowOfflineTxForUnknownId``.
        """
        now = self.clock.now()
        known = self._local_entry(id_tag)
        if self.online:
            if (known is not None and known.valid(now)
                    and self.configuration.get_bool("LocalPreAuthorize")):
                return AuthResult(AuthorizationStatus.ACCEPTED, known.parent_id_tag,
                                  source=self._local_source(id_tag))
            cp = self.cp
            assert cp is not None
            try:
                result = await cp.call(call.Authorize(id_tag=id_tag), suppress=False)
                return self._id_tag_info(id_tag, result.id_tag_info)
            except (*_LINK_ERRORS, OCPPError) as exc:
                log.warning("Authorize for %s failed (%s): deciding offline", id_tag, exc)
        if self.configuration.get_bool("LocalAuthorizeOffline") and known is not None:
            source = self._local_source(id_tag)
            if known.valid(now):
                return AuthResult(AuthorizationStatus.ACCEPTED, known.parent_id_tag,
                                  source=source)
            return AuthResult(mapping.AUTH_STATUS.get(known.effective_status(now),
                                                      AuthorizationStatus.INVALID),
                              source=source)
        if known is None and self.configuration.get_bool("AllowOfflineTxForUnknownId"):
            return AuthResult(AuthorizationStatus.ACCEPTED, source=AuthSource.OFFLINE_UNKNOWN)
        return AuthResult(AuthorizationStatus.INVALID, source=AuthSource.OFFLINE_UNKNOWN)

    def _id_tag_info(self, id_tag: str, info: dict[str, Any]) -> AuthResult:
        """Use an IdTagInfo from the CSMS: update the cache (§3.5.2; not for idTags on the
        Local Authorization List) and map the status."""
        status = str(info.get("status", "Invalid"))
        parent = info.get("parent_id_tag")
        on_list = (self.configuration.get_bool("LocalAuthListEnabled")
                   and self.local_list.get(id_tag) is not None)
        if self.configuration.get_bool("AuthorizationCacheEnabled") and not on_list:
            self.cache.update(id_tag, status, parent, _parse_expiry(info.get("expiry_date")))
        return AuthResult(mapping.AUTH_STATUS.get(status, AuthorizationStatus.INVALID), parent)

    def send_local_list(self, version: int, update_type: str,
                        entries: list[dict[str, Any]]) -> str:
        """SendLocalList.req (§5.15): the UpdateStatus value (see :mod:`ocpp_client.local_list`)."""
        if not self.configuration.get_bool("LocalAuthListEnabled"):
            return "NotSupported"
        answer = self.local_list.update(
            version, update_type, entries,
            max_length=self.configuration.get_int("LocalAuthListMaxLength"),
            max_send=self.configuration.get_int("SendLocalListMaxLength"),
            parse_expiry=_parse_expiry)
        log.info("SendLocalList %s version %d (%d entries): %s", update_type, version,
                 len(entries), answer)
        return answer

    def local_list_version(self) -> int:
        """GetLocalListVersion.conf listVersion (§5.9): -1 when disabled, 0 when empty."""
        if not self.configuration.get_bool("LocalAuthListEnabled"):
            return -1
        return self.local_list.reported_version()

    # -- CSMS commands ------------------------------------------------------------------
    async def remote_start(self, id_tag: str, connector_id: int | None) -> bool:
        """RemoteStartTransaction (§5.11). With AuthorizeRemoteTxRequests the idTag is
        authorized first; otherwise the CSMS's request is the authorization."""
        if connector_id is not None and connector_id <= 0:
            return False
        if self.configuration.get_bool("AuthorizeRemoteTxRequests"):
            known = self._local_entry(id_tag)
            if known is None or not known.valid(self.clock.now()):
                self._spawn(self._authorize_then_start(id_tag, connector_id))
                return True
        token = IdToken(id_tag, IdTokenType.CENTRAL)
        return self.station.remote_start(token, connector_id, AuthResult(
            AuthorizationStatus.ACCEPTED, id_token=token, source=AuthSource.REMOTE_START))

    async def _authorize_then_start(self, id_tag: str, connector_id: int | None) -> None:
        token = IdToken(id_tag, IdTokenType.CENTRAL)
        result = await self.authorize(token)
        if result.accepted:
            self.station.remote_start(token, connector_id, result)

    def remote_stop(self, transaction_id: int) -> bool:
        """RemoteStopTransaction (§5.12): Accepted when the transaction runs here."""
        session_id = self.transactions.session_id(transaction_id)
        conn = self.station.session_by_id(session_id) if session_id is not None else None
        if conn is None:
            return False
        self._spawn(self.station.stop_transaction(conn.id, StopCause.REMOTE))
        return True

    def reset(self, kind: str) -> None:
        """Reset (§5.14): stop transactions (SoftReset / HardReset), then hand over to the
        daemon's reset hook."""
        async def do_reset() -> None:
            cause = StopCause.RESET_HARD if kind == "Hard" else StopCause.RESET_SOFT
            await self.station.stop_all(cause)
            if self.on_reset is not None:
                self.on_reset(kind)
        self._spawn(do_reset())

    async def triggered(self, requested: str, connector_id: int | None) -> None:
        """Send the message a TriggerMessage asked for (§5.17)."""
        cp = self.cp
        if cp is None:
            return
        try:
            if requested == "BootNotification":
                await cp.call(self._boot_call())
            elif requested == "Heartbeat":
                await self._heartbeat(cp)
            elif requested == "StatusNotification":
                for conn in self.station.connectors.values():
                    if connector_id in (None, 0, conn.id):
                        conn.publish()
            elif requested == "MeterValues":
                for conn in self.station.connectors.values():
                    if connector_id in (None, 0, conn.id) and conn.last_reading is not None:
                        sid = conn.session.session_id if conn.session else None
                        reading = dataclasses.replace(conn.last_reading,
                                                      timestamp=self.clock.now())
                        self._queue_meter_values(MeterSample(
                            conn.id, sid, reading, ReadingContext.TRIGGER, conn.evse_id))
        except _LINK_ERRORS as exc:
            log.warning("triggered %s not sent: %s", requested, exc)

    # -- link -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Keep the link up forever (cancel to stop); also runs the meter value sampler."""
        ocpp = self.config.ocpp
        delays = backoff(ocpp["reconnect_min_s"], ocpp["reconnect_min_s"],
                         ocpp["reconnect_max_s"])
        while True:
            self.link_state = "connecting"
            try:
                async with websockets.connect(
                    self.url,
                    subprotocols=[websockets.Subprotocol("ocpp1.6")],
                    ping_interval=self.configuration.get_int("WebSocketPingInterval") or None,
                    open_timeout=10,
                    # A stalled link must not hold the reconnect up for long.
                    close_timeout=2,
                ) as ws:
                    delays = backoff(ocpp["reconnect_min_s"], ocpp["reconnect_min_s"],
                                     ocpp["reconnect_max_s"])
                    log.info("connected to CSMS %s", self.url)
                    await self._serve(ws)
            except _LINK_ERRORS as exc:
                log.warning("CSMS link %s: %s", self.url, exc or type(exc).__name__)
            except OCPPError as exc:
                log.error("CSMS answered BootNotification with %s: reconnecting", exc)
            except Exception:  # a bug must not end the link for good
                log.exception("CSMS link %s: unexpected error", self.url)
            finally:
                self._go_offline()
            delay = next(delays)
            log.info("reconnecting in %.1f s", delay)
            await asyncio.sleep(delay)

    def _go_offline(self) -> None:
        if self._online.is_set():
            log.warning("CSMS link down")
        self._online.clear()
        self.link_state = "disconnected"
        self.cp = None
        while not self._live.empty():  # status is re-sent fresh on reconnect, not stale
            self._live.get_nowait()
        self.outbox.release()

    async def _serve(self, ws: Any) -> None:
        cp = ChargePoint16(self.config.station_id, ws, self,
                           response_timeout=self.config.ocpp["call_timeout_s"])
        self.cp = cp
        reader = asyncio.ensure_future(cp.start())
        workers: list[asyncio.Future[Any]] = []
        try:
            boot = asyncio.ensure_future(self._boot(cp))
            await asyncio.wait({reader, boot}, return_when=asyncio.FIRST_COMPLETED)
            if not boot.done():
                boot.cancel()
                reader.result()  # raises the link error
                return
            interval = boot.result()
            self._online.set()
            self.link_state = "accepted"
            # Current status of every connector once (OCPP 1.6 §4.9), never stale ones.
            await cp.call(call.StatusNotification(
                connector_id=0, error_code="NoError", status="Available",
                timestamp=iso_timestamp(self.clock.now())))
            self.station.publish_all_statuses()
            workers = [asyncio.ensure_future(c) for c in (
                self._heartbeats(cp, interval), self._send_live(cp), self._send_queued(cp))]
            done, _ = await asyncio.wait({reader, *workers}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in (reader, *workers):
                task.cancel()
            await asyncio.gather(reader, *workers, return_exceptions=True)

    def _boot_call(self) -> call.BootNotification:
        station = self.config.station
        return call.BootNotification(
            charge_point_vendor=station["vendor"],
            charge_point_model=station["model"],
            charge_point_serial_number=station["serial_number"] or None,
            firmware_version=__version__,
        )

    async def _boot(self, cp: ChargePoint16) -> int:
        """BootNotification until Accepted (§4.2); returns the heartbeat interval, s."""
        self.link_state = "booting"
        while True:
            result = await cp.call(self._boot_call(), suppress=False)
            self._set_clock(result.current_time)
            if result.status == RegistrationStatus.accepted:
                log.info("BootNotification accepted (heartbeat %d s)", result.interval)
                if result.interval > 0:
                    self.configuration.change("HeartbeatInterval", str(result.interval))
                return self.configuration.get_int("HeartbeatInterval")
            self.link_state = str(result.status).lower()
            wait = result.interval if result.interval > 0 else 30
            log.warning("BootNotification %s: retrying in %d s", result.status, wait)
            await asyncio.sleep(wait)

    def now(self) -> float:
        """CSMS-aligned UTC epoch seconds (the core's clock)."""
        return self.clock.now()

    def _set_clock(self, current_time: str) -> None:
        """Synchronize the core's clock with a CSMS ``currentTime`` (§4.2, §4.6)."""
        csms = _parse_expiry(current_time)
        if csms is not None:
            self.clock.sync(csms)

    def _clock_corrected(self, correction_s: float) -> None:
        """First CSMS time of this run: shift queued timestamps stamped before it."""
        rows = self.outbox.correct_timestamps(
            lambda payload: shift_timestamps(payload, correction_s))
        if rows:
            log.info("clock synchronized: %d queued message(s) re-stamped by %+.3f s",
                     rows, correction_s)

    async def _heartbeat(self, cp: ChargePoint16) -> None:
        result = await cp.call(call.Heartbeat())
        if result is not None:
            self._set_clock(result.current_time)

    async def _heartbeats(self, cp: ChargePoint16, interval: int) -> None:
        while True:
            await asyncio.sleep(self.configuration.get_int("HeartbeatInterval") or interval or 300)
            await self._heartbeat(cp)

    async def _send_live(self, cp: ChargePoint16) -> None:
        """Send StatusNotification / session-less MeterValues as they come (never queued:
        stale ones are discarded when the link drops)."""
        while True:
            payload = await self._live.get()
            try:
                await cp.call(payload)
            except TimeoutError as exc:
                # Not queued, not retried: the current status goes again after a
                # reconnect; a dead link is found by the WebSocket pings.
                log.warning("%s not answered: %s", type(payload).__name__, exc)

    async def _send_queued(self, cp: ChargePoint16) -> None:
        """Deliver the transaction queue: in order per connector, connectors in turn, one
        CALL at a time, no pauses but the §4.10 retry waits of a failing connector."""
        while True:
            message, wait = self.outbox.next_message()
            if message is None:
                self.outbox.flush()
                self.outbox.changed.clear()
                message, wait = self.outbox.next_message()
                if message is None:
                    timeout = None if math.isinf(wait) else wait
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.outbox.changed.wait(), timeout)
                    continue
            payload = dict(message.payload)
            if message.action != "StartTransaction" and message.session_id is not None:
                transaction_id = self.transactions.transaction_id(message.session_id)
                if transaction_id is None:
                    # Its StartTransaction (queued before it, same connector) was given up
                    # on: no real transactionId exists, and -1 / 0 is never sent.
                    self.outbox.drop(message, "its StartTransaction was dropped: "
                                              "no transactionId")
                    continue
                payload["transaction_id"] = transaction_id
            try:
                result = await cp.call(_CALLS[message.action](**payload), suppress=False,
                                       unique_id=message.unique_id)
            except (TimeoutError, OCPPError) as exc:
                self._failed(message, exc)
                continue
            self._delivered(message, result)

    def _failed(self, message: QueuedMessage, exc: Exception) -> None:
        """CALLERROR or no answer (OCPP 1.6 §4.10): retry after
        TransactionMessageRetryInterval × attempts so far; give up after
        TransactionMessageAttempts attempts (logged, counted in ``dropped``)."""
        limit = self.configuration.get_int("TransactionMessageAttempts")
        interval = self.configuration.get_int("TransactionMessageRetryInterval")
        attempts = message.attempts + 1
        self.outbox.failed(message, float(interval * attempts))
        if attempts >= limit:
            self.outbox.drop(message, f"{attempts} attempt(s) failed, last: {exc!r} "
                                      "(TransactionMessageAttempts, OCPP 1.6 §4.10)")
            return
        log.warning("%s (session %s) failed (%s): attempt %d/%d in %d s", message.action,
                    message.session_id, exc, attempts + 1, limit, interval * attempts)

    def _delivered(self, message: QueuedMessage, result: Any) -> None:
        if message.action == "StartTransaction" and message.session_id is not None:
            # The transactionId, the cache update and the acknowledgement: one commit.
            with transaction(self._db):
                self.transactions.set(message.session_id, result.transaction_id)
                auth = self._id_tag_info(message.payload["id_tag"], result.id_tag_info)
                self.outbox.done(message, commit_now=True)
            log.info("StartTransaction for session %d: transactionId %d (%s)",
                     message.session_id, result.transaction_id, auth.status.value)
            conn = self.station.session_by_id(message.session_id)
            if conn is not None and not auth.accepted:
                stop = self.configuration.get_bool("StopTransactionOnInvalidId")
                log.warning("session %d: idTag %s, %s", message.session_id,
                            auth.status.value, "stopping (DeAuthorized)" if stop
                            else "suspending energy (SuspendedEVSE)")
                self.station.deauthorize(conn.id, f"idTag {auth.status.value}", stop=stop)
        elif message.action == "StopTransaction":
            with transaction(self._db):
                tag = message.payload.get("id_tag")
                if tag and result.id_tag_info:
                    self._id_tag_info(tag, result.id_tag_info)
                self.outbox.done(message, commit_now=True)
        else:
            self.outbox.done(message)

    async def close(self) -> None:
        """Let the queue drain briefly (up to 2 s), then cancel everything."""
        deadline = time.monotonic() + 2.0
        while self.online and len(self.outbox) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.outbox.flush()
        for task in list(self._tasks):
            task.cancel()
