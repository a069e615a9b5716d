"""Signed firmware (SignedUpdateFirmware): a valid image is SignatureVerified; a tampered
image, a wrong signature or a signing certificate of another root never is."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocpp_client.security.events import SecurityEventType
from ocpp_client.security.firmware_signature import (
    CHUNK_BYTES,
    FirmwareVerification,
    verify_firmware,
)
from tests.security.conftest import Pki
from tests.security.pki import CODE_SIGNING, DAY, NOW, Issued, issue, sign

VERIFIED = FirmwareVerification.SIGNATURE_VERIFIED
BAD_SIGNATURE = FirmwareVerification.INVALID_SIGNATURE
BAD_CERTIFICATE = FirmwareVerification.INVALID_CERTIFICATE


@pytest.fixture
def image(tmp_path: Path) -> Path:
    # larger than one read chunk, so the streamed hash spans several reads
    path = tmp_path / "firmware.swu"
    path.write_bytes(bytes(range(256)) * (CHUNK_BYTES // 256 * 2 + 7))
    return path


@pytest.mark.parametrize("signer", ["signing_rsa", "signing_ec"])
def test_valid_image_is_verified(pki: Pki, image: Path, signer: str) -> None:
    s: Issued = getattr(pki, signer)
    result = verify_firmware(image, s.cert_pem.decode(), sign(s, image.read_bytes()),
                             [pki.manufacturer_root.cert], NOW)
    assert result is VERIFIED
    assert result.security_event is None


@pytest.mark.parametrize("signer", ["signing_rsa", "signing_ec"])
def test_bit_flipped_image_is_refused(pki: Pki, image: Path, signer: str) -> None:
    s: Issued = getattr(pki, signer)
    signature = sign(s, image.read_bytes())
    data = bytearray(image.read_bytes())
    data[CHUNK_BYTES + 12345] ^= 0x04
    image.write_bytes(bytes(data))
    result = verify_firmware(image, s.cert_pem.decode(), signature,
                             [pki.manufacturer_root.cert], NOW)
    assert result is BAD_SIGNATURE
    assert result.security_event is SecurityEventType.INVALID_FIRMWARE_SIGNATURE


def test_wrong_signature_is_refused(pki: Pki, image: Path) -> None:
    s = pki.signing_rsa
    roots = [pki.manufacturer_root.cert]
    other_data = sign(s, b"another image")
    by_other_key = sign(pki.signing_ec, image.read_bytes())
    for signature in (other_data, by_other_key, "not base64!", ""):
        assert verify_firmware(image, s.cert_pem.decode(), signature, roots, NOW) \
            is BAD_SIGNATURE, signature


def test_certificate_from_another_root_is_refused(pki: Pki, image: Path) -> None:
    s = pki.foreign_signing
    result = verify_firmware(image, s.cert_pem.decode(), sign(s, image.read_bytes()),
                             [pki.manufacturer_root.cert], NOW)
    assert result is BAD_CERTIFICATE
    assert result.security_event is SecurityEventType.INVALID_FIRMWARE_SIGNING_CERTIFICATE


def test_expired_or_missing_certificate_is_refused(pki: Pki, image: Path) -> None:
    expired = issue(pki.manufacturer_root, "Old Signing", eku=CODE_SIGNING,
                    not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    data = image.read_bytes()
    roots = [pki.manufacturer_root.cert]
    assert verify_firmware(image, expired.cert_pem.decode(), sign(expired, data), roots,
                           NOW) is BAD_CERTIFICATE
    s = pki.signing_rsa
    assert verify_firmware(image, "garbage", sign(s, data), roots, NOW) is BAD_CERTIFICATE
    assert verify_firmware(image, s.cert_pem.decode(), sign(s, data), [], NOW) \
        is BAD_CERTIFICATE  # no ManufacturerRootCertificate installed


def test_signing_certificate_via_intermediate(pki: Pki, image: Path) -> None:
    intermediate = issue(pki.manufacturer_root, "Manufacturer Signing CA", ca=True)
    leaf = issue(intermediate, "Firmware Signing 2", eku=CODE_SIGNING)
    pem = (leaf.cert_pem + intermediate.cert_pem).decode()
    assert verify_firmware(image, pem, sign(leaf, image.read_bytes()),
                           [pki.manufacturer_root.cert], NOW) is VERIFIED
