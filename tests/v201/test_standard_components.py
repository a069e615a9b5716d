"""The declared controllers match the 2.0.1 "Referenced Components and Variables" required
lists (expectations written out by hand from the specification, not from the table)."""

from __future__ import annotations

from ocpp_client.v201.device_model import AttributeType, Mutability
from ocpp_client.v201.standard_components import Features
from ocpp_client.v201.variables_requests import get_variables

from .conftest import ModelFactory, definitions

# (component, variable[instance]) → (dataType, unit) for every *required* variable.
REQUIRED = {
    ("OCPPCommCtrlr", "FileTransferProtocols"): ("MemberList", None),
    ("OCPPCommCtrlr", "MessageTimeout[Default]"): ("integer", "s"),
    ("OCPPCommCtrlr", "MessageAttemptInterval[TransactionEvent]"): ("integer", "s"),
    ("OCPPCommCtrlr", "MessageAttempts[TransactionEvent]"): ("integer", None),
    ("OCPPCommCtrlr", "NetworkConfigurationPriority"): ("SequenceList", None),
    ("OCPPCommCtrlr", "NetworkProfileConnectionAttempts"): ("integer", None),
    ("OCPPCommCtrlr", "OfflineThreshold"): ("integer", "s"),
    ("OCPPCommCtrlr", "ResetRetries"): ("integer", None),
    ("OCPPCommCtrlr", "RetryBackOffRandomRange"): ("integer", "s"),
    ("OCPPCommCtrlr", "RetryBackOffRepeatTimes"): ("integer", None),
    ("OCPPCommCtrlr", "RetryBackOffWaitMinimum"): ("integer", "s"),
    ("OCPPCommCtrlr", "UnlockOnEVSideDisconnect"): ("boolean", None),
    ("OCPPCommCtrlr", "WebSocketPingInterval"): ("integer", "s"),
    ("TxCtrlr", "EVConnectionTimeOut"): ("integer", "s"),
    ("TxCtrlr", "StopTxOnEVSideDisconnect"): ("boolean", None),
    ("TxCtrlr", "StopTxOnInvalidId"): ("boolean", None),
    ("TxCtrlr", "TxStartPoint"): ("MemberList", None),
    ("TxCtrlr", "TxStopPoint"): ("MemberList", None),
    ("SampledDataCtrlr", "TxEndedMeasurands"): ("MemberList", None),
    ("SampledDataCtrlr", "TxEndedInterval"): ("integer", "s"),
    ("SampledDataCtrlr", "TxStartedMeasurands"): ("MemberList", None),
    ("SampledDataCtrlr", "TxUpdatedMeasurands"): ("MemberList", None),
    ("SampledDataCtrlr", "TxUpdatedInterval"): ("integer", "s"),
    ("AlignedDataCtrlr", "Interval"): ("integer", "s"),
    ("AlignedDataCtrlr", "Measurands"): ("MemberList", None),
    ("AlignedDataCtrlr", "TxEndedInterval"): ("integer", "s"),
    ("AlignedDataCtrlr", "TxEndedMeasurands"): ("MemberList", None),
    ("AuthCtrlr", "AuthorizeRemoteStart"): ("boolean", None),
    ("AuthCtrlr", "LocalAuthorizeOffline"): ("boolean", None),
    ("AuthCtrlr", "LocalPreAuthorize"): ("boolean", None),
    ("LocalAuthListCtrlr", "Entries"): ("integer", None),
    ("LocalAuthListCtrlr", "ItemsPerMessage"): ("integer", None),
    ("LocalAuthListCtrlr", "BytesPerMessage"): ("integer", None),
    ("DeviceDataCtrlr", "ItemsPerMessage[GetReport]"): ("integer", None),
    ("DeviceDataCtrlr", "ItemsPerMessage[GetVariables]"): ("integer", None),
    ("DeviceDataCtrlr", "ItemsPerMessage[SetVariables]"): ("integer", None),
    ("DeviceDataCtrlr", "BytesPerMessage[GetReport]"): ("integer", None),
    ("DeviceDataCtrlr", "BytesPerMessage[GetVariables]"): ("integer", None),
    ("DeviceDataCtrlr", "BytesPerMessage[SetVariables]"): ("integer", None),
    ("SecurityCtrlr", "OrganizationName"): ("string", None),
    ("SecurityCtrlr", "CertificateEntries"): ("integer", None),
    ("SecurityCtrlr", "SecurityProfile"): ("integer", None),
    ("SecurityCtrlr", "Identity"): ("string", None),
    ("ClockCtrlr", "DateTime"): ("dateTime", None),
    ("ClockCtrlr", "TimeSource"): ("SequenceList", None),
    ("ChargingStation", "AvailabilityState"): ("OptionList", None),
    ("ChargingStation", "Available"): ("boolean", None),
    ("ChargingStation", "SupplyPhases"): ("integer", None),
    ("SmartChargingCtrlr", "Entries[ChargingProfiles]"): ("integer", None),
    ("SmartChargingCtrlr", "LimitChangeSignificance"): ("decimal", "Percent"),
    ("SmartChargingCtrlr", "PeriodsPerSchedule"): ("integer", None),
    ("SmartChargingCtrlr", "ProfileStackLevel"): ("integer", None),
    ("SmartChargingCtrlr", "RateUnit"): ("MemberList", None),
    **{(f"EVSE@{e}", v): t for e in (1, 2) for v, t in (
        ("AvailabilityState", ("OptionList", None)), ("Available", ("boolean", None)),
        ("Power", ("decimal", "W")), ("SupplyPhases", ("integer", None)))},
    **{(f"Connector@{e}/1", v): t for e in (1, 2) for v, t in (
        ("AvailabilityState", ("OptionList", None)), ("Available", ("boolean", None)),
        ("ConnectorType", ("string", None)), ("SupplyPhases", ("integer", None)))},
}


