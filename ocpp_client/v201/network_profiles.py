"""SetNetworkProfile (OCPP 2.0.1 B09) and connecting by NetworkConfigurationPriority with
fallback (B10), on the shared link keeper.

A profile (configurationSlot → connectionData: ocppCsmsUrl, securityProfile, ...) is checked
and stored in ``ocpp201_network_profiles``; slot 1 without a stored profile is the
commissioning one (``[ocpp] url`` with SecurityCtrlr.SecurityProfile). At start-up (the
priority is RebootRequired) the link tries the slots in OCPPCommCtrlr.NetworkConfigurationPriority
order: after NetworkProfileConnectionAttempts failed connects in a row it falls back to the
next slot (B10.FR.02), and from the last back to the first.

:class:`NetworkProfiles` is the link keeper's :class:`~ocpp_client.link.ConnectSecurity`:
each slot connects through its own :class:`~ocpp_client.secure_link.SecureConnect` (its
security profile, the station's shared key and certificate stores).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ocpp_client.link import ConnectOptions, ConnectSecurity
from ocpp_client.secure_link import SecureConnect
from ocpp_client.security.link_security import LinkSecurity
from ocpp_client.security.profiles import SecurityProfile, SecurityProfileSwitch
from ocpp_client.v201.device_model import DeviceModel

log = logging.getLogger(__name__)

TABLE_SQL = ("CREATE TABLE IF NOT EXISTS ocpp201_network_profiles "
             "(slot INTEGER PRIMARY KEY, data TEXT NOT NULL)")


@dataclass(frozen=True)
class NetworkProfile:
    """A stored connection profile: the CSMS URL (without the station id) and its
    security profile."""

    slot: int
    url: str
    security_profile: int


class NetworkProfiles:
    """Slots, their storage and the connect order (see the module docstring).

    Args:
        db: the state database.
        station_id: appended to each profile's URL.
        model: the device model (OCPPCommCtrlr).
        commissioning: the link's own security side (slot 1 without a stored profile).
        slot_link: a :class:`LinkSecurity` for a security profile (the shared stores).
        connect_for: the :class:`SecureConnect` of a stored profile's LinkSecurity (its
            connect failures are security events as for the commissioning profile).
    """

    def __init__(self, db: sqlite3.Connection, station_id: str, model: DeviceModel,
                 commissioning: ConnectSecurity,
                 slot_link: Callable[[SecurityProfileSwitch], LinkSecurity],
                 connect_for: Callable[[LinkSecurity], SecureConnect]) -> None:
        self._db = db
        self.station_id = station_id
        self.model = model
        self._commissioning = commissioning
        self._slot_link = slot_link
        self._connect_for = connect_for
        db.execute(TABLE_SQL)
        # NetworkConfigurationPriority is RebootRequired: read once, at start-up.
        self.order = [int(s) for s in model.get_list("OCPPCommCtrlr",
                                                     "NetworkConfigurationPriority")] or [1]
        self._index = 0
        self._failures = 0
        self._current: ConnectSecurity = commissioning

    # -- SetNetworkProfile (B09) -----------------------------------------------------------
    def stored(self, slot: int) -> NetworkProfile | None:
        row = self._db.execute("SELECT data FROM ocpp201_network_profiles WHERE slot = ?",
                               (slot,)).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        return NetworkProfile(slot, str(data["url"]), int(data["security_profile"]))

    def set_network_profile(self, slot: int, connection_data: dict[str, Any],
                            active_profile: int) -> str:
        """SetNetworkProfileResponse status: Accepted (stored), Rejected (a slot outside
        NetworkConfigurationPriority's values, not OCPP20 / JSON, a security profile below
        the active one (a profile is never lowered) or one whose URL scheme, key or
        certificate is missing), Failed (cannot be stored)."""
        definition = self.model.definition("OCPPCommCtrlr", "NetworkConfigurationPriority")
        values = definition.characteristics.values_list if definition is not None else None
        if values is not None and str(slot) not in values:
            return "Rejected"
        if (connection_data.get("ocpp_version") != "OCPP20"
                or connection_data.get("ocpp_transport") != "JSON"):
            return "Rejected"
        try:
            profile = SecurityProfile(int(connection_data["security_profile"]))
        except ValueError:
            return "Rejected"
        if profile < active_profile:
            log.warning("SetNetworkProfile slot %d rejected: security profile %d is below the"
                        " active %d", slot, int(profile), active_profile)
            return "Rejected"
        url = str(connection_data["ocpp_csms_url"]).rstrip("/")
        missing = self._slot_link(SecurityProfileSwitch(profile)).missing_for(
            int(profile), url)
        if missing is not None:
            log.warning("SetNetworkProfile slot %d rejected: %s", slot, missing)
            return "Rejected"
        try:
            self._db.execute("INSERT OR REPLACE INTO ocpp201_network_profiles VALUES (?, ?)",
                             (slot, json.dumps({"url": url,
                                                "security_profile": int(profile)})))
        except sqlite3.Error as exc:
            log.error("SetNetworkProfile slot %d: cannot store: %s", slot, exc)
            return "Failed"
        return "Accepted"

    # -- the link keeper's ConnectSecurity (B10) -----------------------------------------
    @property
    def slot(self) -> int:
        """The slot the next (or current) connect uses."""
        return self.order[self._index % len(self.order)]

    def _security_for(self, slot: int) -> tuple[ConnectSecurity, str | None]:
        profile = self.stored(slot)
        if profile is None:
            return self._commissioning, None
        link = self._slot_link(SecurityProfileSwitch(profile.security_profile))
        return self._connect_for(link), f"{profile.url}/{self.station_id}"

    def _next_slot(self, why: str) -> None:
        before = self.slot
        self._index = (self._index + 1) % len(self.order)
        self._failures = 0
        if self.slot != before:
            log.warning("network profile slot %d: %s; falling back to slot %d", before, why,
                        self.slot)

    def prepare(self, url: str) -> ConnectOptions:
        """Options for the current slot (``url``: the commissioning endpoint)."""
        for _ in range(len(self.order)):
            security, slot_url = self._security_for(self.slot)
            if slot_url is None and self.slot != 1:
                self._next_slot("no profile stored")
                continue
            try:
                self._current = security
                return security.prepare(slot_url or url)
            except (ValueError, OSError) as exc:
                self._next_slot(f"cannot be used ({exc})")
        self._current = self._commissioning
        return self._commissioning.prepare(url)

    def connected(self, options: ConnectOptions, ws: Any) -> None:
        self._failures = 0
        self._current.connected(options, ws)

    def failed(self, options: ConnectOptions, exc: BaseException) -> None:
        self._current.failed(options, exc)
        self._failures += 1
        attempts = self.model.get_int("OCPPCommCtrlr", "NetworkProfileConnectionAttempts")
        if self._failures >= attempts and len(self.order) > 1:
            self._next_slot(f"{self._failures} failed connects")
