"""Modbus meter model profiles, held as data: one table per model, no code per model.

Each :class:`Profile` maps the quantities a :class:`hal.meter.MeterReading` needs to a
register (function code, address, encoding, scale to SI base units). Sources: the vendors'
public register maps, summarised in DESIGN.md "Facts for drivers":

* Eastron SDM630 Modbus Protocol v2 / SDM72D-M v2: FC04 input registers, IEEE-754 float32,
  high word first; energy in kWh.
* ABB B23/B24 user manual, "Modbus mapping": FC03 holding registers, unsigned/signed
  integers high word first, all-0xFFFF words = value not available.
* Carlo Gavazzi EM340 "Communication protocol": FC04, INT32 with the LOW word first.

A user-defined profile (``model = "custom"``) comes from the ``[connector.meter.custom]``
TOML table through :func:`custom_profile`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from hal.settings import CustomModbusSettings, ModbusRegisterSettings

#: Modbus function codes used by meters.
FC_HOLDING = 3
FC_INPUT = 4

#: Quantities a profile maps; the first two are required.
QUANTITIES = (
    "energy_active_import",  # Wh after scaling
    "power_active",  # W
    "voltage_l1",  # V
    "voltage_l2",
    "voltage_l3",
    "current_l1",  # A
    "current_l2",
    "current_l3",
)
REQUIRED_QUANTITIES = ("energy_active_import", "power_active")

#: Register count and struct code per data type.
DATA_TYPES: dict[str, tuple[int, str]] = {
    "uint16": (1, ">H"),
    "int16": (1, ">h"),
    "uint32": (2, ">I"),
    "int32": (2, ">i"),
    "float32": (2, ">f"),
    "uint64": (4, ">Q"),
    "int64": (4, ">q"),
}


class NotAvailable(ValueError):
    """The register holds the meter's "not available" marker (or NaN/inf)."""


@dataclass(frozen=True, slots=True)
class Register:
    """Where and how one quantity is stored.

    Attributes:
        address: 0-based register address (as on the wire).
        data_type: one of :data:`DATA_TYPES`.
        scale: multiply the raw number by this to get the quantity in W, Wh, V or A.
        function: 3 (holding registers) or 4 (input registers).
        word_order: "big" = high word first, "little" = low word first (bytes within a
            word are always big-endian, as Modbus sends them).
    """

    address: int
    data_type: str
    scale: float = 1.0
    function: int = FC_INPUT
    word_order: str = "big"

    @property
    def count(self) -> int:
        """Number of 16-bit registers the value occupies."""
        return DATA_TYPES[self.data_type][0]

    def decode(self, words: list[int]) -> float:
        """Decode ``words`` (exactly :attr:`count` registers) to a scaled value.

        Raises:
            NotAvailable: all words 0xFFFF on an integer type (ABB's "not available"), or a
                float NaN / infinity (Eastron's error value).
        """
        if len(words) != self.count:
            raise ValueError(f"expected {self.count} registers, got {len(words)}")
        ordered = list(reversed(words)) if self.word_order == "little" else list(words)
        raw = struct.pack(f">{len(ordered)}H", *ordered)
        value = struct.unpack(DATA_TYPES[self.data_type][1], raw)[0]
        if self.data_type != "float32" and all(w == 0xFFFF for w in words):
            raise NotAvailable("register holds the not-available marker (all 0xFFFF)")
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            raise NotAvailable(f"register holds {number}")
        return number * self.scale


@dataclass(frozen=True, slots=True)
class Profile:
    """A meter model: its registers by quantity and how far apart reads may be merged.

    ``max_gap`` is how many unmapped registers one read may span when merging neighbours
    (0 = only adjacent registers; some meters answer an exception for unmapped addresses).
    """

    name: str
    registers: Mapping[str, Register]
    max_gap: int = 0
    max_block: int = 60


def _f32(address: int, scale: float = 1.0) -> Register:
    return Register(address, "float32", scale, FC_INPUT, "big")


_EASTRON_V2 = {
    "voltage_l1": _f32(0x00),
    "voltage_l2": _f32(0x02),
    "voltage_l3": _f32(0x04),
    "current_l1": _f32(0x06),
    "current_l2": _f32(0x08),
    "current_l3": _f32(0x0A),
    "power_active": _f32(0x34),
    "energy_active_import": _f32(0x48, 1000.0),  # kWh → Wh
}


