"""OCPP 1.6 Smart Charging end to end: the dev CSMS (the ``ocpp`` library's central system,
schema validation on) on loopback drives the daemon as ``evse run`` wires it, on the
simulated board. SetChargingProfile, ClearChargingProfile, GetCompositeSchedule, a
chargingProfile in RemoteStartTransaction and the §9.4 keys are checked by what the CSMS is
answered and by what the pilot and the simulated EVs do.

The core's timers (duty-change interval, profile period boundaries) run on a ManualClock the
test advances; the UTC clock moves with it after the CSMS time synchronized it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dev_csms import DevCsms
from ocpp.exceptions import NotSupportedError
from ocpp.v16 import call

from evse.daemon import Daemon
from evse.timers import ManualClock
from hal.sim.board import SimBoard
from ocpp_client.v16.meter_values import iso_timestamp
from tests.conftest import DaemonFactory, EventLog
from tests.hal.peers import MeterServer, f32_be

DUTY_INTERVAL_S = 5.0


def duty(amps: float) -> float:
    """IEC 61851-1 Table A.7 duty, as driven (0.1 %)."""
    return round(amps / 0.6, 1)


class Rig:
    """A started daemon, its manual clock, the CSMS's side of the link."""

    def __init__(self, daemon: Daemon, clock: ManualClock, csms: DevCsms) -> None:
        self.daemon = daemon
        self.clock = clock
        self.csms = csms
        assert daemon.station is not None and daemon.board is not None
        self.station = daemon.station
        sim = daemon.board.simulator
        assert isinstance(sim, SimBoard)
        self.sim = sim
        self.events = EventLog(daemon.station)

    @property
    def cp(self) -> Any:
        return self.csms.stations["CP-TEST"]

    async def call(self, payload: Any) -> Any:
        return await self.cp.call(payload)

    async def advance(self, seconds: float) -> None:
        await self.station.idle()
        self.clock.advance(seconds)
        await self.station.idle()

    def duty(self, cid: int) -> float:
        return self.station.connectors[cid].hw.pilot.duty_percent

    async def charge(self, cid: int, tag: str = "DEMO01", ev_max_a: float = 32.0) -> int:
        """Plug an EV, present ``tag``; returns the 1.6 transactionId once the CSMS gave it."""
        self.sim.plug(cid, ev_max_a, 3)
        self.sim.swipe(tag)
        return await self.transaction_id(cid)

    async def transaction_id(self, cid: int) -> int:
        conn = self.station.connectors[cid]
        await self.events.wait_for(lambda: conn.session is not None)
        assert conn.session is not None and self.daemon.adapter is not None
        sid = conn.session.session_id
        adapter = self.daemon.adapter
        ref = await self.csms.wait_for(lambda: adapter.transaction_ref(sid))
        return int(ref)

    async def status(self) -> dict[str, Any]:
        """What ``evse status --json`` prints."""
        result: dict[str, Any] = await self.daemon._handlers()["status"]({})
        return result


@pytest.fixture
def start(csms: DevCsms, daemon_factory: DaemonFactory) -> Callable[..., Any]:
    async def factory(**kwargs: Any) -> Rig:
        clock = ManualClock()
        daemon = await daemon_factory(f"ws://127.0.0.1:{csms.port}/", clock=clock, **kwargs)
        rig = Rig(daemon, clock, csms)
        await csms.wait_for(lambda: "CP-TEST" in csms.stations
                            and csms.actions("StatusNotification"))
        return rig

    return factory


def schedule(*periods: tuple[int, float], unit: str = "A", start: float | None = None
             ) -> dict[str, Any]:
    out: dict[str, Any] = {"chargingRateUnit": unit, "chargingSchedulePeriod": [
        {"startPeriod": s, "limit": lim} for s, lim in periods]}
    if start is not None:
        out["startSchedule"] = iso_timestamp(start)
    return out


def charging_profile(profile_id: int, purpose: str, *periods: tuple[int, float],
                     kind: str = "Relative", stack_level: int = 0, **extra: Any
                     ) -> dict[str, Any]:
    return {"chargingProfileId": profile_id, "stackLevel": stack_level,
            "chargingProfilePurpose": purpose, "chargingProfileKind": kind,
            "chargingSchedule": schedule(*periods, start=extra.pop("start", None),
                                         unit=extra.pop("unit", "A")), **extra}


def set_profile(connector_id: int, profile: dict[str, Any]) -> call.SetChargingProfile:
    return call.SetChargingProfile(connector_id=connector_id, cs_charging_profiles=profile)


