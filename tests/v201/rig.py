"""The 2.0.1 daemon rig: the daemon as ``evse run`` wires it with ``[ocpp] version = "2.0.1"``,
the simulator board, and the dev CSMS in its 2.0.1 mode (the ``ocpp`` library's v201 central
system, schema validation on) on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dev_csms import DevCsms

from evse.daemon import Daemon, load_checked_config


def write_config_201(directory: Path, url: str, variables: str = "", connectors: int = 1,
                     station_id: str = "CP-201") -> Path:
    """A sim-backend config speaking OCPP 2.0.1; ``variables``: ``[ocpp201.variables]``
    lines."""
    conns = "\n".join(f"[[connector]]\nid = {i}\nmax_current_a = 32.0\nphases = 3\n"
                      for i in range(1, connectors + 1))
    text = f"""
[station]
id = "{station_id}"
state_dir = "state"

[ocpp]
url = "{url}"
version = "2.0.1"
call_timeout_s = 5.0
reconnect_min_s = 0.1
reconnect_max_s = 0.3

[hardware]
driver = "sim"

[ocpp201.variables]
"SampledDataCtrlr.TxUpdatedInterval" = 1
"OCPPCommCtrlr.WebSocketPingInterval" = 0
{variables}

{conns}
"""
    path = directory / "evse.toml"
    path.write_text(text)
    return path


def events(csms: DevCsms, station_id: str = "CP-201") -> list[dict[str, Any]]:
    """TransactionEvent payloads received, in order."""
    return csms.actions("TransactionEvent", station_id)


def event_types(csms: DevCsms) -> list[tuple[str, str]]:
    """(eventType, triggerReason) of every TransactionEvent received."""
    return [(e["eventType"], e["triggerReason"]) for e in events(csms)]


def statuses(csms: DevCsms, evse_id: int = 1) -> list[str]:
    return [p["connectorStatus"] for p in csms.actions("StatusNotification")
            if p["evseId"] == evse_id]


async def start_daemon(directory: Path, url: str, **kwargs: Any) -> Daemon:
    daemon = Daemon(load_checked_config(str(write_config_201(directory, url, **kwargs))))
    await daemon.start()
    return daemon
