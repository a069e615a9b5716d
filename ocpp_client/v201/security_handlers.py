"""The 2.0.1 handlers of Firmware management (L01–L03), Diagnostics (N01) and Security
(A02–A03, M03–M05): a mixin of :class:`~ocpp_client.v201.charge_point.ChargePoint201`, kept
apart from the core handlers. As there, ``@on`` answers at once and ``@after`` starts the
work once the CALLRESULT is out; the ports are :class:`~.firmware.Firmware201` and
:class:`~.security.Security201`, set by the adapter.
"""

from __future__ import annotations

from typing import Any

from ocpp.routing import after, on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from ocpp_client.v201.firmware import Firmware201
from ocpp_client.v201.security import Security201


class SecurityHandlers201:
    """UpdateFirmware, GetLog, SetNetworkProfile, CertificateSigned, InstallCertificate,
    GetInstalledCertificateIds, DeleteCertificate."""

    #: The firmware / diagnostics port (set by the adapter).
    firmware: Firmware201
    #: The security port (set by the adapter).
    security: Security201

    # -- Firmware management (L01–L03) -------------------------------------------------
    @on(Action.update_firmware)
    def on_update_firmware(self, request_id: int, firmware: dict[str, Any],
                           retries: int | None = None, retry_interval: int | None = None,
                           **_: Any) -> call_result.UpdateFirmware:
        return call_result.UpdateFirmware(status=self.firmware.update_firmware(
            request_id, firmware, retries, retry_interval))

    @after(Action.update_firmware)
    def after_update_firmware(self, **_: Any) -> None:
        self.firmware.after_update_firmware()

    # -- Diagnostics (N01) ---------------------------------------------------------------
    @on(Action.get_log)
    def on_get_log(self, log: dict[str, Any], log_type: str, request_id: int,
                   retries: int | None = None, retry_interval: int | None = None,
                   **_: Any) -> call_result.GetLog:
        status, filename = self.firmware.get_log(str(log_type), request_id, log, retries,
                                                 retry_interval)
        return call_result.GetLog(status=status, filename=filename)

    # -- Provisioning: SetNetworkProfile (B09) ---------------------------------------------
    @on(Action.set_network_profile)
    def on_set_network_profile(self, configuration_slot: int, connection_data: dict[str, Any],
                               **_: Any) -> call_result.SetNetworkProfile:
        return call_result.SetNetworkProfile(
            status=self.security.set_network_profile(configuration_slot, connection_data))

    # -- Security (A01–A03, M03–M05) -----------------------------------------------------
    @after(Action.set_variables)
    def after_set_variables(self, **_: Any) -> None:
        # A01: a new BasicAuthPassword is used at a reconnect once the answer is out.
        self.security.after_set_variables()

    @on(Action.certificate_signed)
    def on_certificate_signed(self, certificate_chain: str,
                              certificate_type: str | None = None,
                              **_: Any) -> call_result.CertificateSigned:
        return call_result.CertificateSigned(status=self.security.certificate_signed(
            certificate_chain, None if certificate_type is None else str(certificate_type)))

    @after(Action.certificate_signed)
    def after_certificate_signed(self, **_: Any) -> None:
        self.security.after_certificate_signed()

    @on(Action.install_certificate)
    def on_install_certificate(self, certificate_type: str, certificate: str,
                               **_: Any) -> call_result.InstallCertificate:
        return call_result.InstallCertificate(
            status=self.security.install_certificate(str(certificate_type), certificate))

    @on(Action.get_installed_certificate_ids)
    def on_get_installed_certificate_ids(self, certificate_type: list[str] | None = None,
                                         **_: Any) -> call_result.GetInstalledCertificateIds:
        status, chain = self.security.installed_ids(
            None if certificate_type is None else [str(t) for t in certificate_type])
        return call_result.GetInstalledCertificateIds(status=status,
                                                      certificate_hash_data_chain=chain)

    @on(Action.delete_certificate)
    def on_delete_certificate(self, certificate_hash_data: dict[str, str],
                              **_: Any) -> call_result.DeleteCertificate:
        return call_result.DeleteCertificate(
            status=self.security.delete_certificate(certificate_hash_data))
