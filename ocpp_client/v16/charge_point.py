"""The OCPP 1.6J charge point on the ``ocpp`` library: CSMS → charge point handlers.

Handlers are ``@on(Action.X)`` methods, as the library intends, given the ports they need at
construction: the station-command port (:class:`~ocpp_client.v16.commands.StationCommands16`),
the configuration store and the authorization policy. They answer at once and never make a
CALL themselves (the library reads the next frame only after a handler returns); follow-up
work starts in ``@after`` hooks, which the library runs once the CALLRESULT is sent.

Frames are screened, and CALLERROR codes spelled as OCPP-J 1.6 spells them, by the
:class:`~ocpp_client.frames.FrameGuard` around the connection (:func:`frame_rules`).
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from jsonschema import Draft4Validator
from ocpp.exceptions import NotSupportedError
from ocpp.messages import MessageType, get_validator
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import (
    Action,
    AvailabilityStatus,
    AvailabilityType,
    ChargingProfileStatus,
    ClearCacheStatus,
    ClearChargingProfileStatus,
    ConfigurationStatus,
    DataTransferStatus,
    GetCompositeScheduleStatus,
    RemoteStartStopStatus,
    ResetStatus,
    TriggerMessageStatus,
    UnlockStatus,
    UpdateFirmwareStatus,
    UpdateStatus,
)

from ocpp_client.authorization import AuthorizationPolicy
from ocpp_client.configuration import ConfigurationStore
from ocpp_client.frame_log import FrameLogger
from ocpp_client.frames import FrameRules
from ocpp_client.v16.charging_commands import SmartCharging16
from ocpp_client.v16.commands import StationCommands16
from ocpp_client.v16.security import Security16

log = logging.getLogger(__name__)

#: OCPP-J 1.6 §4.2.3 spellings of error codes the library spells as OCPP 2.0 does.
SPELLING_16 = {
    "FormatViolation": "FormationViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
}

#: Actions whose schemas need decimal floats (``multipleOf``): the library validates them.
_DECIMAL_SCHEMAS = frozenset({"SetChargingProfile", "RemoteStartTransaction"})


@cache
def call_validator(action: str) -> Draft4Validator | None:
    """The 1.6 JSON schema validator of ``action``'s CALL payload (None: left to the
    library, or no schema)."""
    if action in _DECIMAL_SCHEMAS:
        return None
    try:
        validator: Draft4Validator = get_validator(MessageType.Call, action, "1.6")
    except OSError:
        return None
    return validator


class ChargePoint16(ChargePoint):
    """``ocpp.v16.ChargePoint`` with this charge point's handlers.

    Args:
        station_id: the charge point identity.
        connection: the (guarded) WebSocket.
        commands: the station-command port.
        configuration: the 1.6 configuration keys.
        auth: the authorization policy (Local Authorization List, cache).
        response_timeout: how long a CALL of ours waits for its answer, s.
        smart: the Smart Charging port (None: every Smart Charging call is answered as
            for a charge point without the feature profile).
        security: the security-extension port (whitepaper ed. 3); None: those CALLs are
            not routed (NotSupported).
    """

    def __init__(self, station_id: str, connection: Any, commands: StationCommands16,
                 configuration: ConfigurationStore, auth: AuthorizationPolicy,
                 response_timeout: float, smart: SmartCharging16 | None = None,
                 security: Security16 | None = None) -> None:
        # What the library still logs itself (a CALLERROR it got, a handler that failed on a
        # CALL) goes through this logger: secrets masked, frames cut (frames: log_frame).
        super().__init__(station_id, connection, response_timeout=response_timeout,
                         logger=FrameLogger(logging.getLogger("ocpp")))
        self.commands = commands
        self.configuration = configuration
        self.auth = auth
        self.smart = smart
        self.security = security
        if security is None:
            for action in _SECURITY_ACTIONS:
                self.route_map.pop(action, None)

    def _require(self, profile: str) -> None:
        """Answer NotSupported (CALLERROR) when ``profile`` is switched off (``[ocpp]
        feature_profiles``, OCPP 1.6 §9: SupportedFeatureProfiles)."""
        if not self.commands.feature_enabled(profile):
            raise NotSupportedError(
                description=f"feature profile {profile} is not supported by this station")

    # -- Core profile -------------------------------------------------------------------
    @on(Action.remote_start_transaction)
    def on_remote_start(self, id_tag: str, connector_id: int | None = None,
                        charging_profile: dict[str, Any] | None = None
                        ) -> call_result.RemoteStartTransaction:
        # A chargingProfile must be a valid TxProfile (§5.11); it applies to the
        # transaction this request starts.
        if self.smart is not None and not self.smart.check_remote_start(
                id_tag, connector_id, charging_profile):
            return call_result.RemoteStartTransaction(RemoteStartStopStatus.rejected)
        accepted = self.commands.remote_start(id_tag, connector_id)
        if not accepted and self.smart is not None:
            self.smart.forget_remote_start(id_tag)
        return call_result.RemoteStartTransaction(
            RemoteStartStopStatus.accepted if accepted else RemoteStartStopStatus.rejected)

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int) -> call_result.RemoteStopTransaction:
        accepted = self.commands.can_remote_stop(transaction_id)
        return call_result.RemoteStopTransaction(
            RemoteStartStopStatus.accepted if accepted else RemoteStartStopStatus.rejected)

    @after(Action.remote_stop_transaction)
    def after_remote_stop(self, transaction_id: int) -> None:
        self.commands.remote_stop(transaction_id)

    @on(Action.reset)
    def on_reset(self, type: str) -> call_result.Reset:
        return call_result.Reset(ResetStatus.accepted)

    @after(Action.reset)
    def after_reset(self, type: str) -> None:
        self.commands.reset(type)

    @on(Action.change_availability)
    def on_change_availability(self, connector_id: int, type: str
                               ) -> call_result.ChangeAvailability:
        answer = self.commands.availability_answer(connector_id)
        status = {"accepted": AvailabilityStatus.accepted,
                  "scheduled": AvailabilityStatus.scheduled}.get(answer,
                                                                 AvailabilityStatus.rejected)
        return call_result.ChangeAvailability(status)

    @after(Action.change_availability)
    def after_change_availability(self, connector_id: int, type: str) -> None:
        self.commands.change_availability(connector_id, type == AvailabilityType.operative)

    @on(Action.unlock_connector)
    async def on_unlock_connector(self, connector_id: int) -> call_result.UnlockConnector:
        answer = await self.commands.unlock(connector_id)
        status = {"unlocked": UnlockStatus.unlocked,
                  "unlock_failed": UnlockStatus.unlock_failed}.get(answer,
                                                                   UnlockStatus.not_supported)
        return call_result.UnlockConnector(status)

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None
                             ) -> call_result.GetConfiguration:
        known, unknown = self.configuration.describe(key)
        return call_result.GetConfiguration(configuration_key=known,
                                            unknown_key=unknown or None)

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str) -> call_result.ChangeConfiguration:
        answer = self.configuration.change(key, value)
        return call_result.ChangeConfiguration(ConfigurationStatus(answer))

    @after(Action.change_configuration)
    def after_change_configuration(self, key: str, value: str) -> None:
        if self.security is not None:
            self.security.after_change_configuration(key)

    @on(Action.clear_cache)
    def on_clear_cache(self) -> call_result.ClearCache:
        self.auth.clear_cache()
        return call_result.ClearCache(ClearCacheStatus.accepted)

    # -- Smart Charging profile (OCPP 1.6 §5.5, §5.7, §5.16) -------------------------------
    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]
                                ) -> call_result.SetChargingProfile:
        status = ("NotSupported" if self.smart is None
                  else self.smart.set_charging_profile(connector_id, cs_charging_profiles))
        return call_result.SetChargingProfile(ChargingProfileStatus(status))

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(self, id: int | None = None,
                                  connector_id: int | None = None,
                                  charging_profile_purpose: str | None = None,
                                  stack_level: int | None = None
                                  ) -> call_result.ClearChargingProfile:
        self._require("SmartCharging")
        status = "Unknown" if self.smart is None else self.smart.clear_charging_profile(
            id, connector_id, None if charging_profile_purpose is None
            else str(charging_profile_purpose), stack_level)
        return call_result.ClearChargingProfile(ClearChargingProfileStatus(status))

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(self, connector_id: int, duration: int,
                                  charging_rate_unit: str | None = None
                                  ) -> call_result.GetCompositeSchedule:
        self._require("SmartCharging")
        p = {"status": "Rejected"} if self.smart is None else \
            self.smart.get_composite_schedule(
                connector_id, int(duration),
                None if charging_rate_unit is None else str(charging_rate_unit))
        return call_result.GetCompositeSchedule(
            GetCompositeScheduleStatus(p["status"]), p.get("connectorId"),
            p.get("scheduleStart"), p.get("chargingSchedule"))

    # -- Local Auth List Management profile (OCPP 1.6 §5.9, §5.15) -----------------------
    @on(Action.send_local_list)
    def on_send_local_list(self, list_version: int, update_type: str,
                           local_authorization_list: list[dict[str, Any]] | None = None
                           ) -> call_result.SendLocalList:
        self._require("LocalAuthListManagement")
        answer = self.auth.send_local_list(list_version, str(update_type),
                                           local_authorization_list or [])
        return call_result.SendLocalList(UpdateStatus(answer))

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self) -> call_result.GetLocalListVersion:
        self._require("LocalAuthListManagement")
        return call_result.GetLocalListVersion(self.auth.local_list_version())

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None,
                         data: str | None = None) -> call_result.DataTransfer:
        # No vendor extensions are registered (OCPP 1.6 §5.6).
        return call_result.DataTransfer(DataTransferStatus.unknown_vendor_id)

    # -- Remote Trigger profile (OCPP 1.6 §5.17) -------------------------------------------
    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, connector_id: int | None = None
                           ) -> call_result.TriggerMessage:
        self._require("RemoteTrigger")
        answer = self.commands.trigger_answer(str(requested_message), connector_id)
        return call_result.TriggerMessage(TriggerMessageStatus(answer))

    @after(Action.trigger_message)
    async def after_trigger_message(self, requested_message: str,
                                    connector_id: int | None = None) -> None:
        await self.commands.triggered(str(requested_message), connector_id)

    # -- Firmware Management profile (OCPP 1.6 §5.19, §5.9; docs/firmware-update.md) -----
    @on(Action.update_firmware)
    def on_update_firmware(self, location: str, retrieve_date: str, retries: int | None = None,
                           retry_interval: int | None = None) -> call_result.UpdateFirmware:
        self._require("FirmwareManagement")
        return call_result.UpdateFirmware()

    @after(Action.update_firmware)
    def after_update_firmware(self, location: str, retrieve_date: str,
                              retries: int | None = None,
                              retry_interval: int | None = None) -> None:
        # After the response: the first FirmwareStatusNotification never precedes it.
        if self.commands.feature_enabled("FirmwareManagement"):
            self.commands.update_firmware(location, retrieve_date, retries, retry_interval)

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, location: str, retries: int | None = None,
                           retry_interval: int | None = None, start_time: str | None = None,
                           stop_time: str | None = None) -> call_result.GetDiagnostics:
        self._require("FirmwareManagement")
        # The answer carries the file name, so the upload starts here; its first status
        # (Uploading) follows once the archive is built, on a worker thread.
        result: call_result.GetDiagnostics = self.commands.get_diagnostics(
            location, retries, retry_interval, start_time, stop_time)
        return result

    # -- Reservation profile (OCPP 1.6 §5.13, §5.3) ---------------------------------------
    @on(Action.reserve_now)
    def on_reserve_now(self, connector_id: int, expiry_date: str, id_tag: str,
                       reservation_id: int, parent_id_tag: str | None = None
                       ) -> call_result.ReserveNow:
        self._require("Reservation")
        result: call_result.ReserveNow = self.commands.reserve_now(
            connector_id, expiry_date, id_tag, reservation_id, parent_id_tag)
        return result

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int) -> call_result.CancelReservation:
        self._require("Reservation")
        result: call_result.CancelReservation = self.commands.cancel_reservation(
            reservation_id)
        return result


    # -- Security extensions (1.6 security whitepaper ed. 3) ------------------------------
    def _security(self) -> Security16:
        assert self.security is not None  # routed only with a security port
        return self.security

    @on(Action.certificate_signed)
    def on_certificate_signed(self, certificate_chain: str) -> call_result.CertificateSigned:
        return call_result.CertificateSigned(
            self._security().certificate_signed(certificate_chain))

    @after(Action.certificate_signed)
    def after_certificate_signed(self, certificate_chain: str) -> None:
        self._security().after_certificate_signed()

    @on(Action.install_certificate)
    def on_install_certificate(self, certificate_type: str, certificate: str
                               ) -> call_result.InstallCertificate:
        return call_result.InstallCertificate(
            self._security().install_certificate(str(certificate_type), certificate))

    @on(Action.get_installed_certificate_ids)
    def on_get_installed_certificate_ids(self, certificate_type: str
                                         ) -> call_result.GetInstalledCertificateIds:
        status, ids = self._security().installed_ids(str(certificate_type))
        return call_result.GetInstalledCertificateIds(status, certificate_hash_data=ids)

    @on(Action.delete_certificate)
    def on_delete_certificate(self, certificate_hash_data: dict[str, str]
                              ) -> call_result.DeleteCertificate:
        return call_result.DeleteCertificate(
            self._security().delete_certificate(certificate_hash_data))

    @on(Action.extended_trigger_message)
    def on_extended_trigger_message(self, requested_message: str,
                                    connector_id: int | None = None
                                    ) -> call_result.ExtendedTriggerMessage:
        return call_result.ExtendedTriggerMessage(
            self._security().trigger_answer(str(requested_message), connector_id))

    @after(Action.extended_trigger_message)
    async def after_extended_trigger_message(self, requested_message: str,
                                             connector_id: int | None = None) -> None:
        security = self._security()
        if security.trigger_answer(str(requested_message), connector_id) == \
                TriggerMessageStatus.accepted:
            await security.triggered(str(requested_message), connector_id)

    @on(Action.signed_update_firmware)
    def on_signed_update_firmware(self, request_id: int, firmware: dict[str, Any],
                                  retries: int | None = None, retry_interval: int | None = None
                                  ) -> call_result.SignedUpdateFirmware:
        if not self.commands.feature_enabled("FirmwareManagement"):
            return call_result.SignedUpdateFirmware(UpdateFirmwareStatus.rejected)
        return call_result.SignedUpdateFirmware(self._security().signed_update_firmware(
            request_id, firmware, retries, retry_interval))

    @after(Action.signed_update_firmware)
    def after_signed_update_firmware(self, request_id: int, firmware: dict[str, Any],
                                     retries: int | None = None,
                                     retry_interval: int | None = None) -> None:
        # After the answer: the first SignedFirmwareStatusNotification never precedes it.
        self._security().after_signed_update_firmware()

    @on(Action.get_log)
    def on_get_log(self, log: dict[str, Any], log_type: str, request_id: int,
                   retries: int | None = None, retry_interval: int | None = None
                   ) -> call_result.GetLog:
        status, filename = self._security().get_log(str(log_type), request_id, log,
                                                    retries, retry_interval)
        return call_result.GetLog(status=status, filename=filename)


#: CSMS → charge point actions of the security extensions.
_SECURITY_ACTIONS = (Action.certificate_signed, Action.install_certificate,
                     Action.get_installed_certificate_ids, Action.delete_certificate,
                     Action.extended_trigger_message, Action.get_log,
                     Action.signed_update_firmware)


def frame_rules(cp: ChargePoint16, max_frame_bytes: int = 1024 * 1024) -> FrameRules:
    """The frame guard's rules for ``cp``: 1.6 actions, routes, schemas and spellings."""
    return FrameRules(
        known_actions=frozenset(a.value for a in Action),
        routed=frozenset(cp.route_map),
        validator=call_validator,
        spelling=SPELLING_16,
        max_frame_bytes=max_frame_bytes,
    )
