"""The OCPP 1.6 Smart Charging profile against the Station's engine: the port the 1.6
handlers (:mod:`.charge_point`) are given for SetChargingProfile (§5.16),
ClearChargingProfile (§5.5), GetCompositeSchedule (§5.7) and the chargingProfile of a
RemoteStartTransaction (§5.11).

The acceptance rules and payload conversion are :mod:`.smart_charging`'s; this module adds
what needs the running station: the connectors (connectorId ↔ EVSE id), the transaction
running on a connector (1.6 transactionId ↔ local session), the §9.4 limits from the
configuration keys, and whether the SmartCharging feature profile is on
(SupportedFeatureProfiles). The engine knows a transaction by its local session id (the
1.6 transactionId may arrive long after the start when offline), so transaction profiles
are bound to the session before they are installed.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

from evse.charging_profiles import STATION_EVSE_ID, ChargingProfile, ProfileError
from evse.domain import DomainEvent, IdTokenType, TransactionStarted
from evse.station import Station
from ocpp_client.configuration import ConfigurationStore
from ocpp_client.queue import TransactionIds
from ocpp_client.v16.smart_charging import (
    CONFIGURATION_KEYS,
    REJECTED,
    SmartChargingLimits,
    check_remote_start_profile,
    check_set_charging_profile,
    clear_charging_profile,
    get_composite_schedule,
)

log = logging.getLogger(__name__)

#: The feature profile's name in SupportedFeatureProfiles (OCPP 1.6 §9.1.33).
FEATURE = "SmartCharging"
#: SetChargingProfile.conf status when the feature profile is off (§7.12).
NOT_SUPPORTED = "NotSupported"
#: Beyond ConnectionTimeOut, how long a remote start's authorization may take before its
#: transaction starts (an Authorize.req with AuthorizeRemoteTxRequests), s.
REMOTE_START_GRACE_S = 60.0


class SmartCharging16:
    """OCPP 1.6 Smart Charging commands on the Station's smart-charging engine.

    Args:
        station: the core (its ``smart`` engine, connectors and station limit).
        configuration: the 1.6 keys (SupportedFeatureProfiles and the §9.4 keys).
        transactions: 1.6 transactionId ↔ local session.
    """

    def __init__(self, station: Station, configuration: ConfigurationStore,
                 transactions: TransactionIds) -> None:
        self.station = station
        self.engine = station.smart
        self.configuration = configuration
        self.transactions = transactions
        #: Profiles of accepted RemoteStartTransactions, waiting for their transaction:
        #: idTag → (connectorId or None, profile, when requested: UTC epoch s).
        self._remote: dict[str, tuple[int | None, ChargingProfile, float]] = {}
        station.subscribe(self.on_event)

    # -- helpers -------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """The SmartCharging feature profile is in SupportedFeatureProfiles."""
        return FEATURE in self.configuration.get_list("SupportedFeatureProfiles")

    def limits(self) -> SmartChargingLimits:
        """The §9.4 limits from the configuration keys."""
        return SmartChargingLimits.from_configuration(
            {k: self.configuration.get(k) for k in CONFIGURATION_KEYS})

    @property
    def _connector_count(self) -> int:
        return max(self.station.connectors, default=0)

    def _evse_of(self, connector_id: int) -> int:
        if connector_id == STATION_EVSE_ID:
            return STATION_EVSE_ID
        return self.station.connectors[connector_id].evse_id

    def _bind(self, profile: ChargingProfile, connector_id: int,
              session_id: int | None) -> ChargingProfile:
        """The profile on the connector's EVSE, a transaction profile bound to the session."""
        return dataclasses.replace(
            profile, evse_id=self._evse_of(connector_id),
            transaction_id=None if session_id is None else str(session_id))

    def _install(self, profile: ChargingProfile) -> bool:
        try:
            self.engine.install(profile)
        except (ProfileError, sqlite3.Error) as exc:
            log.error("charging profile %d not installed: %s", profile.profile_id, exc)
            return False
        return True

    # -- SetChargingProfile (§5.16) -------------------------------------------------------
    def set_charging_profile(self, connector_id: int,
                             cs_charging_profiles: Mapping[str, Any]) -> str:
        """Decide and install: "Accepted", "Rejected" or "NotSupported"."""
        if not self.enabled:
            return NOT_SUPPORTED
        try:  # expired profiles do not count against MaxChargingProfilesInstalled
            self.engine.drop_expired()
        except sqlite3.Error as exc:
            log.error("expired charging profiles not dropped: %s", exc)
        conn = self.station.connectors.get(connector_id)
        session = conn.session if conn is not None else None
        running = (None if session is None
                   else self.transactions.transaction_id(session.session_id))
        decision = check_set_charging_profile(
            connector_id, cs_charging_profiles,
            number_of_connectors=self._connector_count
            if connector_id in (0, *self.station.connectors) else 0,
            running_transaction_id=running, limits=self.limits(),
            installed=self.engine.store.all())
        if decision.profile is None:
            log.info("SetChargingProfile on connector %d rejected: %s", connector_id,
                     decision.reason)
            return decision.status
        profile = self._bind(decision.profile, connector_id,
                             None if decision.profile.transaction_id is None or session is None
                             else session.session_id)
        return decision.status if self._install(profile) else REJECTED

    # -- ClearChargingProfile (§5.5) ------------------------------------------------------
    def clear_charging_profile(self, id: int | None = None, connector_id: int | None = None,
                               charging_profile_purpose: str | None = None,
                               stack_level: int | None = None) -> str:
        """"Accepted" (something removed) or "Unknown"."""
        if connector_id is not None and connector_id not in (0, *self.station.connectors):
            return "Unknown"
        evse = None if connector_id is None else self._evse_of(connector_id)
        try:
            return clear_charging_profile(self.engine, id, evse, charging_profile_purpose,
                                          stack_level)
        except sqlite3.Error as exc:
            log.error("ClearChargingProfile: %s", exc)
            return "Unknown"

    # -- GetCompositeSchedule (§5.7) ------------------------------------------------------
    def get_composite_schedule(self, connector_id: int, duration: int,
                               charging_rate_unit: str | None = None) -> dict[str, Any]:
        """The GetCompositeSchedule.conf payload (camelCase); connector 0 = the station."""
        if not self.enabled or connector_id not in (0, *self.station.connectors):
            return {"status": REJECTED}
        station_max = self.station.station_limit_a
        if connector_id == STATION_EVSE_ID:
            ceiling = station_max
        else:
            ceiling = min(station_max, self.station.connectors[connector_id].iec.max_current_a)
        evse = self._evse_of(connector_id)
        payload = get_composite_schedule(
            self.engine, evse, int(duration), charging_rate_unit,
            number_of_connectors=max(evse, 1), ceiling_a=ceiling, limits=self.limits())
        if "connectorId" in payload:
            payload["connectorId"] = connector_id
        return payload

    # -- RemoteStartTransaction's chargingProfile (§5.11) ---------------------------------
    def check_remote_start(self, id_tag: str, connector_id: int | None,
                           charging_profile: Mapping[str, Any] | None) -> bool:
        """False when the request must be Rejected for its chargingProfile (not a
        TxProfile, invalid, beyond a §9.4 limit). An accepted profile waits for the
        transaction this request starts (:meth:`started`). With the feature profile off the
        profile is ignored."""
        if charging_profile is None or not self.enabled:
            return True
        decision = check_remote_start_profile(
            connector_id, charging_profile,
            number_of_connectors=self._connector_count, limits=self.limits(),
            installed=self.engine.store.all())
        if decision.profile is None:
            log.info("RemoteStartTransaction rejected for its chargingProfile: %s",
                     decision.reason)
            return False
        self._remote[id_tag] = (connector_id, decision.profile, self.station.clock.now())
        return True

    def forget_remote_start(self, id_tag: str) -> None:
        """The remote start was not accepted after all: drop its waiting profile."""
        self._remote.pop(id_tag, None)

    def on_event(self, event: DomainEvent) -> None:
        """The Station's subscriber: a transaction started by a remote start with a profile
        gets it, bound to that transaction, before power is offered. Only the remote start's
        own authorization (a Central IdToken, within ConnectionTimeOut plus the time an
        Authorize may take) picks it up: the same idTag on a card later does not."""
        if not isinstance(event, TransactionStarted):
            return
        waiting = self._remote.get(event.id_tag)
        if waiting is None or waiting[0] not in (None, event.connector_id):
            return
        del self._remote[event.id_tag]
        _connector, profile, requested_at = waiting
        if event.id_token.type is not IdTokenType.CENTRAL or (
                event.timestamp - requested_at
                > self.station.connection_timeout_s + REMOTE_START_GRACE_S):
            log.info("transaction %d: the chargingProfile of an earlier remote start for %s "
                     "is not applied", event.session_id, event.id_tag)
            return
        self._install(self._bind(profile, event.connector_id, event.session_id))
