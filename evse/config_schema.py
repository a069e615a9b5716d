"""The configuration schema: every TOML key, its type, default, unit, range and meaning.

A JSON Schema (draft 2020-12), validated with ``jsonschema``. ``x-unit`` names the unit of a
number. ``docs/configuration.md`` is generated from this table, so docs and code agree.
Hardware-backend tables (``[hardware]`` pins, ``[connector.meter]`` transports) are declared
here too, by the backend's name.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def _num(default: float, minimum: float, maximum: float, unit: str, description: str) -> Schema:
    return {
        "type": "number",
        "default": default,
        "minimum": minimum,
        "maximum": maximum,
        "x-unit": unit,
        "description": description,
    }


def _int(default: int, minimum: int, maximum: int, unit: str, description: str) -> Schema:
    return {
        "type": "integer",
        "default": default,
        "minimum": minimum,
        "maximum": maximum,
        "x-unit": unit,
        "description": description,
    }


def _str(default: str, description: str, **extra: Any) -> Schema:
    return {"type": "string", "default": default, "description": description, **extra}


def _bool(default: bool, description: str) -> Schema:
    return {"type": "boolean", "default": default, "description": description}


def _argv(default: list[str], description: str, **extra: Any) -> Schema:
    return {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "minItems": 1,
        "default": default,
        "description": description,
        **extra,
    }


def _table(
    cls: str, properties: dict[str, Schema], description: str,
    required: list[str] | None = None,
) -> Schema:
    """A TOML table; ``cls`` names the typed settings class generated for it
    (``scripts/gen_settings.py``)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "description": description,
        "properties": properties,
        "required": required or [],
        "default": {},
        "x-class": cls,
    }


STATION = _table(
    "StationSettings",
    {
        "id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 48,
            "pattern": "^[A-Za-z0-9._:-]+$",
            "description": "Charge point identity; appended to [ocpp] url as OCPP-J requires "
            "(OCPP-J 1.6 §3.1.1). Letters, digits and . _ : - only.",
        },
        "state_dir": _str(
            "/var/lib/evse",
            "Directory for the state database and the control socket; relative paths resolve "
            "against the config file's directory.",
        ),
        "control_socket": _str(
            "",
            "Unix socket for `evse status` / `evse sim`; empty = <state_dir>/control.sock.",
        ),
        "vendor": _str(
            "OpenEVSE-Py", "chargePointVendor in BootNotification (≤ 20 chars).", maxLength=20
        ),
        "model": _str("SimBox", "chargePointModel in BootNotification (≤ 20 chars).", maxLength=20),
        "serial_number": _str(
            "", "chargePointSerialNumber in BootNotification (≤ 25 chars).", maxLength=25
        ),
        "max_current_a": _num(
            32.0, 6.0, 2000.0, "A", "Station / grid limit per phase, shared by all connectors."
        ),
    },
    "The charge point as a whole.",
    required=["id"],
)

