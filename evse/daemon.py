"""The composition root: build drivers from config, hand them to the Station, attach the
protocol adapter, serve the control socket, and shut down safely.

This is the one module that names concrete backends and adapters, and it does so by name
through lazy imports (``hal.registry``, :data:`PROTOCOL_ADAPTERS`), so the core never imports
a driver or a protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from evse import __version__
from evse.charging_limits import GridSupply
from evse.clock import Clock
from evse.config import Config, ConfigError, load_config, redact_url
from evse.control import ControlServer
from evse.diagnostics import Diagnostics, LogSources
from evse.domain import DomainEvent, StopCause, TransactionStarted, TransactionStopped
from evse.firmware_update import FirmwareUpdate, FirmwareUpdateRequest
from evse.logging_setup import configure_logging, stop_logging
from evse.sd_notify import Notifier
from evse.state_db import SchemaVersionError, open_state_db
from evse.station import Station
from evse.system_actions import SOFT_RESET_EXIT_STATUS, SystemActionError, SystemActions
from evse.timers import Clock as TimerClock
from evse.watchdog import board_liveness, run_watchdog
from hal.board import Board
from hal.registry import BackendError, create_board, create_meter

log = logging.getLogger("evse")

#: ``[ocpp] version`` → adapter package (with ``create_adapter`` and ``check_config``).
PROTOCOL_ADAPTERS = {"1.6": "ocpp_client.v16", "2.0.1": "ocpp_client.v201"}


class ProtocolAdapter(Protocol):
    """What the daemon needs of a protocol adapter (OCPP 1.6 now, 2.0.1 next)."""

    on_reset: Callable[[str], None] | None

    async def run(self) -> None: ...

    async def close(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...

    def transaction_ref(self, session_id: int) -> str | None:
        """The CSMS's id of local session ``session_id`` (None until it is known)."""
        ...


def _adapter_module(config: Config) -> Any:
    """The adapter package for ``[ocpp] version``.

    Raises:
        ConfigError: no adapter for that version.
    """
    name = PROTOCOL_ADAPTERS.get(config.ocpp_version)
    if name is None:
        raise ConfigError([
            f"{config.path}: ocpp.version: found {config.ocpp_version!r}, expected one of "
            + ", ".join(repr(v) for v in PROTOCOL_ADAPTERS)])
    return importlib.import_module(name)


def load_checked_config(path: str) -> Config:
    """The daemon's loader (also ``evse config check``): schema + adapter checks.

    Raises:
        ConfigError: every problem found.
    """
    config = load_config(path)
    errors: list[str] = _adapter_module(config).check_config(config)
    try:
        SystemActions.from_config(config.system)
    except SystemActionError as exc:
        errors.append(f"{config.path}: {exc}")
    if errors:
        raise ConfigError(errors)
    return config


def _smart_charging_kwargs(config: Config) -> dict[str, Any]:
    """The Station's smart-charging arguments from ``[station]``: the nominal voltage and,
    with ``grid_limit_a`` > 0, the grid-side meter (built by its backend's name).

    Raises:
        BackendError: the grid meter is the simulator's or cannot be built.
    """
    station = config.station
    grid = None
    if station.grid_limit_a > 0:
        if station.grid_meter.driver == "sim":
            raise BackendError("station.grid_meter: driver \"sim\" measures no grid; set "
                               "a meter backend (modbus-tcp, modbus-rtu, can) or "
                               "grid_limit_a = 0")
        grid = GridSupply(create_meter(station.grid_meter), station.grid_limit_a)
    return {"nominal_voltage_v": station.nominal_voltage_v, "grid": grid}


