"""The OCPP 2.0.1 adapter: the shared parts of :mod:`ocpp_client` with the 2.0.1 specifics.

Shared, as for 1.6: link keeping (:mod:`ocpp_client.link`, subprotocol ``ocpp2.0.1``), the
frame guard, the durable outbox and its sender, the authorization policy. 2.0.1 parts: the
device model (:mod:`.device_model`, its values applied at once through change listeners),
the handlers (:mod:`.charge_point`), the station-command port (:mod:`.commands`), domain
events → TransactionEvent / StatusNotification (:mod:`.events`), the persisted transactions
and seqNo (:mod:`.transactions`), and this module's link glue (BootNotification with its
reason, Heartbeat, statuses after a boot, clock-aligned meter values).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
import ssl
import time
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ocpp.v201 import call
from ocpp.v201.enums import RegistrationStatusEnumType

import ocpp_client.v201.mapping as mapping
from evse import __version__
from evse.authorization import AuthorizationStatus, AuthResult
from evse.clock import Clock
from evse.config import Config, redact_url
from evse.domain import IdToken, IdTokenType
from evse.firmware_update import FirmwareUpdateRequest
from evse.state_db import transaction
from evse.station import Station
from evse.tx_policy import TxPolicy
from ocpp_client.auth_cache import AuthCache
from ocpp_client.authorization import AuthorizationPolicy, AuthSettings, parse_expiry
from ocpp_client.frames import FrameGuard, FrameRules
from ocpp_client.link import BootAnswer, LinkKeeper, LinkSettings
from ocpp_client.local_list import LocalList
from ocpp_client.outbox_sender import OutboxSender
from ocpp_client.queue import Outbox, QueuedMessage
from ocpp_client.security.events import SecurityEventType
from ocpp_client.security.profiles import check_url_scheme
from ocpp_client.v16.meter_values import shift_timestamps
from ocpp_client.v201.charge_point import ChargePoint201, frame_rules, id_tag_info
from ocpp_client.v201.commands import StationCommands201
from ocpp_client.v201.device_model import DeviceModel, VariableRef
from ocpp_client.v201.events import EventMapper201, aligned_delay, id_token_payload
from ocpp_client.v201.firmware import Firmware201
from ocpp_client.v201.reservation import Reservation201
from ocpp_client.v201.security import Security201
from ocpp_client.v201.smart_charging import SmartCharging201
from ocpp_client.v201.standard_components import (
    ConnectorInfo,
    EvseInfo,
    Features,
    all_definitions,
)
from ocpp_client.v201.toml_defaults import VariableDefaultsError, parse_variable_defaults
from ocpp_client.v201.transactions import TransactionStore

log = logging.getLogger(__name__)

#: ConnectorEnumType of every configured connector (what ReserveNow's connectorType may name).
CONNECTOR_TYPES = ("sType2",)
#: The CALL dataclass of each queued action.
_QUEUED_CALLS: dict[str, Any] = {
    "TransactionEvent": call.TransactionEvent,
    "FirmwareStatusNotification": call.FirmwareStatusNotification,
    "LogStatusNotification": call.LogStatusNotification,
    "SecurityEventNotification": call.SecurityEventNotification,
}

#: Longest frame accepted from the CSMS, bytes (the ``websockets`` default frame limit).
MAX_FRAME_BYTES = 1024 * 1024

#: The reason of the next BootNotification after a reset (B11): a key/value table (schema
#: step in :data:`evse.state_db.MIGRATIONS`, which holds an equal copy).
BOOT_TABLE_SQL = "CREATE TABLE IF NOT EXISTS ocpp201_boot (key TEXT PRIMARY KEY, value TEXT)"


def _definitions(station: Station | None, config: Config) -> list[Any]:
    evses = []
    for conn in config.connectors:
        evse_id = conn.evse_id if conn.evse_id is not None else conn.id
        power = 230.0 * conn.max_current_a * conn.phases
        evses.append(EvseInfo(evse_id, power, conn.phases,
                              (ConnectorInfo(1, CONNECTOR_TYPES[0], conn.phases),)))
    phases = max((c.phases for c in config.connectors), default=3)
    return all_definitions(config.station_id, phases, evses,
                           Features(smart_charging=True, reservations=True))


def check_config(config: Config) -> list[str]:
    """``[ocpp201.variables]`` problems, file-prefixed (the 1.6 table is ignored), and the
    ``[ocpp] url`` scheme against SecurityCtrlr.SecurityProfile (1: ws://, 2 and 3:
    wss://)."""
    try:
        defaults = parse_variable_defaults(config.ocpp201.variables,
                                           _definitions(None, config))
    except VariableDefaultsError as exc:
        return [f"{config.path}: {e}" for e in exc.errors]
    profile = next((int(text) for (component, variable, _a), text in defaults.items()
                    if (component.name, variable.name) == ("SecurityCtrlr", "SecurityProfile")),
                   0)
    problem = check_url_scheme(profile, config.ocpp_url)
    return [f"{config.path}: {problem}"] if problem else []


def _now_text(clock: Clock) -> str:
    return datetime.fromtimestamp(clock.now(), UTC).isoformat(
        timespec="seconds").replace("+00:00", "Z")


class Ocpp201Adapter:
    """Attach OCPP 2.0.1 to a :class:`Station` (build it with :func:`create_adapter`).

    Args:
        station: the core.
        config: the loaded configuration (``[ocpp]``, ``[ocpp201]``, ``[station]``).
        db: the state database.
        ssl_context: TLS context for ``wss://``.
        headers: extra handshake headers (e.g. HTTP Basic authentication).
    """

    def __init__(self, station: Station, config: Config, db: sqlite3.Connection,
                 ssl_context: ssl.SSLContext | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self.station = station
        self.config = config
        self.url = config.ocpp_url.rstrip("/") + "/" + config.station_id
        definitions = _definitions(station, config)
        self.model = DeviceModel(db, definitions,
                                 parse_variable_defaults(config.ocpp201.variables, definitions))
        self._clock = station.clock
        self._db = db
        self.outbox = Outbox(db, max_messages=config.ocpp.queue_max_messages,
                             max_bytes=int(config.ocpp.queue_max_mb * 1024 * 1024),
                             run_id=self._clock.run_id)
        self.store = TransactionStore(db)
        db.execute(BOOT_TABLE_SQL)
        self.cache = AuthCache(db)
        self.local_list = LocalList(db)
        self.auth = AuthorizationPolicy(self.local_list, self.cache, self.auth_settings,
                                        lambda: self.clock.now(), mapping.AUTH_STATUS)
        self._live: asyncio.Queue[Any] = asyncio.Queue()
        #: Security (A00, A02–A04): the link's security side, certificates, the SecurityLog.
        self.security = Security201(config, db, self.outbox, self._clock, self.model,
                                    current_cp=lambda: self.cp,
                                    reconnect=lambda: self.link.reconnect())
        static = ssl_context is not None or bool(headers)
        self.link = LinkKeeper(LinkSettings(
            url=self.url, subprotocol="ocpp2.0.1",
            reconnect_min_s=config.ocpp.reconnect_min_s,
            reconnect_max_s=config.ocpp.reconnect_max_s,
            max_frame_bytes=MAX_FRAME_BYTES, ssl=ssl_context,
            headers=(lambda: headers) if headers else None,
            security=None if static else self.security.connect,
        ), self)
        self.events = EventMapper201(station, config, self.model, self.outbox, self.store,
                                     self._clock, lambda: self.online, self._live)
        self.commands = StationCommands201(
            station, self.model, self.auth, self.events, self._clock,
            authorize=self.authorize, send_boot=self._triggered_boot,
            send_heartbeat=self._triggered_heartbeat)
        self.commands.on_reset_accepted = self._reset_accepted
        #: Firmware (L01–L03) and GetLog (N01).
        self.firmware = Firmware201(station, self.security)
        station.subscribe(self.firmware.on_event)
        self.commands.more_triggers.update({
            "FirmwareStatusNotification": self.firmware.triggered_firmware_status,
            "LogStatusNotification": self.firmware.triggered_log_status,
            "SignChargingStationCertificate": self.security.sign_certificate,
        })
        # -- Smart Charging (K01–K10) and Reservation (H01–H04) on the core's engines --
        self.smart = SmartCharging201(station, self.model, self.store)
        self.reservation = Reservation201(station, self.model, CONNECTOR_TYPES,
                                          self._send_live_call)
        self.sender = OutboxSender(self.outbox, self._prepare, self._delivered, self._retry)
        self._aligned: asyncio.Task[None] | None = None
        station.authorizer = self
        self._clock.on_first_sync(self._clock_corrected)
        station.subscribe(self.events.on_event)
        self._live_values()
        self.model.on_change(lambda _d, _a, _v: self._apply_variables())
        self._apply_variables()
        self._close_stale_transactions()

    # -- the daemon's view ---------------------------------------------------------------
    @property
    def on_reset(self) -> Any:
        """The daemon's hook for Reset ("Soft": restart the firmware)."""
        return self.commands.on_reset

    @on_reset.setter
    def on_reset(self, hook: Any) -> None:
        self.commands.on_reset = hook

    @property
    def clock(self) -> Clock:
        """The core's clock (CSMS-synchronized)."""
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self._clock = clock
        self.events.clock = clock
        self.commands.clock = clock

    @property
    def online(self) -> bool:
        """Booted (Accepted) and connected."""
        return self.link.online

    @property
    def cp(self) -> ChargePoint201 | None:
        """The ChargePoint of the current connection."""
        cp: ChargePoint201 | None = self.link.cp
        return cp

    def describe(self) -> dict[str, Any]:
        """JSON-able link state for ``evse status``."""
        # The URL may carry a Basic-auth password (user:password@host): never shown.
        return {"state": self.link.state, "url": redact_url(self.url),
                "queued": len(self.outbox),
                "queued_bytes": self.outbox.size_bytes, "dropped": self.outbox.dropped,
                "thinned": self.outbox.thinned, "clock_synced": self.clock.synced,
                "version": "2.0.1", "security_profile": int(self.security.switch.active),
                "network_profile_slot": self.security.network.slot,
                "security_log_entries": len(self.security.events.log)}

    def transaction_ref(self, session_id: int) -> str | None:
        """The transactionId (generated here) of local session ``session_id``."""
        return self.store.transaction_id_of(session_id)

    async def verify_firmware(self, path: Path, request: FirmwareUpdateRequest) -> bool:
        """The firmware engine's ``verify`` port for a signed UpdateFirmware (the daemon
        looks it up on the adapter): see :meth:`Security201.verify_firmware`."""
        return await self.security.verify_firmware(path, request)

    async def run(self) -> None:
        """Keep the link up and send clock-aligned meter values, forever (cancel to stop);
        StartupOfTheDevice is logged (and queued) first."""
        self.security.record(SecurityEventType.STARTUP_OF_THE_DEVICE,
                             f"firmware {__version__}")
        self._aligned = asyncio.ensure_future(self._clock_aligned())
        try:
            await self.link.run()
        finally:
            self._aligned.cancel()

    async def close(self) -> None:
        """Let the queue drain briefly (up to 2 s), then cancel everything."""
        deadline = time.monotonic() + 2.0
        while self.online and len(self.outbox) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.outbox.flush()
        self.commands.cancel_all()
        self.security.cancel_all()
        if self._aligned is not None:
            self._aligned.cancel()

    # -- device model → core -------------------------------------------------------------
    def auth_settings(self) -> AuthSettings:
        """The authorization policy's switches from AuthCtrlr, AuthCacheCtrlr and
        LocalAuthListCtrlr (C10–C14, D01)."""
        m = self.model
        return AuthSettings(
            local_list_enabled=m.get_bool("LocalAuthListCtrlr", "Enabled"),
            cache_enabled=m.get_bool("AuthCacheCtrlr", "Enabled"),
            local_pre_authorize=m.get_bool("AuthCtrlr", "LocalPreAuthorize"),
            local_authorize_offline=m.get_bool("AuthCtrlr", "LocalAuthorizeOffline"),
            allow_offline_unknown=m.get_bool("AuthCtrlr", "OfflineTxForUnknownIdEnabled"),
            send_local_list_max_length=m.get_int("LocalAuthListCtrlr", "ItemsPerMessage"),
        )

    def _apply_variables(self) -> None:
        """Apply the variables the core uses, at once (B05: no reboot needed)."""
        m = self.model
        self.station.connection_timeout_s = float(m.get_int("TxCtrlr", "EVConnectionTimeOut"))
        enabled = m.get_bool("SampledDataCtrlr", "Enabled")
        self.station.sample_interval_s = float(
            m.get_int("SampledDataCtrlr", "TxUpdatedInterval")) if enabled else 0.0
        # The core's energy session: authorized + EV connected (E01's default and the only
        # way this core offers power); the card or a deauthorization stops the energy, an
        # EV-side disconnect per StopTxOnEVSideDisconnect. The 2.0.1 transaction around it
        # follows TxStartPoint / TxStopPoint (EventMapper201.policy).
        self.station.tx_policy = TxPolicy.ocpp16(m.get_bool("TxCtrlr", "StopTxOnEVSideDisconnect"))
        self.station.unlock_on_ev_disconnect = m.get_bool("OCPPCommCtrlr",
                                                          "UnlockOnEVSideDisconnect")
        self.reservation.apply_variables()

    def _live_values(self) -> None:
        """Run-time variables read from their source on every get."""
        m = self.model
        m.provide("ClockCtrlr", "DateTime", lambda: _now_text(self.clock))
        m.provide("LocalAuthListCtrlr", "Entries", lambda: str(len(self.local_list)))
        m.provide("SmartChargingCtrlr", VariableRef("Entries", "ChargingProfiles"),
                  lambda: str(self.smart.entries()))

    def heartbeat_interval(self) -> int:
        return self.model.get_int("OCPPCommCtrlr", "HeartbeatInterval")

    def ping_interval(self) -> int:
        return self.model.get_int("OCPPCommCtrlr", "WebSocketPingInterval")

    # -- restarts ---------------------------------------------------------------------------
    def _close_stale_transactions(self) -> None:
        """Transactions the last run left open without an energy session the core will
        close (opened at EVConnected / Authorized, or kept after a card stop): end them with
        PowerLoss (E04). Those with an interrupted session end when the core closes it."""
        for tx in list(self.store.open.values()):
            row = None
            if tx.session_id is not None:
                row = self._db.execute("SELECT stop_reason FROM sessions WHERE session_id = ?",
                                       (tx.session_id,)).fetchone()
            if row is None or row[0] is not None:
                log.warning("transaction %s was left open by the last run: ending it "
                            "(PowerLoss)", tx.transaction_id)
                self.events.end_without_session(tx, mapping.Trigger.abnormal_condition.value,
                                                mapping.Reason.power_loss.value)

    def _reset_accepted(self) -> None:
        self._set_boot_reason("RemoteReset")
        self.security.record(SecurityEventType.RESET_OR_REBOOT, "Reset")

    def _set_boot_reason(self, reason: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO ocpp201_boot VALUES ('reason', ?)", (reason,))

    def _boot_reason(self) -> str:
        row = self._db.execute("SELECT value FROM ocpp201_boot WHERE key = 'reason'").fetchone()
        return "PowerUp" if row is None else str(row[0])

    # -- authorization port ----------------------------------------------------------------
    async def authorize(self, id_token: IdToken | str) -> AuthResult:
        """Decide whether ``id_token`` may charge (C01, C10–C14 through the shared policy);
        Authorize with IdToken{idToken, type} while online."""
        token = (id_token if isinstance(id_token, IdToken)
                 else IdToken(id_token, IdTokenType.ISO14443))
        cp = self.cp
        if not self.online or cp is None:
            result = await self.auth.authorize(token.value, None)
        else:
            async def request(_tag: str) -> Mapping[str, Any]:
                answer = await cp.call(call.Authorize(id_token=id_token_payload(token)),
                                       suppress=False)
                return id_tag_info(answer.id_token_info)

            result = await self.auth.authorize(token.value, request)
        master = self.model.get("AuthCtrlr", "MasterPassGroupId")
        if master and result.accepted and result.parent_id_tag == master:
            # C16: a Master Pass stops every transaction and starts none.
            log.info("IdToken %s is a Master Pass: stopping every transaction", token.value)
            self.events.stop_all_for_master_pass(token)
            return AuthResult(AuthorizationStatus.INVALID, id_token=token, source=result.source)
        return dataclasses.replace(result, id_token=token)

    # -- link glue (ocpp_client.link.VersionLink) -------------------------------------------
    def open_charge_point(self, ws: Any) -> ChargePoint201:
        """The guarded 2.0.1 ChargePoint over ``ws``."""
        guard = FrameGuard(ws, FrameRules(known_actions=(), routed=(),
                                          validator=lambda _a: None), self.config.station_id,
                           on_refused=self.security.events.invalid_message)
        cp = ChargePoint201(self.config.station_id, guard, self.commands, self.model,
                            self.auth, response_timeout=self.config.ocpp.call_timeout_s,
                            smart=self.smart, reservation=self.reservation)
        cp.firmware, cp.security = self.firmware, self.security
        guard.rules = frame_rules(cp, MAX_FRAME_BYTES)
        return cp

    def _boot_call(self, reason: str) -> call.BootNotification:
        station = self.config.station
        info: dict[str, Any] = {"vendor_name": station.vendor, "model": station.model,
                                "firmware_version": __version__}
        if station.serial_number:
            info["serial_number"] = station.serial_number
        return call.BootNotification(charging_station=info, reason=reason)

    async def boot(self, cp: Any) -> BootAnswer:
        """One BootNotification with its reason (B01–B03); Accepted sets HeartbeatInterval
        from its interval, Pending / Rejected retry after it (link keeping)."""
        result = await cp.call(self._boot_call(self._boot_reason()), suppress=False)
        self._set_clock(result.current_time)
        if result.status != RegistrationStatusEnumType.accepted:
            return BootAnswer(False, str(result.status), result.interval)
        self._db.execute("DELETE FROM ocpp201_boot WHERE key = 'reason'")
        if result.interval > 0:
            self.model.set("OCPPCommCtrlr", "HeartbeatInterval", str(result.interval))
        return BootAnswer(True, str(result.status), self.heartbeat_interval())

    async def on_accepted(self, cp: Any, answer: BootAnswer) -> None:
        """The current status of every connector once (G01), never stale ones."""
        self.station.publish_all_statuses()

    async def heartbeat(self, cp: Any) -> None:
        """One Heartbeat (G02... B01 clock); its currentTime synchronizes the clock."""
        result = await cp.call(call.Heartbeat())
        if result is not None:
            self._set_clock(result.current_time)

    def workers(self, cp: Any) -> list[Coroutine[Any, Any, None]]:
        async def send_queued(payload: Any, unique_id: str) -> Any:
            return await cp.call(payload, suppress=False, unique_id=unique_id)
        return [self._send_live(cp), self.sender.run(send_queued)]

    def on_offline(self) -> None:
        self.events.forget_statuses()
        while not self._live.empty():
            self._live.get_nowait()
        self.outbox.release()

    async def _triggered_boot(self, reason: str) -> None:
        cp = self.cp
        if cp is not None:
            await cp.call(self._boot_call(reason))

    async def _triggered_heartbeat(self) -> None:
        cp = self.cp
        if cp is not None:
            await self.heartbeat(cp)

    def _set_clock(self, current_time: str) -> None:
        csms = parse_expiry(current_time)
        if csms is not None:
            self.clock.sync(csms)

    def _clock_corrected(self, correction_s: float) -> None:
        rows = self.outbox.correct_timestamps(
            lambda payload: shift_timestamps(payload, correction_s))
        if rows:
            log.info("clock synchronized: %d queued message(s) re-stamped by %+.3f s",
                     rows, correction_s)

    def _send_live_call(self, payload: Any) -> None:
        """Hand a CALL to the live sender (dropped while offline: it reports a state the
        CSMS reads again after a reconnect)."""
        if self.online:
            self._live.put_nowait(payload)

    async def _send_live(self, cp: ChargePoint201) -> None:
        while True:
            payload = await self._live.get()
            try:
                await cp.call(payload)
            except TimeoutError as exc:
                log.warning("%s not answered: %s", type(payload).__name__, exc)

    async def _clock_aligned(self) -> None:
        """AlignedDataCtrlr.Interval (J01): readings at each multiple of the interval."""
        while True:
            interval = (self.model.get_int("AlignedDataCtrlr", "Interval")
                        if self.model.get_bool("AlignedDataCtrlr", "Enabled") else 0)
            if interval <= 0:
                await asyncio.sleep(1.0)
                continue
            await asyncio.sleep(aligned_delay(self.clock.now(), interval))
            self.events.clock_aligned(round(self.clock.now() / interval) * interval)

    # -- the outbox sender's 2.0.1 part ---------------------------------------------------
    def _retry(self) -> tuple[int, int]:
        m = self.model
        return (m.get_int("OCPPCommCtrlr", VariableRef("MessageAttempts", "TransactionEvent")),
                m.get_int("OCPPCommCtrlr",
                          VariableRef("MessageAttemptInterval", "TransactionEvent")))

    def _prepare(self, message: QueuedMessage) -> Any:
        return _QUEUED_CALLS[message.action](**message.payload)

    def _delivered(self, message: QueuedMessage, result: Any) -> None:
        info = getattr(result, "id_token_info", None)
        token = message.payload.get("id_token")
        if not info or not token:
            self.outbox.done(message,
                             commit_now=message.payload.get("event_type") != "Updated")
            return
        # The cache update and the acknowledgement: one commit.
        with transaction(self._db):
            auth = self.auth.remember(token["id_token"], id_tag_info(info))
            self.outbox.done(message, commit_now=True)
        tx_id = message.payload["transaction_info"]["transaction_id"]
        tx = self.store.by_id(tx_id)
        conn = self.station.evses.get(tx.evse_id) if tx is not None else None
        if conn is not None and conn.session is not None and not auth.accepted:
            stop = self.model.get_bool("TxCtrlr", "StopTxOnInvalidId")
            log.warning("transaction %s: idToken %s, %s", tx_id, auth.status.value,
                        "stopping (DeAuthorized)" if stop else "suspending energy")
            self.station.deauthorize(conn.id, f"idToken {auth.status.value}", stop=stop)


def create_adapter(station: Station, config: Config, db: sqlite3.Connection,
                   ssl_context: ssl.SSLContext | None = None,
                   headers: Mapping[str, str] | None = None) -> Ocpp201Adapter:
    """The OCPP 2.0.1 adapter for ``station`` (the daemon's entry point of this package)."""
    return Ocpp201Adapter(station, config, db, ssl_context=ssl_context, headers=headers)