OCPP = _table(
    "OcppSettings",
    {
        "url": {
            "type": "string",
            "pattern": "^wss?://",
            "description": "CSMS WebSocket endpoint: ws:// or wss://, a host, an optional "
            "port and path, no query or fragment; the station id is appended to its path. "
            "A password in it (ws://user:password@host/) is never shown in messages.",
        },
        "version": {
            "enum": ["1.6", "2.0.1"],
            "default": "1.6",
            "description": "OCPP version spoken: \"1.6\" (OCPP-J 1.6, subprotocol ocpp1.6) "
            "or \"2.0.1\" (OCPP 2.0.1, subprotocol ocpp2.0.1; variables from "
            "[ocpp201.variables]).",
        },
        "call_timeout_s": _num(
            30.0, 1.0, 600.0, "s", "How long to wait for a CALLRESULT before the CALL fails."
        ),
        "reconnect_min_s": _num(
            1.0, 0.1, 600.0, "s", "Shortest delay between reconnect attempts (backoff floor)."
        ),
        "reconnect_max_s": _num(
            60.0, 0.2, 3600.0, "s", "Longest delay between reconnect attempts (backoff cap)."
        ),
        "queue_max_messages": _int(
            100_000, 100, 10_000_000, "messages",
            "Bound of the durable transaction-message queue. Above it the queue is thinned: "
            "periodic MeterValues of the longest-queued session first (every second one), "
            "never StartTransaction, StopTransaction or a session's first / last meter value "
            "(docs/offline-delivery.md).",
        ),
        "queue_max_mb": _num(
            64.0, 0.1, 4096.0, "MB",
            "Bound of the transaction-message queue in payload megabytes (MiB); thinned as "
            "for queue_max_messages when exceeded.",
        ),
        "feature_profiles": {
            "type": "array",
            "items": {"type": "string",
                      "pattern": "^(Core|FirmwareManagement|LocalAuthListManagement|"
                                 "Reservation|SmartCharging|RemoteTrigger)$"},
            "uniqueItems": True,
            "contains": {"const": "Core"},
            "x-contains": 'a list that includes "Core"',
            "default": ["Core", "FirmwareManagement", "LocalAuthListManagement",
                        "Reservation", "SmartCharging", "RemoteTrigger"],
            "description": "OCPP 1.6 feature profiles the station offers (reported in the "
            "read-only key SupportedFeatureProfiles). Core is required. A profile left out is "
            "switched off: its CSMS calls are answered NotSupported and its configuration keys "
            "are left out of GetConfiguration (OCPP 1.6 §9).",
        },
        "configuration": {
            "type": "object",
            "default": {},
            "description": "Defaults for OCPP configuration keys, by the specification's key "
            "names and types (e.g. MeterValueSampleInterval = 60). A key the CSMS changes "
            "overrides it until the value here changes.",
            "additionalProperties": {"type": ["boolean", "integer", "string"]},
        },
    },
    "The link to the CSMS.",
    required=["url"],
)

OCPP201 = _table(
    "Ocpp201Settings",
    {
        "variables": {
            "type": "object",
            "default": {},
            "description": "OCPP 2.0.1 only: defaults for device model variables, keyed "
            "\"Component.Variable\" (e.g. \"OCPPCommCtrlr.HeartbeatInterval\" = 300, "
            "\"TxCtrlr.TxStartPoint\" = \"PowerPathClosed\"; see "
            "docs/ocpp201-device-model.md for the key syntax with instances, EVSEs and "
            "attributes). A value the CSMS sets overrides it until the value here changes.",
            "additionalProperties": {"type": ["boolean", "integer", "number", "string"]},
        },
    },
    "OCPP 2.0.1 settings (used with [ocpp] version = \"2.0.1\").",
)


def _pin(default: int, description: str) -> Schema:
    return _int(default, -1, 53, "BCM GPIO", description + " (-1 = not wired).")


READER = _table(
    "ReaderSettings",
    {
        "driver": {
            "enum": ["none", "pn532", "line"],
            "default": "none",
            "description": "RFID reader on a serial port: \"pn532\" (NXP PN532 in HSU/UART "
            "mode), \"line\" (a reader that prints one UID per line) or \"none\".",
        },
        "device": _str("", "Serial device of the reader, e.g. /dev/serial0 or /dev/ttyUSB1."),
        "baudrate": _int(115200, 1200, 921600, "bit/s",
                         "Serial speed (PN532 HSU default 115200; line readers often 9600)."),
        "poll_interval_s": _num(0.2, 0.01, 5.0, "s", "PN532: time between card polls."),
        "debounce_s": _num(2.0, 0.0, 60.0, "s",
                           "The same card is reported again only after it was away this long."),
        "uppercase": _bool(True, "idTag hex digits in uppercase (the form CSMSs expect)."),
        "reverse_bytes": _bool(False, "Reverse the UID byte order (readers that print LSB first)."),
        "input_format": {
            "enum": ["hex", "decimal"],
            "default": "hex",
            "description": "Line readers: UID printed as hex bytes (separators : - . space "
            "allowed) or as one decimal number (4-byte UID).",
        },
    },
    "Station RFID reader ([hardware] driver = \"gpio\"); idTags are uppercase hex without "
    "separators.",
)