class Daemon:
    """One running charge point: board, station, adapter, control socket.

    Args:
        config: the checked configuration.
        notifier: systemd notifications (a fresh one if None).
        clock: the clock of the core's timers (default: the loop's; tests pass a manual
            one).
        utc_clock: the UTC clock of timestamps and charging profiles (a fresh one if None).
    """

    #: Longest a pilot sampler may go without completing a cycle before the safety
    #: liveness check fails (and the systemd watchdog stops being pinged), seconds.
    SAMPLER_MAX_AGE_S = 0.5

    def __init__(self, config: Config, notifier: Notifier | None = None,
                 clock: TimerClock | None = None, utc_clock: Clock | None = None) -> None:
        self.config = config
        self._timer_clock = clock
        self._utc_clock = utc_clock
        self.notifier = notifier or Notifier()
        self.actions = SystemActions.from_config(config.system)
        self._watchdog: asyncio.Task[None] | None = None
        self.board: Board | None = None
        self.station: Station | None = None
        self.firmware: FirmwareUpdate | None = None
        self.diagnostics: Diagnostics | None = None
        self.adapter: ProtocolAdapter | None = None
        self.db: sqlite3.Connection | None = None
        self.control: ControlServer | None = None
        self.reset_kind: str | None = None
        self._stop = asyncio.Event()
        self._link_task: asyncio.Task[None] | None = None
        #: Monotonic time the daemon was built (``evse status`` uptime), s.
        self.started_at = time.monotonic()

    async def start(self) -> None:
        """Bring everything up; contactors are verified open before the station runs.

        Raises:
            BackendError: the hardware could not be opened.
        """
        config = self.config
        self.db = open_state_db(config.state_dir)
        self.board = create_board(config.hardware, config.connectors)
        if self.board.simulator is not None:
            self.board.simulator.keep_meter_registers(config.state_dir)
        for hw in self.board.connectors:
            hw.contactor.open()
            if hw.contactor.feedback_closed:
                raise BackendError(
                    f"connector {hw.connector_id}: contactor feedback reports closed after "
                    "open (welded?); refusing to start")
        self.station = Station(
            self.board,
            {c.id: c.max_current_a for c in config.connectors},
            config.station.max_current_a,
            self.db,
            settings=config.iec61851,
            ventilation=frozenset(c.id for c in config.connectors if c.ventilation),
            evse_ids={c.id: c.evse_id for c in config.connectors if c.evse_id is not None},
            clock=self._timer_clock,
            utc_clock=self._utc_clock,
            **_smart_charging_kwargs(config),
        )
        self._build_file_services(self.station, self.db)
        adapter_module = _adapter_module(config)
        self.adapter = adapter_module.create_adapter(self.station, config, self.db)
        assert self.adapter is not None
        self.adapter.on_reset = self._on_reset
        loop = asyncio.get_running_loop()
        station = self.station
        for reader in self.board.id_readers:
            station.attach_id_reader(reader)  # cards, and its health (ReaderFailure)
            reader.start()
        if self.board.power_fail is not None:
            self.board.power_fail.add_listener(
                lambda lost: station.on_power_fail_hw(loop, lost))
        await self.station.start()
        if self.firmware is not None:
            # An update the last run left (e.g. Installed after its reboot): its status is
            # queued for the CSMS and goes out once the link is up.
            await self.firmware.resume()
        self.control = ControlServer(config.control_socket, self._handlers())
        await self.control.start()
        # Supervised: a crash of the link (or its sender) is logged and it starts again.
        self._link_task = self.station.supervisor.run("OCPP link", self.adapter.run)
        # READY=1 only now: hardware initialised, every contactor verified open.
        self.notifier.ready(self.status_line())
        liveness = board_liveness(self.board, max_age_s=self.SAMPLER_MAX_AGE_S)
        self._watchdog = loop.create_task(run_watchdog(self.notifier, liveness,
                                                       self.status_line))
        log.info("station %s up: %d connector(s), CSMS %s, control socket %s",
                 config.station_id, len(self.board.connectors), redact_url(config.ocpp_url),
                 config.control_socket)

    def _build_file_services(self, station: Station, db: sqlite3.Connection) -> None:
        """The firmware update flow and the diagnostics upload (docs/firmware-update.md),
        with the station's ports; their statuses become the station's domain events."""
        config = self.config
        self.firmware = FirmwareUpdate(
            conn=db, download_dir=config.state_dir / "firmware", clock=station.timer_clock,
            wall=station.clock.now, install=self.actions.install_firmware,
            reboot=self._firmware_reboot, transaction_running=station.transaction_running,
            on_status=station.publish_firmware_status, running_version=__version__,
            hold_transactions=station.hold_transactions, verify=self._verify_firmware)
        logging_settings = config.logging
        self.diagnostics = Diagnostics(
            work_dir=config.state_dir / "diagnostics",
            sources=LogSources(journal_units=tuple(logging_settings.diagnostics_units),
                               files=tuple(Path(f) for f in logging_settings.diagnostics_files)),
            station_id=config.station_id, clock=station.timer_clock, wall=station.clock.now,
            on_status=station.publish_diagnostics_status)
        station.firmware, station.diagnostics = self.firmware, self.diagnostics
        firmware = self.firmware

        def transactions_changed(event: DomainEvent) -> None:
            if isinstance(event, TransactionStarted | TransactionStopped):
                firmware.transactions_changed()

        station.subscribe(transactions_changed)

    async def _verify_firmware(self, path: Path, request: FirmwareUpdateRequest) -> bool:
        """The firmware flow's ``verify`` port for a signed update: the protocol adapter's
        verifier (e.g. the 1.6 security extensions: signing certificate against the
        ManufacturerRootCertificate, then the signature). The adapter is built after the
        flow, so it is looked up here; without one a signed image is never installed."""
        verify = getattr(self.adapter, "verify_firmware", None)
        if verify is None:
            log.error("signed firmware update but the protocol adapter cannot verify it")
            return False
        return bool(await verify(path, request))

    async def _firmware_reboot(self) -> None:
        """The firmware flow's reboot port: as a Reset Hard, transactions stopped (none runs
        by then), then ``[system] reboot_command`` (see :meth:`shutdown`)."""
        log.warning("firmware installed: rebooting")
        self._on_reset("Hard")

    def status_line(self) -> str:
        """One line for systemd's STATUS=: CSMS link and every connector's session state."""
        link = self.adapter.describe()["state"] if self.adapter is not None else "down"
        conns = ", ".join(f"{c.id}: {c.state}" for c in self.station.connectors.values()
                          ) if self.station is not None else "starting"
        return f"CSMS {link}; connector {conns}"

    def request_stop(self) -> None:
        """Ask the daemon to shut down (signal handlers call this)."""
        self._stop.set()

    def _on_reset(self, kind: str) -> None:
        self.reset_kind = kind
        self._stop.set()

    async def wait(self) -> None:
        """Run until a stop is requested."""
        await self._stop.wait()

    async def shutdown(self) -> None:
        """Open contactors, stop running transactions (queued for the CSMS), close all."""
        self.notifier.stopping("stopping: contactors opening")
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.board is not None:
            for hw in self.board.connectors:
                hw.contactor.open()
        if self.station is not None:
            cause = {"Hard": StopCause.RESET_HARD, "Soft": StopCause.RESET_SOFT}.get(
                self.reset_kind or "", StopCause.REBOOT)
            await self.station.stop_all(cause)
        for engine in (self.firmware, self.diagnostics):
            if engine is not None:
                await engine.close()
        if self.adapter is not None:
            try:
                await self.adapter.close()
            except sqlite3.Error as exc:  # a full disk must not stop the shutdown
                log.error("state not stored at shutdown: %s", exc)
        if self._link_task is not None:
            # Cancel until it is done: on Python 3.11 ``asyncio.wait_for`` (inside the ocpp
            # library's call) can swallow a cancellation that races with its result, which
            # left the link task, and shutdown, waiting forever.
            while not self._link_task.done():
                self._link_task.cancel()
                await asyncio.wait({self._link_task}, timeout=0.5)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                self._link_task.result()
        if self.control is not None:
            await self.control.close()
        if self.station is not None:
            await self.station.close()
        if self.board is not None:
            self.board.close()
        if self.db is not None:
            self.db.close()
        if self.reset_kind == "Hard":
            try:
                await self.actions.reboot()
            except SystemActionError as exc:
                log.error("Reset Hard: %s; restarting the daemon instead", exc)
        log.info("stopped")

    # -- control socket -----------------------------------------------------------------
    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        async def status(_: dict[str, Any]) -> dict[str, Any]:
            assert self.station is not None and self.adapter is not None
            result: dict[str, Any] = {
                "station_id": self.config.station_id,
                "firmware_version": __version__,
                "uptime_s": round(time.monotonic() - self.started_at, 1),
                "csms": self.adapter.describe(),
                **self.station.describe(),
            }
            for conn in result["connectors"]:
                if conn["session"] is not None:
                    conn["session"]["transaction_id"] = self.adapter.transaction_ref(
                        conn["session"]["session_id"])
            if self.board is not None and self.board.simulator is not None:
                result["simulator"] = self.board.simulator.describe()
            return result

        def sim(action: Callable[..., None]) -> Callable[[dict[str, Any]], Any]:
            async def handler(params: dict[str, Any]) -> dict[str, Any]:
                if self.board is None or self.board.simulator is None:
                    raise ValueError("this daemon runs real hardware, not the simulator")
                action(self.board.simulator, params)
                return {}
            return handler

        def ev(s: Any, p: dict[str, Any]) -> None:
            if p["action"] == "pause":
                s.ev_pause(int(p["connector_id"]))
            elif p["action"] == "resume":
                s.ev_resume(int(p["connector_id"]))
            else:
                raise ValueError("action must be pause or resume")

        async def fault_reset(params: dict[str, Any]) -> dict[str, Any]:
            assert self.station is not None
            connector_id = int(params.get("connector_id", 0))
            report = await self.station.technician_reset_report(connector_id)
            if report is None:
                raise ValueError(f"no connector {connector_id}")
            return {"connectors": report}

        return {
            "status": status,
            "fault.reset": fault_reset,
            "sim.plug": sim(lambda s, p: s.plug(
                int(p["connector_id"]), float(p.get("max_current_a", 32.0)),
                int(p.get("phases", 3)),
                None if p.get("soc_percent") is None else float(p["soc_percent"]))),
            "sim.power_fail": sim(lambda s, p: s.power_fail(bool(p.get("lost", True)))),
            "sim.unplug": sim(lambda s, p: s.unplug(int(p["connector_id"]))),
            "sim.swipe": sim(lambda s, p: s.swipe(str(p["id_tag"]))),
            "sim.ev": sim(ev),
            "sim.fault": sim(lambda s, p: s.fault(int(p["connector_id"]), str(p["kind"]))),
            "sim.clear": sim(lambda s, p: s.clear(int(p["connector_id"]), str(p["kind"]))),
        }


