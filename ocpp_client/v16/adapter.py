"""The OCPP 1.6J adapter: keeps the CSMS link, maps domain events to CALLs and CSMS
commands to Station commands, and authorizes idTags for the core.

Link keeping (OCPP 1.6 §4.2, §4.6): connect to ``<url>/<station id>`` with subprotocol
``ocpp1.6``, BootNotification until Accepted (retrying after ``interval`` while Pending or
Rejected), then StatusNotification for every connector, Heartbeat every HeartbeatInterval,
WebSocket pings every WebSocketPingInterval, and the transaction queue. On loss: reconnect
forever with the ``websockets`` library's exponential backoff (jittered first delay).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
    DomainEvent,
    MeterSample,
    ReadingContext,
    StatusChanged,
    StopReason,
    TransactionStarted,
    TransactionStopped,
)
from evse.station import Station
from ocpp_client.auth_cache import AuthCache
from ocpp_client.queue import Outbox, QueuedMessage, TransactionIds
from ocpp_client.v16 import mapping
from ocpp_client.v16.charge_point import ChargePoint16
from ocpp_client.v16.configuration import Configuration, check_toml_defaults
from ocpp_client.v16.meter_values import iso_timestamp, meter_value

log = logging.getLogger(__name__)

#: The CALL dataclass for each queued action.
_CALLS: dict[str, Any] = {
    "StartTransaction": call.StartTransaction,
    "StopTransaction": call.StopTransaction,
    "MeterValues": call.MeterValues,
}

_LINK_ERRORS = (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException)


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
        self.outbox = Outbox(db)
        self.transactions = TransactionIds(db)
        self.cache = AuthCache(db)
        self.cp: ChargePoint16 | None = None
        #: disconnected, connecting, booting, pending, rejected, accepted
        self.link_state = "disconnected"
        self.on_reset: Callable[[str], None] | None = None
        self._online = asyncio.Event()
        self._live: asyncio.Queue[Any] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._clock_offset_s = 0.0
        station.authorizer = self
        station.subscribe(self._on_event)
        self.configuration.on_change(lambda _k, _v: self._apply_configuration())
        self._apply_configuration()

    def _apply_configuration(self) -> None:
        self.station.connection_timeout_s = float(self.configuration.get_int("ConnectionTimeOut"))
        self.station.sample_interval_s = float(
            self.configuration.get_int("MeterValueSampleInterval"))
        self.station.stop_on_ev_disconnect = self.configuration.get_bool(
            "StopTransactionOnEVSideDisconnect")
        self.station.unlock_on_ev_disconnect = self.configuration.get_bool(
            "UnlockConnectorOnEVSideDisconnect")

    @property
    def online(self) -> bool:
        """Booted (Accepted) and connected."""
        return self._online.is_set()

    def describe(self) -> dict[str, Any]:
        """JSON-able link state for ``evse status``."""
        return {"state": self.link_state, "url": self.url, "queued": len(self.outbox),
                "dropped": self.outbox.dropped}

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
        if isinstance(event, StatusChanged):
            if self.online:
                self._live.put_nowait(self._status_call(event))
        elif isinstance(event, TransactionStarted):
            self.outbox.put("StartTransaction", {
                "connector_id": event.connector_id,
                "id_tag": event.id_tag,
                "meter_start": event.meter_start_wh,
                "timestamp": iso_timestamp(event.timestamp),
            }, event.connector_id, event.session_id)
        elif isinstance(event, MeterSample):
            self._queue_meter_values(event)
        elif isinstance(event, TransactionStopped):
            payload: dict[str, Any] = {
                "meter_stop": event.meter_stop_wh,
                "timestamp": iso_timestamp(event.timestamp),
                "reason": mapping.REASON[event.reason].value,
            }
            if event.id_tag:
                payload["id_tag"] = event.id_tag
            measurands = self.configuration.get_list("StopTxnSampledData")
            if event.reading is not None and measurands:
                phases = self._phases(event.connector_id)
                payload["transaction_data"] = [meter_value(
                    event.reading, measurands,
                    mapping.CONTEXT[ReadingContext.TRANSACTION_END].value, phases)]
            self.outbox.put("StopTransaction", payload, event.connector_id, event.session_id)

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
        self.outbox.put("MeterValues", payload, event.connector_id, event.session_id)

    def _status_call(self, event: StatusChanged) -> call.StatusNotification:
        return call.StatusNotification(
            connector_id=event.connector_id,
            error_code=mapping.ERROR_CODE[event.error_code],
            status=mapping.STATUS[event.status],
            info=event.info[:50] or None,
            timestamp=iso_timestamp(event.timestamp),
        )

    # -- authorization port ---------------------------------------------------------------
    async def authorize(self, id_tag: str) -> AuthResult:
        """Authorize.req when online (§4.1), else the cache per LocalAuthorizeOffline and
        AllowOfflineTxForUnknownId (§3.5)."""
        cache_on = self.configuration.get_bool("AuthorizationCacheEnabled")
        cached = self.cache.get(id_tag) if cache_on else None
        now = time.time()
        if self.online:
            if (cached is not None and cached.valid(now)
                    and self.configuration.get_bool("LocalPreAuthorize")):
                return AuthResult(AuthorizationStatus.ACCEPTED, cached.parent_id_tag)
            assert self.cp is not None
            try:
                result = await self.cp.call(call.Authorize(id_tag=id_tag), suppress=False)
                return self._id_tag_info(id_tag, result.id_tag_info)
            except (*_LINK_ERRORS, OCPPError) as exc:
                log.warning("Authorize for %s failed (%s): deciding offline", id_tag, exc)
        if self.configuration.get_bool("LocalAuthorizeOffline") and cached is not None:
            if cached.valid(now):
                return AuthResult(AuthorizationStatus.ACCEPTED, cached.parent_id_tag)
            return AuthResult(mapping.AUTH_STATUS.get(cached.status,
                                                      AuthorizationStatus.INVALID))
        if self.configuration.get_bool("AllowOfflineTxForUnknownId"):
            return AuthResult(AuthorizationStatus.ACCEPTED)
        return AuthResult(AuthorizationStatus.INVALID)

    def _id_tag_info(self, id_tag: str, info: dict[str, Any]) -> AuthResult:
        status = str(info.get("status", "Invalid"))
        parent = info.get("parent_id_tag")
        if self.configuration.get_bool("AuthorizationCacheEnabled"):
            self.cache.update(id_tag, status, parent, _parse_expiry(info.get("expiry_date")))
        return AuthResult(mapping.AUTH_STATUS.get(status, AuthorizationStatus.INVALID), parent)

    # -- CSMS commands ------------------------------------------------------------------
    async def remote_start(self, id_tag: str, connector_id: int | None) -> bool:
        """RemoteStartTransaction (§5.11). With AuthorizeRemoteTxRequests the idTag is
        authorized first; otherwise the CSMS's request is the authorization."""
        if connector_id is not None and connector_id <= 0:
            return False
        if self.configuration.get_bool("AuthorizeRemoteTxRequests"):
            cached = self.cache.get(id_tag)
            if cached is None or not cached.valid(time.time()):
                self._spawn(self._authorize_then_start(id_tag, connector_id))
                return True
        return self.station.remote_start(
            id_tag, connector_id, AuthResult(AuthorizationStatus.ACCEPTED))

    async def _authorize_then_start(self, id_tag: str, connector_id: int | None) -> None:
        result = await self.authorize(id_tag)
        if result.accepted:
            self.station.remote_start(id_tag, connector_id, result)

    def remote_stop(self, transaction_id: int) -> bool:
        """RemoteStopTransaction (§5.12): Accepted when the transaction runs here."""
        session_id = self.transactions.session_id(transaction_id)
        conn = self.station.session_by_id(session_id) if session_id is not None else None
        if conn is None:
            return False
        self._spawn(self.station.stop_transaction(conn.id, StopReason.REMOTE))
        return True

    def reset(self, kind: str) -> None:
        """Reset (§5.14): stop transactions (SoftReset / HardReset), then hand over to the
        daemon's reset hook."""
        async def do_reset() -> None:
            reason = StopReason.HARD_RESET if kind == "Hard" else StopReason.SOFT_RESET
            await self.station.stop_all(reason)
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
                        self._queue_meter_values(MeterSample(
                            conn.id, sid, conn.last_reading, ReadingContext.TRIGGER))
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
                timestamp=iso_timestamp(self.now())))
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
        """CSMS-aligned UTC epoch seconds."""
        return time.time() + self._clock_offset_s

    def _set_clock(self, current_time: str) -> None:
        with contextlib.suppress(ValueError, AttributeError):
            csms = datetime.fromisoformat(current_time.replace("Z", "+00:00")).timestamp()
            self._clock_offset_s = csms - time.time()

    async def _heartbeat(self, cp: ChargePoint16) -> None:
        result = await cp.call(call.Heartbeat())
        if result is not None:
            self._set_clock(result.current_time)

    async def _heartbeats(self, cp: ChargePoint16, interval: int) -> None:
        while True:
            await asyncio.sleep(self.configuration.get_int("HeartbeatInterval") or interval or 300)
            await self._heartbeat(cp)

    async def _send_live(self, cp: ChargePoint16) -> None:
        while True:
            payload = await self._live.get()
            await cp.call(payload)

    async def _send_queued(self, cp: ChargePoint16) -> None:
        """Deliver the transaction queue in order, one CALL at a time (§4.10 retry rules)."""
        while True:
            message = self.outbox.peek()
            if message is None:
                self.outbox.changed.clear()
                if self.outbox.peek() is None:
                    await self.outbox.changed.wait()
                continue
            payload = dict(message.payload)
            if message.action != "StartTransaction" and message.session_id is not None:
                transaction_id = self.transactions.transaction_id(message.session_id)
                if transaction_id is None:
                    # Its StartTransaction was given up on: no real transactionId exists.
                    log.error("%s for session %d has no transactionId: dropped",
                              message.action, message.session_id)
                    self.outbox.drop(message.id, "no transactionId")
                    continue
                payload["transaction_id"] = transaction_id
            try:
                result = await cp.call(_CALLS[message.action](**payload), suppress=False,
                                       unique_id=message.unique_id)
            except (TimeoutError, OCPPError) as exc:
                await self._failed(message, exc)
                continue
            self._delivered(message, result)
            self.outbox.done(message.id)

    async def _failed(self, message: QueuedMessage, exc: Exception) -> None:
        attempts = self.outbox.failed_attempt(message.id)
        limit = self.configuration.get_int("TransactionMessageAttempts")
        if attempts >= limit:
            log.error("%s (session %s) failed %d times (%s): dropped as OCPP 1.6 §4.10 "
                      "allows", message.action, message.session_id, attempts, exc)
            self.outbox.drop(message.id, str(exc))
            return
        wait = self.configuration.get_int("TransactionMessageRetryInterval") * attempts
        log.warning("%s failed (%s): retry %d/%d in %d s", message.action, exc, attempts + 1,
                    limit, wait)
        await asyncio.sleep(wait)

    def _delivered(self, message: QueuedMessage, result: Any) -> None:
        if message.action == "StartTransaction" and message.session_id is not None:
            self.transactions.set(message.session_id, result.transaction_id)
            auth = self._id_tag_info(message.payload["id_tag"], result.id_tag_info)
            log.info("StartTransaction for session %d: transactionId %d (%s)",
                     message.session_id, result.transaction_id, auth.status.value)
            conn = self.station.session_by_id(message.session_id)
            if conn is not None and not auth.accepted:
                if self.configuration.get_bool("StopTransactionOnInvalidId"):
                    self._spawn(self.station.stop_transaction(conn.id, StopReason.DE_AUTHORIZED))
                else:
                    self.station.set_charging_limit(conn.id, 0.0)
        elif message.action == "StopTransaction" and result.id_tag_info:
            tag = message.payload.get("id_tag")
            if tag:
                self._id_tag_info(tag, result.id_tag_info)

    async def close(self) -> None:
        """Let the queue drain briefly (up to 2 s), then cancel everything."""
        deadline = time.monotonic() + 2.0
        while self.online and len(self.outbox) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for task in list(self._tasks):
            task.cancel()
