"""Plug / authorization orders and the EV-side disconnect switches (OCPP 1.6 §3, §9.1)."""

from __future__ import annotations

from evse.authorization import AuthorizationStatus, AuthResult
from evse.tx_policy import TxPolicy
from tests.iec.rig import AcceptAll, reason16, station_rig


async def test_plug_then_card() -> None:
    rig = await station_rig()
    rig.sim.plug(1, 32.0, 3)
    await rig.settle()
    assert rig.last_status() == ("preparing", "no_error")
    await rig.station.present_card("TAG1")
    await rig.settle()
    assert rig.state16() == "charging" and rig.closed()
    assert [e.id_token.value for e in rig.started()] == ["TAG1"]
    await rig.close()


async def test_card_then_plug() -> None:
    rig = await station_rig()
    await rig.station.present_card("TAG1")
    await rig.settle()
    assert rig.last_status() == ("preparing", "no_error") and not rig.closed()
    rig.sim.plug(1, 32.0, 3)
    await rig.settle()
    assert rig.state16() == "charging" and rig.closed()
    await rig.close()


async def test_remote_start_before_plug() -> None:
    rig = await station_rig()
    ok = rig.station.remote_start("TAG1", 1, AuthResult(AuthorizationStatus.ACCEPTED))
    assert ok
    await rig.settle()
    assert rig.state16() == "preparing"
    rig.sim.plug(1, 32.0, 3)
    await rig.settle()
    assert rig.state16() == "charging"
    # Never two transactions on one connector.
    assert not rig.station.remote_start("TAG2", 1, AuthResult(AuthorizationStatus.ACCEPTED))
    await rig.close()


async def test_same_card_stops_and_parent_group_stops() -> None:
    rig = await station_rig(authorizer=AcceptAll(parents={"TAG1": "FLEET", "TAG2": "FLEET"}))
    rig.sim.plug(1, 32.0, 3)
    await rig.station.present_card("TAG1")
    await rig.settle()
    assert rig.state16() == "charging"
    await rig.station.present_card("TAG1")
    await rig.settle()
    assert rig.state16() == "finishing" and not rig.closed()
    assert reason16(rig.stopped()[-1]) == "local"
    assert rig.stopped()[-1].id_tag == "TAG1"
    rig.sim.unplug(1)
    rig.sim.plug(1, 32.0, 3)
    await rig.station.present_card("TAG1")
    await rig.settle()
    await rig.station.present_card("TAG2")  # same parentIdTag group
    await rig.settle()
    assert rig.state16() == "finishing" and rig.stopped()[-1].id_tag == "TAG2"
    # A rejected card does nothing.
    rig.station.authorizer = AcceptAll(rejected=frozenset({"BAD"}))
    await rig.station.present_card("BAD")
    await rig.settle()
    assert rig.state16() == "finishing"
    # A new card on a finished, still plugged connector starts a new transaction.
    await rig.station.present_card("TAG3")
    await rig.settle()
    assert rig.state16() == "charging" and len(rig.started()) == 3
    await rig.close()


async def test_stop_on_ev_side_disconnect_true_stops() -> None:
    rig = await station_rig()
    rig.sim.plug(1, 32.0, 3)
    await rig.station.present_card("TAG1")
    await rig.settle()
    rig.sim.unplug(1)
    await rig.settle()
    assert rig.state16() == "available"
    assert reason16(rig.stopped()[-1]) == "ev_disconnected"
    await rig.close()


async def test_stop_on_ev_side_disconnect_false_keeps_transaction() -> None:
    rig = await station_rig()
    rig.station.tx_policy = TxPolicy.ocpp16(stop_on_ev_disconnect=False)
    rig.sim.plug(1, 32.0, 3)
    await rig.station.present_card("TAG1")
    await rig.settle()
    rig.sim.unplug(1)
    await rig.settle()
    assert rig.last_status() == ("suspended_ev", "no_error")
    assert not rig.closed() and not rig.stopped()
    assert rig.conn().hw.pilot.duty_percent == 100.0  # no PWM without an EV
    rig.sim.plug(1, 32.0, 3)
    await rig.settle()
    assert rig.state16() == "charging" and rig.closed()
    assert len(rig.started()) == 1
    await rig.station.present_card("TAG1")
    await rig.settle()
    assert len(rig.stopped()) == 1
    await rig.close()


async def test_unlock_on_ev_side_disconnect() -> None:
    for unlock in (True, False):
        rig = await station_rig(lock=True)
        rig.station.unlock_on_ev_disconnect = unlock
        simc = rig.sim.connector(1)
        rig.sim.plug(1, 32.0, 3)
        await rig.station.present_card("TAG1")
        await rig.settle()
        assert simc.cable_locked
        rig.sim.unplug(1)
        await rig.settle()
        assert rig.state16() == "available"
        assert simc.cable_locked is (not unlock)
        if not unlock:
            await rig.station.present_card("OTHER")  # someone else: stays locked
            await rig.settle()
            assert simc.cable_locked
            rig.station._clear_pending("OTHER")
            await rig.station.present_card("TAG1")
            await rig.settle()
            assert not simc.cable_locked
        await rig.close()
