"""Every authorization rule of OCPP 1.6 §3.5 / §5.4 / §5.9 / §5.15 as a scenario against a
real CSMS (DevCsms on loopback, behind a proxy that takes the charge point offline)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp.v16 import call

from evse.authorization import AuthorizationStatus
from evse.domain import StopCause, TransactionStarted, TransactionStopped
from tests.offline.conftest import Rig


def _iso(delta_s: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_s)).isoformat().replace("+00:00", "Z")


def _entry(tag: str, status: str | None = "Accepted", **info: Any) -> dict[str, Any]:
    if status is None:
        return {"idTag": tag}
    return {"idTag": tag, "idTagInfo": {"status": status, **info}}


async def _send_list(rig: Rig, version: int, kind: str, entries: list[dict[str, Any]]) -> str:
    answer = await rig.call(call.SendLocalList(list_version=version, update_type=kind,
                                               local_authorization_list=entries))
    return str(answer.status)


async def _version(rig: Rig) -> int:
    return int((await rig.call(call.GetLocalListVersion())).list_version)


async def _decide(rig: Rig, tag: str) -> AuthorizationStatus:
    return (await rig.adapter.authorize(tag)).status


A = AuthorizationStatus


async def test_send_local_list_versions_and_statuses(rig_factory: Any) -> None:
    rig: Rig = await rig_factory()
    assert await _version(rig) == 0  # no list installed
    assert await _send_list(rig, 1, "Full", [_entry("LIST-1")]) == "Accepted"
    assert await _version(rig) == 1
    # Differential with a version not above the installed one.
    assert await _send_list(rig, 1, "Differential", [_entry("LIST-2")]) == "VersionMismatch"
    assert await _send_list(rig, 2, "Differential",
                            [_entry("LIST-2", "Blocked"), _entry("LIST-1", None)]) == "Accepted"
    assert await _version(rig) == 2
    assert rig.adapter.local_list.get("LIST-1") is None  # removed: entry without idTagInfo
    # A Full update with an entry lacking idTagInfo is invalid: Failed, nothing changes.
    assert await _send_list(rig, 3, "Full", [_entry("LIST-3"), _entry("LIST-4", None)]) == \
        "Failed"
    assert await _version(rig) == 2 and rig.adapter.local_list.get("LIST-2") is not None
    # More entries than SendLocalListMaxLength (1000): Failed.
    many = [_entry(f"T{i:05d}") for i in range(1001)]
    assert await _send_list(rig, 4, "Full", many) == "Failed"
    # A Full update may lower the version; an empty list reports version 0.
    assert await _send_list(rig, 1, "Full", []) == "Accepted"
    assert await _version(rig) == 0
    # LocalAuthListEnabled false: not supported (-1, NotSupported).
    await rig.configure("LocalAuthListEnabled", "false")
    assert await _version(rig) == -1
    assert await _send_list(rig, 5, "Full", [_entry("LIST-1")]) == "NotSupported"
    keys = (await rig.call(call.GetConfiguration(key=["LocalAuthListMaxLength",
                                                      "SendLocalListMaxLength"])))
    assert {k["key"]: k["readonly"] for k in keys.configuration_key} == {
        "LocalAuthListMaxLength": True, "SendLocalListMaxLength": True}


async def test_local_list_decides_offline_with_expiry_and_status(rig_factory: Any) -> None:
    rig: Rig = await rig_factory()
    assert await _send_list(rig, 1, "Full", [
        _entry("LIST-OK", expiryDate=_iso(3600)),
        _entry("LIST-OLD", expiryDate=_iso(-60)),
        _entry("LIST-BLOCKED", "Blocked"),
    ]) == "Accepted"
    await rig.offline()
    assert await _decide(rig, "LIST-OK") is A.ACCEPTED
    assert await _decide(rig, "LIST-OLD") is A.EXPIRED
    assert await _decide(rig, "LIST-BLOCKED") is A.BLOCKED
    assert await _decide(rig, "UNKNOWN") is A.INVALID  # AllowOfflineTxForUnknownId false
    # LocalAuthorizeOffline false: the list is not used offline.
    rig.adapter.configuration.change("LocalAuthorizeOffline", "false")
    assert await _decide(rig, "LIST-OK") is A.INVALID
    # LocalAuthListEnabled false: the list is ignored.
    rig.adapter.configuration.change("LocalAuthorizeOffline", "true")
    rig.adapter.configuration.change("LocalAuthListEnabled", "false")
    assert await _decide(rig, "LIST-OK") is A.INVALID
    assert rig.csms.actions("Authorize") == []


async def test_local_pre_authorize_online(rig_factory: Any) -> None:
    rig: Rig = await rig_factory()
    assert await _send_list(rig, 1, "Full", [_entry("LIST-OK")]) == "Accepted"
    # LocalPreAuthorize false (default): online, the CSMS decides, even for listed idTags.
    assert await _decide(rig, "LIST-OK") is A.INVALID  # the CSMS does not know it
    assert [p["idTag"] for p in rig.csms.actions("Authorize")] == ["LIST-OK"]
    await rig.configure("LocalPreAuthorize", "true")
    assert await _decide(rig, "LIST-OK") is A.ACCEPTED
    assert len(rig.csms.actions("Authorize")) == 1  # no Authorize.req this time
    # An idTag on the list is not cached from the CSMS's answer.
    assert rig.adapter.cache.get("LIST-OK") is None
    # Cache + LocalPreAuthorize: a cached Accepted idTag starts without Authorize.req.
    assert await _decide(rig, "TAG-A") is A.ACCEPTED
    assert await _decide(rig, "TAG-A") is A.ACCEPTED
    assert [p["idTag"] for p in rig.csms.actions("Authorize")] == ["LIST-OK", "TAG-A"]


async def test_cache_offline_expiry_clear_and_disable(rig_factory: Any) -> None:
    rig: Rig = await rig_factory()
    rig.csms.tag_info["TAG-SOON"] = {"status": "Accepted", "expiryDate": _iso(30.0)}
    assert await _decide(rig, "TAG-A") is A.ACCEPTED
    assert await _decide(rig, "TAG-B") is A.ACCEPTED
    assert await _decide(rig, "TAG-SOON") is A.ACCEPTED
    assert await _decide(rig, "NOBODY") is A.INVALID  # cached as Invalid
    await rig.offline()
    assert await _decide(rig, "TAG-A") is A.ACCEPTED  # LocalAuthorizeOffline, cache
    assert await _decide(rig, "NOBODY") is A.INVALID
    rig.adapter.configuration.change("AllowOfflineTxForUnknownId", "true")
    assert await _decide(rig, "NOBODY") is A.INVALID  # known Invalid, not unknown
    assert await _decide(rig, "STRANGER") is A.ACCEPTED  # unknown: allowed offline
    rig.adapter.configuration.change("AllowOfflineTxForUnknownId", "false")
    assert await _decide(rig, "STRANGER") is A.INVALID
    # Expiry honoured (the CSMS said the idTag is valid for 30 s): still valid now, Expired
    # once the station's clock — the one every decision reads — has passed the expiryDate.
    # The clock moves as a CSMS time would move it (Clock.sync), not by waiting.
    clock = rig.station.clock
    assert await _decide(rig, "TAG-SOON") is A.ACCEPTED
    clock.sync(clock.now() + 31.0)
    assert await _decide(rig, "TAG-SOON") is A.EXPIRED
    # ClearCache (§5.4) empties it: TAG-A is unknown offline now.
    await rig.online()
    answer = await rig.call(call.ClearCache())
    assert answer.status == "Accepted"
    await rig.offline()
    assert await _decide(rig, "TAG-A") is A.INVALID
    # AuthorizationCacheEnabled false: answers are not cached, the cache is not used.
    await rig.online()
    await rig.configure("AuthorizationCacheEnabled", "false")
    assert await _decide(rig, "TAG-B") is A.ACCEPTED
    await rig.offline()
    assert await _decide(rig, "TAG-B") is A.INVALID


async def test_cache_is_lru_bounded(rig_factory: Any) -> None:
    rig: Rig = await rig_factory()
    cache = rig.adapter.cache
    cache.max_entries = 2
    for tag in ("TAG-A", "TAG-B"):
        assert await _decide(rig, tag) is A.ACCEPTED
    cache.get("TAG-A")  # TAG-A used more recently than TAG-B
    rig.csms.accept_tags.add("TAG-C")
    assert await _decide(rig, "TAG-C") is A.ACCEPTED
    assert cache.get("TAG-B") is None
    assert cache.get("TAG-A") is not None and cache.get("TAG-C") is not None


async def test_parent_id_tag_from_local_list_stops_the_groups_session(rig_factory: Any) -> None:
    rig: Rig = await rig_factory()
    assert await _send_list(rig, 1, "Full", [
        _entry("FLEET-1", parentIdTag="FLEET"), _entry("FLEET-2", parentIdTag="FLEET")]) == \
        "Accepted"
    await rig.offline()
    rig.sim.plug(1, 16.0, 3)
    await rig.station.present_card("FLEET-1")
    await rig.events.wait_for(lambda: any(isinstance(e, TransactionStarted)
                                          for e in rig.events.events))
    await rig.station.present_card("FLEET-2")  # same parentIdTag: stops it (§3.5.3)
    stopped = await rig.events.wait_for(lambda: [e for e in rig.events.events
                                                 if isinstance(e, TransactionStopped)])
    assert stopped[0].cause is StopCause.LOCAL_ID_TOKEN and stopped[0].id_tag == "FLEET-2"


async def _offline_session(rig: Rig, tag: str) -> None:
    rig.adapter.configuration.change("AllowOfflineTxForUnknownId", "true")
    await rig.offline()
    rig.sim.plug(1, 16.0, 3)
    await rig.station.present_card(tag)
    await rig.events.wait_for(lambda: "energy_transfer" in rig.events.statuses())


async def test_offline_start_rejected_by_csms_is_deauthorized(rig_factory: Any) -> None:
    rig: Rig = await rig_factory()
    await _offline_session(rig, "ROGUE")
    await rig.online()
    stop = (await rig.csms.wait_for(lambda: rig.csms.actions("StopTransaction")))[0]
    assert stop["reason"] == "DeAuthorized"
    tx = rig.csms.actions("StartTransaction")
    assert len(tx) == 1 and stop["transactionId"] == next(iter(
        rig.csms.transaction_ids.values()))
    # The StartTransaction.conf IdTagInfo went into the cache: offline, ROGUE is now known
    # Invalid and AllowOfflineTxForUnknownId no longer lets it in.
    await rig.offline()
    assert await _decide(rig, "ROGUE") is A.INVALID


async def test_offline_start_rejected_suspends_without_stop_on_invalid_id(
        rig_factory: Any) -> None:
    rig: Rig = await rig_factory(ocpp_keys="StopTransactionOnInvalidId = false")
    await _offline_session(rig, "ROGUE")
    await rig.online()
    await rig.csms.wait_for(lambda: rig.csms.actions("StartTransaction"))
    await rig.events.wait_for(lambda: rig.station.connectors[1].state
                              == "suspended_by_evse")
    assert rig.csms.actions("StopTransaction") == []
    assert rig.station.connectors[1].session is not None
    assert not rig.daemon.board.connectors[0].contactor.commanded_closed  # type: ignore[union-attr]
