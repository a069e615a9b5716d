"""Issue 12: interoperability defects 1, 2, 4, 6, 9, 10 and the second half of 7, the
measurands SoC and Power.Offered, clock-aligned data and the power-fail input — each against
the dev CSMS (the ``ocpp`` library's central system, schema validation on) on loopback, or on
a Station with a manual clock where the behaviour is a timing.

Expectations come from OCPP 1.6 edition 2: §9.1.12 HeartbeatInterval and §9.1.19
MeterValueSampleInterval take effect at once, samples counted from the transaction start;
§9.1.7 ClockAlignedDataInterval aligns to midnight; §3.5.3 a card of the same group
(parentIdTag, from any IdTagInfo) stops a transaction; §6.50 StopTransaction.req
transactionData carries the StopTxnSampledData / StopTxnAlignedData samples; §4.9 /
§5.2 connector 0 is the charge point itself.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from dev_csms import DevCsms
from ocpp.v16 import call

from evse.clock import Clock
from evse.domain import MeterSample, ReadingContext
from evse.station import Station
from evse.timers import ManualClock
from tests.conftest import DaemonFactory, EventLog
from tests.iec.rig import AcceptAll, StationRig, sim_board, station_rig
from tests.test_csms_commands import start_charging


def _contexts(meter_values: list[dict[str, Any]]) -> list[str]:
    """The context of each MeterValue (of its first sampled value)."""
    return [mv["sampledValue"][0].get("context", "Sample.Periodic") for mv in meter_values]


def _meter_values(csms: DevCsms, context: str, connector_id: int = 1) -> list[dict[str, Any]]:
    """Every MeterValue the CSMS got for ``connector_id`` with ``context``."""
    return [mv for payload in csms.actions("MeterValues")
            if payload["connectorId"] == connector_id
            for mv in payload["meterValue"] if _contexts([mv]) == [context]]


async def _connected(csms: DevCsms, daemon_factory: DaemonFactory, **kw: Any) -> Any:
    daemon = await daemon_factory(f"ws://127.0.0.1:{csms.port}/", **kw)
    # Connector 1's status comes from the live sender: the link's workers (the Heartbeat
    # loop among them) run.
    await csms.wait_for(lambda: "CP-TEST" in csms.stations and any(
        s["connectorId"] == 1 for s in csms.actions("StatusNotification")))
    return daemon


async def _configure(csms: DevCsms, key: str, value: str) -> None:
    answer = await csms.stations["CP-TEST"].call(call.ChangeConfiguration(key=key, value=value))
    assert answer.status == "Accepted", (key, value)


def _statuses(csms: DevCsms, seen: int, connector_id: int) -> list[str]:
    """The statuses of ``connector_id`` the charge point sent since frame ``seen``."""
    return [f.parsed[3]["status"] for f in csms.frames[seen:]
            if f.direction == "in" and f.parsed[0] == 2 and f.parsed[2] == "StatusNotification"
            and f.parsed[3]["connectorId"] == connector_id]


# -- defect 1 ---------------------------------------------------------------------------------
async def test_changed_heartbeat_interval_applies_at_once(
        csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    """HeartbeatInterval 1440 → 1: a Heartbeat within about a second, not after 24 min."""
    csms.heartbeat_s = 1440
    await _connected(csms, daemon_factory)
    before = len(csms.actions("Heartbeat"))
    await _configure(csms, "HeartbeatInterval", "1")
    await csms.wait_for(lambda: len(csms.actions("Heartbeat")) > before, timeout=3)


async def test_changed_sample_interval_applies_at_once(
        csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    """MeterValueSampleInterval 3600 → 1 while charging: a Sample.Periodic within seconds."""
    daemon = await _connected(csms, daemon_factory)
    await _configure(csms, "MeterValueSampleInterval", "3600")
    await daemon.shutdown()  # the next run starts with 3600 s (the key is kept in the DB)
    csms.calls.clear()
    daemon = await _connected(csms, daemon_factory)
    assert daemon.station.sample_interval_s == 3600.0
    sim = daemon.board.simulator
    sim.plug(1, 16.0, 3)
    sim.swipe("DEMO01")
    await csms.wait_for(lambda: _meter_values(csms, "Transaction.Begin"))
    assert not _meter_values(csms, "Sample.Periodic")
    await _configure(csms, "MeterValueSampleInterval", "1")
    await csms.wait_for(lambda: _meter_values(csms, "Sample.Periodic"), timeout=3)


async def test_sample_intervals_count_from_the_transaction_start() -> None:
    """On a manual clock: interval 10 s, changed to 3 s four seconds into the transaction:
    the next sample comes 6 s after the start, then every 3 s."""
    rig = await station_rig()
    try:
        rig.station.sample_interval_s = 10.0
        rig.sim.plug(1, 32.0, 3)
        await rig.station.present_card("CARD-1")
        await rig.settle()
        assert rig.started()

        def periodic() -> int:
            return sum(1 for e in rig.events if isinstance(e, MeterSample)
                       and e.context is ReadingContext.PERIODIC)

        await rig.advance(4.0)
        assert periodic() == 0
        rig.station.sample_interval_s = 3.0
        await rig.advance(1.9)
        assert periodic() == 0
        await rig.advance(0.2)  # 6.1 s after the start
        assert periodic() == 1
        await rig.advance(3.0)  # 9.1 s
        assert periodic() == 2
        rig.station.sample_interval_s = 0.0
        await rig.advance(30.0)
        assert periodic() == 2
    finally:
        await rig.close()


# -- defect 2 ---------------------------------------------------------------------------------
async def _utc_rig(start_utc: float) -> StationRig:
    """A two-connector Station whose timers and UTC clock both follow one manual clock."""
    clock = ManualClock()
    db = sqlite3.connect(":memory:", isolation_level=None)
    station = Station(sim_board(2), {1: 32.0, 2: 32.0}, 32.0, db, clock=clock,
                      utc_clock=Clock(wall=lambda: start_utc, monotonic=clock.monotonic))
    station.authorizer = AcceptAll()
    rig = StationRig(station, station.board, clock, db)
    station.subscribe(rig.events.append)
    await station.start(poll=False)
    await rig.settle()
    return rig


async def test_clock_aligned_samples_fall_on_the_interval_grid() -> None:
    """ClockAlignedDataInterval 900 s: one sample per connector at each quarter hour (UTC),
    with or without a transaction."""
    rig = await _utc_rig(start_utc=1_796_191_000.0)  # 2026-12-02 05:56:40 UTC
    try:
        rig.station.aligned_interval_s = 900.0
        due = 200.0  # until 06:00:00

        def aligned() -> list[MeterSample]:
            return [e for e in rig.events if isinstance(e, MeterSample)
                    and e.context is ReadingContext.CLOCK_ALIGNED]

        await rig.advance(max(0.0, due - 0.5))
        assert aligned() == []
        await rig.advance(1.0)
        assert sorted(e.connector_id for e in aligned()) == [1, 2]
        assert all(e.session_id is None for e in aligned())
        await rig.advance(900.0)
        assert len(aligned()) == 4
    finally:
        await rig.close()


async def test_clock_aligned_meter_values_are_sent(
        csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    """ClockAlignedDataInterval set by the CSMS: Sample.Clock MeterValues of
    MeterValuesAlignedData (default Energy.Active.Import.Register) follow."""
    await _connected(csms, daemon_factory)
    await _configure(csms, "ClockAlignedDataInterval", "1")
    await csms.wait_for(lambda: _meter_values(csms, "Sample.Clock"), timeout=3)
    value = _meter_values(csms, "Sample.Clock")[0]["sampledValue"]
    assert [v["measurand"] for v in value] == ["Energy.Active.Import.Register"]


# -- defect 4 ---------------------------------------------------------------------------------
async def test_parent_id_tag_from_start_transaction_conf_stops_with_a_group_card(
        csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    """A remote start (no Authorize): the group arrives in StartTransaction.conf only; a
    second card of that group stops the transaction."""
    for tag in ("TAG-A", "TAG-B"):
        csms.tag_info[tag] = {"status": "Accepted", "parentIdTag": "FLEET-7"}
    daemon = await _connected(csms, daemon_factory)
    events = EventLog(daemon.station)
    sim = daemon.board.simulator
    sim.plug(1, 16.0, 3)
    answer = await csms.stations["CP-TEST"].call(
        call.RemoteStartTransaction(id_tag="TAG-A", connector_id=1))
    assert answer.status == "Accepted"
    await events.wait_for(lambda: "energy_transfer" in events.statuses())
    session = daemon.station.connectors[1].session
    await csms.wait_for(lambda: daemon.adapter.transaction_ref(session.session_id))
    assert not csms.actions("Authorize")
    sim.swipe("TAG-B")
    [stop] = await csms.wait_for(lambda: csms.actions("StopTransaction"))
    assert stop["idTag"] == "TAG-B" and stop["reason"] == "Local"


# -- defect 6 ---------------------------------------------------------------------------------
async def test_stop_transaction_carries_the_transactions_samples(
        csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    """StopTxnSampledData and StopTxnAlignedData: the StopTransaction carries the begin,
    periodic and clock-aligned samples and the end value."""
    daemon, _ = await start_charging(
        csms, daemon_factory,
        ocpp_keys='StopTxnAlignedData = "Energy.Active.Import.Register"\n'
                  "ClockAlignedDataInterval = 1")
    await csms.wait_for(lambda: len(_meter_values(csms, "Sample.Periodic")) >= 2
                        and _meter_values(csms, "Sample.Clock"), timeout=5)
    daemon.board.simulator.swipe("DEMO01")
    [stop] = await csms.wait_for(lambda: csms.actions("StopTransaction"))
    contexts = _contexts(stop["transactionData"])
    assert contexts[0] == "Transaction.Begin" and contexts[-1] == "Transaction.End"
    assert contexts.count("Sample.Periodic") >= 2 and "Sample.Clock" in contexts
    for mv in stop["transactionData"]:
        assert [v["measurand"] for v in mv["sampledValue"]] == ["Energy.Active.Import.Register"]


async def test_stop_transaction_after_a_power_cut_carries_transaction_data(
        csms: DevCsms, daemon_factory: DaemonFactory, tmp_path: Path) -> None:
    """The state DB as a power cut leaves it mid-transaction: the PowerLoss stop at the
    next start carries the samples taken before the cut, and the end value."""
    daemon, _ = await start_charging(csms, daemon_factory)
    await csms.wait_for(lambda: len(_meter_values(csms, "Sample.Periodic")) >= 2)
    snapshot = sqlite3.connect(tmp_path / "cut.db")
    daemon.db.backup(snapshot)  # what a power cut would leave on the card, now
    snapshot.close()
    state_dir = daemon.config.state_dir
    await daemon.shutdown()
    for path in state_dir.glob("evse.db*"):
        path.unlink()
    shutil.copy(tmp_path / "cut.db", state_dir / "evse.db")
    await daemon_factory(f"ws://127.0.0.1:{csms.port}/")
    stop = await csms.wait_for(lambda: next(
        (s for s in csms.actions("StopTransaction") if s["reason"] == "PowerLoss"), None))
    contexts = _contexts(stop["transactionData"])
    assert contexts[0] == "Transaction.Begin" and contexts[-1] == "Transaction.End"
    assert contexts.count("Sample.Periodic") >= 2
    end = stop["transactionData"][-1]["sampledValue"][0]
    assert int(end["value"]) == stop["meterStop"]


# -- defect 9 ---------------------------------------------------------------------------------
async def test_connector_zero_is_reported_unavailable(
        csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    await _connected(csms, daemon_factory)
    cp = csms.stations["CP-TEST"]
    seen = len(csms.frames)
    answer = await cp.call(call.ChangeAvailability(connector_id=0, type="Inoperative"))
    assert answer.status == "Accepted"
    await csms.wait_for(lambda: "Unavailable" in _statuses(csms, seen, 0)
                        and "Unavailable" in _statuses(csms, seen, 1))
    seen = len(csms.frames)
    answer = await cp.call(call.TriggerMessage(requested_message="StatusNotification"))
    assert answer.status == "Accepted"
    await csms.wait_for(lambda: _statuses(csms, seen, 0) and _statuses(csms, seen, 1))
    assert _statuses(csms, seen, 0) == ["Unavailable"]
    assert _statuses(csms, seen, 1) == ["Unavailable"]
    seen = len(csms.frames)
    await cp.call(call.ChangeAvailability(connector_id=0, type="Operative"))
    await csms.wait_for(lambda: "Available" in _statuses(csms, seen, 0)
                        and "Available" in _statuses(csms, seen, 1))


async def test_scheduled_unavailable_shows_no_available_first(
        csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    daemon, _ = await start_charging(csms, daemon_factory)
    cp = csms.stations["CP-TEST"]
    answer = await cp.call(call.ChangeAvailability(connector_id=1, type="Inoperative"))
    assert answer.status == "Scheduled"
    seen = len(csms.frames)
    daemon.board.simulator.unplug(1)  # StopTransactionOnEVSideDisconnect: the stop
    await csms.wait_for(lambda: "Unavailable" in _statuses(csms, seen, 1))
    await csms.wait_for(lambda: csms.actions("StopTransaction"))
    assert "Available" not in _statuses(csms, seen, 1), _statuses(csms, seen, 1)


# -- defect 10 --------------------------------------------------------------------------------
async def test_status_never_shows_the_basic_auth_password(
        csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    daemon = await daemon_factory(f"ws://CP-TEST:pw-s3cret@127.0.0.1:{csms.port}/")
    await csms.wait_for(lambda: "CP-TEST" in csms.stations)
    shown = json.dumps(daemon.adapter.describe())
    assert "pw-s3cret" not in shown
    assert f"127.0.0.1:{csms.port}/CP-TEST" in shown


# -- measurands -------------------------------------------------------------------------------
async def test_soc_and_power_offered_measurands(
        csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    """SoC (the EV reports 40 %, location EV, unit Percent) and Power.Offered (W: the
    offered current on each of the 3 phases at the measured 230 V)."""
    daemon = await _connected(
        csms, daemon_factory,
        ocpp_keys='MeterValuesSampledData = "SoC,Power.Offered,Current.Offered"')
    sim = daemon.board.simulator
    sim.plug(1, 16.0, 3, soc_percent=40.0)
    sim.swipe("DEMO01")
    [mv] = (await csms.wait_for(lambda: _meter_values(csms, "Sample.Periodic")))[:1]
    values = {v["measurand"]: v for v in mv["sampledValue"]}
    assert set(values) == {"SoC", "Power.Offered", "Current.Offered"}
    assert values["SoC"]["unit"] == "Percent" and values["SoC"]["location"] == "EV"
    assert 40.0 <= float(values["SoC"]["value"]) < 41.0
    assert values["Power.Offered"]["unit"] == "W"
    assert float(values["Power.Offered"]["value"]) == float(
        values["Current.Offered"]["value"]) * 3 * 230.0


# -- power-fail input ------------------------------------------------------------------------
async def test_power_fail_stops_transactions_with_power_loss(
        csms: DevCsms, daemon_factory: DaemonFactory) -> None:
    """``evse sim power-fail`` (the simulated mains-loss input): the running transaction
    stops with PowerLoss, its samples in the StopTransaction, and nothing left uncommitted."""
    daemon, _ = await start_charging(csms, daemon_factory)
    await csms.wait_for(lambda: _meter_values(csms, "Sample.Periodic"))
    cli = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "evse", "sim", "power-fail", "--config",
                         str(daemon.config.path)], capture_output=True, text=True, timeout=30)
    assert cli.returncode == 0, cli.stderr
    [stop] = await csms.wait_for(lambda: csms.actions("StopTransaction"))
    assert stop["reason"] == "PowerLoss"
    contexts = _contexts(stop["transactionData"])
    assert contexts[0] == "Transaction.Begin" and contexts[-1] == "Transaction.End"
    assert daemon.station.connectors[1].session is None
    assert not daemon.board.connectors[0].contactor.commanded_closed
    assert not daemon.adapter.outbox.pending_acks
