"""OCPP 1.6 Smart Charging conversion: payloads validated against the ``ocpp`` library's
1.6 JSON schemas, and the §5.5 / §5.7 / §5.11 / §5.16 / §9.4 rules."""

from __future__ import annotations

import decimal
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocpp.charge_point import camel_to_snake_case
from ocpp.messages import MessageType, get_validator

from evse.charging_profiles import ProfileKind, ProfilePurpose, RateUnit, Recurrency
from evse.profile_store import ProfileStore
from evse.smart_charging import SmartChargingEngine
from evse.state_db import open_state_db
from ocpp_client.v16.smart_charging import (
    SmartChargingLimits,
    check_remote_start_profile,
    check_set_charging_profile,
    clear_charging_profile,
    get_composite_schedule,
    profile_from_payload,
    profile_to_payload,
)

from .helpers import T0, utc

LIMITS = SmartChargingLimits()


def assert_valid(action: str, payload: dict[str, Any], response: bool = False) -> None:
    """Validate like the ``ocpp`` library does on the wire (floats as Decimal, §4 JSON)."""
    kind = MessageType.CallResult if response else MessageType.Call
    validator = get_validator(kind, action, "1.6", parse_float=decimal.Decimal)
    validator.validate(json.loads(json.dumps(payload), parse_float=decimal.Decimal))


def tx_default(profile_id: int = 1, stack_level: int = 0, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "startSchedule": "2026-03-01T00:00:00Z",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0},
                                       {"startPeriod": 600, "limit": 8.5, "numberPhases": 1}],
        },
    }
    body.update(extra)
    return body


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[SmartChargingEngine]:
    db = open_state_db(tmp_path)
    yield SmartChargingEngine(ProfileStore(db), lambda: T0)
    db.close()


def set_profile(engine: SmartChargingEngine, connector_id: int, body: dict[str, Any],
                running: int | None = None, limits: SmartChargingLimits = LIMITS) -> str:
    assert_valid("SetChargingProfile", {"connectorId": connector_id,
                                        "csChargingProfiles": body})
    decision = check_set_charging_profile(connector_id, body, number_of_connectors=2,
                                          running_transaction_id=running, limits=limits,
                                          installed=engine.store.all())
    if decision.accepted:
        assert decision.profile is not None
        engine.install(decision.profile)
    assert_valid("SetChargingProfile", {"status": decision.status}, response=True)
    return decision.status


def test_payload_to_profile_and_back_is_schema_valid() -> None:
    body = tx_default(7, 3, recurrencyKind="Daily", chargingProfileKind="Recurring",
                      validFrom="2026-03-01T00:00:00Z", validTo="2026-04-01T00:00:00.000Z")
    body["chargingSchedule"].update(duration=3600, minChargingRate=6.1)
    profile = profile_from_payload(body, 2)
    assert (profile.profile_id, profile.evse_id, profile.purpose, profile.stack_level,
            profile.kind, profile.recurrency) == (7, 2, ProfilePurpose.TX_DEFAULT, 3,
                                                  ProfileKind.RECURRING, Recurrency.DAILY)
    assert profile.schedule.start_at == T0 and profile.valid_to == utc(2026, 4, 1)
    assert [(p.start_s, p.limit, p.phases) for p in profile.schedule.periods] == [
        (0, 16.0, None), (600, 8.5, 1)]
    back = profile_to_payload(profile)
    assert_valid("SetChargingProfile", {"connectorId": 2, "csChargingProfiles": back})
    assert profile_from_payload(back, 2) == profile
    # The snake_case form the ``ocpp`` library hands to handlers, with Decimal numbers.
    snake = camel_to_snake_case(json.loads(json.dumps(body), parse_float=decimal.Decimal))
    assert profile_from_payload(snake, 2) == profile


def test_purpose_and_connector_rules(engine: SmartChargingEngine) -> None:
    cp_max = tx_default(1, chargingProfilePurpose="ChargePointMaxProfile")
    assert set_profile(engine, 1, cp_max) == "Rejected"
    assert set_profile(engine, 0, cp_max) == "Accepted"
    assert set_profile(engine, 0, tx_default(2)) == "Accepted"
    assert set_profile(engine, 1, tx_default(3)) == "Accepted"
    assert set_profile(engine, 3, tx_default(4)) == "Rejected"  # no connector 3
    assert [p.profile_id for p in engine.store.all()] == [1, 2, 3]


