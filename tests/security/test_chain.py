"""Chain verification to trusted roots gives the same answers on both paths: the library
verifier (cryptography ≥ 45) and the fallback path builder (cryptography 42, Yocto
scarthgap). Every case runs with the fallback forced, and with the library verifier when
the installed cryptography has it; the expectations are RFC 5280's, not the code's."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ocpp_client.security.chain import (
    LIBRARY_VERIFIER,
    MAX_INTERMEDIATES,
    ChainError,
    verify_chain,
)
from tests.security.conftest import Pki
from tests.security.pki import CODE_SIGNING, DAY, NOW, Issued, issue, make_root

HOUR = dt.timedelta(hours=1)

PATHS = [
    pytest.param(True, id="library", marks=pytest.mark.skipif(
        not LIBRARY_VERIFIER, reason="cryptography < 45 has no client verifier with "
                                     "extension policies")),
    pytest.param(False, id="fallback"),
]


def tampered(cert: x509.Certificate) -> x509.Certificate:
    """``cert`` with one bit of its signature flipped (still parses)."""
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the ECDSA signature's s integer, the last field of the DER
    return x509.load_der_x509_certificate(bytes(der))


@pytest.fixture(scope="module")
def hierarchy(pki: Pki) -> dict[str, Issued]:
    """Root → intermediate → leaf, plus certificates that must not chain."""
    root = pki.manufacturer_root
    intermediate = issue(root, "Signing CA", ca=True)
    return {
        "intermediate": intermediate,
        "leaf": issue(intermediate, "Signing 1", eku=CODE_SIGNING),
        "direct": issue(root, "Signing 2", eku=CODE_SIGNING),
        "not_ca": (not_ca := issue(root, "Not a CA", eku=CODE_SIGNING)),
        "under_not_ca": issue(not_ca, "Signing 3", eku=CODE_SIGNING),
        "no_cert_sign": (no_cert_sign := issue(root, "CRL only CA", ca=True,
                                               key_cert_sign=False)),
        "under_no_cert_sign": issue(no_cert_sign, "Signing 4", eku=CODE_SIGNING),
        "expired_ca": (expired_ca := issue(root, "Old CA", ca=True,
                                           not_before=NOW - 400 * DAY,
                                           not_after=NOW - DAY)),
        "under_expired_ca": issue(expired_ca, "Signing 5", eku=CODE_SIGNING,
                                  not_before=NOW - 300 * DAY),
    }


@pytest.mark.parametrize("library", PATHS)
def test_valid_chains_are_accepted(pki: Pki, hierarchy: dict[str, Issued],
                                   library: bool) -> None:
    root = pki.manufacturer_root.cert
    leaf, intermediate = hierarchy["leaf"].cert, hierarchy["intermediate"].cert
    assert verify_chain(leaf, [intermediate], [root], NOW, use_library=library) == \
        [leaf, intermediate, root]
    direct = hierarchy["direct"].cert
    assert verify_chain(direct, [], [pki.other_root.cert, root], NOW,
                        use_library=library) == [direct, root]
    # unrelated certificates among the intermediates do not get in the way
    extra = [pki.signing_ec.cert, hierarchy["not_ca"].cert, intermediate]
    assert verify_chain(leaf, extra, [root], NOW, use_library=library)[-1] == root


@pytest.mark.parametrize("library", PATHS)
def test_other_root_is_refused(pki: Pki, hierarchy: dict[str, Issued],
                               library: bool) -> None:
    with pytest.raises(ChainError):
        verify_chain(pki.foreign_signing.cert, [], [pki.manufacturer_root.cert], NOW,
                     use_library=library)
    with pytest.raises(ChainError):
        verify_chain(hierarchy["leaf"].cert, [hierarchy["intermediate"].cert],
                     [pki.other_root.cert], NOW, use_library=library)
    with pytest.raises(ChainError):  # the intermediate is needed and not given
        verify_chain(hierarchy["leaf"].cert, [], [pki.manufacturer_root.cert], NOW,
                     use_library=library)
    with pytest.raises(ChainError):
        verify_chain(hierarchy["direct"].cert, [], [], NOW, use_library=library)


@pytest.mark.parametrize("library", PATHS)
@pytest.mark.parametrize("window", [(NOW - DAY, NOW - HOUR), (NOW + DAY, NOW + 90 * DAY)],
                         ids=["expired", "not-yet-valid"])
def test_leaf_outside_validity_is_refused(pki: Pki, library: bool,
                                          window: tuple[dt.datetime, dt.datetime]) -> None:
    root = pki.manufacturer_root
    leaf = issue(root, "Signing 8", eku=CODE_SIGNING, not_before=window[0],
                 not_after=window[1])
    with pytest.raises(ChainError):
        verify_chain(leaf.cert, [], [root.cert], NOW, use_library=library)
    # the same certificate inside its window is fine (the refusal is the time's)
    at = window[0] + HOUR / 2  # (the root is valid from NOW - 1 d)
    assert verify_chain(leaf.cert, [], [root.cert], at, use_library=library)[-1] == root.cert


@pytest.mark.parametrize("library", PATHS)
def test_expired_root_is_refused(library: bool) -> None:
    root = make_root("Old Root", not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    leaf = issue(root, "Signing 9", eku=CODE_SIGNING, not_before=NOW - 300 * DAY,
                 not_after=NOW + 90 * DAY)
    with pytest.raises(ChainError):
        verify_chain(leaf.cert, [], [root.cert], NOW, use_library=library)


@pytest.mark.parametrize("library", PATHS)
@pytest.mark.parametrize("case", ["under_not_ca", "under_no_cert_sign", "under_expired_ca"])
def test_issuer_that_may_not_sign_is_refused(pki: Pki, hierarchy: dict[str, Issued],
                                             library: bool, case: str) -> None:
    issuer = {"under_not_ca": "not_ca", "under_no_cert_sign": "no_cert_sign",
              "under_expired_ca": "expired_ca"}[case]
    with pytest.raises(ChainError):
        verify_chain(hierarchy[case].cert, [hierarchy[issuer].cert],
                     [pki.manufacturer_root.cert], NOW, use_library=library)


@pytest.mark.parametrize("library", PATHS)
def test_tampered_signature_is_refused(pki: Pki, hierarchy: dict[str, Issued],
                                       library: bool) -> None:
    root = pki.manufacturer_root.cert
    leaf, intermediate = hierarchy["leaf"].cert, hierarchy["intermediate"].cert
    with pytest.raises(ChainError):
        verify_chain(tampered(leaf), [intermediate], [root], NOW, use_library=library)
    with pytest.raises(ChainError):
        verify_chain(leaf, [tampered(intermediate)], [root], NOW, use_library=library)


@pytest.mark.parametrize("library", PATHS)
def test_path_length_constraint_is_honoured(library: bool) -> None:
    root = make_root("Path Length 1 Root", path_length=1)
    first = issue(root, "First CA", ca=True)
    second = issue(first, "Second CA", ca=True)
    one_down = issue(first, "Signing 6", eku=CODE_SIGNING)
    two_down = issue(second, "Signing 7", eku=CODE_SIGNING)
    assert verify_chain(one_down.cert, [first.cert], [root.cert], NOW,
                        use_library=library) == [one_down.cert, first.cert, root.cert]
    with pytest.raises(ChainError):  # two intermediates under a pathLenConstraint of 1
        verify_chain(two_down.cert, [second.cert, first.cert], [root.cert], NOW,
                     use_library=library)
    # an intermediate's own constraint counts as well
    strict = issue(root, "Path Length 0 CA", ca=True, path_length=0)
    under_strict = issue(strict, "Third CA", ca=True)
    leaf = issue(under_strict, "Signing 8", eku=CODE_SIGNING)
    with pytest.raises(ChainError):
        verify_chain(leaf.cert, [under_strict.cert, strict.cert], [root.cert], NOW,
                     use_library=library)


def test_fallback_bounds_the_depth(pki: Pki) -> None:
    """At most MAX_INTERMEDIATES (8) intermediates, as the library's default depth."""
    root = make_root("Deep Root")
    cas, issuer = [], root
    for n in range(MAX_INTERMEDIATES + 1):
        issuer = issue(issuer, f"Depth {n} CA", ca=True)
        cas.append(issuer.cert)
    # a CA at depth 8 has 7 intermediates above it (fine); a leaf under depth 9 has 9
    assert len(verify_chain(cas[-2], cas[:-2], [root.cert], NOW, use_library=False)) == 9
    leaf = issue(issuer, "Too Deep", eku=CODE_SIGNING)
    with pytest.raises(ChainError):
        verify_chain(leaf.cert, cas, [root.cert], NOW, use_library=False)


def test_fallback_stops_on_issuer_loops(pki: Pki) -> None:
    """Two CAs that name each other as issuer, neither reaching the root: refused, and
    the search ends (each certificate at most once per path, bounded depth)."""
    a_root, b_root = make_root("Loop A"), make_root("Loop B")
    # "Loop A" certified by B's key and "Loop B" by A's key: a two-certificate cycle
    a_by_b = issue(b_root, "Loop A", ca=True, key=a_root.key)
    b_by_a = issue(a_root, "Loop B", ca=True, key=b_root.key)
    leaf = issue(a_root, "Looped leaf", eku=CODE_SIGNING)
    with pytest.raises(ChainError):
        verify_chain(leaf.cert, [a_by_b.cert, b_by_a.cert] * 10,
                     [pki.manufacturer_root.cert], NOW, use_library=False)
    # the same loop certificates do not spoil a real path
    assert verify_chain(leaf.cert, [a_by_b.cert, b_by_a.cert], [b_root.cert], NOW,
                        use_library=False) == [leaf.cert, a_by_b.cert, b_root.cert]
