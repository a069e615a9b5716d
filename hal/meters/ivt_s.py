"""Isabellenhütte IVT-S current / voltage / power / energy sensor: CAN profile as data.

Source: IVT-S datasheet, "CAN protocol" (factory default IDs, 500 kbit/s): result frames are
cyclic, 6 data bytes each::

    byte 0      mux id of the result (0x00 I, 0x01 U1, 0x02 U2, 0x03 U3, 0x04 T,
                0x05 W, 0x06 As, 0x07 Wh)
    byte 1      bits 0-3 message counter; bit 4 OCS; bit 5 channel error;
                bit 6 measurement error; bit 7 system error
    bytes 2-5   result, signed 32 bit, big-endian (Motorola)

Units on the wire: I mA, U mV, T 0.1 °C, W W, As As, Wh Wh.
"""

from __future__ import annotations

from hal.meters.can_signals import CanSignal

#: Status bits (byte 1) that make a result untrustworthy: channel, measurement, system error.
IVT_S_ERROR_MASK = 0xE0

#: IVT-S result frames as the quantities of a MeterReading (a DC meter: one "phase").
IVT_S_SIGNALS: dict[str, CanSignal] = {
    "current_l1": CanSignal(0x521, 2, 4, True, "big", 0.001, status_byte=1,
                            error_mask=IVT_S_ERROR_MASK),
    "voltage_l1": CanSignal(0x522, 2, 4, True, "big", 0.001, status_byte=1,
                            error_mask=IVT_S_ERROR_MASK),
    "power_active": CanSignal(0x526, 2, 4, True, "big", 1.0, status_byte=1,
                              error_mask=IVT_S_ERROR_MASK),
    "energy_active_import": CanSignal(0x528, 2, 4, True, "big", 1.0, status_byte=1,
                                      error_mask=IVT_S_ERROR_MASK),
}