def test_tx_profile_needs_the_running_transaction(engine: SmartChargingEngine) -> None:
    tx = tx_default(10, chargingProfilePurpose="TxProfile")
    assert set_profile(engine, 1, tx) == "Rejected"              # no transaction
    assert set_profile(engine, 0, tx, running=5) == "Rejected"   # connector 0
    assert set_profile(engine, 1, {**tx, "transactionId": 6}, running=5) == "Rejected"
    assert set_profile(engine, 1, {**tx, "transactionId": 5}, running=5) == "Accepted"
    assert set_profile(engine, 1, {**tx, "chargingProfileId": 11, "stackLevel": 1},
                       running=5) == "Accepted"
    assert {p.transaction_id for p in engine.store.all()} == {"5"}  # bound when absent


def test_configuration_key_limits(engine: SmartChargingEngine) -> None:
    limits = SmartChargingLimits.from_configuration({
        "ChargeProfileMaxStackLevel": 2, "ChargingScheduleAllowedChargingRateUnit": "Current",
        "ChargingScheduleMaxPeriods": 3, "MaxChargingProfilesInstalled": 2})
    assert limits == SmartChargingLimits(2, frozenset({RateUnit.A}), 3, 2)
    assert set_profile(engine, 1, tx_default(1, 3), limits=limits) == "Rejected"
    watts = tx_default(1)
    watts["chargingSchedule"] = {**watts["chargingSchedule"], "chargingRateUnit": "W"}
    assert set_profile(engine, 1, watts, limits=limits) == "Rejected"
    many = tx_default(1)
    many["chargingSchedule"] = {**many["chargingSchedule"], "chargingSchedulePeriod": [
        {"startPeriod": 60 * i, "limit": 10.0} for i in range(4)]}
    assert set_profile(engine, 1, many, limits=limits) == "Rejected"
    assert set_profile(engine, 1, tx_default(1, 0), limits=limits) == "Accepted"
    assert set_profile(engine, 1, tx_default(2, 1), limits=limits) == "Accepted"
    assert set_profile(engine, 1, tx_default(3, 2), limits=limits) == "Rejected"  # full
    # Replacing an installed one (same id) does not need a free slot.
    assert set_profile(engine, 1, tx_default(2, 2), limits=limits) == "Accepted"
    with pytest.raises(ValueError, match="Current and/or Power"):
        SmartChargingLimits.from_configuration({"ChargingScheduleAllowedChargingRateUnit": "X"})


def test_malformed_profile_is_rejected(engine: SmartChargingEngine) -> None:
    bad = tx_default(1)
    bad["chargingSchedule"] = {**bad["chargingSchedule"], "chargingSchedulePeriod": [
        {"startPeriod": 10, "limit": 10.0}]}  # first period not at 0
    assert set_profile(engine, 1, bad) == "Rejected"
    assert set_profile(engine, 1, tx_default(1, chargingProfileKind="Recurring")) == "Rejected"


def test_remote_start_profile_must_be_a_tx_profile() -> None:
    default = tx_default(1)
    request = {"idTag": "CARD1", "connectorId": 1, "chargingProfile": default}
    assert_valid("RemoteStartTransaction", request)
    decision = check_remote_start_profile(1, default, number_of_connectors=2, limits=LIMITS,
                                          installed=[])
    assert decision.status == "Rejected"
    tx = {**default, "chargingProfilePurpose": "TxProfile"}
    assert_valid("RemoteStartTransaction", {**request, "chargingProfile": tx})
    decision = check_remote_start_profile(None, tx, number_of_connectors=2, limits=LIMITS,
                                          installed=[])
    assert decision.accepted and decision.profile is not None
    assert decision.profile.transaction_id is None
    bound = decision.profile.with_transaction("31")
    assert bound.transaction_id == "31" and bound.purpose is ProfilePurpose.TX


