"""Security events: the whitepaper's names, criticality, and the bounded local security
log in a real SQLite state database."""

from __future__ import annotations

from pathlib import Path

import pytest

from evse.state_db import open_state_db
from ocpp_client.queue import Outbox
from ocpp_client.security.events import SecurityEventType
from ocpp_client.security.security_log import SecurityLog, SecurityLogEntry

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


def test_critical_event_and_its_notification_are_durable_together(tmp_path: Path) -> None:
    db = open_state_db(tmp_path)
    log = SecurityLog(db)
    outbox = Outbox(db)

    def queue(entry: SecurityLogEntry) -> None:
        outbox.put("SecurityEventNotification",
                   {"type": entry.type.v16_name, "techInfo": entry.tech_info}, 0, None)

    log.append(SecurityEventType.INVALID_TLS_VERSION, 1.0, "TLS 1.1 only", on_critical=queue)
    log.append(SecurityEventType.STARTUP_OF_THE_DEVICE, 2.0, None, on_critical=queue)
    assert len(log) == 2
    assert len(outbox) == 1  # only the critical one is pushed to the CSMS
    message = outbox.peek()
    assert message is not None and message.action == "SecurityEventNotification"

    def broken(entry: SecurityLogEntry) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        log.append(SecurityEventType.TAMPER_DETECTION_ACTIVATED, 3.0, on_critical=broken)
    assert len(log) == 2 and len(outbox) == 1  # neither row was kept


def test_export_for_get_log(tmp_path: Path) -> None:
    log = SecurityLog(open_state_db(tmp_path))
    log.append(SecurityEventType.INVALID_CSMS_CERTIFICATE, 0.0, "untrusted\nissuer")
    log.append(SecurityEventType.RESET_OR_REBOOT, 86400.0)
    out = tmp_path / "security.log"
    assert log.export(out, since=0.0, until=0.0) == 1
    assert out.read_text() == \
        "1970-01-01T00:00:00+00:00\tInvalidCentralSystemCertificate\tuntrusted issuer\n"