HARDWARE = _table(
    "HardwareSettings",
    {
        "driver": {
            "enum": ["sim", "gpio"],
            "description": "Board backend: \"sim\" (simulated board and EVs) or \"gpio\". "
            "Required: a missing driver never falls back to the simulator.",
        },
        "pin_factory": {
            "enum": ["lgpio", "rpigpio", "pigpio", "native", "mock"],
            "default": "lgpio",
            "description": "gpiozero pin factory of the gpio board. PWM on the CP pin: pigpio "
            "= DMA-timed (best on a Raspberry Pi, needs pigpiod), lgpio = software-timed "
            "(Pi 5 / any gpiochip), rpigpio = software PWM (too jittery), native = no PWM "
            "(use a UART pilot), mock = no hardware (tests, bench).",
        },
        "pigpio_host": _str("localhost", "pigpio daemon host (pin_factory = \"pigpio\")."),
        "pigpio_port": _int(8888, 1, 65535, "TCP port", "pigpio daemon port."),
        "power_fail_pin": _pin(-1, "Mains-loss input of a gpio board (UPS \"on battery\" "
                               "or supply-monitor output): when it goes active, running "
                               "transactions stop with reason PowerLoss while the hold-up "
                               "supply lasts"),
        "power_fail_active_high": _bool(
            True, "The level of power_fail_pin that means \"mains lost\" is high (false: "
            "low, e.g. an open-collector output with a pull-up)."),
        "reader": READER,
    },
    "The controller board.",
    required=["driver"],
)

_REGISTER = {
    "type": "object",
    "x-class": "ModbusRegisterSettings",
    "x-class-doc": "One Modbus register of a custom meter: where it is and how to read it.",
    "additionalProperties": False,
    "required": ["address"],
    "description": "One register: {address, type, scale}.",
    "properties": {
        "address": _int(0, 0, 65535, "register", "0-based register address as on the wire."),
        "type": {
            "enum": ["uint16", "int16", "uint32", "int32", "float32", "uint64", "int64"],
            "default": "float32",
            "description": "Encoding of the value.",
        },
        "scale": _num(1.0, -1e9, 1e9, "", "Multiply the raw value by this to get W, Wh, V or A."),
    },
}

_QUANTITIES = (
    ("energy_active_import", "Energy.Active.Import.Register, scaled to Wh (required)"),
    ("power_active", "total active power, scaled to W (required)"),
    ("voltage_l1", "L1-N voltage, V"),
    ("voltage_l2", "L2-N voltage, V"),
    ("voltage_l3", "L3-N voltage, V"),
    ("current_l1", "L1 current, A"),
    ("current_l2", "L2 current, A"),
    ("current_l3", "L3 current, A"),
)

CUSTOM_MODBUS = _table(
    "CustomModbusSettings",
    {
        "function": {
            "enum": ["input", "holding"],
            "default": "input",
            "description": "Register type: \"input\" (FC04) or \"holding\" (FC03).",
        },
        "word_order": {
            "enum": ["big", "little"],
            "default": "big",
            "description": "32/64-bit values: \"big\" = high word first, \"little\" = low "
            "word first.",
        },
        "max_gap": _int(0, 0, 100, "registers",
                        "Unmapped registers one read may span when merging neighbours."),
        **{name: {**_REGISTER, "description": text} for name, text in _QUANTITIES},
    },
    "Register map of model = \"custom\" Modbus meters: one inline table per quantity, e.g. "
    "energy_active_import = {address = 0x48, type = \"float32\", scale = 1000.0}.",
)