def test_clear_charging_profile(engine: SmartChargingEngine) -> None:
    set_profile(engine, 0, tx_default(1, 0, chargingProfilePurpose="ChargePointMaxProfile"))
    set_profile(engine, 0, tx_default(2, 0))
    set_profile(engine, 1, tx_default(3, 1))
    set_profile(engine, 2, tx_default(4, 1))

    def clear(**request: Any) -> str:
        assert_valid("ClearChargingProfile", {
            {"connector_id": "connectorId", "charging_profile_purpose":
             "chargingProfilePurpose", "stack_level": "stackLevel"}.get(k, k): v
            for k, v in request.items()})
        status = clear_charging_profile(engine, **request)
        assert_valid("ClearChargingProfile", {"status": status}, response=True)
        return status

    assert clear(id=99) == "Unknown"
    assert clear(id=3) == "Accepted"
    assert clear(id=3) == "Unknown"
    # Criteria combine: TxDefault at level 1 on connector 1 — none left there.
    assert clear(connector_id=1, charging_profile_purpose="TxDefaultProfile",
                 stack_level=1) == "Unknown"
    assert clear(stack_level=1) == "Accepted"
    assert [p.profile_id for p in engine.store.all()] == [1, 2]
    assert clear(charging_profile_purpose="ChargePointMaxProfile") == "Accepted"
    assert clear() == "Accepted"
    assert engine.store.all() == []
    assert clear() == "Unknown"


def test_get_composite_schedule(engine: SmartChargingEngine) -> None:
    set_profile(engine, 0, tx_default(1, 0, chargingProfilePurpose="ChargePointMaxProfile",
                                      chargingSchedule={
                                          "chargingRateUnit": "A",
                                          "startSchedule": "2026-03-01T00:05:00Z",
                                          "chargingSchedulePeriod": [
                                              {"startPeriod": 0, "limit": 12.0}]}))
    set_profile(engine, 1, tx_default(2, 0))

    def get(connector_id: int, duration: int, unit: str | None = None,
            limits: SmartChargingLimits = LIMITS) -> dict[str, Any]:
        request: dict[str, Any] = {"connectorId": connector_id, "duration": duration}
        if unit is not None:
            request["chargingRateUnit"] = unit
        assert_valid("GetCompositeSchedule", request)
        payload = get_composite_schedule(engine, connector_id, duration, unit,
                                         number_of_connectors=2, ceiling_a=32.0,
                                         limits=limits)
        assert_valid("GetCompositeSchedule", payload, response=True)
        return payload

    one = get(1, 1200)
    assert one["status"] == "Accepted" and one["connectorId"] == 1
    assert one["scheduleStart"] == "2026-03-01T00:00:00.000Z"
    # 16 A (3 phases) until the 12 A station maximum at 300 s; at 600 s 8.5 A on 1 phase.
    assert [(p["startPeriod"], p["limit"], p["numberPhases"])
            for p in one["chargingSchedule"]["chargingSchedulePeriod"]] == [
        (0, 16.0, 3), (300, 12.0, 3), (600, 8.5, 1)]
    watts = get(1, 1200, "W")
    assert [(p["startPeriod"], p["limit"])
            for p in watts["chargingSchedule"]["chargingSchedulePeriod"]] == [
        (0, 11_040.0), (300, 8_280.0), (600, 1_955.0)]
    station = get(0, 600)
    assert [(p["startPeriod"], p["limit"])
            for p in station["chargingSchedule"]["chargingSchedulePeriod"]] == [
        (0, 32.0), (300, 12.0)]
    assert get(3, 600)["status"] == "Rejected"
    assert get(1, 600, "W", limits=SmartChargingLimits(
        allowed_units=frozenset({RateUnit.A})))["status"] == "Rejected"


junk = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=True),
                 st.text(max_size=5), st.lists(st.integers(), max_size=2),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["chargingProfileId", "stackLevel", "chargingProfilePurpose",
                        "chargingProfileKind", "recurrencyKind", "validFrom", "validTo",
                        "transactionId", "chargingSchedule"]),
       st.sampled_from(["duration", "startSchedule", "chargingRateUnit",
                        "chargingSchedulePeriod", "minChargingRate", None]),
       junk, st.integers(-1, 3))
def test_any_malformed_field_is_rejected_not_raised(top: str, inner: str | None, value: Any,
                                                    connector_id: int) -> None:
    body = tx_default(1)
    if inner is None:
        body[top] = value
    else:
        body["chargingSchedule"] = {**body["chargingSchedule"], inner: value}
    decision = check_set_charging_profile(connector_id, body, number_of_connectors=2,
                                          running_transaction_id=4, limits=LIMITS,
                                          installed=[])
    assert decision.status in ("Accepted", "Rejected")
    assert decision.accepted == (decision.profile is not None)
