#!/usr/bin/env python3
"""A development CSMS: the ``ocpp`` library's central-system side on a websockets server.

Accepts every BootNotification, authorizes the configured idTags, hands out transaction ids,
validates every frame against the OCPP 1.6 JSON schemas (the library's default) and logs
every message. ``version="2.0.1"`` (``--ocpp 2.0.1``) speaks OCPP 2.0.1 instead (subprotocol
ocpp2.0.1, the library's v201 side and its 2.0.1 schemas): TransactionEvent, NotifyReport, ...
Tests import it (``DevCsms``) as the real peer on loopback; ``scripts/demo``
runs it as a process:

    python scripts/dev_csms.py --port 9000 --accept-tag DEMO01
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import websockets
from ocpp.messages import unpack
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from websockets.asyncio.server import serve

log = logging.getLogger("dev_csms")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Frame:
    """One logged OCPP-J frame. ``direction`` is "in" (from the charge point) or "out"."""

    station_id: str
    direction: str
    raw: str
    at: float = field(default_factory=time.time)

    @property
    def parsed(self) -> list[Any]:
        frame: list[Any] = json.loads(self.raw)
        return frame


async def _screen(cp: Any, raw_msg: Any) -> bool:
    """Log an incoming frame, remember a CALL for dedupe, answer an injected CALLERROR;
    False when the frame is answered here."""
    cp.csms.record(Frame(cp.id, "in", raw_msg))
    try:
        msg = unpack(raw_msg)
        if msg.message_type_id == 2:  # CALL: remember for dedupe
            cp.csms.calls.append((cp.id, msg.action, msg.payload, msg.unique_id))
            if cp.csms.reject.get(msg.action, 0) > 0:  # injected CALLERROR
                cp.csms.reject[msg.action] -= 1
                await cp._send(json.dumps(
                    [4, msg.unique_id, cp.csms.reject_code, "rejected by test", {}]))
                return False
    except Exception:
        pass
    return True


class _CsmsLink:
    """What the CSMS does with every frame of a connection, whichever OCPP version: the
    injected faults (:func:`_screen`) on the way in, the frame log on the way out. Put
    before the ``ocpp`` library's ChargePoint class in the bases."""

    csms: DevCsms
    id: str

    def __init__(self, station_id: str, connection: Any, csms: DevCsms) -> None:
        super().__init__(station_id, connection, response_timeout=10)  # type: ignore[call-arg]
        self.csms = csms

    async def route_message(self, raw_msg: Any) -> None:
        if await _screen(self, raw_msg):
            await super().route_message(raw_msg)  # type: ignore[misc]

    async def _send(self, message: str) -> None:
        self.csms.record(Frame(self.id, "out", message))
        await super()._send(message)  # type: ignore[misc]


class CsmsChargePoint(_CsmsLink, ChargePoint):
    """The CSMS's view of one connected charge point."""

    @on(Action.boot_notification)
    def on_boot(self, charge_point_vendor: str, charge_point_model: str, **_: Any
                ) -> call_result.BootNotification:
        return call_result.BootNotification(current_time=_now(), interval=self.csms.heartbeat_s,
                                            status=self.csms.boot_status)

    @on(Action.heartbeat)
    def on_heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=_now())

    @on(Action.authorize)
    def on_authorize(self, id_tag: str) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info=self.csms.id_tag_info(id_tag))

    @on(Action.start_transaction)
    def on_start(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str,
                 **_: Any) -> call_result.StartTransaction:
        key = (self.id, connector_id, id_tag, meter_start, timestamp)
        if key not in self.csms.transaction_ids:  # a re-sent StartTransaction gets the same id
            self.csms.transaction_ids[key] = next(self.csms.next_transaction_id)
        return call_result.StartTransaction(transaction_id=self.csms.transaction_ids[key],
                                            id_tag_info=self.csms.id_tag_info(id_tag))

    @on(Action.stop_transaction)
    def on_stop(self, meter_stop: int, timestamp: str, transaction_id: int, **kw: Any
                ) -> call_result.StopTransaction:
        tag = kw.get("id_tag")
        return call_result.StopTransaction(
            id_tag_info=self.csms.id_tag_info(tag) if tag else None)

    @on(Action.meter_values)
    def on_meter_values(self, connector_id: int, meter_value: list[Any], **_: Any
                        ) -> call_result.MeterValues:
        return call_result.MeterValues()

    @on(Action.status_notification)
    def on_status(self, connector_id: int, error_code: str, status: str, **_: Any
                  ) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, status: str) -> call_result.FirmwareStatusNotification:
        return call_result.FirmwareStatusNotification()

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status(self, status: str) -> call_result.DiagnosticsStatusNotification:
        return call_result.DiagnosticsStatusNotification()

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="UnknownVendorId")

    # -- 1.6 security extensions (whitepaper ed. 3) ----------------------------------------
    @on(Action.security_event_notification)
    def on_security_event(self, type: str, timestamp: str, **_: Any
                          ) -> call_result.SecurityEventNotification:
        return call_result.SecurityEventNotification()

    @on(Action.sign_certificate)
    def on_sign_certificate(self, csr: str) -> call_result.SignCertificate:
        return call_result.SignCertificate(status="Accepted")

    @on(Action.log_status_notification)
    def on_log_status(self, status: str, **_: Any) -> call_result.LogStatusNotification:
        return call_result.LogStatusNotification()

    @on(Action.signed_firmware_status_notification)
    def on_signed_firmware_status(self, status: str, **_: Any
                                  ) -> call_result.SignedFirmwareStatusNotification:
        return call_result.SignedFirmwareStatusNotification()