_SIGNAL = {
    "type": "object",
    "x-class": "CanSignalSettings",
    "x-class-doc": "One value in a CAN frame of a custom meter.",
    "additionalProperties": False,
    "required": ["id"],
    "properties": {
        "id": _int(0, 0, 0x1FFFFFFF, "CAN id", "Arbitration id of the frame."),
        "extended": _bool(False, "29-bit identifier."),
        "start": _int(0, 0, 7, "byte", "First data byte of the value."),
        "length": _int(4, 1, 8, "bytes", "Length of the value."),
        "signed": _bool(True, "Two's complement value."),
        "byte_order": {"enum": ["big", "little"], "default": "big",
                       "description": "\"big\" (Motorola) or \"little\" (Intel)."},
        "scale": _num(1.0, -1e9, 1e9, "", "Multiply the raw value by this to get W, Wh, V or A."),
    },
}

CUSTOM_CAN = _table(
    "CustomCanSettings",
    {name: {**_SIGNAL, "description": text} for name, text in _QUANTITIES},
    "Signal map of model = \"custom\" CAN meters: one inline table per quantity, e.g. "
    "energy_active_import = {id = 0x528, start = 2, length = 4, scale = 1.0}.",
)

METER = _table(
    "MeterSettings",
    {
        "driver": {
            "enum": ["sim", "modbus-tcp", "modbus-rtu", "can"],
            "default": "sim",
            "description": "Meter backend; \"sim\" integrates the simulated EV's power.",
        },
        "model": {
            "enum": ["sdm630", "sdm72dm", "abb-b23", "em340", "ivt-s", "custom"],
            "default": "sdm630",
            "description": "Meter model: Eastron SDM630 v2 / SDM72D-M v2, ABB B23, Carlo "
            "Gavazzi EM340 (Modbus), Isabellenhütte IVT-S (CAN), or \"custom\" with "
            "[connector.meter.custom] (Modbus) / [connector.meter.signals] (CAN).",
        },
        "host": _str("", "Modbus TCP: meter or gateway address (required for modbus-tcp)."),
        "port": _int(502, 1, 65535, "TCP port", "Modbus TCP port."),
        "unit_id": _int(1, 0, 247, "unit id", "Modbus unit (slave) id."),
        "device": _str("", "Modbus RTU: serial device, e.g. /dev/ttyUSB0 (required for "
                       "modbus-rtu)."),
        "baudrate": _int(9600, 1200, 921600, "bit/s", "Modbus RTU serial speed."),
        "parity": {"enum": ["N", "E", "O"], "default": "N",
                   "description": "Modbus RTU parity: N(one), E(ven) or O(dd)."},
        "stopbits": _int(1, 1, 2, "bits", "Modbus RTU stop bits."),
        "rs485_rts": _bool(False, "Drive RTS for RS-485 direction (adapters without automatic "
                           "direction control)."),
        "interface": _str("socketcan", "CAN: python-can interface (socketcan on boards, "
                          "virtual for tests)."),
        "channel": _str("can0", "CAN: channel (interface name), e.g. can0."),
        "bitrate": _int(500000, 10000, 1000000, "bit/s", "CAN bitrate (IVT-S default 500k)."),
        "timeout_s": _num(1.0, 0.05, 30.0, "s", "Modbus: answer timeout; CAN: oldest "
                          "acceptable frame."),
        "poll_interval_s": _num(1.0, 0.0, 3600.0, "s", "Modbus: minimum time between bus "
                                "reads (reads within it share the last answer)."),
        "frozen_after_s": _num(30.0, 0.0, 3600.0, "s", "All values unchanged this long while "
                               "current flows = meter frozen (0 disables)."),
        "custom": CUSTOM_MODBUS,
        "signals": CUSTOM_CAN,
    },
    "The connector's energy meter.",
)