async def test_keys_and_set_charging_profile_acceptance(start: Callable[..., Any]) -> None:
    rig: Rig = await start(connectors=2)
    keys = {k["key"]: k for k in (await rig.call(call.GetConfiguration())).configuration_key}
    assert "SmartCharging" in keys["SupportedFeatureProfiles"]["value"].split(",")
    assert {name: (keys[name]["value"], keys[name]["readonly"]) for name in (
        "ChargeProfileMaxStackLevel", "ChargingScheduleAllowedChargingRateUnit",
        "ChargingScheduleMaxPeriods", "MaxChargingProfilesInstalled")} == {
        "ChargeProfileMaxStackLevel": ("8", True),
        "ChargingScheduleAllowedChargingRateUnit": ("Current,Power", True),
        "ChargingScheduleMaxPeriods": ("24", True),
        "MaxChargingProfilesInstalled": ("32", True)}
    assert (await rig.call(call.ChangeConfiguration(
        key="ChargeProfileMaxStackLevel", value="99"))).status == "Rejected"

    station_max = charging_profile(1, "ChargePointMaxProfile", (0, 20.0), kind="Absolute",
                                   start=rig.station.clock.now() - 60)
    assert (await rig.call(set_profile(1, station_max))).status == "Rejected"  # not on 0
    assert (await rig.call(set_profile(0, station_max))).status == "Accepted"
    # A TxProfile needs a running transaction on its connector.
    tx = charging_profile(2, "TxProfile", (0, 10.0))
    assert (await rig.call(set_profile(1, tx))).status == "Rejected"
    # The §9.4 limits.
    too_high = charging_profile(3, "TxDefaultProfile", (0, 16.0), stack_level=9)
    assert (await rig.call(set_profile(1, too_high))).status == "Rejected"
    too_long = charging_profile(4, "TxDefaultProfile", *((60 * i, 16.0) for i in range(25)))
    assert (await rig.call(set_profile(1, too_long))).status == "Rejected"
    assert (await rig.call(set_profile(3, charging_profile(
        5, "TxDefaultProfile", (0, 16.0))))).status == "Rejected"  # no connector 3
    assert [p.profile_id for p in rig.station.smart.store.all()] == [1]
    # Up to MaxChargingProfilesInstalled = 32 in all: TxDefaultProfiles at every stack level
    # 0-8 on connectors 0, 1 and 2 (27) and four more station maxima (levels 1-4).
    slots = [(c, "TxDefaultProfile", level) for c in (0, 1, 2) for level in range(9)]
    slots += [(0, "ChargePointMaxProfile", level) for level in range(1, 5)]
    for n, (connector, purpose, level) in enumerate(slots):
        answer = await rig.call(set_profile(connector, charging_profile(
            100 + n, purpose, (0, 32.0), kind="Absolute", stack_level=level,
            start=rig.station.clock.now() - 60)))
        assert answer.status == "Accepted", (connector, purpose, level)
    assert len(rig.station.smart.store) == 32
    one_more = charging_profile(200, "ChargePointMaxProfile", (0, 32.0), kind="Absolute",
                                stack_level=5, start=rig.station.clock.now())
    assert (await rig.call(set_profile(0, one_more))).status == "Rejected"
    # Replacing one (same id) is not one more.
    assert (await rig.call(set_profile(0, charging_profile(
        100, "TxDefaultProfile", (0, 30.0))))).status == "Accepted"
    assert len(rig.station.smart.store) == 32


