"""The components and variables this station reports, as data (OCPP 2.0.1 device model).

Names, data types, units, mutability and required / optional status follow OCPP 2.0.1
Part 2 Appendices, "Referenced Components and Variables" (one table per controller; the
EVSE and Connector components from "Standardized Components"), cross-checked against the
required lists in EVerest libocpp's ``config/v2/component_config/standardized/*.json``.
The functional-block use cases that read each controller are named on its table.

Defaults are *ours* (the specification gives none for most variables); where a 1.6 key has
the same meaning they match the 1.6 defaults in :mod:`ocpp_client.v16.configuration`, so a
station behaves the same under both versions. valuesList entries are the values this
firmware supports, not every value the specification lists.

Switchable: SmartChargingCtrlr (engine in ``evse/smart_charging.py``, K01–K10 in
:mod:`.smart_charging`) and ReservationCtrlr (engine in ``evse/reservations.py``, H01–H04 in
:mod:`.reservation`) are included when their feature flag is set (both are by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ocpp_client.v201.characteristics import Characteristics, DataType
from ocpp_client.v201.device_model import (
    AttributeDef,
    AttributeType,
    ComponentRef,
    Mutability,
    VariableDef,
    VariableRef,
)

RO, WO, RW = Mutability.READ_ONLY, Mutability.WRITE_ONLY, Mutability.READ_WRITE
_APPX = "OCPP 2.0.1 Part 2 Appendices, Referenced Components and Variables"
_STD = "OCPP 2.0.1 Part 2 Appendices, Standardized Components"

#: MeasurandEnumType values the meter path delivers (same set as the 1.6 adapter).
MEASURANDS = ("Energy.Active.Import.Register", "Power.Active.Import", "Current.Import",
              "Voltage", "Current.Offered")

#: TxStartStopPointEnumType values the core's session events can express (E01–E15);
#: ParkingBayOccupancy and DataSigned have no sensor / signing behind them.
TX_POINTS = ("EVConnected", "Authorized", "PowerPathClosed", "EnergyTransfer")

#: The most charging profiles installed at once: SmartChargingCtrlr.Entries(ChargingProfiles)
#: maxLimit (K01: beyond it SetChargingProfile is Rejected).
MAX_CHARGING_PROFILES = 32

#: AvailabilityState values (ConnectorStatusEnumType-like option list, G01–G04).
AVAILABILITY_STATES = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")


@dataclass(frozen=True)
class ConnectorInfo:
    """A connector as configured: id on its EVSE, ConnectorEnumType text, phases."""

    connector_id: int
    connector_type: str
    supply_phases: int


@dataclass(frozen=True)
class EvseInfo:
    """An EVSE as configured: id (> 0), rated power (W), phases and its connectors."""

    evse_id: int
    max_power_w: float
    supply_phases: int
    connectors: tuple[ConnectorInfo, ...]


@dataclass(frozen=True)
class Features:
    """Optional controllers (declared, switched on when the feature exists)."""

    smart_charging: bool = True
    reservations: bool = True


def _var(component: ComponentRef | str, name: str, data_type: DataType, *,
         instance: str | None = None, unit: str | None = None, min_limit: float | None = None,
         max_limit: float | None = None, values: Sequence[str] | None = None,
         mutability: Mutability = RW, default: str | None = None, required: bool = False,
         persistent: bool = True, constant: bool = False, runtime: bool = False,
         reboot_required: bool = False, extra: Iterable[AttributeDef] = (),
         source: str = _APPX) -> VariableDef:
    comp = ComponentRef(component) if isinstance(component, str) else component
    actual = AttributeDef(AttributeType.ACTUAL, mutability, persistent, constant, default)
    return VariableDef(
        comp, VariableRef(name, instance),
        Characteristics(data_type, unit, min_limit, max_limit,
                        tuple(values) if values is not None else None),
        (actual, *extra), required=required, reboot_required=reboot_required,
        runtime=runtime, source=f"{source}, {comp.name}.{name}")


B, INT, D, S = DataType.BOOLEAN, DataType.INTEGER, DataType.DECIMAL, DataType.STRING
ML, SL, OL = DataType.MEMBER_LIST, DataType.SEQUENCE_LIST, DataType.OPTION_LIST


def _flag(component: str, name: str, default: str, *, mutability: Mutability = RW,
          required: bool = False) -> VariableDef:
    """Enabled / Available style booleans (optional on controllers)."""
    return _var(component, name, B, mutability=mutability, default=default, required=required,
                constant=mutability is RO)


def controller_definitions(identity: str) -> list[VariableDef]:
    """The required controllers (Part 2 Appendices), in report order.

    Args:
        identity: SecurityCtrlr.Identity (the Charging Station identity in the CSMS URL).
    """
    return [
        # OCPPCommCtrlr — B01–B04, B09–B12 (boot, heartbeat, offline, network profiles, reset)
        _var("OCPPCommCtrlr", "FileTransferProtocols", ML, mutability=RO, required=True,
             constant=True, values=("FTP", "FTPS", "HTTP", "HTTPS", "SFTP"),
             default="FTP,HTTP,HTTPS"),
        _var("OCPPCommCtrlr", "HeartbeatInterval", INT, unit="s", min_limit=1, default="300"),
        _var("OCPPCommCtrlr", "MessageTimeout", INT, instance="Default", unit="s", min_limit=1,
             mutability=RO, required=True, default="30"),
        _var("OCPPCommCtrlr", "MessageAttemptInterval", INT, instance="TransactionEvent",
             unit="s", min_limit=0, required=True, default="60"),
        _var("OCPPCommCtrlr", "MessageAttempts", INT, instance="TransactionEvent", min_limit=1,
             required=True, default="3"),
        # The new priority applies when the link is (re)established: RebootRequired.
        _var("OCPPCommCtrlr", "NetworkConfigurationPriority", SL, values=("1", "2"),
             required=True, default="1", reboot_required=True),
        _var("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", INT, min_limit=1,
             required=True, default="3"),
        _var("OCPPCommCtrlr", "OfflineThreshold", INT, unit="s", min_limit=0, required=True,
             default="60"),
        _var("OCPPCommCtrlr", "QueueAllMessages", B, default="false"),
        _var("OCPPCommCtrlr", "ResetRetries", INT, min_limit=0, required=True, default="3"),
        _var("OCPPCommCtrlr", "RetryBackOffRandomRange", INT, unit="s", min_limit=0,
             required=True, default="10"),
        _var("OCPPCommCtrlr", "RetryBackOffRepeatTimes", INT, min_limit=0, required=True,
             default="3"),
        _var("OCPPCommCtrlr", "RetryBackOffWaitMinimum", INT, unit="s", min_limit=0,
             required=True, default="5"),
        _var("OCPPCommCtrlr", "UnlockOnEVSideDisconnect", B, required=True, default="true"),
        _var("OCPPCommCtrlr", "WebSocketPingInterval", INT, unit="s", min_limit=0,
             required=True, default="60"),
        # TxCtrlr — E01–E15 (transaction start / stop points, timeouts)
        _var("TxCtrlr", "EVConnectionTimeOut", INT, unit="s", min_limit=0, required=True,
             default="120"),
        _var("TxCtrlr", "StopTxOnEVSideDisconnect", B, required=True, default="true"),
        _var("TxCtrlr", "StopTxOnInvalidId", B, required=True, default="true"),
        _var("TxCtrlr", "TxBeforeAcceptedEnabled", B, default="false"),
        # min_limit 1 (length): an empty start / stop point would never start / stop.
        _var("TxCtrlr", "TxStartPoint", ML, values=TX_POINTS, min_limit=1, required=True,
             default="PowerPathClosed"),
        _var("TxCtrlr", "TxStopPoint", ML, values=TX_POINTS, min_limit=1, required=True,
             default="EVConnected,Authorized"),
        # SampledDataCtrlr — J02 (meter values in TransactionEvent)
        _flag("SampledDataCtrlr", "Enabled", "true"),
        _var("SampledDataCtrlr", "TxEndedMeasurands", ML, values=MEASURANDS, required=True,
             default="Energy.Active.Import.Register"),
        _var("SampledDataCtrlr", "TxEndedInterval", INT, unit="s", min_limit=0, required=True,
             default="0"),
        _var("SampledDataCtrlr", "TxStartedMeasurands", ML, values=MEASURANDS, required=True,
             default="Energy.Active.Import.Register"),
        _var("SampledDataCtrlr", "TxUpdatedMeasurands", ML, values=MEASURANDS, required=True,
             default="Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage"),
        _var("SampledDataCtrlr", "TxUpdatedInterval", INT, unit="s", min_limit=0, required=True,
             default="60"),
        # AlignedDataCtrlr — J01 (clock-aligned meter values)
        _flag("AlignedDataCtrlr", "Enabled", "true"),
        _var("AlignedDataCtrlr", "Interval", INT, unit="s", min_limit=0, required=True,
             default="0"),
        _var("AlignedDataCtrlr", "Measurands", ML, values=MEASURANDS, required=True,
             default="Energy.Active.Import.Register"),
        _var("AlignedDataCtrlr", "SendDuringIdle", B, default="false"),
        _var("AlignedDataCtrlr", "TxEndedInterval", INT, unit="s", min_limit=0, required=True,
             default="0"),
        _var("AlignedDataCtrlr", "TxEndedMeasurands", ML, values=MEASURANDS, required=True,
             default=""),
        # AuthCtrlr — C01–C06, C09–C15
        _flag("AuthCtrlr", "Enabled", "true"),
        _var("AuthCtrlr", "AuthorizeRemoteStart", B, required=True, default="false"),
        _var("AuthCtrlr", "LocalAuthorizeOffline", B, required=True, default="true"),
        _var("AuthCtrlr", "LocalPreAuthorize", B, required=True, default="false"),
        _var("AuthCtrlr", "MasterPassGroupId", S, max_limit=36),  # IdToken max 36 chars
        _var("AuthCtrlr", "OfflineTxForUnknownIdEnabled", B, default="false"),
        _var("AuthCtrlr", "DisableRemoteAuthorization", B, default="false"),
        # AuthCacheCtrlr — C10, C12
        _flag("AuthCacheCtrlr", "Enabled", "true"),
        _flag("AuthCacheCtrlr", "Available", "true", mutability=RO),
        _var("AuthCacheCtrlr", "LifeTime", INT, unit="s", min_limit=0, default="86400"),
        # LocalAuthListCtrlr — D01–D04 (SendLocalList, GetLocalListVersion)
        _flag("LocalAuthListCtrlr", "Enabled", "true"),
        _flag("LocalAuthListCtrlr", "Available", "true", mutability=RO),
        _var("LocalAuthListCtrlr", "Entries", INT, mutability=RO, required=True,
             persistent=False, runtime=True, default="0"),
        _var("LocalAuthListCtrlr", "ItemsPerMessage", INT, mutability=RO, required=True,
             constant=True, min_limit=1, default="1000"),
        _var("LocalAuthListCtrlr", "BytesPerMessage", INT, mutability=RO, required=True,
             constant=True, min_limit=1, default="65536"),
        # DeviceDataCtrlr — B05–B08 (message limits of SetVariables / GetVariables / GetReport)
        *[_var("DeviceDataCtrlr", "ItemsPerMessage", INT, instance=message, mutability=RO,
               required=True, constant=True, min_limit=1, default="100")
          for message in ("GetReport", "GetVariables", "SetVariables")],
        *[_var("DeviceDataCtrlr", "BytesPerMessage", INT, instance=message, mutability=RO,
               required=True, constant=True, min_limit=256, default="65536")
          for message in ("GetReport", "GetVariables", "SetVariables")],
        _var("DeviceDataCtrlr", "ConfigurationValueSize", INT, mutability=RO, constant=True,
             min_limit=1, max_limit=1000, default="1000"),
        _var("DeviceDataCtrlr", "ReportingValueSize", INT, mutability=RO, constant=True,
             min_limit=1, max_limit=2500, default="2500"),
        # SecurityCtrlr — A01–A03
        _var("SecurityCtrlr", "OrganizationName", S, max_limit=64, required=True, default=""),
        _var("SecurityCtrlr", "CertificateEntries", INT, mutability=RO, required=True,
             persistent=False, runtime=True, default="0"),
        _var("SecurityCtrlr", "Identity", S, mutability=RO, max_limit=48, required=True,
             constant=True, runtime=True, default=identity),
        # 0 (below A00's 1–3): no credentials, ws:// or wss:// as the URL says (as in 1.6).
        # The commissioning profile comes from [ocpp201.variables]; the station stores a
        # raised profile once it connected with it (ocpp_client.v201.security).
        _var("SecurityCtrlr", "SecurityProfile", INT, mutability=RO, min_limit=0, max_limit=3,
             required=True, default="0"),
        # A01: the password is 16–40 characters; WriteOnly, never reported; kept as the
        # AuthorizationKey file, not in the device model table (ocpp_client.v201.security).
        _var("SecurityCtrlr", "BasicAuthPassword", S, mutability=WO, min_limit=16,
             max_limit=40, persistent=False),
        _var("SecurityCtrlr", "CertSigningWaitMinimum", INT, unit="s", min_limit=1,
             default="60"),
        _var("SecurityCtrlr", "CertSigningRepeatTimes", INT, min_limit=0, default="3"),
        # ClockCtrlr — B01 (time from BootNotification / Heartbeat)
        _var("ClockCtrlr", "DateTime", DataType.DATE_TIME, mutability=RO, required=True,
             persistent=False, runtime=True),
        _var("ClockCtrlr", "TimeSource", SL, values=("Heartbeat", "NTP", "RealTimeClock"),
             required=True, default="NTP,Heartbeat"),
    ]


def station_definitions(supply_phases: int, evses: Sequence[EvseInfo]) -> list[VariableDef]:
    """The ChargingStation, EVSE and Connector components (G01–G04 availability).

    Args:
        supply_phases: phases of the station's supply (0 = DC).
        evses: configured EVSEs with their connectors.
    """
    out = [
        _var("ChargingStation", "AvailabilityState", OL, values=AVAILABILITY_STATES,
             mutability=RO, required=True, persistent=False, runtime=True,
             default="Available", source=_STD),
        _var("ChargingStation", "Available", B, mutability=RO, required=True, constant=True,
             default="true", source=_STD),
        _var("ChargingStation", "SupplyPhases", INT, mutability=RO, min_limit=0, max_limit=3,
             required=True, constant=True, default=str(supply_phases), source=_STD),
        _var("ChargingStation", "Problem", B, mutability=RO, persistent=False, runtime=True,
             default="false", source=_STD),
    ]
    for evse in evses:
        e = ComponentRef("EVSE", evse_id=evse.evse_id)
        out += [
            _var(e, "AvailabilityState", OL, values=AVAILABILITY_STATES, mutability=RO,
                 required=True, persistent=False, runtime=True, default="Available",
                 source=_STD),
            _var(e, "Available", B, mutability=RO, required=True, constant=True,
                 default="true", source=_STD),
            # Actual: present power (W); MaxSet: the rated maximum, constant.
            _var(e, "Power", D, unit="W", min_limit=0, max_limit=evse.max_power_w,
                 mutability=RO, required=True, persistent=False, runtime=True, default="0",
                 extra=(AttributeDef(AttributeType.MAX_SET, RO, True, True,
                                     _decimal(evse.max_power_w)),), source=_STD),
            _var(e, "SupplyPhases", INT, mutability=RO, min_limit=0, max_limit=3,
                 required=True, constant=True, default=str(evse.supply_phases), source=_STD),
        ]
        for conn in evse.connectors:
            c = ComponentRef("Connector", evse_id=evse.evse_id, connector_id=conn.connector_id)
            out += [
                _var(c, "AvailabilityState", OL, values=AVAILABILITY_STATES, mutability=RO,
                     required=True, persistent=False, runtime=True, default="Available",
                     source=_STD),
                _var(c, "Available", B, mutability=RO, required=True, constant=True,
                     default="true", source=_STD),
                _var(c, "ConnectorType", S, mutability=RO, max_limit=20, required=True,
                     constant=True, default=conn.connector_type, source=_STD),
                _var(c, "SupplyPhases", INT, mutability=RO, min_limit=0, max_limit=3,
                     required=True, constant=True, default=str(conn.supply_phases),
                     source=_STD),
            ]
    return out


def optional_definitions(features: Features) -> list[VariableDef]:
    """SmartChargingCtrlr (K01–K10) and ReservationCtrlr (H01–H04) when switched on."""
    out: list[VariableDef] = []
    if features.smart_charging:
        out += [
            _flag("SmartChargingCtrlr", "Enabled", "true"),
            _flag("SmartChargingCtrlr", "Available", "true", mutability=RO),
            _var("SmartChargingCtrlr", "Entries", INT, instance="ChargingProfiles",
                 mutability=RO, required=True, persistent=False, runtime=True, default="0",
                 max_limit=MAX_CHARGING_PROFILES),
            _var("SmartChargingCtrlr", "LimitChangeSignificance", D, unit="Percent",
                 min_limit=0, max_limit=100, required=True, default="10"),
            _var("SmartChargingCtrlr", "PeriodsPerSchedule", INT, mutability=RO, min_limit=1,
                 required=True, constant=True, default="24"),
            _var("SmartChargingCtrlr", "ProfileStackLevel", INT, mutability=RO, min_limit=0,
                 required=True, constant=True, default="8"),
            _var("SmartChargingCtrlr", "RateUnit", ML, values=("A", "W"), mutability=RO,
                 required=True, constant=True, default="A,W"),
        ]
    if features.reservations:
        out += [
            _flag("ReservationCtrlr", "Enabled", "true"),
            _flag("ReservationCtrlr", "Available", "true", mutability=RO),
            _var("ReservationCtrlr", "NonEvseSpecific", B, mutability=RO, constant=True,
                 default="true"),
        ]
    return out


def all_definitions(identity: str, supply_phases: int, evses: Sequence[EvseInfo],
                    features: Features = Features()) -> list[VariableDef]:
    """Every definition of a station, in report order (controllers, station, options)."""
    return [*controller_definitions(identity), *station_definitions(supply_phases, evses),
            *optional_definitions(features)]


def _decimal(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