# [station] keys of load balancing (issue 11), added here because the grid meter is a METER.
STATION["properties"].update({
    "nominal_voltage_v": _num(
        230.0, 100.0, 400.0, "V", "Nominal phase-to-neutral voltage: converts charging "
        "profile limits in W to A per phase (W = A × V × phases)."),
    "grid_limit_a": _num(
        0.0, 0.0, 10000.0, "A", "Grid connection limit per phase for dynamic load "
        "balancing with [station.grid_meter]: the connectors share min(max_current_a, "
        "grid_limit_a − measured non-EV load). 0 = no grid meter."),
    "grid_meter": {
        **METER,
        "description": "The grid-side meter (any meter backend; read when grid_limit_a > 0): "
        "its per-phase current minus the connectors' is the non-EV load.",
    },
})

PILOT = _table(
    "PilotSettings",
    {
        "mode": {"enum": ["adc", "uart"], "default": "adc",
                 "description": "\"adc\": PWM pin + SPI ADC sampled on a thread; \"uart\": "
                 "pilot co-processor (see hal/gpio/pilot_uart.py for its line protocol)."},
        "pwm_pin": _pin(18, "PWM output driving the ±12 V CP stage (GPIO18 = PWM0 on a Pi)"),
        "pwm_active_high": _bool(True, "Pin high gives +12 V on the CP line."),
        "adc_chip": {"enum": ["mcp3008", "mcp3208"], "default": "mcp3008",
                     "description": "SPI ADC sampling the CP divider (10 or 12 bit)."},
        "adc_channel": _int(0, 0, 7, "channel", "ADC channel of the CP divider."),
        "spi_port": _int(0, 0, 1, "SPI bus", "SPI bus of the ADC."),
        "spi_device": _int(0, 0, 2, "chip select", "SPI chip select of the ADC."),
        "adc_vref_v": _num(3.3, 1.0, 5.5, "V", "ADC reference voltage."),
        "adc_offset_v": _num(1.65, -5.0, 5.5, "V", "ADC input voltage for 0 V on the CP line."),
        "adc_divider": _num(8.0, 0.1, 100.0, "V/V", "CP volts per ADC volt: "
                            "pilot_v = (adc_v − adc_offset_v) × adc_divider."),
        "samples": _int(16, 2, 256, "conversions", "Conversions per sampling burst."),
        "period_s": _num(0.005, 0.0005, 0.1, "s", "Time between sampling bursts."),
        "debounce": _int(3, 1, 20, "bursts", "Bursts that must agree before a state change."),
        "hysteresis_v": _num(0.4, 0.0, 1.5, "V", "Widening of the current state's band."),
        "device": _str("", "mode = \"uart\": serial device of the co-processor."),
        "baudrate": _int(115200, 1200, 921600, "bit/s", "mode = \"uart\": serial speed."),
    },
    "Control pilot wiring.",
)

CONTACTOR = _table(
    "ContactorSettings",
    {
        "pin": _pin(17, "Contactor coil output (active-high, pull-down in hardware)"),
        "active_high": _bool(True, "Output level that closes the contactor."),
        "feedback_pin": _pin(-1, "Mirror-contact input"),
        "feedback_active_high": _bool(True, "Feedback level that means \"closed\"."),
        "feedback_pull_up": _bool(False, "Use the SoC pull-up on the feedback input "
                                  "(else pull-down)."),
        "fault_after_s": _num(1.0, 0.05, 10.0, "s", "Feedback disagreeing longer than this = "
                              "welded / failed-to-close contactor."),
    },
    "Contactor wiring.",
)

