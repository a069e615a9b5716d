"""The technician's status view: the daemon's ``status`` / ``fault.reset`` answers as text,
and ``evse status --watch`` redrawing it in place.

Pure formatting of the JSON the control socket returns (:mod:`evse.control`), so it is the
same for every backend and protocol. Tolerant of keys an older or newer daemon lacks: a
missing field is left out, never a traceback. Redrawing uses plain ANSI escapes (cursor
home, erase line, erase below: ECMA-48), so it needs no terminal library on the image.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

#: How each recovery rule (:class:`evse.faults.Recovery` value) reads to a technician.
RECOVERY_TEXT = {
    "retry": "retry",
    "condition": "self-clearing",
    "technician": "technician reset",
}

#: What a technician may expect of each recovery rule.
RECOVERY_HINT = {
    "retry": "left automatically once the cause is gone at the retry",
    "condition": "left as soon as the cause is gone",
    "technician": "latched: clear the cause, then `evse fault reset`",
}

_HOME = "\x1b[H"  # cursor to the top left
_ERASE_LINE = "\x1b[K"  # erase to the end of the line
_ERASE_BELOW = "\x1b[J"  # erase from the cursor to the end of the screen
_CLEAR = "\x1b[2J"  # erase the whole screen


def duration(seconds: float | None) -> str:
    """``seconds`` as a technician reads it: "4.2 s", "42 s", "3 min 12 s", "2 h 05 min",
    "3 d 04 h"; "?" for None."""
    if seconds is None:
        return "?"
    if seconds < 9.95:  # a countdown about to end: tenths matter
        return f"{max(0.0, seconds):.1f} s"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600:02d} h"


def _amps(values: Sequence[float] | None) -> str:
    if not values:
        return "not measured"
    return "/".join(f"{a:.1f}" for a in values) + " A"


def _volts(value: float | None) -> str:
    return "?" if value is None else f"{value:+.1f} V"


def _station_lines(status: dict[str, Any]) -> list[str]:
    lines = []
    head = f"station {status.get('station_id', '?')}"
    if "firmware_version" in status:
        head += f"  firmware {status['firmware_version']}"
    if "uptime_s" in status:
        head += f"  up {duration(status['uptime_s'])}"
    lines.append(head)
    link = status.get("csms") or {}
    text = f"  CSMS {link.get('state', '?')}  {link.get('url', '')}".rstrip()
    if "last_contact_ago_s" in link:
        ago = link["last_contact_ago_s"]
        text += ("  last contact never" if ago is None
                 else f"  last contact {duration(ago)} ago")
    lines.append(text)
    if link.get("last_error"):
        lines.append(f"    last error {duration(link.get('last_error_ago_s'))} ago: "
                     f"{link['last_error']}")
    if link.get("next_retry_in_s") is not None:
        lines.append(f"    next retry in {duration(link['next_retry_in_s'])}")
    if "queued" in link:
        lines.append(f"  queue {link['queued']} message(s), {link.get('dropped', 0)} dropped, "
                     f"{link.get('thinned', 0)} thinned")
    storage = status.get("storage") or {}
    if storage and not storage.get("writable", True):
        lines.append(f"  STORAGE FAILED: {storage.get('error')}; no power offered; "
                     f"{len(storage.get('unsaved', []))} write(s) kept in memory")
    elif storage:
        lines.append("  storage ok")
    for name, task in (status.get("tasks") or {}).items():
        if task.get("failing"):
            lines.append(f"  task {name} failing ({task.get('failures', '?')} failures): "
                         f"{task.get('last_error')}")
    for reader in status.get("readers") or []:  # a failing card reader: charging goes on
        if not reader.get("healthy", True):
            lines.append(f"  card reader {reader.get('device', reader.get('reader'))} FAILING "
                         f"({reader.get('failures', '?')} failures): {reader.get('last_error')}")
    budget = status.get("load_balancing")
    if budget:
        waiting = ", ".join(str(c) for c in budget.get("waiting", [])) or "none"
        lines.append(
            f"  budget {'/'.join(f'{a:.1f}' for a in budget.get('budget_a', []))} A per phase "
            f"({budget.get('budget_source')}), waiting: {waiting}, "
            f"{budget.get('profiles_installed', 0)} charging profile(s)")
    return lines


def _fault_lines(conn: dict[str, Any]) -> list[str]:
    lines = []
    faults = conn.get("faults")
    if faults is None:  # an older daemon: only the reported fault
        if conn.get("fault"):
            lines.append(f"    FAULT {conn['fault']}: {conn.get('fault_info', '')}")
        return lines
    for f in faults:
        recovery = f.get("recovery", "?")
        detail = [f"recovery: {RECOVERY_TEXT.get(recovery, recovery)}"]
        if f.get("retry_in_s") is not None:
            detail.append(f"retry in {duration(f['retry_in_s'])}")
        if f.get("trips"):
            detail.append(f"tripped {f['trips']}x")
        if f.get("fault") == "rcd_trip" and "rcd_max_trips" in conn:
            detail.append(f"RCD trips {conn.get('rcd_trips', 0)} of {conn['rcd_max_trips']}")
        lines.append(f"    FAULT {f.get('fault')}: {f.get('info', '')}")
        lines.append(f"      {', '.join(detail)} ({RECOVERY_HINT.get(recovery, '')})")
    if not faults and conn.get("fault"):  # a degradation, e.g. meter failing, charging on
        lines.append(f"    WARNING {conn['fault']}: {conn.get('fault_info', '')}")
    return lines


def _connector_lines(conn: dict[str, Any]) -> list[str]:
    head = f"connector {conn.get('id')}: {conn.get('state', '?')}"
    if "iec_state" in conn:
        head += f"  IEC {conn['iec_state']}"
    volts = conn.get("pilot_voltage_v")
    if volts:
        head += f"  CP {_volts(volts.get('positive'))}"
        if volts.get("negative") is not None:
            head += f" / {_volts(volts['negative'])}"
    elif "pilot_voltage_v" in conn:
        head += f"  pilot {conn.get('pilot')} (voltage not measured by this pilot)"
    else:
        head += f"  pilot {conn.get('pilot')}"
    if conn.get("duty_percent") is not None:
        head += f"  duty {conn['duty_percent']:.1f} %"
    lines = [head]
    limit = f"limit {conn.get('offered_current_a', 0.0):.1f} A"
    if conn.get("limit_source"):
        limit += f": {conn['limit_source']}"
    if "announced_current_a" not in conn:  # an older daemon: the limit is all it says
        current = f"    current offered {limit}"
    elif conn["announced_current_a"]:
        current = f"    current offered {conn['announced_current_a']:.1f} A by PWM ({limit})"
    else:
        current = f"    current offered none, no PWM ({limit})"
    if "drawn_current_a" in conn:
        current += f", drawn {_amps(conn['drawn_current_a'])}"
    lines.append(current)
    parts = [f"contactor {'closed' if conn.get('contactor_closed') else 'open'}"]
    if "lock" in conn:
        parts.append("lock none fitted" if conn["lock"] is None else f"lock {conn['lock']}")
        if conn.get("lock_held_for"):
            parts[-1] += f" (held for {conn['lock_held_for']})"
    if conn.get("temperature_c") is not None:
        parts.append(f"temperature {conn['temperature_c']:.1f} °C")
    if conn.get("operative") is False:
        parts.append("out of service")
    lines.append("    " + "  ".join(parts))
    session = conn.get("session")
    if session:
        lines.append(
            f"    session {session.get('session_id')} idTag {session.get('id_tag')} "
            f"transactionId {session.get('transaction_id')} "
            f"energy {session.get('energy_wh', 0.0):.0f} Wh")
    if conn.get("meter_fault"):
        lines.append(f"    meter: {conn['meter_fault']}")
    lines.extend(_fault_lines(conn))
    return lines


def render_status(status: dict[str, Any]) -> list[str]:
    """The lines of ``evse status`` for the daemon's ``status`` answer: station (firmware,
    uptime, CSMS link, queue, storage, failing tasks, budget), then per connector its state,
    IEC 61851-1 state and CP voltages, offered / announced / drawn current (A), contactor,
    lock, session and each fault with its recovery, retry countdown and trip count."""
    lines = _station_lines(status)
    for conn in status.get("connectors", []):
        lines.extend(_connector_lines(conn))
    lines.extend(_feature_lines(status))
    return lines


def _feature_lines(status: dict[str, Any]) -> list[str]:
    """Reservations (expiry in UTC), a running firmware update or diagnostics upload."""
    lines = []
    for reservation in status.get("reservations", []):
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reservation["expires_at"]))
        lines.append(f"  reservation {reservation['reservation_id']} on EVSE "
                     f"{reservation['evse_id'] or 'any'} until {until}")
    if status.get("firmware") not in (None, "idle"):
        lines.append(f"  firmware update: {status['firmware']}")
    if status.get("diagnostics") not in (None, "idle"):
        lines.append(f"  diagnostics upload: {status['diagnostics']}")
    return lines


def render_unreachable(error: str, since_s: float | None = None) -> list[str]:
    """What ``evse status --watch`` shows while the daemon does not answer."""
    lines = [f"daemon unreachable: {error}"]
    if since_s is not None:
        lines.append(f"  for {duration(since_s)}; still trying")
    return lines


def _fault_text(f: dict[str, Any]) -> str:
    return f"{f.get('fault')} ({f.get('info', '')})"


def render_fault_reset(result: dict[str, Any]) -> tuple[list[str], bool]:
    """The lines of ``evse fault reset`` for the daemon's ``fault.reset`` answer, and
    whether a fault is still active on a connector (the cause is still present, or a
    retry / condition fault came back at once)."""
    reports = result.get("connectors")
    if reports is None:  # an older daemon answers {}
        return ["fault reset sent (this daemon does not report what it cleared)"], False
    lines: list[str] = []
    still = False
    for rep in reports:
        name = f"connector {rep.get('id')}"
        cleared, active = rep.get("cleared", []), rep.get("active", [])
        if not cleared and not active:
            lines.append(f"{name}: no fault held")
        for f in cleared:
            lines.append(f"{name}: cleared {_fault_text(f)}")
        for f in active:
            still = True
            recovery = f.get("recovery", "?")
            why = RECOVERY_TEXT.get(recovery, recovery)
            if f.get("retry_in_s") is not None:
                why += f", retry in {duration(f['retry_in_s'])}"
            why += f" ({RECOVERY_HINT.get(recovery, '')})"
            lines.append(f"{name}: STILL ACTIVE {f.get('fault')}: {f.get('info', '')}; "
                         f"recovery {why}")
    return lines, still


def watch(
    fetch: Callable[[], dict[str, Any]],
    out: TextIO,
    *,
    interval_s: float = 1.0,
    count: int | None = None,
    as_json: bool = False,
    ansi: bool = True,
    unreachable: type[Exception] = Exception,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Fetch and draw the status every ``interval_s`` seconds until Ctrl-C (or ``count``
    frames); returns the exit status: 0, or 2 when the last fetch found no daemon.

    With ``ansi`` each frame overwrites the last in place; without (not a terminal) frames
    follow one another, separated by a blank line. ``as_json``: one compact JSON object per
    line and frame (JSON Lines). An ``unreachable`` error from ``fetch`` is shown in place of
    the frame and the watch goes on.
    """
    frames = 0
    down_since: float | None = None
    status = 0
    if ansi and not as_json:
        out.write(_CLEAR)
    try:
        while count is None or frames < count:
            try:
                data: dict[str, Any] = fetch()
                lines = render_status(data)
                down_since, status = None, 0
            except unreachable as exc:
                if down_since is None:
                    down_since = time.monotonic()
                status = 2
                data = {"error": f"daemon unreachable: {exc}"}
                lines = render_unreachable(str(exc), time.monotonic() - down_since)
            if as_json:
                out.write(json.dumps(data, sort_keys=True) + "\n")
            else:
                stamp = time.strftime("%H:%M:%S")
                ends = ", Ctrl-C ends" if count is None else ""
                lines = [f"{lines[0]}  [{stamp}, every {interval_s:g} s{ends}]",
                         *lines[1:]]
                if ansi:
                    out.write(_HOME + "".join(f"{line}{_ERASE_LINE}\n" for line in lines)
                              + _ERASE_BELOW)
                else:
                    out.write(("\n" if frames else "") + "\n".join(lines) + "\n")
            out.flush()
            frames += 1
            if count is None or frames < count:
                sleep(interval_s)
    except KeyboardInterrupt:
        status = 0  # the technician ended the watch
    return status


__all__ = ["RECOVERY_HINT", "RECOVERY_TEXT", "duration", "render_fault_reset",
           "render_status", "render_unreachable", "watch"]
