"""SetNetworkProfile (OCPP 2.0.1 B09) and the fallback over NetworkConfigurationPriority
(B10): the daemon with ``[ocpp] version = "2.0.1"`` and two of the ``ocpp`` library's 2.0.1
central systems on loopback; a restart applies the new priority, a CSMS that goes away makes
the station fall back to the commissioning profile."""

from __future__ import annotations

from pathlib import Path

from dev_csms import DevCsms
from ocpp.v201 import call

from evse.daemon import Daemon, load_checked_config
from tests.v201.rig import write_config_201

STATION = "CP-201"


def connection_data(url: str, security_profile: int = 0) -> dict[str, object]:
    return {"ocpp_version": "OCPP20", "ocpp_transport": "JSON", "ocpp_csms_url": url,
            "message_timeout": 30, "security_profile": security_profile,
            "ocpp_interface": "Wired0"}


async def test_new_profile_used_after_the_restart_and_fallback_when_it_fails(
        tmp_path: Path, csms201: DevCsms) -> None:
    other = DevCsms(port=0, version="2.0.1")
    await other.start()
    path = write_config_201(tmp_path, f"ws://127.0.0.1:{csms201.port}/")
    daemon = Daemon(load_checked_config(str(path)))
    await daemon.start()
    try:
        await csms201.wait_for(lambda: STATION in csms201.stations)
        cp = csms201.stations[STATION]
        answer = await cp.call(call.SetNetworkProfile(
            configuration_slot=2,
            connection_data=connection_data(f"ws://127.0.0.1:{other.port}/")))
        assert answer.status == "Accepted"
        # No such slot; TLS profile over ws://: refused, nothing stored.
        assert (await cp.call(call.SetNetworkProfile(
            configuration_slot=3, connection_data=connection_data("ws://127.0.0.1:1/"))
                )).status == "Rejected"
        assert (await cp.call(call.SetNetworkProfile(
            configuration_slot=1, connection_data=connection_data("ws://127.0.0.1:1/", 2))
                )).status == "Rejected"
        result = await cp.call(call.SetVariables(set_variable_data=[
            {"component": {"name": "OCPPCommCtrlr"},
             "variable": {"name": "NetworkConfigurationPriority"}, "attribute_value": "2,1"},
            {"component": {"name": "OCPPCommCtrlr"},
             "variable": {"name": "NetworkProfileConnectionAttempts"},
             "attribute_value": "2"}]))
        assert [r["attribute_status"] for r in result.set_variable_result] == [
            "RebootRequired", "Accepted"]
        await daemon.shutdown()

        # After the restart: slot 2 first.
        boots_a = len(csms201.actions("BootNotification"))
        daemon = Daemon(load_checked_config(str(path)))
        await daemon.start()
        await other.wait_for(lambda: STATION in other.stations
                             and other.actions("StatusNotification"))
        assert len(csms201.actions("BootNotification")) == boots_a

        # Slot 2's CSMS goes away: after 2 failed connects the station is back on slot 1.
        await other.stop()
        await csms201.wait_for(lambda: len(csms201.actions("BootNotification")) > boots_a
                               and STATION in csms201.stations)
    finally:
        await daemon.shutdown()
        await other.stop()
