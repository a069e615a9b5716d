"""CSMS commands of OCPP 1.6 applied to the core: the station-command port the 1.6 handlers
(:mod:`.charge_point`) are given.

Each command is split the way the ``ocpp`` library routes a CALL: a *decision* that the
``@on`` handler returns at once (the CALLRESULT), and the *action* the ``@after`` hook
starts once the CALLRESULT is out — so a follow-up StatusNotification / StopTransaction
never overtakes the answer (OCPP 1.6 §4.9, §5.2, §5.12).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ocpp.v16 import call_result
from ocpp.v16.enums import ReservationStatus

from evse.authorization import AuthorizationStatus, AuthResult
from evse.clock import Clock
from evse.diagnostics import DiagnosticsStatus
from evse.domain import AuthSource, IdToken, IdTokenType, MeterSample, ReadingContext, StopCause
from evse.firmware_update import FirmwareStatus
from evse.station import Station
from evse.task_set import TaskSet
from ocpp_client.authorization import AuthorizationPolicy
from ocpp_client.configuration import ConfigurationStore
from ocpp_client.link import LINK_ERRORS
from ocpp_client.queue import TransactionIds
from ocpp_client.v16 import firmware as v16_firmware
from ocpp_client.v16 import reservation as v16_reservation
from ocpp_client.v16.configuration import FEATURE_PROFILES

log = logging.getLogger(__name__)

#: TriggerMessage requestedMessage values this charge point sends (§5.17): every
#: MessageTrigger of OCPP 1.6.
TRIGGERABLE = frozenset({"BootNotification", "DiagnosticsStatusNotification",
                         "FirmwareStatusNotification", "Heartbeat", "MeterValues",
                         "StatusNotification"})

#: Triggered messages that belong to a feature profile other than Core.
_TRIGGER_PROFILE = {"DiagnosticsStatusNotification": "FirmwareManagement",
                    "FirmwareStatusNotification": "FirmwareManagement"}


class StationCommands16:
    """OCPP 1.6 CSMS commands against the Station.

    Args:
        station: the core.
        configuration: the 1.6 keys (AuthorizeRemoteTxRequests).
        auth: the authorization policy.
        transactions: transactionId ↔ local session.
        clock: the core's clock.
        authorize: authorize an IdToken as for a card (online or offline rules).
        send_boot: send a BootNotification now (TriggerMessage).
        send_heartbeat: send a Heartbeat now (TriggerMessage).
        queue_meter_values: send MeterValues for a sample (TriggerMessage).
        send_station_status: send connector 0's StatusNotification (TriggerMessage).
    """

    def __init__(self, station: Station, configuration: ConfigurationStore,
                 auth: AuthorizationPolicy, transactions: TransactionIds, clock: Clock,
                 authorize: Callable[[IdToken], Awaitable[AuthResult]],
                 send_boot: Callable[[], Awaitable[None]],
                 send_heartbeat: Callable[[], Awaitable[None]],
                 queue_meter_values: Callable[[MeterSample], None],
                 send_station_status: Callable[[], None] | None = None) -> None:
        self.station = station
        self.configuration = configuration
        self.auth = auth
        self.transactions = transactions
        self.clock = clock
        self._authorize = authorize
        self._send_boot = send_boot
        self._send_heartbeat = send_heartbeat
        self._queue_meter_values = queue_meter_values
        self._send_station_status = send_station_status
        #: The daemon's hook for Reset (kind "Hard" / "Soft").
        self.on_reset: Callable[[str], None] | None = None
        #: The enabled feature profiles (``[ocpp] feature_profiles``; set by the adapter).
        self.feature_profiles: frozenset[str] = frozenset(FEATURE_PROFILES)
        #: Sends a CALL now, not queued (set by the adapter; TriggerMessage answers).
        self.send_call: Callable[[Any], Awaitable[None]] | None = None
        #: Queues a firmware / diagnostics status CALL durably (set by the adapter).
        self.queue_call: Callable[[Any], None] | None = None
        self._tasks = TaskSet()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task this object keeps (and :meth:`cancel_all` ends)."""
        return self._tasks.spawn(coro)

    def cancel_all(self) -> None:
        """Cancel every command still running."""
        self._tasks.cancel_all()

    def feature_enabled(self, profile: str) -> bool:
        """True when the OCPP 1.6 feature ``profile`` is switched on (``[ocpp]
        feature_profiles``); the handlers of a switched-off profile answer NotSupported."""
        return profile in self.feature_profiles

    # -- Firmware Management (§5.19 UpdateFirmware, §5.9 GetDiagnostics) ---------------------
    def update_firmware(self, location: str, retrieve_date: str, retries: int | None,
                        retry_interval: int | None) -> None:
        """Start a firmware update (after the empty UpdateFirmware.conf); a request that
        cannot start is reported DownloadFailed."""
        engine = self.station.firmware
        refusal = (v16_firmware.update_firmware(engine, location, retrieve_date, retries,
                                                retry_interval)
                   if engine is not None else v16_firmware.firmware_status_notification(
                       FirmwareStatus.DOWNLOAD_FAILED))
        if refusal is not None and self.queue_call is not None:
            self.queue_call(refusal)

    def get_diagnostics(self, location: str, retries: int | None, retry_interval: int | None,
                        start_time: str | None, stop_time: str | None) -> Any:
        """Start a diagnostics upload: GetDiagnostics.conf with the file name (none when
        nothing can be uploaded)."""
        engine = self.station.diagnostics
        if engine is None:
            return call_result.GetDiagnostics()
        return v16_firmware.get_diagnostics(engine, location, retries, retry_interval,
                                            start_time, stop_time)

    # -- Reservation (§5.13 ReserveNow, §5.3 CancelReservation) ------------------------------
    def reserve_now(self, connector_id: int, expiry_date: str, id_tag: str,
                    reservation_id: int, parent_id_tag: str | None) -> Any:
        """ReserveNow.conf for the request (the Reserved status follows the answer)."""
        reservations = self.station.reservations
        if connector_id != 0 and connector_id not in self.station.connectors:
            return call_result.ReserveNow(
                ReservationStatus.rejected)
        evse_id = 0 if connector_id == 0 else self.station.connectors[connector_id].evse_id
        return v16_reservation.reserve_now(reservations, evse_id, expiry_date, id_tag,
                                           reservation_id, parent_id_tag)

    def cancel_reservation(self, reservation_id: int) -> Any:
        """CancelReservation.conf: Accepted when the reservation existed."""
        return v16_reservation.cancel_reservation(self.station.reservations, reservation_id)

    # -- RemoteStartTransaction (§5.11) ---------------------------------------------------
    def remote_start(self, id_tag: str, connector_id: int | None) -> bool:
        """Start a transaction for the CSMS. With AuthorizeRemoteTxRequests the idTag is
        authorized first (the answer is Accepted and the start follows); otherwise the
        CSMS's request is the authorization."""
        if connector_id is not None and connector_id <= 0:
            return False
        if (self.configuration.get_bool("AuthorizeRemoteTxRequests")
                and not self.auth.known_valid(id_tag)):
            self.spawn(self._authorize_then_start(id_tag, connector_id))
            return True
        token = IdToken(id_tag, IdTokenType.CENTRAL)
        return self.station.remote_start(token, connector_id, AuthResult(
            AuthorizationStatus.ACCEPTED, id_token=token, source=AuthSource.REMOTE_START))

    async def _authorize_then_start(self, id_tag: str, connector_id: int | None) -> None:
        token = IdToken(id_tag, IdTokenType.CENTRAL)
        result = await self._authorize(token)
        if result.accepted:
            self.station.remote_start(token, connector_id, result)

    # -- RemoteStopTransaction (§5.12) ----------------------------------------------------
    def _connector_of(self, transaction_id: int) -> int | None:
        session_id = self.transactions.session_id(transaction_id)
        conn = self.station.session_by_id(session_id) if session_id is not None else None
        return None if conn is None else conn.id

    def can_remote_stop(self, transaction_id: int) -> bool:
        """Accepted when the transaction runs here."""
        return self._connector_of(transaction_id) is not None

    def remote_stop(self, transaction_id: int) -> None:
        """Stop the transaction (after the CALLRESULT)."""
        connector_id = self._connector_of(transaction_id)
        if connector_id is not None:
            self.spawn(self.station.stop_transaction(connector_id, StopCause.REMOTE))

    # -- ChangeAvailability (§5.2) ----------------------------------------------------------
    def availability_answer(self, connector_id: int) -> str:
        """What :meth:`change_availability` will do: "accepted", "scheduled" (a transaction
        runs on a target: applied when it ends) or "rejected" (no such connector)."""
        connectors = self.station.connectors
        if connector_id != 0 and connector_id not in connectors:
            return "rejected"
        targets = connectors.values() if connector_id == 0 else [connectors[connector_id]]
        return "scheduled" if any(c.session is not None for c in targets) else "accepted"

    def change_availability(self, connector_id: int, operative: bool) -> str:
        """Apply ChangeAvailability (after the CALLRESULT)."""
        return self.station.change_availability(connector_id, operative)

    # -- UnlockConnector (§5.18) --------------------------------------------------------------
    async def unlock(self, connector_id: int) -> str:
        """"unlocked", "unlock_failed" or "not_supported" (the answer needs the attempt)."""
        return await self.station.unlock(connector_id)

    # -- Reset (§5.14) ----------------------------------------------------------------------
    def reset(self, kind: str) -> None:
        """Stop transactions (SoftReset / HardReset), then hand over to the daemon."""
        async def do_reset() -> None:
            cause = StopCause.RESET_HARD if kind == "Hard" else StopCause.RESET_SOFT
            await self.station.stop_all(cause)
            if self.on_reset is not None:
                self.on_reset(kind)
        self.spawn(do_reset())

    # -- TriggerMessage (§5.17) -------------------------------------------------------------
    def trigger_answer(self, requested: str, connector_id: int | None) -> str:
        """"Accepted", "Rejected" (no such connector) or "NotImplemented"."""
        if connector_id is not None and connector_id not in (0, *self.station.connectors):
            return "Rejected"
        if requested not in TRIGGERABLE:
            return "NotImplemented"
        profile = _TRIGGER_PROFILE.get(requested)
        if profile is not None and not self.feature_enabled(profile):
            return "NotImplemented"
        return "Accepted"

    async def triggered(self, requested: str, connector_id: int | None) -> None:
        """Send the message a TriggerMessage asked for (after the CALLRESULT); nothing when
        the answer was not Accepted."""
        if self.trigger_answer(requested, connector_id) != "Accepted":
            return
        try:
            if requested == "BootNotification":
                await self._send_boot()
            elif requested == "Heartbeat":
                await self._send_heartbeat()
            elif requested == "FirmwareStatusNotification" and self.send_call is not None:
                firmware = self.station.firmware
                await self.send_call(v16_firmware.triggered_firmware_status_notification(
                    FirmwareStatus.IDLE if firmware is None else firmware.status))
            elif requested == "DiagnosticsStatusNotification" and self.send_call is not None:
                diagnostics = self.station.diagnostics
                await self.send_call(v16_firmware.triggered_diagnostics_status_notification(
                    DiagnosticsStatus.IDLE if diagnostics is None
                    else diagnostics.status))
            elif requested == "StatusNotification":
                if connector_id in (None, 0) and self._send_station_status is not None:
                    self._send_station_status()  # connector 0: the station itself (§5.17)
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
                            conn.id, sid, reading, ReadingContext.TRIGGER, conn.evse_id,
                            self.station.ev_state_of_charge(conn.id)))
        except LINK_ERRORS as exc:
            log.warning("triggered %s not sent: %s", requested, exc)
