"""The 1.6 conversion behind real ``ocpp`` library dispatch on loopback: the dev CSMS (schema
validation on, both directions) sends SetChargingProfile, RemoteStartTransaction with a
profile, GetCompositeSchedule and ClearChargingProfile to a charge point whose handlers are
the few lines the v16 adapter will carry (snake_case kwargs, Decimal numbers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from dev_csms import DevCsms
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from websockets.asyncio.client import connect

from evse.profile_store import ProfileStore
from evse.smart_charging import SmartChargingEngine
from evse.state_db import open_state_db
from ocpp_client.v16.smart_charging import (
    SmartChargingLimits,
    check_remote_start_profile,
    check_set_charging_profile,
    clear_charging_profile,
    get_composite_schedule,
)

from .helpers import T0

CONNECTORS = 2


class SmartChargePoint(ChargePoint):
    """A charge point with only the Smart Charging handlers, wired to the engine."""

    def __init__(self, cp_id: str, connection: Any, engine: SmartChargingEngine) -> None:
        super().__init__(cp_id, connection)
        self.engine = engine
        self.limits = SmartChargingLimits()
        self.next_transaction_id = 100

    @on("SetChargingProfile")
    def on_set(self, connector_id: int, cs_charging_profiles: dict[str, Any]
               ) -> call_result.SetChargingProfile:
        tx = self.engine.transaction(connector_id) if connector_id else None
        decision = check_set_charging_profile(
            connector_id, cs_charging_profiles, number_of_connectors=CONNECTORS,
            running_transaction_id=None if tx is None else int(tx.transaction_id),
            limits=self.limits, installed=self.engine.store.all())
        if decision.profile is not None:
            self.engine.install(decision.profile)
        return call_result.SetChargingProfile(decision.status)

    @on("RemoteStartTransaction")
    def on_remote_start(self, id_tag: str, connector_id: int | None = None,
                        charging_profile: dict[str, Any] | None = None
                        ) -> call_result.RemoteStartTransaction:
        connector = connector_id or 1
        if charging_profile is not None:
            decision = check_remote_start_profile(
                connector_id, charging_profile, number_of_connectors=CONNECTORS,
                limits=self.limits, installed=self.engine.store.all())
            if decision.profile is None:
                return call_result.RemoteStartTransaction("Rejected")
        self.next_transaction_id += 1
        tx_id = str(self.next_transaction_id)
        self.engine.transaction_started(connector, tx_id, T0)
        if charging_profile is not None and decision.profile is not None:
            self.engine.install(decision.profile.with_transaction(tx_id))
        return call_result.RemoteStartTransaction("Accepted")

    @on("ClearChargingProfile")
    def on_clear(self, **request: Any) -> call_result.ClearChargingProfile:
        return call_result.ClearChargingProfile(clear_charging_profile(self.engine, **request))

    @on("GetCompositeSchedule")
    def on_get_composite(self, connector_id: int, duration: int,
                         charging_rate_unit: str | None = None
                         ) -> call_result.GetCompositeSchedule:
        p = get_composite_schedule(self.engine, connector_id, duration, charging_rate_unit,
                                   number_of_connectors=CONNECTORS, ceiling_a=32.0,
                                   limits=self.limits)
        return call_result.GetCompositeSchedule(
            p["status"], p.get("connectorId"), p.get("scheduleStart"),
            p.get("chargingSchedule"))


@pytest.fixture
async def link(tmp_path: Path) -> AsyncIterator[tuple[Any, SmartChargePoint]]:
    csms = DevCsms(port=0)
    await csms.start()
    db = open_state_db(tmp_path)
    engine = SmartChargingEngine(ProfileStore(db), lambda: T0)
    async with connect(f"ws://127.0.0.1:{csms.port}/CP1",
                       subprotocols=[websockets.Subprotocol("ocpp1.6")]) as ws:
        cp = SmartChargePoint("CP1", ws, engine)
        task = asyncio.create_task(cp.start())
        server_side = await csms.wait_for(lambda: csms.stations.get("CP1"), timeout=5.0)
        yield server_side, cp
        task.cancel()
    await csms.stop()
    db.close()


def schedule(*periods: tuple[int, float], start: str = "2026-03-01T00:00:00Z"
             ) -> dict[str, Any]:
    return {"charging_rate_unit": "A", "start_schedule": start,
            "charging_schedule_period": [{"start_period": s, "limit": lim}
                                         for s, lim in periods]}


async def test_set_get_clear_over_loopback(link: tuple[Any, SmartChargePoint]) -> None:
    csms_side, cp = link
    cp_max = {"charging_profile_id": 1, "stack_level": 0,
              "charging_profile_purpose": "ChargePointMaxProfile",
              "charging_profile_kind": "Absolute",
              "charging_schedule": schedule((0, 20.0), start="2026-03-01T00:05:00Z")}
    answer = await csms_side.call(call.SetChargingProfile(1, cp_max))
    assert answer.status == "Rejected"  # a Charge Point maximum on a connector
    answer = await csms_side.call(call.SetChargingProfile(0, cp_max))
    assert answer.status == "Accepted"
    default = {"charging_profile_id": 2, "stack_level": 1,
               "charging_profile_purpose": "TxDefaultProfile",
               "charging_profile_kind": "Absolute",
               "charging_schedule": schedule((0, 24.5), (600, 10.3))}
    assert (await csms_side.call(call.SetChargingProfile(1, default))).status == "Accepted"
    tx = {**default, "charging_profile_id": 3, "charging_profile_purpose": "TxProfile"}
    assert (await csms_side.call(call.SetChargingProfile(1, tx))).status == "Rejected"

    composite = await csms_side.call(call.GetCompositeSchedule(1, 900, "A"))
    assert composite.status == "Accepted"
    # The library hands the CSMS snake_case keys.
    assert [(p["start_period"], float(p["limit"]))
            for p in composite.charging_schedule["charging_schedule_period"]] == [
        (0, 24.5), (300, 20.0), (600, 10.3)]
    assert cp.engine.limit_now(1, T0 + 301).limit_a == 20.0

    assert (await csms_side.call(call.ClearChargingProfile(id=2))).status == "Accepted"
    assert (await csms_side.call(call.ClearChargingProfile(id=2))).status == "Unknown"
    assert (await csms_side.call(call.ClearChargingProfile(
        connector_id=0, charging_profile_purpose="ChargePointMaxProfile"))).status == "Accepted"
    assert cp.engine.store.all() == []


async def test_remote_start_profile_over_loopback(link: tuple[Any, SmartChargePoint]) -> None:
    csms_side, cp = link
    default = {"charging_profile_id": 5, "stack_level": 0,
               "charging_profile_purpose": "TxDefaultProfile",
               "charging_profile_kind": "Relative",
               "charging_schedule": {"charging_rate_unit": "A",
                                     "charging_schedule_period": [
                                         {"start_period": 0, "limit": 12.0}]}}
    answer = await csms_side.call(call.RemoteStartTransaction("TAG", 1, default))
    assert answer.status == "Rejected"
    tx_profile = {**default, "charging_profile_purpose": "TxProfile"}
    answer = await csms_side.call(call.RemoteStartTransaction("TAG", 1, tx_profile))
    assert answer.status == "Accepted"
    (installed,) = cp.engine.store.all()
    assert installed.transaction_id == "101"
    assert cp.engine.limit_now(1, T0 + 60).limit_a == 12.0
    cp.engine.transaction_ended(1)
    assert cp.engine.store.all() == []
