"""Security event types (1.6 security whitepaper ed. 3 Appendix 1 "Security events";
OCPP 2.0.1 Appendices "Security events").

The event is the station's own vocabulary; each member carries both specifications'
spellings, which differ only for the CSMS-related three (1.6 says "CentralSystem", 2.0.1
says "Csms"), and whether the event is *critical*: critical events are pushed to the CSMS
with SecurityEventNotification, every event goes to the local security log.
"""

from __future__ import annotations

import enum


class SecurityEventType(enum.Enum):
    """A security event; the value is the neutral (OCPP 2.0.1) name."""

    FIRMWARE_UPDATED = "FirmwareUpdated"
    FAILED_TO_AUTHENTICATE_AT_CSMS = "FailedToAuthenticateAtCsms"
    CSMS_FAILED_TO_AUTHENTICATE = "CsmsFailedToAuthenticate"
    SETTING_SYSTEM_TIME = "SettingSystemTime"
    STARTUP_OF_THE_DEVICE = "StartupOfTheDevice"
    RESET_OR_REBOOT = "ResetOrReboot"
    SECURITY_LOG_WAS_CLEARED = "SecurityLogWasCleared"
    RECONFIGURATION_OF_SECURITY_PARAMETERS = "ReconfigurationOfSecurityParameters"
    MEMORY_EXHAUSTION = "MemoryExhaustion"
    INVALID_MESSAGES = "InvalidMessages"
    ATTEMPTED_REPLAY_ATTACKS = "AttemptedReplayAttacks"
    TAMPER_DETECTION_ACTIVATED = "TamperDetectionActivated"
    INVALID_FIRMWARE_SIGNATURE = "InvalidFirmwareSignature"
    INVALID_FIRMWARE_SIGNING_CERTIFICATE = "InvalidFirmwareSigningCertificate"
    INVALID_CSMS_CERTIFICATE = "InvalidCsmsCertificate"
    INVALID_CHARGE_POINT_CERTIFICATE = "InvalidChargePointCertificate"
    INVALID_TLS_VERSION = "InvalidTLSVersion"
    INVALID_TLS_CIPHER_SUITE = "InvalidTLSCipherSuite"

    @property
    def v16_name(self) -> str:
        """The 1.6 security whitepaper's spelling (SecurityEventNotification.req type)."""
        return _V16_NAMES.get(self, self.value)

    @property
    def v201_name(self) -> str:
        """The OCPP 2.0.1 spelling (SecurityEventNotificationRequest type)."""
        return self.value

    @property
    def critical(self) -> bool:
        """True when the event must be pushed to the CSMS (whitepaper Appendix 1)."""
        return self in _CRITICAL


_V16_NAMES = {
    SecurityEventType.FAILED_TO_AUTHENTICATE_AT_CSMS: "FailedToAuthenticateAtCentralSystem",
    SecurityEventType.CSMS_FAILED_TO_AUTHENTICATE: "CentralSystemFailedToAuthenticate",
    SecurityEventType.INVALID_CSMS_CERTIFICATE: "InvalidCentralSystemCertificate",
}

_CRITICAL = frozenset({
    SecurityEventType.FIRMWARE_UPDATED,
    SecurityEventType.SETTING_SYSTEM_TIME,
    SecurityEventType.STARTUP_OF_THE_DEVICE,
    SecurityEventType.RESET_OR_REBOOT,
    SecurityEventType.SECURITY_LOG_WAS_CLEARED,
    SecurityEventType.RECONFIGURATION_OF_SECURITY_PARAMETERS,
    SecurityEventType.MEMORY_EXHAUSTION,
    SecurityEventType.TAMPER_DETECTION_ACTIVATED,
})