async def test_profiles_reach_the_pilot_and_the_composite_schedule(
        start: Callable[..., Any]) -> None:
    rig: Rig = await start(connectors=2)
    station_max = charging_profile(1, "ChargePointMaxProfile", (0, 20.0), kind="Absolute",
                                   start=rig.station.clock.now() - 60)
    assert (await rig.call(set_profile(0, station_max))).status == "Accepted"
    transaction_id = await rig.charge(1)
    await rig.advance(DUTY_INTERVAL_S)
    assert rig.duty(1) == duty(20)  # alone under the station maximum

    tx = charging_profile(2, "TxProfile", (0, 10.0), transactionId=transaction_id + 1)
    assert (await rig.call(set_profile(1, tx))).status == "Rejected"  # another transaction
    tx["transactionId"] = transaction_id
    assert (await rig.call(set_profile(1, tx))).status == "Accepted"
    await rig.advance(DUTY_INTERVAL_S)
    assert rig.duty(1) == duty(10)
    assert rig.sim.connector(1).current_per_phase() == pytest.approx(10.0, abs=0.06)
    (status1, status2) = (await rig.status())["connectors"]
    assert (status1["duty_percent"], status1["offered_current_a"],
            status1["limit_source"]) == (duty(10), 10.0, "profile 2")
    # No EV on 2: the station maximum is what would limit it.
    assert (status2["offered_current_a"], status2["limit_source"]) == (20.0, "profile 1")

    composite = await rig.call(call.GetCompositeSchedule(connector_id=1, duration=600))
    assert composite.status == "Accepted" and composite.connector_id == 1
    assert composite.charging_schedule["duration"] == 600
    assert composite.charging_schedule["charging_rate_unit"] == "A"
    assert [(p["start_period"], float(p["limit"])) for p in
            composite.charging_schedule["charging_schedule_period"]] == [(0, 10.0)]
    station = await rig.call(call.GetCompositeSchedule(connector_id=0, duration=300,
                                                       charging_rate_unit="W"))
    assert station.status == "Accepted" and station.connector_id == 0
    assert [(p["start_period"], float(p["limit"]), p["number_phases"]) for p in
            station.charging_schedule["charging_schedule_period"]] == [
        (0, 20.0 * 230.0 * 3, 3)]
    assert (await rig.call(call.GetCompositeSchedule(
        connector_id=5, duration=300))).status == "Rejected"

    # The transaction ends: its TxProfile goes with it.
    rig.sim.swipe("DEMO01")
    conn = rig.station.connectors[1]
    await rig.events.wait_for(lambda: conn.session is None)
    await rig.station.idle()
    assert [p.profile_id for p in rig.station.smart.store.all()] == [1]

    assert (await rig.call(call.ClearChargingProfile(id=99))).status == "Unknown"
    assert (await rig.call(call.ClearChargingProfile(
        connector_id=0, charging_profile_purpose="TxDefaultProfile"))).status == "Unknown"
    assert (await rig.call(call.ClearChargingProfile(
        connector_id=0, charging_profile_purpose="ChargePointMaxProfile"))
    ).status == "Accepted"
    assert rig.station.smart.store.all() == []


async def test_remote_start_with_a_charging_profile(start: Callable[..., Any]) -> None:
    rig: Rig = await start(connectors=2)
    default = charging_profile(7, "TxDefaultProfile", (0, 8.0))
    answer = await rig.call(call.RemoteStartTransaction(id_tag="DEMO01", connector_id=2,
                                                        charging_profile=default))
    assert answer.status == "Rejected"  # must be a TxProfile
    assert rig.station.connectors[2].pending_id_token is None
    tx = charging_profile(7, "TxProfile", (0, 8.0))
    answer = await rig.call(call.RemoteStartTransaction(id_tag="DEMO01", connector_id=2,
                                                        charging_profile=tx))
    assert answer.status == "Accepted"
    rig.sim.plug(2, 32.0, 3)
    await rig.transaction_id(2)
    await rig.station.idle()
    assert rig.duty(2) == duty(8)  # from the first PWM on: the profile came with the start
    (installed,) = rig.station.smart.store.all()
    session = rig.station.connectors[2].session
    assert session is not None and installed.transaction_id == str(session.session_id)
    assert installed.evse_id == 2
    rig.sim.unplug(2)  # StopTransactionOnEVSideDisconnect: the transaction ends
    await rig.events.wait_for(lambda: rig.station.connectors[2].session is None)
    await rig.station.idle()
    assert rig.station.smart.store.all() == []

    # A remote start whose authorization is withdrawn before an EV came: the same idTag
    # on a card later charges without that profile.
    assert (await rig.call(call.RemoteStartTransaction(
        id_tag="DEMO01", connector_id=1, charging_profile=tx))).status == "Accepted"
    rig.sim.swipe("DEMO01")  # presented again while waiting: withdrawn
    await rig.events.wait_for(lambda: rig.station.connectors[1].pending_id_token is None)
    await rig.charge(1)
    await rig.station.idle()
    assert rig.station.smart.store.all() == [] and rig.duty(1) == duty(32)


async def test_a_period_starting_in_10_s_changes_the_duty_within_15_s(
        start: Callable[..., Any]) -> None:
    rig: Rig = await start()
    await rig.charge(1)
    await rig.advance(DUTY_INTERVAL_S)
    assert rig.duty(1) == duty(32)
    soon = rig.station.clock.now() + 10
    profile = charging_profile(3, "TxDefaultProfile", (0, 12.0), kind="Absolute", start=soon)
    assert (await rig.call(set_profile(1, profile))).status == "Accepted"
    await rig.advance(9.0)
    assert rig.duty(1) == duty(32)
    await rig.advance(1.0 + DUTY_INTERVAL_S)
    assert rig.duty(1) == duty(12)


