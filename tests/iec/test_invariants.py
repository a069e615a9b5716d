"""Property-based: random sequences of pilot / RCD / card / remote / limit / fault / time
events on a two-connector station; after every step the safety invariants hold.

* never energized without a transaction in Charging with the EV in C (D with ventilation),
  except during the bounded PWM-off window (``pwm_off_timeout_s``) after a stop or pause;
* never energized while the pilot shows A, B, E, F or a diode fault, nor while the RCD trips;
* never two transactions on one connector;
* every started transaction stops.

At least 10 000 random steps run (``STEPS_PER_EXAMPLE`` × ``EXAMPLES``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evse.authorization import AuthorizationStatus, AuthResult
from evse.domain import StopCause
from evse.iec61851 import Iec61851Settings
from hal.pilot import PilotState
from tests.iec.rig import AcceptAll, StationRig, station_rig

EXAMPLES = 200
STEPS_PER_EXAMPLE = 50
CONNECTORS = (1, 2)
TAGS = ("TAG1", "TAG2", "TAG3", "BAD")
_steps_run = [0]

connector_ids = st.sampled_from(CONNECTORS)
FAULT_KINDS = ("rcd", "diode", "cp_short", "overcurrent", "meter", "lock")
# Everyday events are listed twice: sequences spend more time charging than faulted.
events = st.one_of(
    st.tuples(st.just("plug"), connector_ids),
    st.tuples(st.just("plug"), connector_ids),
    st.tuples(st.just("card"), st.sampled_from(TAGS)),
    st.tuples(st.just("resume"), connector_ids),
    st.tuples(st.just("clear"), connector_ids, st.sampled_from(FAULT_KINDS)),
    st.tuples(st.just("advance"), st.sampled_from((0.1, 0.3, 1.0, 3.0, 5.5, 7.5, 30.0, 301.0))),
    st.tuples(st.just("plug"), connector_ids),
    st.tuples(st.just("unplug"), connector_ids),
    st.tuples(st.just("pause"), connector_ids),
    st.tuples(st.just("resume"), connector_ids),
    st.tuples(st.just("stubborn"), connector_ids, st.booleans()),
    st.tuples(st.just("card"), st.sampled_from(TAGS)),
    st.tuples(st.just("remote_start"), st.sampled_from(TAGS), st.sampled_from((None, 1, 2))),
    st.tuples(st.just("remote_stop"), connector_ids),
    st.tuples(st.just("limit"), connector_ids, st.sampled_from((None, 0.0, 4.0, 8.0, 16.0))),
    st.tuples(st.just("fault"), connector_ids, st.sampled_from(FAULT_KINDS)),
    st.tuples(st.just("clear"), connector_ids, st.sampled_from(FAULT_KINDS)),
    st.tuples(st.just("temperature"), connector_ids, st.sampled_from((25.0, 62.0, 72.0, 90.0))),
    st.tuples(st.just("advance"), st.sampled_from((0.1, 0.3, 1.0, 3.0, 5.5, 7.5, 30.0, 301.0))),
    st.tuples(st.just("poll")),
    st.tuples(st.just("technician"), connector_ids),
    st.tuples(st.just("availability"), connector_ids, st.booleans()),
)


async def apply(rig: StationRig, event: tuple[Any, ...]) -> None:
    kind, *args = event
    sim = rig.sim
    if kind == "plug":
        sim.plug(args[0], 32.0, 3)
    elif kind == "unplug":
        sim.unplug(args[0])
    elif kind == "pause":
        sim.ev_pause(args[0])
    elif kind == "resume":
        sim.ev_resume(args[0])
    elif kind == "stubborn":
        simc = sim.connector(args[0])
        simc.ev.ignore_pwm_off = args[1]
        simc.changed()
    elif kind == "card":
        await rig.station.present_card(args[0])
    elif kind == "remote_start":
        status = AuthorizationStatus.INVALID if args[0] == "BAD" else AuthorizationStatus.ACCEPTED
        rig.station.remote_start(args[0], args[1], AuthResult(status))
    elif kind == "remote_stop":
        await rig.station.stop_transaction(args[0], StopCause.REMOTE)
    elif kind == "limit":
        rig.station.set_charging_limit(args[0], args[1])
    elif kind == "fault":
        sim.fault(args[0], args[1])
    elif kind == "clear":
        sim.clear(args[0], args[1])
    elif kind == "temperature":
        sim.connector(args[0]).temperature_c = args[1]
    elif kind == "advance":
        await rig.advance(args[0], poll=args[0] >= 1.0)
    elif kind == "poll":
        await rig.poll()
    elif kind == "technician":
        rig.station.technician_reset(args[0])
    elif kind == "availability":
        rig.station.change_availability(args[0], args[1])
    await rig.settle()


def check(rig: StationRig, unauthorized_since: dict[int, float]) -> None:
    now = rig.clock.monotonic()
    for cid, conn in rig.station.connectors.items():
        hw = conn.hw
        closed = hw.contactor.commanded_closed
        reading = hw.pilot.read()
        if not closed:
            unauthorized_since.pop(cid, None)
            continue
        allowed = {PilotState.C, PilotState.D} if conn.ventilation else {PilotState.C}
        assert reading.state in allowed, f"energized in state {reading.state} on {cid}"
        assert not reading.diode_fault, f"energized with a diode fault on {cid}"
        assert not hw.rcd.tripped, f"energized with the RCD tripped on {cid}"
        if conn.state == "energy_transfer" and conn.session is not None:
            unauthorized_since.pop(cid, None)
            continue
        # Only the PWM-off window may leave it closed, and only for pwm_off_timeout_s.
        since = unauthorized_since.setdefault(cid, now)
        assert conn.iec.pwm_off_timer.active, f"energized in {conn.state} without a session"
        assert now - since <= conn.settings.pwm_off_timeout_s + 1e-6
    for cid in CONNECTORS:
        (open_sessions,) = rig.db.execute(
            "SELECT COUNT(*) FROM sessions WHERE connector_id = ? AND stop_reason IS NULL",
            (cid,)).fetchone()
        assert open_sessions <= 1, f"two transactions on connector {cid}"


async def scenario(sequence: list[tuple[Any, ...]]) -> None:
    rig = await station_rig(connectors=2, lock=True,
                            settings=Iec61851Settings(rcd_max_trips=3),
                            authorizer=AcceptAll(rejected=frozenset({"BAD"})))
    unauthorized_since: dict[int, float] = {}
    try:
        for event in sequence:
            await apply(rig, event)
            check(rig, unauthorized_since)
            _steps_run[0] += 1
        # Wind down: every started transaction must stop.
        for cid in CONNECTORS:
            rig.sim.unplug(cid)
        await rig.settle()
        await rig.station.stop_all(StopCause.LOCAL)
        await rig.settle()
        started = {e.session_id for e in rig.started()}
        stopped = [e.session_id for e in rig.stopped()]
        assert started == set(stopped), "a started transaction never stopped"
        assert len(stopped) == len(set(stopped)), "a transaction stopped twice"
        for cid in CONNECTORS:
            assert not rig.closed(cid)
    finally:
        await rig.close()


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events, min_size=STEPS_PER_EXAMPLE, max_size=STEPS_PER_EXAMPLE))
def run_sequences(sequence: list[tuple[Any, ...]]) -> None:
    asyncio.run(scenario(sequence))


def test_invariants_hold_over_10000_random_steps() -> None:
    _steps_run[0] = 0
    run_sequences()
    assert _steps_run[0] >= 10_000
