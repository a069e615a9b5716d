"""The TLS client context for the CSMS link (security profiles 2 and 3; 1.6 security
whitepaper ed. 3, "TLS"; OCPP 2.0.1 A00.FR.3xx/4xx).

- TLS 1.2 or higher only (a server offering less is refused: InvalidTLSVersion);
- TLS 1.2 cipher suites limited to ECDHE/RSA with AES-GCM or ChaCha20 (the whitepaper's
  required TLS_ECDHE_ECDSA_WITH_AES_{128,256}_GCM_* and TLS_RSA_WITH_AES_{128,256}_GCM_*
  included); TLS 1.3 suites are OpenSSL's (all AEAD);
- the server certificate is verified against the CSMS roots of the certificate store —
  not the system store unless ``use_system_store`` is configured — and must name the host
  of the URL; a partial chain is accepted so that a CSMS root installed under
  AdditionalRootCertificateCheck (signed by the previous root) is a trust anchor itself;
- profile 3 presents the charge point certificate.
"""

from __future__ import annotations

import ssl

from ocpp_client.security.charge_point_certificate import TlsFiles
from ocpp_client.security.secret_files import check_secret_file

#: OpenSSL cipher string for TLS 1.2.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:RSA+AESGCM:!aNULL:!eNULL:!MD5:!DSS"


def csms_tls_context(csms_roots_pem: bytes, *, client: TlsFiles | None = None,
                     use_system_store: bool = False) -> ssl.SSLContext:
    """A client ``SSLContext`` for ``wss://`` to the CSMS.

    Args:
        csms_roots_pem: the CSMS roots (PEM, concatenated).
        client: the charge point certificate + key (security profile 3), or None.
        use_system_store: also trust the operating system's roots (only when configured).

    Raises:
        ValueError: no CSMS root at all (and no system store), or a root is not PEM.
        InsecureFileError: the client key file is accessible to group/others.
        ssl.SSLError / OSError: the client certificate or key cannot be loaded.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if csms_roots_pem.strip():
        try:
            ctx.load_verify_locations(cadata=csms_roots_pem.decode("ascii"))
        except ssl.SSLError as exc:
            raise ValueError(f"CSMS roots are not valid PEM certificates: {exc}") from exc
    elif not use_system_store:
        raise ValueError("no CSMS root certificate: set [security] csms_root_ca")
    if use_system_store:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if client is not None:
        check_secret_file(client.keyfile)
        ctx.load_cert_chain(client.certfile, client.keyfile)
    return ctx
