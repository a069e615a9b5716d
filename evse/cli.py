"""The ``evse`` command line: daemon, config check, status, simulator control.

Every command takes ``--config PATH`` (default ``$EVSE_CONFIG`` or /etc/evse/evse.toml),
before or after the command: ``evse --config F status`` = ``evse status --config F``.
Commands other than ``run`` and ``config check`` talk to the running daemon over its control
socket (see :mod:`evse.control` for the protocol).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from evse.config import ConfigError, load_config
from evse.control import ControlError, request

DEFAULT_CONFIG = os.environ.get("EVSE_CONFIG", "/etc/evse/evse.toml")


def _config_arg(parser: argparse.ArgumentParser, *, top_level: bool = False) -> None:
    """``--config PATH``: the top-level parser holds the default; a command's own option
    has none (SUPPRESS), so it only overrides when given after the command."""
    parser.add_argument(
        "--config",
        default=DEFAULT_CONFIG if top_level else argparse.SUPPRESS,
        metavar="PATH",
        help=f"configuration file (default: {DEFAULT_CONFIG}, or $EVSE_CONFIG)",
    )


def _positive_seconds(text: str) -> float:
    """An ``--interval`` value: seconds, finite and at least 0.1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.1 <= value <= 3600.0:  # NaN fails both comparisons
        raise argparse.ArgumentTypeError(f"{text} s: expected 0.1 to 3600 s")
    return value


