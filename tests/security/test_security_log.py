"""Security events: the whitepaper's names, criticality, and the bounded local security
log in a real SQLite state database."""

from __future__ import annotations

from pathlib import Path

import pytest

from evse.state_db import open_state_db
from ocpp_client.security.events import SecurityEventType
from ocpp_client.security.security_log import SecurityLog

# The whitepaper's list (1.6 ed. 3 Appendix 1), written out independently of the enum.
V16_NAMES = [
    "FirmwareUpdated", "FailedToAuthenticateAtCentralSystem",
    "CentralSystemFailedToAuthenticate", "SettingSystemTime", "StartupOfTheDevice",
    "ResetOrReboot", "SecurityLogWasCleared", "ReconfigurationOfSecurityParameters",
    "MemoryExhaustion", "InvalidMessages", "AttemptedReplayAttacks",
    "TamperDetectionActivated", "InvalidFirmwareSignature",
    "InvalidFirmwareSigningCertificate", "InvalidCentralSystemCertificate",
    "InvalidChargePointCertificate", "InvalidTLSVersion", "InvalidTLSCipherSuite",
]
CRITICAL = {"FirmwareUpdated", "SettingSystemTime", "StartupOfTheDevice", "ResetOrReboot",
            "SecurityLogWasCleared", "ReconfigurationOfSecurityParameters",
            "MemoryExhaustion", "TamperDetectionActivated"}


def test_event_names_and_criticality() -> None:
    assert [e.v16_name for e in SecurityEventType] == V16_NAMES
    assert {e.v16_name for e in SecurityEventType if e.critical} == CRITICAL
    assert SecurityEventType.INVALID_CSMS_CERTIFICATE.v201_name == "InvalidCsmsCertificate"


def test_log_is_bounded_ordered_and_survives_a_restart(tmp_path: Path) -> None:
    db = open_state_db(tmp_path)
    log = SecurityLog(db, max_entries=5)
    for i in range(12):
        log.append(SecurityEventType.INVALID_CSMS_CERTIFICATE, 1000.0 + i, f"attempt {i}")
    assert len(log) == 5
    db.close()
    reopened = SecurityLog(open_state_db(tmp_path), max_entries=5)
    entries = reopened.entries()
    assert [e.tech_info for e in entries] == [f"attempt {i}" for i in range(7, 12)]
    assert [e.timestamp for e in reopened.entries(since=1008.0, until=1010.0)] == \
        [1008.0, 1009.0, 1010.0]


def test_tech_info_is_cut_to_the_schema_length(tmp_path: Path) -> None:
    log = SecurityLog(open_state_db(tmp_path))
    entry = log.append(SecurityEventType.INVALID_MESSAGES, 1.0, "x" * 1000)
    assert log.entries()[0].tech_info == entry.tech_info == "x" * 255


def test_bound_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SecurityLog(open_state_db(tmp_path), max_entries=0)
