"""Issue 12 defect 7 (second half): a StatusNotification of a transaction never precedes its
StartTransaction (OCPP 1.6 §4.9) — also when the transaction started offline and the
statuses of every connector go out again right after the reconnect."""

from __future__ import annotations

from typing import Any


async def test_charging_status_after_a_reconnect_waits_for_the_start_transaction(
        rig_factory: Any) -> None:
    rig = await rig_factory(ocpp_keys="AllowOfflineTxForUnknownId = true")
    await rig.offline()
    rig.sim.plug(1, 16.0, 3)
    rig.sim.swipe("DEMO01")
    await rig.events.wait_for(lambda: "energy_transfer" in rig.events.statuses())
    seen = len(rig.csms.frames)
    await rig.online()

    def order() -> tuple[int, int] | None:
        frames = [(f.direction, f.parsed) for f in rig.csms.frames[seen:]]
        start = next((p[1] for d, p in frames if d == "in" and p[0] == 2
                      and p[2] == "StartTransaction"), None)
        answered = next((i for i, (d, p) in enumerate(frames)
                         if d == "out" and p[0] == 3 and p[1] == start), None)
        charging = next((i for i, (d, p) in enumerate(frames)
                         if d == "in" and p[0] == 2 and p[2] == "StatusNotification"
                         and p[3]["connectorId"] == 1 and p[3]["status"] == "Charging"), None)
        return None if answered is None or charging is None else (answered, charging)

    answered, charging = await rig.csms.wait_for(order)
    assert answered < charging