async def _main(config: Config) -> str | None:
    daemon = Daemon(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.request_stop)
    try:
        await daemon.start()
        await daemon.wait()
    finally:
        await daemon.shutdown()
    return daemon.reset_kind


def run_daemon(config_path: str) -> int:
    """``evse run``: run until SIGTERM/SIGINT; returns the exit status.

    A Reset from the CSMS ends the run and re-executes the daemon (OCPP 1.6 §5.14).
    """
    try:
        config = load_checked_config(config_path)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return 1
    configure_logging(config.logging.level)
    try:
        return _run(config)
    finally:
        stop_logging()  # write what is queued (up to 5 s) before the process ends


def _run(config: Config) -> int:
    try:
        reset_kind = asyncio.run(_main(config))
    except BackendError as exc:
        log.critical("hardware: %s", exc)
        return 1
    except SchemaVersionError as exc:
        log.critical("state database: %s", exc)
        return 1
    if reset_kind is not None:
        if os.environ.get("INVOCATION_ID"):  # under systemd: Restart=on-failure restarts us
            log.warning("%s reset: exiting with %d for systemd to restart the service",
                        reset_kind, SOFT_RESET_EXIT_STATUS)
            return SOFT_RESET_EXIT_STATUS
        log.warning("%s reset: restarting", reset_kind)
        stop_logging()
        os.execv(sys.executable, [sys.executable, "-m", "evse", "run", "--config",
                                  str(config.path)])
    return 0
