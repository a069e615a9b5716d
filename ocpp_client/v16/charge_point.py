"""The OCPP 1.6J charge point on the ``ocpp`` library: CSMS → charge point handlers.

Handlers answer from the adapter's state and never make a CALL themselves (the library reads
the next frame only after a handler returns); follow-up CALLs go through ``@after`` hooks or
the adapter's tasks.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from ocpp.exceptions import (
    FormatViolationError,
    NotImplementedError,
    NotSupportedError,
    OCPPError,
)
from ocpp.messages import Call, CallError, MessageType, unpack
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import (
    Action,
    AvailabilityStatus,
    AvailabilityType,
    ClearCacheStatus,
    ConfigurationStatus,
    DataTransferStatus,
    MessageTrigger,
    RemoteStartStopStatus,
    ResetStatus,
    TriggerMessageStatus,
    UnlockStatus,
    UpdateStatus,
)

from ocpp_client.frame_log import FrameLogger, loggable

if TYPE_CHECKING:
    from ocpp_client.v16.adapter import Ocpp16Adapter

log = logging.getLogger(__name__)

#: OCPP-J 1.6 spells the 2.0 "FormatViolation" error code "FormationViolation" (§4.2.3).
_CODE_16 = {FormatViolationError.code: "FormationViolation"}


def _error_16(unique_id: str, error: OCPPError) -> str:
    code = _CODE_16.get(error.code, error.code)
    return json.dumps([MessageType.CallError, unique_id, code, error.description,
                       error.details or {}], default=str)


def _unique_id_of(raw: Any) -> str:
    """Best-effort message id of a frame that failed to parse ("-1" when there is none)."""
    try:
        frame = json.loads(raw)
        if isinstance(frame, list) and len(frame) > 1 and isinstance(frame[1], str):
            return frame[1]
    except (ValueError, TypeError):
        pass
    return "-1"


def _unknown_action(action: str) -> OCPPError:
    """OCPP-J 1.6 §4.2.3: an action the receiver does not know is NotImplemented; a 1.6
    action it knows but does not support is NotSupported. (The ``ocpp`` library swaps the
    two, so the charge point decides itself.)"""
    if action in {a.value for a in Action}:
        return NotSupportedError(description="Requested Action is recognized but not "
                                 "supported by the receiver", details={"action": action})
    return NotImplementedError(description="Requested Action is not known by receiver",
                               details={"action": action})


class ChargePoint16(ChargePoint):
    """``ocpp.v16.ChargePoint`` with this charge point's handlers and 1.6 error codes."""

    def __init__(self, station_id: str, connection: Any, adapter: Ocpp16Adapter,
                 response_timeout: float) -> None:
        # The library logs frames through this logger: secrets masked, frames cut.
        super().__init__(station_id, connection, response_timeout=response_timeout,
                         logger=FrameLogger(logging.getLogger("ocpp.frames")))
        self.adapter = adapter

    async def route_message(self, raw_msg: Any) -> None:
        """Route one frame; malformed frames get a CALLERROR and the link stays up
        (OCPP-J 1.6 §4.2.3)."""
        try:
            msg = unpack(raw_msg)
        except OCPPError as error:
            log.warning("malformed frame from CSMS (%s): %s", error.code, loggable(raw_msg))
            await self._send(_error_16(_unique_id_of(raw_msg), error))
            return
        if msg.message_type_id == MessageType.Call:
            if msg.action not in self.route_map:
                await self._send(_error_16(msg.unique_id, _unknown_action(msg.action)))
                return
            try:
                await self._handle_call(msg)
            except OCPPError as error:
                log.warning("CALL %s rejected: %s %s", msg.action, error.code, error.description)
                await self._send(_error_16(msg.unique_id, error))
        elif msg.message_type_id in (MessageType.CallResult, MessageType.CallError):
            self._response_queue.put_nowait(msg)

    # -- Core profile -------------------------------------------------------------------
    @on(Action.remote_start_transaction)
    async def on_remote_start(self, id_tag: str, connector_id: int | None = None,
                              charging_profile: dict[str, Any] | None = None
                              ) -> call_result.RemoteStartTransaction:
        accepted = await self.adapter.remote_start(id_tag, connector_id)
        return call_result.RemoteStartTransaction(
            RemoteStartStopStatus.accepted if accepted else RemoteStartStopStatus.rejected)

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int) -> call_result.RemoteStopTransaction:
        accepted = self.adapter.remote_stop(transaction_id)
        return call_result.RemoteStopTransaction(
            RemoteStartStopStatus.accepted if accepted else RemoteStartStopStatus.rejected)

    @on(Action.reset)
    def on_reset(self, type: str) -> call_result.Reset:
        return call_result.Reset(ResetStatus.accepted)

    @after(Action.reset)
    def after_reset(self, type: str) -> None:
        self.adapter.reset(type)

    @on(Action.change_availability)
    def on_change_availability(self, connector_id: int, type: str
                               ) -> call_result.ChangeAvailability:
        answer = self.adapter.station.change_availability(
            connector_id, type == AvailabilityType.operative)
        status = {"accepted": AvailabilityStatus.accepted,
                  "scheduled": AvailabilityStatus.scheduled}.get(answer,
                                                                 AvailabilityStatus.rejected)
        return call_result.ChangeAvailability(status)

    @on(Action.unlock_connector)
    async def on_unlock_connector(self, connector_id: int) -> call_result.UnlockConnector:
        answer = await self.adapter.station.unlock(connector_id)
        status = {"unlocked": UnlockStatus.unlocked,
                  "unlock_failed": UnlockStatus.unlock_failed}.get(answer,
                                                                   UnlockStatus.not_supported)
        return call_result.UnlockConnector(status)

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None
                             ) -> call_result.GetConfiguration:
        known, unknown = self.adapter.configuration.describe(key)
        return call_result.GetConfiguration(configuration_key=known,
                                            unknown_key=unknown or None)

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str) -> call_result.ChangeConfiguration:
        answer = self.adapter.configuration.change(key, value)
        return call_result.ChangeConfiguration(ConfigurationStatus(answer))

    @on(Action.clear_cache)
    def on_clear_cache(self) -> call_result.ClearCache:
        self.adapter.cache.clear()
        return call_result.ClearCache(ClearCacheStatus.accepted)

    # -- Local Auth List Management profile (OCPP 1.6 §5.9, §5.15) -----------------------
    @on(Action.send_local_list)
    def on_send_local_list(self, list_version: int, update_type: str,
                           local_authorization_list: list[dict[str, Any]] | None = None
                           ) -> call_result.SendLocalList:
        answer = self.adapter.send_local_list(list_version, str(update_type),
                                              local_authorization_list or [])
        return call_result.SendLocalList(UpdateStatus(answer))

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(self.adapter.local_list_version())

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None,
                         data: str | None = None) -> call_result.DataTransfer:
        # No vendor extensions are registered (OCPP 1.6 §5.6).
        return call_result.DataTransfer(DataTransferStatus.unknown_vendor_id)

    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, connector_id: int | None = None
                           ) -> call_result.TriggerMessage:
        supported = {MessageTrigger.boot_notification, MessageTrigger.heartbeat,
                     MessageTrigger.meter_values, MessageTrigger.status_notification}
        if connector_id is not None and connector_id not in (0, *self.adapter.station.connectors):
            return call_result.TriggerMessage(TriggerMessageStatus.rejected)
        if requested_message not in supported:
            return call_result.TriggerMessage(TriggerMessageStatus.not_implemented)
        return call_result.TriggerMessage(TriggerMessageStatus.accepted)

    @after(Action.trigger_message)
    async def after_trigger_message(self, requested_message: str,
                                    connector_id: int | None = None) -> None:
        await self.adapter.triggered(requested_message, connector_id)


__all__ = ["Call", "CallError", "ChargePoint16"]