def _abb(address: int, data_type: str, scale: float) -> Register:
    return Register(address, data_type, scale, FC_HOLDING, "big")


def _em340(address: int, scale: float) -> Register:
    return Register(address, "int32", scale, FC_INPUT, "little")


#: Built-in profiles by ``[connector.meter] model`` name.
PROFILES: dict[str, Profile] = {
    "sdm630": Profile("Eastron SDM630 v2", _EASTRON_V2),
    "sdm72dm": Profile("Eastron SDM72D-M v2", _EASTRON_V2),
    "abb-b23": Profile(
        "ABB B23",
        {
            "voltage_l1": _abb(0x5B00, "uint32", 0.1),
            "voltage_l2": _abb(0x5B02, "uint32", 0.1),
            "voltage_l3": _abb(0x5B04, "uint32", 0.1),
            "current_l1": _abb(0x5B0C, "uint32", 0.01),
            "current_l2": _abb(0x5B0E, "uint32", 0.01),
            "current_l3": _abb(0x5B10, "uint32", 0.01),
            "power_active": _abb(0x5B14, "int32", 0.01),
            "energy_active_import": _abb(0x5000, "uint64", 10.0),  # 0.01 kWh → Wh
        },
        max_gap=8,
    ),
    "em340": Profile(
        "Carlo Gavazzi EM340",
        {
            "voltage_l1": _em340(0x00, 0.1),
            "voltage_l2": _em340(0x02, 0.1),
            "voltage_l3": _em340(0x04, 0.1),
            "current_l1": _em340(0x0C, 0.001),
            "current_l2": _em340(0x0E, 0.001),
            "current_l3": _em340(0x10, 0.001),
            "power_active": _em340(0x28, 0.1),
            "energy_active_import": _em340(0x34, 100.0),  # 0.1 kWh → Wh
        },
        max_gap=8,
    ),
}


def custom_profile(table: CustomModbusSettings) -> Profile:
    """Build a profile from a ``[connector.meter.custom]`` table.

    The table has ``function`` ("input" = FC04 or "holding" = FC03), ``word_order``
    ("big"/"little") and one inline table per quantity, e.g.
    ``energy_active_import = {address = 0x48, type = "float32", scale = 1000.0}``.

    Raises:
        ValueError: a required quantity is missing or a type is unknown (message names the key).
    """
    function = FC_HOLDING if table.function == "holding" else FC_INPUT
    word_order = table.word_order
    registers: dict[str, Register] = {}
    for quantity in QUANTITIES:
        spec: ModbusRegisterSettings | None = getattr(table, quantity)
        if spec is None:
            continue
        data_type = spec.type
        if data_type not in DATA_TYPES:
            raise ValueError(
                f"[connector.meter.custom] {quantity}.type = {data_type!r}: expected one of "
                f"{', '.join(DATA_TYPES)}"
            )
        registers[quantity] = Register(spec.address, data_type, spec.scale, function, word_order)
    for quantity in REQUIRED_QUANTITIES:
        if quantity not in registers:
            raise ValueError(f"[connector.meter.custom] {quantity}: required for model = 'custom'")
    return Profile("custom", registers, max_gap=table.max_gap)


def plan_reads(profile: Profile) -> list[tuple[int, int, int, list[str]]]:
    """Group a profile's registers into as few reads as its gaps allow.

    Returns ``(function, start_address, count, quantities)`` per read.
    """
    ordered = sorted(profile.registers.items(), key=lambda kv: (kv[1].function, kv[1].address))
    reads: list[tuple[int, int, int, list[str]]] = []
    for name, reg in ordered:
        if reads:
            fc, start, count, names = reads[-1]
            end = start + count
            new_end = max(end, reg.address + reg.count)
            if (
                fc == reg.function
                and reg.address - end <= profile.max_gap
                and new_end - start <= profile.max_block
            ):
                reads[-1] = (fc, start, new_end - start, [*names, name])
                continue
        reads.append((reg.function, reg.address, reg.count, [name]))
    return reads
