"""The OCPP 2.0.1 charging station on the ``ocpp`` library: CSMS → station handlers.

As in 1.6 (:mod:`ocpp_client.v16.charge_point`), handlers are ``@on(Action.X)`` methods given
their ports (the station-command port, the device model, the authorization policy); they
answer at once, and follow-up work (NotifyReport parts, TransactionEvents, a reset) starts in
``@after`` hooks once the CALLRESULT is sent. Frames are screened by the shared
:class:`~ocpp_client.frames.FrameGuard` with the 2.0.1 JSON schemas and OCPP-J 2.0.1 error
codes (FormatViolation, NotImplemented, ...): :func:`frame_rules`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import cache
from typing import Any

from jsonschema import Draft4Validator
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.messages import MessageType, get_validator
from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action

import ocpp_client.v201.mapping as mapping
from ocpp_client.authorization import AuthorizationPolicy
from ocpp_client.frames import FrameRules
from ocpp_client.v201.commands import StationCommands201, id_token_of
from ocpp_client.v201.device_model import DeviceModel
from ocpp_client.v201.reports import ReportAnswer, get_base_report, get_report
from ocpp_client.v201.reservation import Reservation201, ReservationHandlers201
from ocpp_client.v201.security_handlers import SecurityHandlers201
from ocpp_client.v201.smart_charging import SmartCharging201, SmartChargingHandlers201
from ocpp_client.v201.variables_requests import get_variables, set_variables

log = logging.getLogger(__name__)


@cache
def call_validator(action: str) -> Draft4Validator | None:
    """The 2.0.1 JSON schema validator of ``action``'s CALL payload (None: no schema)."""
    try:
        validator: Draft4Validator = get_validator(MessageType.Call, action, "2.0.1")
    except OSError:
        return None
    return validator


def _local_list_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """AuthorizationData (2.0.1) → the shared local list's entry shape."""
    out: dict[str, Any] = {"id_tag": entry["id_token"]["id_token"]}
    info = entry.get("id_token_info")
    if info is not None:
        out["id_tag_info"] = id_tag_info(info)
    return out


def id_tag_info(info: dict[str, Any]) -> dict[str, Any]:
    """IdTokenInfoType (2.0.1, snake_case) → the shared policy's IdTagInfo shape: status,
    group → parent id, cacheExpiryDateTime → expiry."""
    out: dict[str, Any] = {"status": info.get("status", "Invalid")}
    group = info.get("group_id_token")
    if group:
        out["parent_id_tag"] = group.get("id_token")
    if info.get("cache_expiry_date_time"):
        out["expiry_date"] = info["cache_expiry_date_time"]
    return out


