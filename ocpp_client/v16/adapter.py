"""The OCPP 1.6J adapter: composes the shared parts with the 1.6 specifics.

Shared, version-independent parts: link keeping (:mod:`ocpp_client.link`), the frame guard
(:mod:`ocpp_client.frames`), the durable outbox and its sender (:mod:`ocpp_client.queue`,
:mod:`ocpp_client.outbox_sender`), the authorization policy
(:mod:`ocpp_client.authorization`) and the configuration store
(:mod:`ocpp_client.configuration`). 1.6 parts: the handlers (:mod:`.charge_point`), the
station-command port (:mod:`.commands`), domain events → CALLs (:mod:`.events`), the
configuration keys (:mod:`.configuration`) and this module's link glue (BootNotification,
Heartbeat, the current statuses after a boot, StartTransaction / StopTransaction answers).

Offline operation (docs/offline-delivery.md): one CALL is outstanding at a time (OCPP-J
§4.1.1): the live sender and the outbox sender share the ``ocpp`` library's FIFO call lock,
so a live message waits for at most one queued CALL. Timestamps come from the core's
:class:`~evse.clock.Clock`, which the CSMS time (BootNotification / Heartbeat
``currentTime``) synchronizes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
import ssl
import time
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

from ocpp.v16 import call
from ocpp.v16.enums import RegistrationStatus

from evse import __version__
from evse.authorization import AuthResult
from evse.clock import Clock
from evse.config import Config, redact_url
from evse.domain import DomainEvent, FirmwareStatusChanged, IdToken, IdTokenType
from evse.firmware_update import FirmwareUpdateRequest
from evse.state_db import transaction
from evse.station import Station
from evse.tx_policy import TxPolicy
from ocpp_client.auth_cache import AuthCache
from ocpp_client.authorization import AuthorizationPolicy, AuthSettings, parse_expiry
from ocpp_client.frames import FrameGuard, FrameRules
from ocpp_client.link import BootAnswer, LinkKeeper, LinkSettings
from ocpp_client.local_list import LocalList
from ocpp_client.outbox_sender import DropMessage, OutboxSender
from ocpp_client.queue import Outbox, QueuedMessage, TransactionIds
from ocpp_client.security.events import SecurityEventType
from ocpp_client.security.log_redaction import redact_websockets_logs
from ocpp_client.security.profiles import check_url_scheme
from ocpp_client.security.secret_files import check_secret_file
from ocpp_client.v16.charge_point import ChargePoint16, frame_rules
from ocpp_client.v16.charging_commands import SmartCharging16
from ocpp_client.v16.commands import StationCommands16
from ocpp_client.v16.configuration import Configuration, check_toml_defaults
from ocpp_client.v16.events import EventMapper16
from ocpp_client.v16.mapping import AUTH_STATUS
from ocpp_client.v16.meter_values import shift_timestamps
from ocpp_client.v16.security import Security16, security_paths
from ocpp_client.v16.transaction_data import TransactionData

log = logging.getLogger(__name__)

#: The CALL dataclass for each queued action.
_CALLS: dict[str, Any] = {
    "StartTransaction": call.StartTransaction,
    "StopTransaction": call.StopTransaction,
    "MeterValues": call.MeterValues,
    "SecurityEventNotification": call.SecurityEventNotification,
    "FirmwareStatusNotification": call.FirmwareStatusNotification,
    "SignedFirmwareStatusNotification": call.SignedFirmwareStatusNotification,
    "DiagnosticsStatusNotification": call.DiagnosticsStatusNotification,
}

#: Longest frame accepted from the CSMS, bytes (the ``websockets`` default frame limit).
MAX_FRAME_BYTES = 1024 * 1024


def check_config(config: Config) -> list[str]:
    """Adapter-specific config problems, file-prefixed: ``[ocpp.configuration]`` keys, the
    ``[ocpp] url`` scheme against SecurityProfile (1: ws://, 2 and 3: wss://) and the
    ``[security]`` files (present; key files 0600)."""
    errors = check_toml_defaults(config.ocpp.configuration)
    profile = config.ocpp.configuration.get("SecurityProfile", 0)
    if not errors and isinstance(profile, int):
        problem = check_url_scheme(profile, config.ocpp_url)
        if problem:
            errors.append(problem)
    for name, path in security_paths(config).items():
        if path is None:
            continue
        try:
            if name in ("authorization_key_file", "client_key"):
                check_secret_file(path)
            elif not path.is_file():
                raise FileNotFoundError(f"{path}: no such file")
        except OSError as exc:
            errors.append(f"security.{name}: {exc}")
    return [f"{config.path}: {e}" for e in errors]


def auth_settings(configuration: Configuration) -> AuthSettings:
    """The authorization policy's switches from the 1.6 keys (§9.1, §9.2); no local list
    when the LocalAuthListManagement profile is switched off."""
    return AuthSettings(
        local_list_enabled=("LocalAuthListManagement" in configuration.feature_profiles
                            and configuration.get_bool("LocalAuthListEnabled")),
        cache_enabled=configuration.get_bool("AuthorizationCacheEnabled"),
        local_pre_authorize=configuration.get_bool("LocalPreAuthorize"),
        local_authorize_offline=configuration.get_bool("LocalAuthorizeOffline"),
        allow_offline_unknown=configuration.get_bool("AllowOfflineTxForUnknownId"),
        local_list_max_length=configuration.get_int("LocalAuthListMaxLength"),
        send_local_list_max_length=configuration.get_int("SendLocalListMaxLength"),
    )


class Ocpp16Adapter:
    """Attach OCPP 1.6J to a :class:`Station` (build it with :func:`create_adapter`).

    Args:
        station: the core.
        config: the loaded configuration (``[ocpp]``, ``[station]``).
        db: the state database (queue, transaction ids, cache, configuration keys).
        ssl_context: TLS context for ``wss://`` (None: the ``websockets`` default).
        headers: extra handshake headers (e.g. HTTP Basic authentication).

    Without ``ssl_context`` and ``headers`` the link is secured by the SecurityProfile key
    and ``[security]`` (:class:`~ocpp_client.v16.security.Security16`); with either, they
    are used as given (tests, special set-ups) and SecurityProfile is not applied.
    """

    def __init__(self, station: Station, config: Config, db: sqlite3.Connection,
                 ssl_context: ssl.SSLContext | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self.station = station
        self.config = config
        self.url = config.ocpp_url.rstrip("/") + "/" + config.station_id
        #: The URL as logs and ``evse status`` show it (basic-auth password masked).
        self.url_shown = redact_url(self.url)
        self.configuration = Configuration(
            db, config.ocpp.configuration,
            fixed={"NumberOfConnectors": len(station.connectors)},
            feature_profiles=config.ocpp.feature_profiles,
        )
        self._clock = station.clock
        self.outbox = Outbox(
            db,
            max_messages=config.ocpp.queue_max_messages,
            max_bytes=int(config.ocpp.queue_max_mb * 1024 * 1024),
            run_id=self._clock.run_id,
        )
        self.transactions = TransactionIds(db)
        self.cache = AuthCache(db)
        self.local_list = LocalList(db)
        self.auth = AuthorizationPolicy(
            self.local_list, self.cache, lambda: auth_settings(self.configuration),
            lambda: self.clock.now(), AUTH_STATUS)
        self._db = db
        self._live: asyncio.Queue[Any] = asyncio.Queue()
        self._start_delivered = asyncio.Event()
        # The Authorization header must never reach a log line (issue 13).
        redact_websockets_logs()
        self.events = EventMapper16(station, config, self.configuration, self.outbox,
                                    self._clock, lambda: self.online, self._live,
                                    TransactionData(db, self._clock.run_id))
        self.commands = StationCommands16(
            station, self.configuration, self.auth, self.transactions, self._clock,
            authorize=self.authorize, send_boot=self._triggered_boot,
            send_heartbeat=self._triggered_heartbeat,
            queue_meter_values=self.events.queue_meter_values,
            send_station_status=lambda: self._live.put_nowait(
                self.events.station_status_call()))
        self.security = Security16(
            config, self.url, self.configuration, db, self.outbox, self._clock,
            self.commands, current_cp=lambda: self.cp, reconnect=lambda: self.link.reconnect())
        static = ssl_context is not None or bool(headers)
        self.link = LinkKeeper(LinkSettings(
            url=self.url, subprotocol="ocpp1.6",
            reconnect_min_s=config.ocpp.reconnect_min_s,
            reconnect_max_s=config.ocpp.reconnect_max_s,
            max_frame_bytes=MAX_FRAME_BYTES, ssl=ssl_context,
            headers=(lambda: headers) if headers else None,
            security=None if static else self.security.connect,
        ), self)
        self.commands.feature_profiles = self.configuration.feature_profiles
        self.commands.send_call = self._send_now
        self.commands.queue_call = self.events.queue_call
        self.sender = OutboxSender(self.outbox, self._prepare, self._delivered, self._retry)
        #: Smart Charging (SetChargingProfile, ClearChargingProfile, GetCompositeSchedule).
        self.smart = SmartCharging16(station, self.configuration, self.transactions)
        station.authorizer = self
        self._clock.on_first_sync(self._clock_corrected)
        station.subscribe(self.events.on_event)
        station.subscribe(self._firmware_event)
        self.configuration.on_change(lambda _k, _v: self._apply_configuration())
        self._apply_configuration()

    # -- the daemon's view (evse.daemon.ProtocolAdapter) -----------------------------------
    async def verify_firmware(self, path: Path, request: FirmwareUpdateRequest) -> bool:
        """The firmware engine's ``verify`` port for a signed update (the daemon passes it
        to :class:`evse.firmware_update.FirmwareUpdate`): signing certificate and signature,
        see :meth:`Security16.verify_firmware`."""
        return await self.security.verify_firmware(path, request)

    def _firmware_event(self, event: DomainEvent) -> None:
        if isinstance(event, FirmwareStatusChanged):
            self.security.firmware_status_changed(event.status, event.request_id)

    @property
    def on_reset(self) -> Any:
        """The daemon's hook for Reset (kind "Hard" / "Soft")."""
        return self.commands.on_reset

    @on_reset.setter
    def on_reset(self, hook: Any) -> None:
        def reset(kind: str) -> None:
            # Logged and queued before the daemon goes down (sent after the restart).
            self.security.record(SecurityEventType.RESET_OR_REBOOT, f"Reset {kind}")
            if hook is not None:
                hook(kind)
        self.commands.on_reset = reset

    @property
    def clock(self) -> Clock:
        """The core's clock (CSMS-synchronized)."""
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        # A test restarts the clock run without restarting the daemon.
        self._clock = clock
        self.events.clock = clock
        self.commands.clock = clock

    @property
    def online(self) -> bool:
        """Booted (Accepted) and connected."""
        return self.link.online

    @property
    def cp(self) -> ChargePoint16 | None:
        """The ChargePoint of the current connection."""
        cp: ChargePoint16 | None = self.link.cp
        return cp

    def describe(self) -> dict[str, Any]:
        """JSON-able link state for ``evse status``."""
        return {"state": self.link.state, "url": self.url_shown, "queued": len(self.outbox),
                "queued_bytes": self.outbox.size_bytes, "dropped": self.outbox.dropped,
                "thinned": self.outbox.thinned, "clock_synced": self.clock.synced,
                "security_profile": int(self.security.switch.active),
                "security_log_entries": len(self.security.events.log),
                **self.link.describe()}

    def transaction_ref(self, session_id: int) -> str | None:
        """The transactionId the CSMS gave local session ``session_id``, as text."""
        transaction_id = self.transactions.transaction_id(session_id)
        return None if transaction_id is None else str(transaction_id)

    async def run(self) -> None:
        """Keep the link up forever (cancel to stop); StartupOfTheDevice is logged (and
        queued) first."""
        self.security.record(SecurityEventType.STARTUP_OF_THE_DEVICE,
                             f"firmware {__version__}")
        await self.link.run()

    async def close(self) -> None:
        """Let the queue drain briefly (up to 2 s), then cancel everything."""
        deadline = time.monotonic() + 2.0
        while self.online and len(self.outbox) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.outbox.flush()
        self.commands.cancel_all()
        self.security.cancel_all()

    def _apply_configuration(self) -> None:
        self.station.connection_timeout_s = float(self.configuration.get_int("ConnectionTimeOut"))
        self.station.sample_interval_s = float(
            self.configuration.get_int("MeterValueSampleInterval"))
        self.station.aligned_interval_s = float(
            self.configuration.get_int("ClockAlignedDataInterval"))
        # A new HeartbeatInterval applies at once, not after the old one ran out (§9.1.12).
        self.link.interval_changed()
        # OCPP 1.6's transaction rule (§3.6, §9.1.29): authorized + EV connected starts;
        # the card, a deauthorization or (per the key) an EV-side disconnect stops.
        self.station.tx_policy = TxPolicy.ocpp16(self.configuration.get_bool(
            "StopTransactionOnEVSideDisconnect"))
        self.station.unlock_on_ev_disconnect = self.configuration.get_bool(
            "UnlockConnectorOnEVSideDisconnect")
        # Reservation profile (§3.11, §9.4): off → every request would be Rejected (the
        # handlers answer NotSupported before it gets there).
        reservations = self.station.reservations
        reservations.accept_reservations = "Reservation" in self.configuration.feature_profiles
        reservations.station_wide_supported = self.configuration.get_bool(
            "ReserveConnectorZeroSupported")

    # -- authorization port (evse.authorization.Authorizer) -------------------------------
    async def authorize(self, id_token: IdToken | str) -> AuthResult:
        """Decide whether ``id_token`` may charge (OCPP 1.6 §3.5, see
        :meth:`AuthorizationPolicy.authorize`; 1.6 knows only the idTag value);
        Authorize.req while online. The answer carries the IdToken and who decided."""
        token = (id_token if isinstance(id_token, IdToken)
                 else IdToken(id_token, IdTokenType.ISO14443))
        cp = self.cp
        if not self.online or cp is None:
            result = await self.auth.authorize(token.value, None)
        else:
            async def request(tag: str) -> Mapping[str, Any]:
                answer = await cp.call(call.Authorize(id_tag=tag), suppress=False)
                info: Mapping[str, Any] = answer.id_tag_info
                return info

            result = await self.auth.authorize(token.value, request)
        return dataclasses.replace(result, id_token=token)

    # -- link glue (ocpp_client.link.VersionLink) -----------------------------------------
    def open_charge_point(self, ws: Any) -> ChargePoint16:
        """The guarded 1.6 ChargePoint over ``ws``."""
        guard = FrameGuard(ws, FrameRules(known_actions=(), routed=(),
                                          validator=lambda _a: None), self.config.station_id,
                           on_refused=self.security.events.invalid_message)
        cp = ChargePoint16(self.config.station_id, guard, self.commands, self.configuration,
                           self.auth, response_timeout=self.config.ocpp.call_timeout_s,
                           smart=self.smart, security=self.security)
        guard.rules = frame_rules(cp, MAX_FRAME_BYTES)
        return cp

    def _boot_call(self) -> call.BootNotification:
        station = self.config.station
        return call.BootNotification(
            charge_point_vendor=station.vendor,
            charge_point_model=station.model,
            charge_point_serial_number=station.serial_number or None,
            firmware_version=__version__,
        )

    async def boot(self, cp: Any) -> BootAnswer:
        """One BootNotification (§4.2); Accepted sets HeartbeatInterval from its interval."""
        result = await cp.call(self._boot_call(), suppress=False)
        self._set_clock(result.current_time)
        if result.status != RegistrationStatus.accepted:
            return BootAnswer(False, str(result.status), result.interval)
        if result.interval > 0 and self.configuration.change(
                "HeartbeatInterval", str(result.interval)) == "Rejected":
            log.warning("BootNotification interval %d s out of range: HeartbeatInterval "
                        "stays %d s", result.interval,
                        self.configuration.get_int("HeartbeatInterval"))
        return BootAnswer(True, str(result.status),
                          self.configuration.get_int("HeartbeatInterval"))

    async def on_accepted(self, cp: Any, answer: BootAnswer) -> None:
        """Current status of every connector once (OCPP 1.6 §4.9), never stale ones."""
        await cp.call(self.events.station_status_call())
        self.station.publish_all_statuses()

    async def heartbeat(self, cp: Any) -> None:
        """One Heartbeat (§4.6); its currentTime synchronizes the clock."""
        result = await cp.call(call.Heartbeat())
        if result is not None:
            self._set_clock(result.current_time)

    def heartbeat_interval(self) -> int:
        return self.configuration.get_int("HeartbeatInterval")

    def ping_interval(self) -> int:
        return self.configuration.get_int("WebSocketPingInterval")

    def workers(self, cp: Any) -> list[Coroutine[Any, Any, None]]:
        async def send_queued(payload: Any, unique_id: str) -> Any:
            return await cp.call(payload, suppress=False, unique_id=unique_id)
        return [self._send_live(cp), self.sender.run(send_queued)]

    def on_offline(self) -> None:
        while not self._live.empty():  # status is re-sent fresh on reconnect, not stale
            self._live.get_nowait()
        self.outbox.release()

    async def _triggered_boot(self) -> None:
        cp = self.cp
        if cp is not None:
            await cp.call(self._boot_call())

    async def _send_now(self, payload: Any) -> None:
        """Send a CALL on the current connection, not queued (a triggered status)."""
        cp = self.cp
        if cp is not None:
            await cp.call(payload)

    async def _triggered_heartbeat(self) -> None:
        cp = self.cp
        if cp is not None:
            await self.heartbeat(cp)

    def _set_clock(self, current_time: str) -> None:
        """Synchronize the core's clock with a CSMS ``currentTime`` (§4.2, §4.6)."""
        csms = parse_expiry(current_time)
        if csms is not None:
            self.security.clock_synchronized(self.clock.sync(csms))

    def _clock_corrected(self, correction_s: float) -> None:
        """First CSMS time of this run: shift queued timestamps stamped before it."""
        with transaction(self._db):
            rows = self.outbox.correct_timestamps(
                lambda payload: shift_timestamps(payload, correction_s))
            rows += self.events.transaction_data.correct_timestamps(
                lambda value: shift_timestamps(value, correction_s))
        if rows:
            log.info("clock synchronized: %d queued message(s) re-stamped by %+.3f s",
                     rows, correction_s)

    async def _send_live(self, cp: ChargePoint16) -> None:
        """Send StatusNotification / session-less MeterValues as they come (never queued:
        stale ones are discarded when the link drops)."""
        while True:
            payload = await self._live.get()
            if isinstance(payload, call.StatusNotification) and payload.connector_id > 0:
                await self._start_transaction_sent(payload.connector_id)
            try:
                await cp.call(payload)
            except TimeoutError as exc:
                # Not queued, not retried: the current status goes again after a
                # reconnect; a dead link is found by the WebSocket pings.
                log.warning("%s not answered: %s", type(payload).__name__, exc)

    async def _start_transaction_sent(self, connector_id: int) -> None:
        """Wait while a StartTransaction of ``connector_id`` is still queued: a
        StatusNotification of a transaction never precedes its StartTransaction (e.g. the
        statuses sent after a reconnect, before the queue is delivered). Woken by each
        delivered StartTransaction; a StartTransaction given up on (§4.10) is seen at the
        latest a second later."""
        while self.outbox.holds("StartTransaction", connector_id):
            self._start_delivered.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._start_delivered.wait(), 1.0)

    # -- transaction messages (the outbox sender's 1.6 part) -------------------------------
    def _retry(self) -> tuple[int, int]:
        return (self.configuration.get_int("TransactionMessageAttempts"),
                self.configuration.get_int("TransactionMessageRetryInterval"))

    def _prepare(self, message: QueuedMessage) -> Any:
        payload = dict(message.payload)
        if message.action != "StartTransaction" and message.session_id is not None:
            transaction_id = self.transactions.transaction_id(message.session_id)
            if transaction_id is None:
                # Its StartTransaction (queued before it, same connector) was given up
                # on: no real transactionId exists, and -1 / 0 is never sent.
                raise DropMessage("its StartTransaction was dropped: no transactionId")
            payload["transaction_id"] = transaction_id
        return _CALLS[message.action](**payload)

    def _delivered(self, message: QueuedMessage, result: Any) -> None:
        if message.action == "StartTransaction" and message.session_id is not None:
            # The transactionId, the cache update and the acknowledgement: one commit.
            with transaction(self._db):
                self.transactions.set(message.session_id, result.transaction_id)
                auth = self.auth.remember(message.payload["id_tag"], result.id_tag_info)
                self.outbox.done(message, commit_now=True)
            self._start_delivered.set()
            log.info("StartTransaction for session %d: transactionId %d (%s)",
                     message.session_id, result.transaction_id, auth.status.value)
            # A parentIdTag first known from StartTransaction.conf (§4.8, §7.24): the
            # group a card of the same group stops the transaction by (§3.5.3).
            self.station.set_group(message.session_id, auth.parent_id_tag)
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
                    self.auth.remember(tag, result.id_tag_info)
                self.outbox.done(message, commit_now=True)
        else:
            self.outbox.done(message)


def create_adapter(station: Station, config: Config, db: sqlite3.Connection,
                   ssl_context: ssl.SSLContext | None = None,
                   headers: Mapping[str, str] | None = None) -> Ocpp16Adapter:
    """The OCPP 1.6J adapter for ``station`` (the daemon's entry point of this package).

    Args:
        station: the core.
        config: the loaded configuration.
        db: the state database.
        ssl_context: an ``ssl.SSLContext`` for ``wss://`` (security profiles 2 and 3).
        headers: extra WebSocket handshake headers (profile 1/2 Basic authentication).
    """
    return Ocpp16Adapter(station, config, db, ssl_context=ssl_context, headers=headers)
