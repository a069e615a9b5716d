"""Transaction start / stop policies: OCPP 1.6's rule and 2.0.1-style point lists, and the
Station following the policy the adapter sets (EV-side disconnect kept or stopping)."""

from __future__ import annotations

from evse.tx_policy import TxPoint, TxPolicy
from tests.iec.rig import station_rig

EV, AUTH, POWER, ENERGY = (TxPoint.EV_CONNECTED, TxPoint.AUTHORIZED,
                           TxPoint.POWER_PATH_CLOSED, TxPoint.ENERGY_TRANSFER)


def test_ocpp16_starts_when_authorized_and_connected() -> None:
    policy = TxPolicy.ocpp16()
    assert not policy.should_start({EV})
    assert not policy.should_start({AUTH})
    assert policy.should_start({EV, AUTH})
    assert policy.stops_on_loss_of(AUTH) and policy.stops_on_loss_of(EV)
    kept = TxPolicy.ocpp16(stop_on_ev_disconnect=False)
    assert kept.stops_on_loss_of(AUTH) and not kept.stops_on_loss_of(EV)


def test_any_of_expresses_tx_start_and_stop_points() -> None:
    # OCPP 2.0.1 TxStartPoint = "EVConnected,Authorized", TxStopPoint = "PowerPathClosed".
    policy = TxPolicy.any_of([EV, AUTH], [POWER])
    assert policy.should_start({EV}) and policy.should_start({AUTH})
    assert not policy.should_start(set())
    assert policy.stops_on_loss_of(POWER) and not policy.stops_on_loss_of(EV)
    # TxStartPoint = "EnergyTransfer"
    energy = TxPolicy.any_of([ENERGY], [EV])
    assert not energy.should_start({EV, AUTH, POWER}) and energy.should_start({ENERGY})


async def test_station_follows_the_policy_it_is_given() -> None:
    for stop_on_disconnect in (True, False):
        rig = await station_rig()
        rig.station.tx_policy = TxPolicy.ocpp16(stop_on_ev_disconnect=stop_on_disconnect)
        rig.sim.plug(1, 32.0, 3)
        await rig.station.present_card("TAG1")
        await rig.settle()
        assert len(rig.started()) == 1
        rig.sim.unplug(1)
        await rig.settle()
        assert len(rig.stopped()) == (1 if stop_on_disconnect else 0)
        await rig.close()