class CsmsChargePoint201(_CsmsLink, ChargePoint201):
    """The CSMS's view of one connected OCPP 2.0.1 charging station (frames logged as for
    1.6; TransactionEvents answered with the IdTokenInfo when they carry an IdToken)."""

    def _info(self, id_token: dict[str, Any]) -> dict[str, Any]:
        info = self.csms.id_tag_info(id_token["id_token"])
        out: dict[str, Any] = {"status": str(info["status"])}
        group = info.get("parentIdTag") or info.get("parent_id_tag")
        if group:
            out["group_id_token"] = {"id_token": group, "type": "Central"}
        return out

    @on(Action201.boot_notification)
    def on_boot(self, charging_station: dict[str, Any], reason: str, **_: Any
                ) -> result201.BootNotification:
        return result201.BootNotification(current_time=_now(), interval=self.csms.heartbeat_s,
                                          status=str(self.csms.boot_status))

    @on(Action201.heartbeat)
    def on_heartbeat(self, **_: Any) -> result201.Heartbeat:
        return result201.Heartbeat(current_time=_now())

    @on(Action201.authorize)
    def on_authorize(self, id_token: dict[str, Any], **_: Any) -> result201.Authorize:
        return result201.Authorize(id_token_info=self._info(id_token))

    @on(Action201.transaction_event)
    def on_transaction_event(self, event_type: str, id_token: dict[str, Any] | None = None,
                             **_: Any) -> result201.TransactionEvent:
        if id_token is None:
            return result201.TransactionEvent()
        return result201.TransactionEvent(id_token_info=self._info(id_token))

    @on(Action201.status_notification)
    def on_status(self, **_: Any) -> result201.StatusNotification:
        return result201.StatusNotification()

    @on(Action201.meter_values)
    def on_meter_values(self, **_: Any) -> result201.MeterValues:
        return result201.MeterValues()

    @on(Action201.notify_report)
    def on_notify_report(self, **_: Any) -> result201.NotifyReport:
        return result201.NotifyReport()

    @on(Action201.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: Any) -> result201.DataTransfer:
        return result201.DataTransfer(status="UnknownVendorId")

    # -- Smart Charging (K09) and Reservation (H04) reports --------------------------------
    @on(Action201.report_charging_profiles)
    def on_report_charging_profiles(self, **_: Any) -> result201.ReportChargingProfiles:
        return result201.ReportChargingProfiles()

    @on(Action201.reservation_status_update)
    def on_reservation_status_update(self, **_: Any) -> result201.ReservationStatusUpdate:
        return result201.ReservationStatusUpdate()

    # -- 2.0.1 firmware, diagnostics and security (L01, N01, A02, A04) ----------------------
    @on(Action201.firmware_status_notification)
    def on_firmware_status(self, status: str, **_: Any) -> result201.FirmwareStatusNotification:
        return result201.FirmwareStatusNotification()

    @on(Action201.log_status_notification)
    def on_log_status(self, status: str, **_: Any) -> result201.LogStatusNotification:
        return result201.LogStatusNotification()

    @on(Action201.security_event_notification)
    def on_security_event(self, type: str, timestamp: str, **_: Any
                          ) -> result201.SecurityEventNotification:
        return result201.SecurityEventNotification()

    @on(Action201.sign_certificate)
    def on_sign_certificate(self, csr: str, **_: Any) -> result201.SignCertificate:
        return result201.SignCertificate(status="Accepted")