async def test_two_connectors_share_the_station_budget(start: Callable[..., Any]) -> None:
    rig: Rig = await start(connectors=2, extra="max_current_a = 24.0")
    await rig.charge(1, "TAG-A")
    await rig.advance(DUTY_INTERVAL_S)
    assert rig.duty(1) == duty(24)
    await rig.charge(2, "TAG-B")
    await rig.advance(DUTY_INTERVAL_S)
    assert [rig.duty(1), rig.duty(2)] == [duty(12), duty(12)]
    total = sum(rig.sim.connector(c).current_per_phase() for c in (1, 2))
    assert total == pytest.approx(24.0, abs=0.12)
    rig.sim.ev_pause(2)
    await rig.events.wait_for(lambda: rig.station.connectors[2].state == "suspended_by_ev")
    await rig.advance(DUTY_INTERVAL_S)
    assert [rig.duty(1), rig.duty(2)] == [duty(18), duty(6)]
    await rig.csms.wait_for(lambda: [p["status"] for p in rig.csms.actions(
        "StatusNotification") if p["connectorId"] == 2][-1] == "SuspendedEV", timeout=5)


async def test_without_the_smart_charging_feature_profile(start: Callable[..., Any]) -> None:
    # Switched off in [ocpp] feature_profiles (SupportedFeatureProfiles is read-only and
    # cannot be set in the TOML, issue 12).
    rig: Rig = await start(ocpp_extra='feature_profiles = ["Core", "RemoteTrigger"]')
    profile = charging_profile(1, "TxDefaultProfile", (0, 10.0))
    assert (await rig.call(set_profile(1, profile))).status == "NotSupported"
    for request in (call.GetCompositeSchedule(connector_id=1, duration=60),
                    call.ClearChargingProfile(id=1)):
        with pytest.raises(NotSupportedError):
            await rig.csms.stations["CP-TEST"].call(request, suppress=False)
    assert rig.station.smart.store.all() == []


class SiteLoad(dict[int, int]):
    """The register image of an Eastron SDM630 at the grid connection, read live: what the
    simulated EV on connector 1 draws plus ``other_a`` of other load, per phase."""

    def __init__(self, ev_current: Callable[[], float]) -> None:
        super().__init__()
        self.ev_current = ev_current
        self.other_a = 0.0

    def items(self) -> Any:
        amps = self.ev_current() + self.other_a
        words: dict[int, int] = {}
        for i in range(3):
            words.update(zip(range(2 * i, 2 * i + 2), f32_be(230.0), strict=True))
            words.update(zip(range(0x06 + 2 * i, 0x08 + 2 * i), f32_be(amps), strict=True))
        words.update(zip((0x34, 0x35), f32_be(amps * 230.0 * 3), strict=True))
        words.update(zip((0x48, 0x49), f32_be(1000.0), strict=True))
        return words.items()


async def test_a_grid_meter_gives_dynamic_headroom(start: Callable[..., Any]) -> None:
    """``[station] grid_limit_a`` with an Eastron SDM630 (a pymodbus server on loopback) at
    the grid connection: the EVs get min(max_current_a, grid limit − non-EV load)."""
    grid = MeterServer(0x00, 0x60, unit_id=1)
    port = grid.start_tcp()
    try:
        rig: Rig = await start(extra=f"""grid_limit_a = 40.0
[station.grid_meter]
driver = "modbus-tcp"
model = "sdm630"
host = "127.0.0.1"
port = {port}
timeout_s = 0.5
poll_interval_s = 0.0
frozen_after_s = 0.0
""")
        ev = rig.sim.connector(1).current_per_phase
        site = SiteLoad(ev)
        grid.image = site
        limits = rig.station.limits
        conn = rig.station.connectors[1]

        async def measure_and_follow() -> None:
            """EV meter, grid meter, then the duty-change interval; thrice (the EV
            follows each change, the meters then see it)."""
            for _ in range(3):
                await rig.station.poll_once(conn)
                await limits.poll_grid()
                await rig.advance(DUTY_INTERVAL_S)

        await rig.charge(1)
        await measure_and_follow()
        assert rig.duty(1) == duty(32)  # the station maximum binds: 40 A of grid left

        site.other_a = 20.0  # 20 A of other load at the grid connection
        await measure_and_follow()
        assert rig.duty(1) == duty(20)
        assert ev() == pytest.approx(20.0, abs=0.06)
        assert (await rig.status())["load_balancing"]["budget_source"] == "grid"

        site.other_a = 5.0  # the other load drops: back to the station maximum
        await measure_and_follow()
        assert rig.duty(1) == duty(32)
    finally:
        grid.stop()