class ChargePoint201(SmartChargingHandlers201, ReservationHandlers201, SecurityHandlers201,
                     ChargePoint):
    """``ocpp.v201.ChargePoint`` with this station's handlers (firmware, diagnostics and
    security ones in :class:`~.security_handlers.SecurityHandlers201`; Smart Charging K01–K10
    and Reservation H01–H04 mixed in from :mod:`.smart_charging` / :mod:`.reservation`).

    Args:
        station_id: the charging station identity.
        connection: the (guarded) WebSocket.
        commands: the station-command port.
        model: the device model.
        auth: the authorization policy (local list, cache).
        response_timeout: how long a CALL of ours waits for its answer, s.
        smart: the smart-charging port (K01–K10).
        reservation: the reservation port (H01–H04).
    """

    def __init__(self, station_id: str, connection: Any, commands: StationCommands201,
                 model: DeviceModel, auth: AuthorizationPolicy,
                 response_timeout: float, smart: SmartCharging201 | None = None,
                 reservation: Reservation201 | None = None) -> None:
        self.smart = smart
        self.reservation = reservation
        self._profile_reports: dict[int, list[dict[str, Any]]] = {}
        super().__init__(station_id, connection, response_timeout=response_timeout)
        self.commands = commands
        self.model = model
        self.auth = auth
        self._reports: dict[int, ReportAnswer] = {}

    # -- Provisioning (B05–B08, B11–B12) -------------------------------------------------
    @on(Action.get_variables)
    def on_get_variables(self, **payload: Any) -> call_result.GetVariables:
        answer = get_variables(self.model, snake_to_camel_case(payload))
        return call_result.GetVariables(get_variable_result=answer["getVariableResult"])

    @on(Action.set_variables)
    def on_set_variables(self, **payload: Any) -> call_result.SetVariables:
        answer = set_variables(self.model, snake_to_camel_case(payload))
        return call_result.SetVariables(set_variable_result=answer["setVariableResult"])

    @on(Action.get_base_report)
    def on_get_base_report(self, request_id: int, report_base: str,
                           **_: Any) -> call_result.GetBaseReport:
        answer = get_base_report(self.model, {"requestId": request_id,
                                              "reportBase": report_base},
                                 generated_at=datetime.now(UTC))
        self._reports[request_id] = answer
        return call_result.GetBaseReport(status=answer.response["status"])

    @on(Action.get_report)
    def on_get_report(self, **payload: Any) -> call_result.GetReport:
        answer = get_report(self.model, snake_to_camel_case(payload),
                            generated_at=datetime.now(UTC))
        self._reports[payload["request_id"]] = answer
        return call_result.GetReport(status=answer.response["status"])

    @after(Action.get_base_report)
    async def after_get_base_report(self, request_id: int, **_: Any) -> None:
        await self._send_report(request_id)

    @after(Action.get_report)
    async def after_get_report(self, request_id: int, **_: Any) -> None:
        await self._send_report(request_id)

    async def _send_report(self, request_id: int) -> None:
        answer = self._reports.pop(request_id, None)
        for part in answer.notify_reports if answer is not None else ():
            await self.call(call.NotifyReport(**camel_to_snake_case(part)))

    @on(Action.reset)
    def on_reset(self, type: str, evse_id: int | None = None, **_: Any) -> call_result.Reset:
        return call_result.Reset(status=self.commands.reset_answer(str(type), evse_id))

    @after(Action.reset)
    def after_reset(self, type: str, evse_id: int | None = None, **_: Any) -> None:
        if self.commands.reset_answer(str(type), evse_id) != "Rejected":
            self.commands.reset(str(type), evse_id)

    # -- Authorization (C09–C15, D01–D02) ----------------------------------------------
    @on(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> call_result.ClearCache:
        self.auth.clear_cache()
        return call_result.ClearCache(status="Accepted")

    @on(Action.send_local_list)
    def on_send_local_list(self, version_number: int, update_type: str,
                           local_authorization_list: list[dict[str, Any]] | None = None,
                           **_: Any) -> call_result.SendLocalList:
        entries = [_local_list_entry(e) for e in local_authorization_list or []]
        answer = self.auth.send_local_list(version_number, str(update_type), entries)
        return call_result.SendLocalList(status=mapping.SEND_LOCAL_LIST_STATUS[answer].value)

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(
            version_number=max(0, self.auth.local_list_version()))

    # -- Remote control (F01–F06) --------------------------------------------------------
    @on(Action.request_start_transaction)
    def on_request_start(self, id_token: dict[str, Any], remote_start_id: int,
                         evse_id: int | None = None,
                         charging_profile: dict[str, Any] | None = None, **_: Any
                         ) -> call_result.RequestStartTransaction:
        # F01 / K05: a chargingProfile must pass the K01 checks, and waits for the
        # transaction this request starts.
        token = id_token_of(id_token)
        if self.smart is not None and charging_profile is not None and (
                not self.smart.enabled
                or not self.smart.check_remote_start(token, evse_id, charging_profile)):
            return call_result.RequestStartTransaction(status="Rejected")
        accepted, transaction_id = self.commands.request_start(id_token, remote_start_id,
                                                               evse_id)
        if not accepted and self.smart is not None and charging_profile is not None:
            self.smart.forget_remote_start(token)
        return call_result.RequestStartTransaction(
            status="Accepted" if accepted else "Rejected", transaction_id=transaction_id)

    @on(Action.request_stop_transaction)
    def on_request_stop(self, transaction_id: str, **_: Any
                        ) -> call_result.RequestStopTransaction:
        accepted = self.commands.can_stop(transaction_id)
        return call_result.RequestStopTransaction(
            status="Accepted" if accepted else "Rejected")

    @after(Action.request_stop_transaction)
    def after_request_stop(self, transaction_id: str, **_: Any) -> None:
        self.commands.request_stop(transaction_id)

    @on(Action.unlock_connector)
    async def on_unlock_connector(self, evse_id: int, connector_id: int,
                                  **_: Any) -> call_result.UnlockConnector:
        return call_result.UnlockConnector(
            status=await self.commands.unlock(evse_id, connector_id))

    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, evse: dict[str, Any] | None = None,
                           **_: Any) -> call_result.TriggerMessage:
        return call_result.TriggerMessage(
            status=self.commands.trigger_answer(str(requested_message), evse))

    @after(Action.trigger_message)
    async def after_trigger_message(self, requested_message: str,
                                    evse: dict[str, Any] | None = None, **_: Any) -> None:
        if self.commands.trigger_answer(str(requested_message), evse) == "Accepted":
            await self.commands.triggered(str(requested_message), evse)

    # -- Availability (G03, G04) ---------------------------------------------------------
    @on(Action.change_availability)
    def on_change_availability(self, operational_status: str,
                               evse: dict[str, Any] | None = None,
                               **_: Any) -> call_result.ChangeAvailability:
        return call_result.ChangeAvailability(status=self.commands.availability_answer(evse))

    @after(Action.change_availability)
    def after_change_availability(self, operational_status: str,
                                  evse: dict[str, Any] | None = None, **_: Any) -> None:
        if self.commands.availability_answer(evse) != "Rejected":
            self.commands.change_availability(evse, str(operational_status) == "Operative")

    # -- Data transfer (P01) -----------------------------------------------------------
    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        # No vendor extensions are registered.
        return call_result.DataTransfer(status="UnknownVendorId")


def frame_rules(cp: ChargePoint201, max_frame_bytes: int = 1024 * 1024) -> FrameRules:
    """The frame guard's rules for ``cp``: 2.0.1 actions, routes and schemas; OCPP-J 2.0.1
    spells every error code as the library does (FormatViolation, NotImplemented, ...)."""
    return FrameRules(
        known_actions=frozenset(a.value for a in Action),
        routed=frozenset(cp.route_map),
        validator=call_validator,
        max_frame_bytes=max_frame_bytes,
    )
