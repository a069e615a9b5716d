"""OCPP 2.0.1 Smart Charging (K01–K10) on the protocol-neutral engine (``station.smart``).

Written once, mapped twice: the profile checks and conversions are
:mod:`ocpp_client.v16.smart_charging`'s (a 2.0.1 ChargingProfileType is turned into the 1.6
shape it extends), the limits reach the pilot through ``station.limits`` exactly as for 1.6.
What 2.0.1 adds lives here:

- ChargingProfileType (``id``, purposes ChargingStationMaxProfile / TxDefaultProfile /
  TxProfile, ``chargingSchedule`` as a list, ``transactionId`` a string) ↔ engine profile;
- SetChargingProfile (K01), GetChargingProfiles → ReportChargingProfiles in parts (K09),
  ClearChargingProfile (K10), GetCompositeSchedule (K08), the chargingProfile of a
  RequestStartTransaction (K05 / F01);
- the limits of SmartChargingCtrlr (ProfileStackLevel, RateUnit, PeriodsPerSchedule,
  Entries(ChargingProfiles) maxLimit) and its Enabled switch;
- :class:`SmartChargingHandlers201`, the ``@on`` / ``@after`` handlers mixed into
  :class:`~ocpp_client.v201.charge_point.ChargePoint201`.

The engine knows a transaction by its local session id; a 2.0.1 transactionId ↔ session id
goes through :class:`~ocpp_client.v201.transactions.TransactionStore`.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

from ocpp.routing import after, on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

import ocpp_client.v201.mapping as mapping
from evse.charging_profiles import (
    STATION_EVSE_ID,
    ChargingProfile,
    ProfileError,
    ProfilePurpose,
    RateUnit,
)
from evse.domain import DomainEvent, IdToken, TransactionStarted
from evse.station import Station
from ocpp_client.v16.smart_charging import (
    ACCEPTED,
    REJECTED,
    UNKNOWN,
    Decision,
    SmartChargingLimits,
    check_limits,
    clear_charging_profile,
    get_composite_schedule,
    profile_from_payload,
    profile_to_payload,
)
from ocpp_client.v201.device_model import DeviceModel
from ocpp_client.v201.standard_components import MAX_CHARGING_PROFILES
from ocpp_client.v201.transactions import TransactionStore

log = logging.getLogger(__name__)

#: ChargingLimitSourceEnumType of every profile here: they all come from the CSMS (K09).
LIMIT_SOURCE = "CSO"

#: Beyond EVConnectionTimeOut, how long a remote start's authorization may take before its
#: transaction starts, s (as for 1.6).
REMOTE_START_GRACE_S = 60.0


def _rejected(reason: str) -> Decision:
    return Decision(REJECTED, None, reason)


def profile_from_payload201(payload: Mapping[str, Any], evse_id: int) -> ChargingProfile:
    """A 2.0.1 ChargingProfileType (snake_case, as the ``ocpp`` library hands it) for
    ``evse_id`` → engine profile, without its transactionId (bind it to the session).

    Only one chargingSchedule per profile: more (ISO 15118 alternatives, K15) are refused.

    Raises:
        ProfileError: a missing or malformed field, an unknown purpose, several schedules.
    """
    try:
        schedules = list(payload["charging_schedule"])
        purpose = str(payload["charging_profile_purpose"])
        if purpose not in mapping.PURPOSE_16:
            raise ProfileError(f"chargingProfilePurpose {purpose} is not accepted from the CSMS")
        if len(schedules) != 1:
            raise ProfileError(f"{len(schedules)} chargingSchedules: one is supported")
        schedule = {k: v for k, v in schedules[0].items()
                    if k not in ("id", "sales_tariff", "custom_data")}
        schedule["charging_schedule_period"] = [
            {k: v for k, v in q.items() if k not in ("phase_to_use", "custom_data")}
            for q in schedule.get("charging_schedule_period", [])]
        shape16 = {
            "charging_profile_id": payload["id"],
            "stack_level": payload["stack_level"],
            "charging_profile_purpose": mapping.PURPOSE_16[purpose],
            "charging_profile_kind": payload["charging_profile_kind"],
            "charging_schedule": schedule,
            **{k: payload[k] for k in ("recurrency_kind", "valid_from", "valid_to")
               if payload.get(k) is not None},
        }
    except KeyError as missing:
        raise ProfileError(f"missing field {missing.args[0]}") from None
    except (TypeError, AttributeError) as wrong:
        raise ProfileError(f"malformed charging profile: {wrong}") from None
    return profile_from_payload(shape16, evse_id)


def profile_to_payload201(profile: ChargingProfile, transaction_id: str | None
                          ) -> dict[str, Any]:
    """Engine profile → 2.0.1 ChargingProfileType (camelCase), its schedule id = its id;
    ``transaction_id``: the 2.0.1 transactionId of a TxProfile."""
    p16 = profile_to_payload(dataclasses.replace(profile, transaction_id=None))
    out: dict[str, Any] = {
        "id": profile.profile_id,
        "stackLevel": profile.stack_level,
        "chargingProfilePurpose": mapping.PROFILE_PURPOSE_NAME[profile.purpose],
        "chargingProfileKind": p16["chargingProfileKind"],
        "chargingSchedule": [{"id": profile.profile_id, **p16["chargingSchedule"]}],
    }
    for key in ("recurrencyKind", "validFrom", "validTo"):
        if key in p16:
            out[key] = p16[key]
    if transaction_id is not None:
        out["transactionId"] = transaction_id
    return out


class SmartCharging201:
    """The 2.0.1 Smart Charging commands against the Station's engine.

    Args:
        station: the core (``station.smart``, its EVSEs, the station limit).
        model: the device model (SmartChargingCtrlr).
        store: 2.0.1 transactionId ↔ local session.
    """

    def __init__(self, station: Station, model: DeviceModel, store: TransactionStore) -> None:
        self.station = station
        self.engine = station.smart
        self.model = model
        self.store = store
        #: Profiles of accepted RequestStartTransactions, waiting for their transaction:
        #: (idToken value, EVSE id or None, profile, requested at: UTC epoch s).
        self._remote: list[tuple[str, int | None, ChargingProfile, float]] = []
        station.subscribe(self.on_event)

    # -- device model --------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """SmartChargingCtrlr.Enabled (false: every profile is Rejected)."""
        try:
            return self.model.get_bool("SmartChargingCtrlr", "Enabled")
        except KeyError:
            return False

    def limits(self) -> SmartChargingLimits:
        """ProfileStackLevel, RateUnit, PeriodsPerSchedule and the installed maximum."""
        m = self.model
        units = {RateUnit(u.strip()) for u in (m.get("SmartChargingCtrlr", "RateUnit") or "")
                 .split(",") if u.strip() in ("A", "W")}
        return SmartChargingLimits(m.get_int("SmartChargingCtrlr", "ProfileStackLevel"),
                                   frozenset(units),
                                   m.get_int("SmartChargingCtrlr", "PeriodsPerSchedule"),
                                   MAX_CHARGING_PROFILES)

    def entries(self) -> int:
        """Profiles installed now (SmartChargingCtrlr.Entries(ChargingProfiles))."""
        return len(self.engine.store)

    def _install(self, profile: ChargingProfile) -> bool:
        try:
            self.engine.install(profile)
        except (ProfileError, sqlite3.Error) as exc:
            log.error("charging profile %d not installed: %s", profile.profile_id, exc)
            return False
        return True

    def _decide(self, evse_id: int, payload: Mapping[str, Any]) -> Decision:
        if not self.enabled:
            return _rejected("SmartChargingCtrlr.Enabled is false")
        if evse_id != STATION_EVSE_ID and evse_id not in self.station.evses:
            return _rejected(f"unknown evseId {evse_id}")
        try:
            profile = profile_from_payload201(payload, evse_id)
        except ProfileError as error:
            return _rejected(str(error))
        try:  # expired profiles do not count against the installed maximum
            self.engine.drop_expired()
        except sqlite3.Error as exc:
            log.error("expired charging profiles not dropped: %s", exc)
        reason = check_limits(profile, self.limits(), self.engine.store.all())
        return _rejected(reason) if reason else Decision(ACCEPTED, profile)

    # -- SetChargingProfile (K01) ---------------------------------------------------------
    def set_charging_profile(self, evse_id: int, charging_profile: Mapping[str, Any]
                             ) -> Decision:
        """Decide and install (K01): ChargingStationMaxProfile only on evseId 0 (K01.FR.38);
        a TxProfile only on an EVSE (K01.FR.16) naming the transaction open there
        (K01.FR.03, K01.FR.09) that already delivers energy, and bound to it."""
        decision = self._decide(evse_id, charging_profile)
        profile = decision.profile
        if profile is None:
            log.info("SetChargingProfile on EVSE %d rejected: %s", evse_id, decision.reason)
            return decision
        if profile.purpose is ProfilePurpose.STATION_MAXIMUM and evse_id != STATION_EVSE_ID:
            return _rejected("ChargingStationMaxProfile on an EVSE")
        if profile.purpose is ProfilePurpose.TX:
            tx_id = charging_profile.get("transaction_id")
            if evse_id == STATION_EVSE_ID or tx_id is None:
                return _rejected("TxProfile without an EVSE and a transactionId")
            tx = self.store.by_id(str(tx_id))
            if tx is None or tx.evse_id != evse_id:
                return _rejected(f"no transaction {tx_id} on EVSE {evse_id}")
            if tx.session_id is None:
                return _rejected(f"transaction {tx_id} delivers no energy yet")
            profile = profile.with_transaction(str(tx.session_id))
        elif charging_profile.get("transaction_id") is not None:
            return _rejected("transactionId on a profile that is not a TxProfile")
        # K01.FR.39: another id at the same purpose and stack level (and transaction) is a
        # conflict in 2.0.1, not a replacement as in 1.6.
        clash = [p for p in self.engine.store.all()
                 if p.profile_id != profile.profile_id and p.evse_id == profile.evse_id
                 and p.purpose is profile.purpose and p.stack_level == profile.stack_level
                 and p.transaction_id == profile.transaction_id]
        if clash:
            return _rejected(f"profile {clash[0].profile_id} has the same purpose and "
                             f"stackLevel on EVSE {evse_id}")
        if not self._install(profile):
            return _rejected("not stored")
        return Decision(ACCEPTED, profile)

    # -- GetChargingProfiles (K09) --------------------------------------------------------
    def reports(self, request_id: int, evse_id: int | None,
                criterion: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The ReportChargingProfiles payloads (camelCase) answering a GetChargingProfiles,
        one per EVSE, ``tbc`` on all but the last; empty: answer NoProfiles (K09.FR.01).

        The criterion's fields all must match; chargingLimitSource other than CSO matches
        nothing (every profile here came from the CSMS)."""
        purpose = criterion.get("charging_profile_purpose")
        ids = criterion.get("charging_profile_id")
        sources = criterion.get("charging_limit_source")
        stack = criterion.get("stack_level")
        if sources is not None and LIMIT_SOURCE not in sources:
            return []
        chosen = [
            p for p in self.engine.store.all()
            if (evse_id is None or p.evse_id == evse_id)
            and (purpose is None or mapping.PROFILE_PURPOSE.get(str(purpose)) is p.purpose)
            and (stack is None or p.stack_level == stack)
            and (ids is None or p.profile_id in ids)]
        by_evse: dict[int, list[dict[str, Any]]] = {}
        for p in sorted(chosen, key=lambda p: (p.evse_id, p.profile_id)):
            tx_id = (None if p.transaction_id is None
                     else self.store.transaction_id_of(int(p.transaction_id)))
            by_evse.setdefault(p.evse_id, []).append(profile_to_payload201(p, tx_id))
        out = [{"requestId": request_id, "chargingLimitSource": LIMIT_SOURCE, "evseId": e,
                "chargingProfile": profiles, "tbc": True}
               for e, profiles in by_evse.items()]
        if out:
            out[-1]["tbc"] = False
        return out

    # -- ClearChargingProfile (K10) -------------------------------------------------------
    def clear_charging_profile(self, charging_profile_id: int | None,
                               criteria: Mapping[str, Any] | None) -> str:
        """"Accepted" (something removed) or "Unknown"."""
        c = criteria or {}
        purpose = c.get("charging_profile_purpose")
        if purpose is not None and str(purpose) not in mapping.PURPOSE_16:
            return UNKNOWN
        try:
            return clear_charging_profile(
                self.engine, charging_profile_id, c.get("evse_id"),
                None if purpose is None else mapping.PURPOSE_16[str(purpose)],
                c.get("stack_level"))
        except sqlite3.Error as exc:
            log.error("ClearChargingProfile: %s", exc)
            return UNKNOWN

    # -- GetCompositeSchedule (K08) -------------------------------------------------------
    def get_composite_schedule(self, duration: int, evse_id: int,
                               charging_rate_unit: str | None) -> dict[str, Any]:
        """The GetCompositeSchedule response (camelCase); evseId 0 = the station."""
        if evse_id != STATION_EVSE_ID and evse_id not in self.station.evses:
            return {"status": REJECTED, "statusInfo": {"reasonCode": "UnknownEVSE"}}
        ceiling = self.station.station_limit_a
        if evse_id != STATION_EVSE_ID:
            ceiling = min(ceiling, self.station.evses[evse_id].iec.max_current_a)
        answer = get_composite_schedule(
            self.engine, evse_id, int(duration), charging_rate_unit,
            number_of_connectors=max(evse_id, 1), ceiling_a=ceiling, limits=self.limits())
        if answer["status"] != ACCEPTED:
            return {"status": REJECTED}
        s = answer["chargingSchedule"]
        return {"status": ACCEPTED, "schedule": {
            "evseId": evse_id, "duration": s["duration"], "scheduleStart": s["startSchedule"],
            "chargingRateUnit": s["chargingRateUnit"],
            "chargingSchedulePeriod": s["chargingSchedulePeriod"]}}

    # -- RequestStartTransaction's chargingProfile (F01, K05) ------------------------------
    def check_remote_start(self, id_token: IdToken, evse_id: int | None,
                           charging_profile: Mapping[str, Any] | None) -> bool:
        """False when the request must be Rejected for its chargingProfile: not a TxProfile
        (F01.FR.12), with a transactionId, invalid, beyond a limit. An accepted profile
        waits for the transaction this request starts (:meth:`on_event`)."""
        if charging_profile is None:
            return True
        decision = self._decide(1 if evse_id is None else evse_id, charging_profile)
        if decision.profile is None:
            log.info("RequestStartTransaction rejected for its chargingProfile: %s",
                     decision.reason)
            return False
        if (decision.profile.purpose is not ProfilePurpose.TX
                or charging_profile.get("transaction_id") is not None):
            log.info("RequestStartTransaction rejected: its chargingProfile must be a "
                     "TxProfile without transactionId")
            return False
        self._remote.append((id_token.value, evse_id, decision.profile,
                             self.station.clock.now()))
        return True

    def forget_remote_start(self, id_token: IdToken) -> None:
        """The remote start was not accepted after all: drop its waiting profile."""
        self._remote = [w for w in self._remote if w[0] != id_token.value]

    def on_event(self, event: DomainEvent) -> None:
        """The Station's subscriber: the transaction a remote start began gets its profile,
        bound to it, before power is offered (the session's start, inside its commit)."""
        if not isinstance(event, TransactionStarted):
            return
        for waiting in list(self._remote):
            token, evse_id, profile, requested_at = waiting
            if token != event.id_token.value or evse_id not in (None, event.evse_id):
                continue
            self._remote.remove(waiting)
            if (event.timestamp - requested_at
                    > self.station.connection_timeout_s + REMOTE_START_GRACE_S):
                log.info("transaction %d: the chargingProfile of an earlier remote start "
                         "is not applied", event.session_id)
                return
            self._install(dataclasses.replace(profile, evse_id=event.evse_id,
                                              transaction_id=str(event.session_id)))
            return


