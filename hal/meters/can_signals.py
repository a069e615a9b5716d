"""CAN signal maps: where a meter quantity sits in which frame, held as data."""

from __future__ import annotations

from dataclasses import dataclass

from hal.meters.profiles import QUANTITIES, REQUIRED_QUANTITIES
from hal.settings import CanSignalSettings, CustomCanSettings


@dataclass(frozen=True, slots=True)
class CanSignal:
    """One quantity in a CAN frame.

    Attributes:
        can_id: arbitration id of the frame (11-bit, or 29-bit when ``extended``).
        start: first data byte of the value.
        length: value length in bytes (1–8).
        signed: two's complement value.
        byte_order: "big" (Motorola) or "little" (Intel).
        scale: multiply the raw value by this to get W, Wh, V or A.
        status_byte: index of a status byte checked against ``error_mask`` (None = none).
        error_mask: status bits that mark the value as faulty.
        extended: 29-bit identifier.
    """

    can_id: int
    start: int
    length: int
    signed: bool = True
    byte_order: str = "big"
    scale: float = 1.0
    status_byte: int | None = None
    error_mask: int = 0
    extended: bool = False

    def decode(self, data: bytes) -> float:
        """The scaled value from a frame's data.

        Raises:
            ValueError: the frame is too short, or its status byte flags an error.
        """
        if len(data) < self.start + self.length:
            raise ValueError(f"frame 0x{self.can_id:X} too short ({len(data)} bytes)")
        if self.status_byte is not None and data[self.status_byte] & self.error_mask:
            raise ValueError(
                f"frame 0x{self.can_id:X} reports an error (status 0x{data[self.status_byte]:02X})"
            )
        chunk = data[self.start : self.start + self.length]
        if self.byte_order == "big":
            raw = int.from_bytes(chunk, "big", signed=self.signed)
        else:
            raw = int.from_bytes(chunk, "little", signed=self.signed)
        return raw * self.scale


def custom_signals(table: CustomCanSettings) -> dict[str, CanSignal]:
    """Build a signal map from ``[connector.meter.signals]`` (one inline table per quantity:
    ``{id, start, length, signed, byte_order, scale}``).

    Raises:
        ValueError: a required quantity is missing (message names the key).
    """
    signals: dict[str, CanSignal] = {}
    for quantity in QUANTITIES:
        spec: CanSignalSettings | None = getattr(table, quantity)
        if spec is None:
            continue
        signals[quantity] = CanSignal(
            can_id=spec.id,
            start=spec.start,
            length=spec.length,
            signed=spec.signed,
            byte_order=spec.byte_order,
            scale=spec.scale,
            extended=spec.extended,
        )
    for quantity in REQUIRED_QUANTITIES:
        if quantity not in signals:
            raise ValueError(f"[connector.meter.signals] {quantity}: required for model = 'custom'")
    return signals