def test_required_variables_are_declared_with_spec_types() -> None:
    declared = {(str(d.component), str(d.variable)): d for d in definitions()}
    for key, (data_type, unit) in REQUIRED.items():
        assert key in declared, f"{key} missing"
        chars = declared[key].characteristics
        assert (chars.data_type.value, chars.unit) == (data_type, unit), key
        assert declared[key].required, key
    assert {k for k, d in declared.items() if d.required} == set(REQUIRED)


def test_every_definition_states_its_source_and_reports_a_value() -> None:
    for d in definitions():
        assert d.source.startswith("OCPP 2.0.1 Part 2"), d
        actual = d.attribute(AttributeType.ACTUAL)
        assert actual is not None, d
        if d.required and not d.runtime:
            assert actual.default is not None, d


def test_evse_power_has_a_constant_max_set(open_model: ModelFactory) -> None:
    power = next(d for d in definitions() if str(d.component) == "EVSE@1"
                 and d.variable.name == "Power")
    max_set = power.attribute(AttributeType.MAX_SET)
    assert max_set is not None and max_set.mutability is Mutability.READ_ONLY
    assert max_set.constant and max_set.default == "22080"


def test_optional_controllers_follow_their_feature_switch(open_model: ModelFactory) -> None:
    request = {"getVariableData": [
        {"component": {"name": "SmartChargingCtrlr"}, "variable": {"name": "Enabled"}},
        {"component": {"name": "ReservationCtrlr"}, "variable": {"name": "Enabled"}}]}
    # Both features exist in the core: both controllers by default.
    default = get_variables(open_model(), request)["getVariableResult"]
    assert [r["attributeStatus"] for r in default] == ["Accepted", "Accepted"]
    off = get_variables(open_model(features=Features(smart_charging=False,
                                                     reservations=False)),
                        request)["getVariableResult"]
    assert [r["attributeStatus"] for r in off] == ["UnknownComponent", "UnknownComponent"]
    switched = get_variables(open_model(features=Features(smart_charging=False,
                                                          reservations=True)),
                             request)["getVariableResult"]
    assert [r["attributeStatus"] for r in switched] == ["UnknownComponent", "Accepted"]