class SmartChargingHandlers201:
    """The K-block's CSMS → station handlers, mixed into ``ChargePoint201`` (which sets
    :attr:`smart` and provides ``call``)."""

    smart: SmartCharging201 | None
    call: Callable[..., Any]
    #: ReportChargingProfiles parts waiting for their GetChargingProfiles answer to go out.
    _profile_reports: dict[int, list[dict[str, Any]]]

    def _smart(self) -> SmartCharging201:
        if self.smart is None:
            raise RuntimeError("no smart-charging port")
        return self.smart

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any],
                                **_: Any) -> call_result.SetChargingProfile:
        decision = self._smart().set_charging_profile(evse_id, charging_profile)
        info = None if decision.accepted else {"reasonCode": "InvalidProfile",
                                               "additionalInfo": decision.reason[:512]}
        return call_result.SetChargingProfile(status=decision.status, status_info=info)

    @on(Action.get_charging_profiles)
    def on_get_charging_profiles(self, request_id: int, charging_profile: dict[str, Any],
                                 evse_id: int | None = None, **_: Any
                                 ) -> call_result.GetChargingProfiles:
        parts = self._smart().reports(request_id, evse_id, charging_profile)
        self._profile_reports[request_id] = parts
        return call_result.GetChargingProfiles(status="Accepted" if parts else "NoProfiles")

    @after(Action.get_charging_profiles)
    async def after_get_charging_profiles(self, request_id: int, **_: Any) -> None:
        for part in self._profile_reports.pop(request_id, []):
            await self.call(call.ReportChargingProfiles(
                request_id=part["requestId"], charging_limit_source=part["chargingLimitSource"],
                evse_id=part["evseId"], charging_profile=part["chargingProfile"],
                tbc=part["tbc"]))

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(self, charging_profile_id: int | None = None,
                                  charging_profile_criteria: dict[str, Any] | None = None,
                                  **_: Any) -> call_result.ClearChargingProfile:
        return call_result.ClearChargingProfile(status=self._smart().clear_charging_profile(
            charging_profile_id, charging_profile_criteria))

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(self, duration: int, evse_id: int,
                                  charging_rate_unit: str | None = None, **_: Any
                                  ) -> call_result.GetCompositeSchedule:
        answer = self._smart().get_composite_schedule(
            duration, evse_id, None if charging_rate_unit is None else str(charging_rate_unit))
        return call_result.GetCompositeSchedule(status=answer["status"],
                                                status_info=answer.get("statusInfo"),
                                                schedule=answer.get("schedule"))
