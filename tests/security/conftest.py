"""Fixtures of the security tests: one test PKI per session (made with ``cryptography``)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.security.pki import (
    CLIENT_AUTH,
    CODE_SIGNING,
    DAY,
    NOW,
    SERVER_AUTH,
    Issued,
    issue,
    make_root,
    rsa_key,
)

STATION_ID = "CP001"
CPO_NAME = "Example CPO"


@dataclass
class Pki:
    """CPO root (CSMS root) with the CSMS server and a client certificate, an unrelated
    root, an expired server certificate, and a manufacturer hierarchy for firmware."""

    root: Issued
    server: Issued
    client: Issued
    other_root: Issued
    untrusted_server: Issued
    expired_server: Issued
    manufacturer_root: Issued
    signing_rsa: Issued
    signing_ec: Issued
    foreign_signing: Issued


@pytest.fixture(scope="session")
def pki() -> Pki:
    root = make_root("Example CPO Root CA")
    other_root = make_root("Unrelated Root CA")
    manufacturer_root = make_root("Example Manufacturer Root CA")
    return Pki(
        root=root,
        server=issue(root, "csms.example", ip="127.0.0.1", eku=SERVER_AUTH),
        client=issue(root, STATION_ID, o=CPO_NAME, eku=CLIENT_AUTH),
        other_root=other_root,
        untrusted_server=issue(other_root, "csms.example", ip="127.0.0.1", eku=SERVER_AUTH),
        expired_server=issue(root, "csms.example", ip="127.0.0.1", eku=SERVER_AUTH,
                             not_before=NOW - 30 * DAY, not_after=NOW - DAY),
        manufacturer_root=manufacturer_root,
        signing_rsa=issue(manufacturer_root, "Firmware Signing RSA", key=rsa_key(),
                          eku=CODE_SIGNING),
        signing_ec=issue(manufacturer_root, "Firmware Signing EC", eku=CODE_SIGNING),
        foreign_signing=issue(other_root, "Firmware Signing", key=rsa_key(),
                              eku=CODE_SIGNING),
    )
