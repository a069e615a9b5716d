"""Energy meters on a CAN bus (python-can): IVT-S or a user-defined signal map.

``[connector.meter]`` keys: ``driver = "can"``, ``model`` ("ivt-s" or "custom" with
``[connector.meter.signals]``), ``interface`` (python-can interface: "socketcan" on boards,
"virtual" in tests), ``channel`` ("can0"), ``bitrate``, ``timeout_s`` (oldest acceptable
frame age).

Frames are received on the meter's own thread; :meth:`CanMeter.read` assembles the latest
value of every signal and refuses (``PowerMeterFailure``) when one is missing or older than
``timeout_s``: a silent sensor never yields a stale value.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

import can

from hal.meter import EnergyMeter, MeterReading, PowerMeterFailure
from hal.meters.can_signals import CanSignal, custom_signals
from hal.meters.ivt_s import IVT_S_SIGNALS
from hal.meters.plausibility import ReadingGuard
from hal.settings import MeterSettings

log = logging.getLogger(__name__)


def _phases(values: Mapping[str, float], prefix: str) -> tuple[float, ...]:
    return tuple(values[f"{prefix}_l{i}"] for i in (1, 2, 3) if f"{prefix}_l{i}" in values)


class CanMeter(EnergyMeter):
    """A meter whose values arrive as cyclic CAN frames.

    Args:
        bus: an open python-can bus (the meter owns and shuts it down).
        signals: quantity → :class:`CanSignal`; must hold energy and power.
        timeout_s: a signal older than this is missing, s.
        guard: plausibility checks.
    """

    def __init__(
        self,
        bus: can.BusABC,
        signals: Mapping[str, CanSignal],
        timeout_s: float = 1.0,
        guard: ReadingGuard | None = None,
    ) -> None:
        self._bus = bus
        self._signals = dict(signals)
        self._by_id: dict[int, list[str]] = {}
        for name, sig in self._signals.items():
            self._by_id.setdefault(sig.can_id, []).append(name)
        self.timeout_s = timeout_s
        self._guard = guard or ReadingGuard()
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, float]] = {}  # name → (value, monotonic time)
        self._errors: dict[str, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="can-meter", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._bus.recv(timeout=0.1)
            except can.CanError as exc:
                log.error("CAN meter: receive failed: %s", exc)
                self._stop.wait(0.5)
                continue
            if msg is None or msg.is_error_frame:
                continue
            names = self._by_id.get(msg.arbitration_id)
            if not names:
                continue
            now = time.monotonic()
            for name in names:
                try:
                    value = self._signals[name].decode(bytes(msg.data))
                except ValueError as exc:
                    with self._lock:
                        self._errors[name] = (str(exc), now)
                        self._values.pop(name, None)
                    continue
                with self._lock:
                    self._values[name] = (value, now)
                    self._errors.pop(name, None)

    def read(self) -> MeterReading:
        """The latest value of every signal.

        Raises:
            PowerMeterFailure: a frame is missing, older than ``timeout_s``, flagged as an
                error by the sensor, or the values are implausible.
        """
        now = time.monotonic()
        values: dict[str, float] = {}
        with self._lock:
            for name, sig in self._signals.items():
                if name in self._errors:
                    raise PowerMeterFailure(f"{name}: {self._errors[name][0]}")
                entry = self._values.get(name)
                if entry is None:
                    raise PowerMeterFailure(f"{name}: no frame 0x{sig.can_id:X} received")
                value, seen = entry
                if now - seen > self.timeout_s:
                    raise PowerMeterFailure(
                        f"{name}: frame 0x{sig.can_id:X} missing for {now - seen:.1f} s"
                    )
                values[name] = value
        reading = MeterReading(
            energy_active_import_wh=values["energy_active_import"],
            power_active_w=values["power_active"],
            voltage_v=_phases(values, "voltage"),
            current_a=_phases(values, "current"),
            timestamp=time.time(),
        )
        return self._guard.check(reading)

    def close(self) -> None:
        """Stop the receive thread and shut the bus down."""
        self._stop.set()
        self._thread.join(2)
        self._bus.shutdown()


def create_meter(meter: MeterSettings) -> CanMeter:
    """Build a CAN meter from the ``[connector.meter]`` settings.

    Raises:
        ValueError: unknown model, or a custom map without energy/power.
        can.CanError: the interface cannot be opened.
    """
    model = meter.model
    if model == "ivt-s":
        signals: Mapping[str, CanSignal] = IVT_S_SIGNALS
    elif model == "custom":
        signals = custom_signals(meter.signals)
    else:
        raise ValueError(
            f"[connector.meter] model = {model!r}: not a CAN model (expected 'ivt-s' or 'custom')"
        )
    bus = can.Bus(interface=meter.interface, channel=meter.channel, bitrate=meter.bitrate)
    return CanMeter(
        bus,
        signals,
        timeout_s=meter.timeout_s,
        guard=ReadingGuard(frozen_after_s=meter.frozen_after_s),
    )