RCD = _table(
    "RcdSettings",
    {
        "trip_pin": _pin(27, "Trip / fault output of the RCD or RDC-DD module"),
        "trip_active_high": _bool(True, "Trip input level that means \"tripped\"."),
        "test_pin": _pin(22, "Test input of the module (self-test)"),
        "reset_pin": _pin(-1, "Reset input of the module"),
        "test_active_high": _bool(True, "Level that activates test / reset."),
        "trip_window_s": _num(0.5, 0.01, 5.0, "s", "Self-test: trip expected within this."),
        "clear_window_s": _num(1.0, 0.01, 10.0, "s", "Self-test: trip must clear within this "
                               "after release."),
    },
    "Residual current device wiring.",
)

LOCK = _table(
    "LockSettings",
    {
        "lock_pin": _pin(5, "Motor output towards \"locked\""),
        "unlock_pin": _pin(6, "Motor output towards \"unlocked\""),
        "feedback_pin": _pin(13, "Lock feedback switch input"),
        "feedback_active_high": _bool(True, "Feedback level that means \"locked\"."),
        "timeout_s": _num(1.0, 0.05, 10.0, "s", "Feedback must follow within this, else "
                          "ConnectorLockFailure."),
    },
    "Cable lock wiring (used when [[connector]] lock = true).",
)

TEMPERATURE = _table(
    "TemperatureSettings",
    {
        "sensor": {"enum": ["none", "ds18b20", "adc"], "default": "none",
                   "description": "Temperature sensor for derating."},
        "w1_id": _str("", "DS18B20 1-Wire id (28-...); empty = the only one present."),
        "adc_chip": {"enum": ["mcp3008", "mcp3208"], "default": "mcp3008",
                     "description": "ADC of an analog sensor."},
        "adc_channel": _int(1, 0, 7, "channel", "ADC channel of an analog sensor."),
        "spi_port": _int(0, 0, 1, "SPI bus", "SPI bus of the ADC."),
        "spi_device": _int(0, 0, 2, "chip select", "SPI chip select of the ADC."),
        "offset_v": _num(0.5, -5.0, 5.0, "V", "Analog sensor output at 0 °C (TMP36: 0.5)."),
        "degrees_per_volt": _num(100.0, -1000.0, 1000.0, "°C/V", "Analog sensor slope."),
    },
    "Temperature sensor wiring.",
)

GPIO = _table(
    "GpioSettings",
    {
        "pilot": PILOT,
        "contactor": CONTACTOR,
        "rcd": RCD,
        "lock": LOCK,
        "temperature": TEMPERATURE,
    },
    "Wiring of this connector on a [hardware] driver = \"gpio\" board (BCM pin numbers).",
)

CONNECTOR = _table(
    "ConnectorSettings",
    {
        "id": {
            "type": "integer",
            "minimum": 1,
            "maximum": 32,
            "description": "OCPP connectorId (1, 2, ...; 0 is the station).",
        },
        "evse_id": {
            "type": "integer",
            "minimum": 1,
            "maximum": 32,
            "default": None,
            "description": "Id of the EVSE this connector belongs to (OCPP 2.0.1 evseId; "
            "one connector per EVSE). Default: the connector's id.",
        },
        "max_current_a": _num(
            32.0, 6.0, 80.0, "A", "Rated current per phase of the connector and its cable."
        ),
        "phases": _int(3, 1, 3, "phases", "Number of phases wired to the connector."),
        "lock": _bool(False, "A socket outlet with a cable lock (Type 2 socket)."),
        "ventilation": _bool(
            False,
            "Ventilation is available: an EV in state D (+3 V, IEC 61851-1 A.2.2) may be "
            "energized. Without it state D is a fault and the contactor stays open.",
        ),
        "meter": METER,
        "gpio": GPIO,
    },
    "One connector (EVSE outlet).",
    required=["id"],
)