def _positive_count(text: str) -> int:
    """A ``--count`` value: a whole number of refreshes, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: expected at least 1")
    return value


def _cmd_run(args: argparse.Namespace) -> int:
    from evse.daemon import run_daemon

    return run_daemon(args.config)


def _cmd_config_check(args: argparse.Namespace) -> int:
    from evse.daemon import load_checked_config

    try:
        config = load_checked_config(args.config)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return 1
    print(f"{config.path}: OK ({len(config.connectors)} connector(s), station {config.station_id})")
    return 0


def _send(args: argparse.Namespace, command: str, **params: Any) -> dict[str, Any]:
    config = load_config(args.config)
    return request(config.control_socket, command, **params)


def _cmd_status(args: argparse.Namespace) -> int:
    from evse import status_view

    if args.watch:
        config = load_config(args.config)
        interval = args.interval

        def fetch() -> dict[str, Any]:
            return request(config.control_socket, "status", timeout_s=max(2.0, interval))

        return status_view.watch(
            fetch, sys.stdout, interval_s=interval, count=args.count, as_json=args.json,
            ansi=sys.stdout.isatty(), unreachable=ControlError)
    status = _send(args, "status")
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        print("\n".join(status_view.render_status(status)))
    return 0


def _cmd_sim(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {}
    action = args.sim_action
    if action == "plug":
        params = {
            "connector_id": args.connector,
            "max_current_a": args.max_current,
            "phases": args.phases,
            "soc_percent": args.soc,
        }
    elif action == "unplug":
        params = {"connector_id": args.connector}
    elif action == "swipe":
        params = {"id_tag": args.tag}
    elif action == "ev":
        params = {"connector_id": args.connector, "action": args.ev_action}
    elif action in ("fault", "clear"):
        params = {"connector_id": args.connector, "kind": args.kind}
    elif action == "power-fail":
        action, params = "power_fail", {"lost": not args.restore}
    _send(args, f"sim.{action}", **params)
    return 0


def _cmd_meter_read(args: argparse.Namespace) -> int:
    from evse.commissioning import read_meters

    results = read_meters(load_config(args.config))
    if args.json:
        print(json.dumps({str(r.connector_id): r.as_json() for r in results}, indent=2))
    for r in results if not args.json else []:
        if r.reading is None:
            print(f"connector {r.connector_id}: FAULT {r.fault}")
            continue
        m = r.reading
        print(f"connector {r.connector_id}:")
        print(f"  Energy.Active.Import.Register  {m.energy_active_import_wh:.1f} Wh")
        print(f"  Power.Active.Import            {m.power_active_w:.1f} W")
        for i, v in enumerate(m.voltage_v, 1):
            print(f"  Voltage L{i}                     {v:.1f} V")
        for i, a in enumerate(m.current_a, 1):
            print(f"  Current.Import L{i}              {a:.2f} A")
    return 0 if all(r.reading is not None for r in results) else 1


def _ask(question: str) -> bool:
    """Ask on the terminal; anything but y/yes (or no terminal at all) is a no."""
    if not sys.stdin.isatty():
        print(f"{question} no terminal to ask on: not confirmed (use --yes)", file=sys.stderr)
        return False
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _cmd_hw_test(args: argparse.Namespace) -> int:
    from evse.commissioning import hardware_test
    from hal.registry import BackendError

    config = load_config(args.config)
    try:
        request(config.control_socket, "status", timeout_s=2.0)
    except ControlError:
        pass
    else:
        print("evse: the daemon is running; stop it before testing hardware "
              "(systemctl stop evse)", file=sys.stderr)
        return 2
    confirm: Callable[[str], bool] = (lambda _q: True) if args.yes else _ask
    try:
        results = hardware_test(config, say=lambda text: print(f"-> {text}", flush=True),
                                confirm=confirm)
    except BackendError as exc:
        print(f"evse: {exc}", file=sys.stderr)
        return 1
    for r in results:
        print(f"connector {r.connector_id} {r.part:<10} {'PASS' if r.passed else 'FAIL'}  "
              f"{r.detail}")
    return 0 if all(r.passed for r in results) else 1


def _cmd_hw_safe_off(args: argparse.Namespace) -> int:
    from hal.registry import BackendError, safe_off

    config = load_config(args.config)
    try:
        opened = safe_off(config.hardware, config.connectors)
    except BackendError as exc:
        print(f"evse: safe-off: {exc}", file=sys.stderr)
        return 1
    print(f"safe-off: {len(opened)} contactor output(s) driven open: "
          f"{', '.join(opened) if opened else 'none (simulated board)'}")
    return 0


def _add_commissioning(sub: Any) -> None:
    meter = sub.add_parser("meter", help="energy meter commissioning")
    meter_sub = meter.add_subparsers(dest="meter_action", required=True, metavar="ACTION")
    read = meter_sub.add_parser(
        "read", help="read the configured meter(s) once and print every value with units"
    )
    _config_arg(read)
    read.add_argument("--json", action="store_true",
                      help="print one JSON object keyed by connector id")
    read.set_defaults(func=_cmd_meter_read)
    hw = sub.add_parser("hw", help="hardware commissioning (daemon must be stopped)")
    hw_sub = hw.add_subparsers(dest="hw_action", required=True, metavar="ACTION")
    test = hw_sub.add_parser(
        "test",
        help="pilot A level, RCD self-test, lock cycle, then (only with the pilot in A, the "
        "RCD clear and after confirmation) contactor close/open with feedback; says what "
        "each step does first; pass/fail per part (exit 0 all pass, 1 a failure, "
        "2 daemon running)",
    )
    _config_arg(test)
    test.add_argument("--yes", action="store_true",
                      help="do not ask before energizing the contactor")
    test.set_defaults(func=_cmd_hw_test)
    safe_off = hw_sub.add_parser(
        "safe-off",
        help="drive every contactor output open from the config, without the daemon and "
        "without building the rest of the board (systemd ExecStopPost=); never energizes",
    )
    _config_arg(safe_off)
    safe_off.set_defaults(func=_cmd_hw_safe_off)


def _cmd_fault_reset(args: argparse.Namespace) -> int:
    from evse.status_view import render_fault_reset

    lines, still_active = render_fault_reset(
        _send(args, "fault.reset", connector_id=args.connector))
    print("\n".join(lines))
    return 1 if still_active else 0


def build_parser() -> argparse.ArgumentParser:
    """The full ``evse`` argument parser (every command documented in ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="evse",
        description="Charge point firmware: IEC 61851 connector control and OCPP 1.6J.",
    )
    _config_arg(parser, top_level=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon in the foreground (logs to stdout)")
    _config_arg(run)
    run.set_defaults(func=_cmd_run)

    config = sub.add_parser("config", help="configuration commands")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_sub.add_parser("check", help="validate the config (exit 0 ok, 1 errors)")
    _config_arg(check)
    check.set_defaults(func=_cmd_config_check)

    status = sub.add_parser(
        "status", help="per connector state, IEC state, CP voltage, offered and drawn "
        "current, lock, session and faults (recovery, retry countdown, trips); station "
        "firmware, uptime, CSMS link (last contact, last error, next retry), queue, storage "
        "(exit 2: daemon unreachable)"
    )
    _config_arg(status)
    status.add_argument("--json", action="store_true",
                        help="print JSON (with --watch: one JSON object per line and refresh)")
    status.add_argument("--watch", action="store_true",
                        help="refresh in place until Ctrl-C; an unreachable daemon is shown, "
                        "not fatal")
    status.add_argument("--interval", type=_positive_seconds, default=1.0, metavar="S",
                        help="seconds between refreshes with --watch (default 1)")
    status.add_argument("--count", type=_positive_count, default=None, metavar="N",
                        help="with --watch: stop after N refreshes (scripts); exit 2 if the "
                        "daemon was unreachable at the last one")
    status.set_defaults(func=_cmd_status)

    sim = sub.add_parser("sim", help="drive the simulator of a running daemon")
    sim_sub = sim.add_subparsers(dest="sim_action", required=True, metavar="ACTION")
    plug = sim_sub.add_parser("plug", help="plug a simulated EV into CONNECTOR")
    plug.add_argument("connector", type=int, metavar="CONNECTOR")
    plug.add_argument("--max-current", type=float, default=32.0, metavar="A",
                      help="EV's maximum current per phase, A (default 32)")
    plug.add_argument("--phases", type=int, default=3, choices=(1, 2, 3),
                      help="phases the EV draws on (default 3)")
    plug.add_argument("--soc", type=float, default=None, metavar="PERCENT",
                      help="state of charge the EV reports, %% (default: it reports none)")
    unplug = sim_sub.add_parser("unplug", help="unplug the EV from CONNECTOR")
    unplug.add_argument("connector", type=int, metavar="CONNECTOR")
    swipe = sim_sub.add_parser("swipe", help="present an RFID card with idTag TAG")
    swipe.add_argument("tag", metavar="TAG")
    ev = sim_sub.add_parser("ev", help="the EV on CONNECTOR pauses (C→B) or resumes (B→C)")
    ev.add_argument("connector", type=int, metavar="CONNECTOR")
    ev.add_argument("ev_action", choices=("pause", "resume"))
    for name, text in (("fault", "inject a fault"), ("clear", "remove an injected fault")):
        fault = sim_sub.add_parser(name, help=f"{text} on CONNECTOR")
        fault.add_argument("connector", type=int, metavar="CONNECTOR")
        fault.add_argument(
            "kind",
            choices=("rcd", "diode", "weld", "overcurrent", "overtemp", "meter", "lock",
                     "cp_short", "stuck_open"),
        )
    power = sim_sub.add_parser(
        "power-fail", help="the mains-loss input reports the supply lost: running "
        "transactions stop with reason PowerLoss (--restore: the supply is back)")
    power.add_argument("--restore", action="store_true", help="the supply is back")
    for p in (plug, unplug, swipe, ev, power,
              *[sim_sub.choices[n] for n in ("fault", "clear")]):
        _config_arg(p)
    sim.set_defaults(func=_cmd_sim)
    _add_commissioning(sub)

    fault_cmd = sub.add_parser("fault", help="technician commands for latched faults")
    fault_sub = fault_cmd.add_subparsers(dest="fault_action", required=True, metavar="ACTION")
    reset = fault_sub.add_parser(
        "reset", help="clear latched faults (welded contactor, RCD) on CONNECTOR (0 = all); "
        "causes still present fault again at once. Prints what was cleared and what is "
        "still active and why; exit 1 when a fault is still active")
    reset.add_argument("connector", type=int, metavar="CONNECTOR")
    _config_arg(reset)
    reset.set_defaults(func=_cmd_fault_reset)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``evse`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return 1
    except ControlError as exc:
        print(f"evse: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside a watch loop: no traceback
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:  # `evse status | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
