"""One scripted simulator session run under OCPP 1.6 and under OCPP 2.0.1, each against the
``ocpp`` library's central system of its version: the core does the same (same session
timeline, event for event), and each CSMS is told the energy the simulated meter counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dev_csms import DevCsms

from evse.daemon import Daemon, load_checked_config
from evse.domain import MeterSample, ReadingContext, SessionStateChanged, TransactionStopped
from tests.conftest import EventLog, write_config

from .rig import energy_wh, sim_of, until, write_config_201


async def _run_script(daemon: Daemon) -> tuple[list[str], list[str], float]:
    """plug → card → 3 periodic samples → the EV pauses → card again → unplug.

    Returns the session states (a state published again is one state), the other domain
    event names (samples left out: their count follows wall time) and the energy the
    simulator's meter counted, Wh."""
    assert daemon.station is not None
    log = EventLog(daemon.station)
    sim = sim_of(daemon)
    before = energy_wh(daemon)
    sim.plug(1, 16.0, 3)
    await log.wait_for(lambda: "pending" in log.statuses())
    sim.swipe("DEMO01")
    await log.wait_for(lambda: sum(isinstance(e, MeterSample)
                                   and e.context is ReadingContext.PERIODIC
                                   for e in log.events) >= 3)
    sim.ev_pause(1)
    await log.wait_for(lambda: log.statuses()[-1] == "suspended_by_ev")
    sim.swipe("DEMO01")
    await log.wait_for(lambda: any(isinstance(e, TransactionStopped) for e in log.events))
    sim.unplug(1)
    await log.wait_for(lambda: log.statuses()[-1] == "idle")
    await daemon.station.idle()
    names = [type(e).__name__ for e in log.events
             if not isinstance(e, (MeterSample, SessionStateChanged))]
    states = [s for i, s in enumerate(log.statuses()) if i == 0 or log.statuses()[i - 1] != s]
    return states, names, energy_wh(daemon) - before


async def _daemon(path: Path) -> Daemon:
    daemon = Daemon(load_checked_config(str(path)))
    await daemon.start()
    return daemon


async def _run_version(tmp_path: Path, version: str
                       ) -> tuple[list[str], list[str], float, float]:
    csms = DevCsms(port=0, accept_tags=("DEMO01",), version=version)
    await csms.start()
    directory = tmp_path / version
    directory.mkdir()
    url = f"ws://127.0.0.1:{csms.port}/"
    path = (write_config(directory, url) if version == "1.6"
            else write_config_201(directory, url, station_id="CP-TEST"))
    daemon = await _daemon(path)
    try:
        adapter: Any = daemon.adapter
        await csms.wait_for(lambda: adapter.online)
        states, names, sim_wh = await _run_script(daemon)
        await until(lambda: len(adapter.outbox) == 0 and (
            csms.actions("StopTransaction") or any(
                e["eventType"] == "Ended" for e in csms.actions("TransactionEvent"))))
    finally:
        await daemon.shutdown()
        await csms.stop()
    return states, names, sim_wh, _csms_energy(csms, version)


async def test_same_session_same_timeline_and_energy(tmp_path: Path) -> None:
    runs = {version: await _run_version(tmp_path, version) for version in ("1.6", "2.0.1")}
    states16, names16, sim16, csms16 = runs["1.6"]
    states201, names201, sim201, csms201 = runs["2.0.1"]
    assert states16 == states201
    assert names16 == names201
    # Each CSMS got the energy its session's meter counted (register values in whole Wh).
    assert abs(csms16 - sim16) <= 1.0
    assert abs(csms201 - sim201) <= 1.0
    assert csms16 > 0 and csms201 > 0


def _csms_energy(csms: DevCsms, version: str) -> float:
    if version == "1.6":
        start = csms.actions("StartTransaction")[0]
        stop = csms.actions("StopTransaction")[0]
        return float(stop["meterStop"] - start["meterStart"])
    evs = csms.actions("TransactionEvent")

    def register(event: dict[str, Any], context: str) -> float:
        for mv in event.get("meterValue", []):
            for sv in mv["sampledValue"]:
                if (sv["measurand"] == "Energy.Active.Import.Register"
                        and sv["context"] == context):
                    return float(sv["value"])
        raise AssertionError(f"no {context} register in {event}")

    return register(evs[-1], "Transaction.End") - register(evs[0], "Transaction.Begin")