IEC61851 = _table(
    "evse.iec61851.Iec61851Settings",
    {
        "pwm_off_timeout_s": _num(
            6.0, 0.0, 6.0, "s",
            "PWM withdrawn (stop, pause) while the EV stays in state C: the contactor is forced "
            "open after this long (IEC 61851-1 Table A.6, seq. 10.2: at most 6 s). 0 = open "
            "at once without waiting for the EV to go to B.",
        ),
        "duty_change_interval_s": _num(
            5.0, 5.0, 60.0, "s",
            "Shortest time between two PWM duty changes (IEC 61851-1 A.5.2: the EV has 5 s "
            "to follow a change). Stopping PWM is never delayed.",
        ),
        "state_f_min_s": _num(
            0.3, 0.3, 10.0, "s",
            "Minimum time the pilot stays in state F (−12 V) after a fault before it may "
            "return to +12 V (IEC 61851-1 A.5.3: ≥ 300 ms).",
        ),
        "fault_retry_s": _num(
            30.0, 5.0, 3600.0, "s",
            "Delay before a self-clearing fault (pilot state E, diode, ventilation, "
            "over-current, lock, contactor failed to close) is retried.",
        ),
        "rcd_retry_s": _num(
            300.0, 60.0, 86400.0, "s",
            "Delay before the connector retries after a residual current trip (the RCD "
            "must report clear by then).",
        ),
        "rcd_max_trips": _int(
            3, 1, 10, "trips",
            "Residual current trips after which the fault latches until a technician clears "
            "it (`evse fault reset`); a CSMS command cannot clear it.",
        ),
        "rcd_self_test": {
            "enum": ["every_session", "never"],
            "default": "every_session",
            "description": "RCD self-test before the contactor closes for a session "
            "(IEC 62955 RDC-DD): \"every_session\" or \"never\" (a device testing "
            "itself). A failed test latches a GroundFailure until a technician clears it.",
        },
        "overcurrent_margin_percent": _num(
            10.0, 0.0, 20.0, "%",
            "Over-current tolerance: the EV may draw the offered current plus this share of "
            "it, plus overcurrent_margin_a.",
        ),
        "overcurrent_margin_a": _num(
            0.5, 0.0, 2.0, "A", "Over-current tolerance added to the percentage, amperes."
        ),
        "overcurrent_time_s": _num(
            7.0, 1.0, 10.0, "s",
            "Drawing more than offered current + margins for longer than this stops charging "
            "with OverCurrentFailure.",
        ),
        "derating_start_c": _num(
            60.0, 30.0, 100.0, "°C",
            "Connector temperature at which the offered current starts to be reduced.",
        ),
        "derating_step_c": _num(
            5.0, 1.0, 20.0, "°C", "Each further step of this size reduces the current again."
        ),
        "derating_step_percent": _num(
            25.0, 5.0, 50.0, "%",
            "Reduction per derating step, as a share of the connector's rated current "
            "(below 6 A the connector pauses: SuspendedEVSE).",
        ),
        "overtemp_trip_c": _num(
            80.0, 40.0, 120.0, "°C",
            "Temperature at which the contactor opens at once (HighTemperature fault).",
        ),
        "overtemp_hysteresis_c": _num(
            10.0, 2.0, 30.0, "°C",
            "The HighTemperature fault clears once the temperature is this far below "
            "overtemp_trip_c.",
        ),
        "meter_failure": {
            "enum": ["stop", "continue"],
            "default": "stop",
            "description": "A failing energy meter (PowerMeterFailure): \"stop\" faults the "
            "connector (running transactions stop), \"continue\" keeps charging without "
            "metering and reports the error code with the status.",
        },
    },
    "IEC 61851-1 connector behaviour: timings, fault retry policy, derating. Every timer "
    "is bounded to the range the standard allows.",
)

