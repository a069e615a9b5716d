"""The OCPP 1.6 view of the core's vocabulary (OCPP 1.6 §7.6, §7.7, §7.39): complete, and
as the specification reads, written out here by hand rather than read from the tables."""

from __future__ import annotations

import pytest

from evse.domain import Fault, SessionStateChanged, StopCause, TransactionStopped
from evse.session_machine import SESSION_STATES
from ocpp_client.v16 import mapping


def state(name: str, fault: Fault | None = None) -> SessionStateChanged:
    return SessionStateChanged(1, 1, name, fault, "", 0.0)


def stopped(cause: StopCause, fault: Fault | None = None) -> TransactionStopped:
    return TransactionStopped(1, 1, None, 0, 0.0, cause, fault=fault)


def test_every_core_word_has_a_16_word() -> None:
    assert set(mapping.STATUS) == set(SESSION_STATES)
    assert set(mapping.ERROR_CODE) == set(Fault)
    assert set(mapping.REASON) == set(StopCause)


@pytest.mark.parametrize("name,expected", [
    ("idle", "Available"), ("pending", "Preparing"), ("energy_transfer", "Charging"),
    ("suspended_by_ev", "SuspendedEV"), ("suspended_by_evse", "SuspendedEVSE"),
    ("ended", "Finishing"), ("reserved", "Reserved"), ("out_of_service", "Unavailable"),
    ("faulted", "Faulted"),
])
def test_status(name: str, expected: str) -> None:
    assert mapping.status_of(state(name)) == (expected, "NoError")


@pytest.mark.parametrize("fault,code", [
    (Fault.RCD_TRIP, "GroundFailure"), (Fault.RCD_SELF_TEST, "GroundFailure"),
    (Fault.WELDED, "PowerSwitchFailure"), (Fault.FAILED_CLOSE, "PowerSwitchFailure"),
    (Fault.OVERCURRENT, "OverCurrentFailure"), (Fault.OVERTEMP, "HighTemperature"),
    (Fault.METER, "PowerMeterFailure"), (Fault.LOCK, "ConnectorLockFailure"),
    (Fault.DIODE, "EVCommunicationError"), (Fault.PILOT_E, "EVCommunicationError"),
    (Fault.PILOT_F, "EVCommunicationError"), (Fault.VENTILATION, "OtherError"),
    (Fault.STATION, "OtherError"),
])
def test_error_code(fault: Fault, code: str) -> None:
    assert mapping.status_of(state("faulted", fault)) == ("Faulted", code)
    # A meter failing while charging continues keeps the status, with its code.
    assert mapping.status_of(state("energy_transfer", fault))[0] == "Charging"


@pytest.mark.parametrize("cause,fault,reason", [
    (StopCause.EV_DISCONNECTED, None, "EVDisconnected"),
    (StopCause.LOCAL_ID_TOKEN, None, "Local"),
    (StopCause.LOCAL, None, "Local"),
    (StopCause.REMOTE, None, "Remote"),
    (StopCause.DEAUTHORIZED, None, "DeAuthorized"),
    (StopCause.POWER_LOSS, None, "PowerLoss"),
    (StopCause.REBOOT, None, "Reboot"),
    (StopCause.RESET_HARD, None, "HardReset"),
    (StopCause.RESET_SOFT, None, "SoftReset"),
    (StopCause.UNLOCK_COMMAND, None, "UnlockCommand"),
    (StopCause.FAULT, Fault.RCD_TRIP, "EmergencyStop"),
    (StopCause.FAULT, Fault.RCD_SELF_TEST, "EmergencyStop"),
    (StopCause.FAULT, Fault.OVERCURRENT, "Other"),
    (StopCause.FAULT, Fault.WELDED, "Other"),
])
def test_stop_reason(cause: StopCause, fault: Fault | None, reason: str) -> None:
    assert mapping.stop_reason(stopped(cause, fault)) == reason