class DevCsms:
    """The server: ``await start()``, connected charge points in ``stations``.

    ``version``: "1.6" (subprotocol ocpp1.6) or "2.0.1" (ocpp2.0.1)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9000,
                 accept_tags: tuple[str, ...] = ("DEMO01",),
                 on_frame: Callable[[Frame], None] | None = None,
                 ssl_context: ssl.SSLContext | None = None,
                 authorization: str | None = None, version: str = "1.6") -> None:
        """``ssl_context``: serve wss:// (security profiles 2 and 3); ``authorization``:
        the only HTTP ``Authorization`` header accepted (profiles 1 and 2; others get 401);
        ``version``: "1.6" or "2.0.1" (the subprotocol and the library's ChargePoint side)."""
        self.host, self.port = host, port
        self.ssl_context = ssl_context
        self.authorization = authorization
        self.version = version
        self.subprotocol = "ocpp2.0.1" if version == "2.0.1" else "ocpp1.6"
        self.accept_tags = set(accept_tags)
        self.blocked_tags: set[str] = set()
        #: Action → how many of its next CALLs to answer with a CALLERROR (InternalError).
        self.reject: dict[str, int] = {}
        #: The error code of those CALLERRORs (a test may use one OCPP does not define).
        self.reject_code = "InternalError"
        #: Full IdTagInfo per idTag (status, expiryDate, parentIdTag), overriding the above.
        self.tag_info: dict[str, dict[str, str]] = {}
        self.boot_status = RegistrationStatus.accepted
        self.heartbeat_s = 300
        self.frames: list[Frame] = []
        self.calls: list[tuple[str, str, dict[str, Any], str]] = []
        self.stations: dict[str, Any] = {}
        self.transaction_ids: dict[tuple[Any, ...], int] = {}
        self.next_transaction_id = itertools.count(1000)
        self._on_frame = on_frame
        self._changed = asyncio.Condition()
        self._server: Any = None

    def id_tag_info(self, id_tag: str) -> dict[str, str]:
        if id_tag in self.tag_info:
            return dict(self.tag_info[id_tag])
        if id_tag in self.blocked_tags:
            return {"status": AuthorizationStatus.blocked}
        ok = id_tag in self.accept_tags
        return {"status": AuthorizationStatus.accepted if ok else AuthorizationStatus.invalid}

    def record(self, frame: Frame) -> None:
        self.frames.append(frame)
        if self._on_frame is not None:
            self._on_frame(frame)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every frame); return its value.

        Raises:
            TimeoutError: not within ``timeout`` seconds.
        """
        async def waiter() -> Any:
            async with self._changed:
                while not (value := predicate()):
                    await self._changed.wait()
                return value
        return await asyncio.wait_for(waiter(), timeout)

    def actions(self, action: str, station_id: str | None = None) -> list[dict[str, Any]]:
        """Payloads of CALLs with ``action`` received from charge points, in order."""
        return [p for sid, a, p, _ in self.calls
                if a == action and (station_id is None or sid == station_id)]

    async def _handle(self, connection: Any) -> None:
        station_id = connection.request.path.strip("/").split("/")[-1]
        if connection.subprotocol != self.subprotocol:
            await connection.close(1002, f"subprotocol {self.subprotocol} required")
            return
        cp: Any = (CsmsChargePoint201(station_id, connection, self) if self.version == "2.0.1"
                   else CsmsChargePoint(station_id, connection, self))
        self.stations[station_id] = cp
        log.info("%s connected", station_id)
        try:
            await cp.start()
        except websockets.exceptions.ConnectionClosed:
            log.info("%s disconnected", station_id)
        finally:
            if self.stations.get(station_id) is cp:
                del self.stations[station_id]

    def _check_auth(self, connection: Any, request: Any) -> Any:
        if self.authorization is None:
            return None
        if request.headers.get("Authorization") != self.authorization:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        return None

    async def start(self) -> None:
        # The new asyncio server (connection.request): websockets.serve is it from 14 on; on
        # 13.x (pyproject's floor) that name is still the legacy server.
        self._server = await serve(
            self._handle, self.host, self.port,
            subprotocols=[websockets.Subprotocol(self.subprotocol)],
            ssl=self.ssl_context, process_request=self._check_auth)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def _print_frame(frame: Frame) -> None:
    arrow = "CP → CSMS" if frame.direction == "in" else "CSMS → CP"
    print(f"{datetime.fromtimestamp(frame.at).strftime('%H:%M:%S.%f')[:-3]} {arrow} "
          f"{frame.station_id}: {frame.raw}", flush=True)


async def _serve(args: argparse.Namespace) -> None:
    csms = DevCsms(args.host, args.port, tuple(args.accept_tag), on_frame=_print_frame,
                   version=args.ocpp)
    await csms.start()
    print(f"dev CSMS listening on ws://{args.host}:{csms.port}/ (accepting "
          f"{', '.join(sorted(csms.accept_tags))})", flush=True)
    await asyncio.Future()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--ocpp", choices=("1.6", "2.0.1"), default="1.6",
                        help="OCPP version to speak (default 1.6)")
    parser.add_argument("--accept-tag", action="append", default=[],
                        help="idTag to accept (repeatable; default DEMO01)")
    args = parser.parse_args()
    args.accept_tag = args.accept_tag or ["DEMO01"]
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