SECURITY = _table(
    "SecuritySettings",
    {
        "authorization_key_file": _str(
            "",
            "File holding the AuthorizationKey (HTTP Basic auth password of security "
            "profiles 1 and 2; 16-40 printable ASCII characters), mode 0600; the key itself "
            "never goes into the TOML. A key the CSMS sets with ChangeConfiguration "
            "replaces it (kept in the state directory, 0600). Relative paths resolve against "
            "the config file's directory. Empty = none (OCPP 1.6 security whitepaper ed. 3).",
        ),
        "csms_root_ca": _str(
            "",
            "PEM file of the root certificate(s) trusted for the CSMS's TLS server "
            "certificate (profiles 2 and 3), imported once into the certificate store; the "
            "CSMS manages them from then on (InstallCertificate CentralSystemRootCertificate). "
            "The system trust store is not used. Empty = none.",
        ),
        "client_cert": _str(
            "",
            "PEM file of the charge point's TLS client certificate (profile 3; chain, leaf "
            "first) used until the CSMS installs one through SignCertificate / "
            "CertificateSigned. Empty = none.",
        ),
        "client_key": _str(
            "",
            "PEM file of the private key of client_cert, mode 0600. Empty = none.",
        ),
        "use_system_trust_store": _bool(
            False,
            "Also trust the operating system's root certificates for the CSMS's TLS server "
            "certificate (profiles 2 and 3). Off by default: only the CSMS roots of the "
            "certificate store. With SecurityProfile 0, a wss:// URL and no csms_root_ca "
            "the system store is used (no security profile promises anything there).",
        ),
    },
    "OCPP security (1.6 security whitepaper ed. 3): credentials and trust anchors for "
    "[ocpp.configuration] SecurityProfile 1-3.",
)

LOGGING = _table(
    "LoggingSettings",
    {
        "level": {
            "enum": ["debug", "info", "warning", "error"],
            "default": "info",
            "description": "Log level of the daemon.",
        },
        "diagnostics_units": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "default": ["evse.service"],
            "description": "systemd units whose journal goes into a diagnostics archive "
            "(OCPP 1.6 GetDiagnostics) when journalctl is available.",
        },
        "diagnostics_files": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "pattern": "^/"},
            "default": [],
            "description": "Absolute paths of log files put into a diagnostics archive when "
            "the journal is not available (lines outside the requested window left out). "
            "Configuration, key, certificate and database files are never included.",
        },
    },
    "Logging.",
)

SYSTEM = _table(
    "SystemSettings",
    {
        "reboot_command": _argv(
            ["systemctl", "reboot"],
            "Command (argv list, no shell) that reboots the board for an OCPP Reset Hard. "
            "The evse user may run `systemctl reboot` through the polkit rule installed with "
            "the service.",
            items={"type": "string", "minLength": 1, "pattern": "^[^{}]*$"},
        ),
        "reboot_timeout_s": _num(
            60.0, 1.0, 3600.0, "s", "How long the reboot command may run before it is killed."
        ),
        "firmware_install_command": _argv(
            ["rauc", "install", "{file}"],
            "Command (argv list, no shell) that installs a downloaded firmware image for OCPP "
            "UpdateFirmware; {file} is replaced by the image's path. Alternatives: "
            '["swupdate", "-i", "{file}"] (SWUpdate), or a vendor script.',
            items={"type": "string", "minLength": 1, "pattern": "^([^{}]|\\{file\\})*$"},
            contains={"type": "string", "pattern": "\\{file\\}"},
        ),
        "firmware_install_timeout_s": _num(
            1800.0,
            10.0,
            14400.0,
            "s",
            "How long the firmware install command may run before it is killed.",
        ),
    },
    "Board-level actions requested by the CSMS (reboot, firmware install).",
)

SCHEMA: Schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["station", "ocpp", "hardware", "connector"],
    "properties": {
        "station": STATION,
        "ocpp": OCPP,
        "ocpp201": OCPP201,
        "hardware": HARDWARE,
        "connector": {
            "type": "array",
            "minItems": 1,
            "description": "[[connector]] tables, one per connector.",
            "items": CONNECTOR,
        },
        "iec61851": IEC61851,
        "logging": LOGGING,
        "system": SYSTEM,
        "security": SECURITY,
    },
}
