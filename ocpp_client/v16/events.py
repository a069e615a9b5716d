"""Domain events → OCPP 1.6 CALLs: StatusNotification (§4.9), StartTransaction (§4.8),
MeterValues (§4.7), StopTransaction (§4.10), with the tables of :mod:`.mapping`.

The one place the core's session events become 1.6 messages. Transaction messages go into
the durable outbox (docs/offline-delivery.md); StatusNotification and session-less
MeterValues are live only (``live``), never queued: stale ones are dropped when the link
goes down and the current status of every connector is sent after each reconnect.
Timestamps come from the core's clock, which the CSMS time synchronizes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from ocpp.v16 import call

import ocpp_client.v16.mapping as mapping
from evse.clock import Clock
from evse.config import Config
from evse.domain import (
    AvailabilityChanged,
    DiagnosticsStatusChanged,
    DomainEvent,
    FirmwareStatusChanged,
    MeterSample,
    PowerSupplyChanged,
    ReadingContext,
    SessionStateChanged,
    TransactionStarted,
    TransactionStopped,
)
from evse.firmware_update import FirmwareStatus
from evse.station import Station
from ocpp_client.configuration import ConfigurationStore
from ocpp_client.queue import (
    KIND_BEGIN,
    KIND_OTHER,
    KIND_PERIODIC,
    KIND_START,
    KIND_STOP,
    Outbox,
)
from ocpp_client.v16 import firmware as v16_firmware
from ocpp_client.v16.meter_values import energy_value, iso_timestamp, meter_value
from ocpp_client.v16.transaction_data import TransactionData

_KIND = {
    ReadingContext.TRANSACTION_BEGIN: KIND_BEGIN,
    ReadingContext.PERIODIC: KIND_PERIODIC,
}


class EventMapper16:
    """Subscribes to the Station and turns its domain events into 1.6 CALLs.

    Args:
        station: the core (its connectors' offered current for MeterValues).
        config: connectors' phase counts.
        configuration: the 1.6 keys (MeterValuesSampledData, StopTxnSampledData).
        outbox: the durable queue of transaction messages.
        clock: the core's clock (timestamps, "synced" marks).
        online: the link is up and accepted (live messages only then).
        live: the queue of live CALLs the link's live sender empties.
        transaction_data: the samples kept for each transaction's StopTransaction.
    """

    def __init__(self, station: Station, config: Config, configuration: ConfigurationStore,
                 outbox: Outbox, clock: Clock, online: Callable[[], bool],
                 live: asyncio.Queue[Any], transaction_data: TransactionData) -> None:
        self.station = station
        self.config = config
        self.configuration = configuration
        self.outbox = outbox
        self.clock = clock
        self._online = online
        self._live = live
        self.transaction_data = transaction_data

    def on_event(self, event: DomainEvent) -> None:
        """The Station's subscriber."""
        # Timestamps this run stamped before its first CSMS time get corrected later; an
        # interrupted session's stop time comes from the DB and is kept as persisted.
        synced = self.clock.synced or (
            isinstance(event, TransactionStopped)
            and not self.clock.stamped_unsynced(event.timestamp))
        if isinstance(event, SessionStateChanged):
            if self._online():
                self._live.put_nowait(self.status_call(event))
        elif isinstance(event, PowerSupplyChanged) and event.lost:
            # The PowerLoss stops are queued: commit what is held before the power goes.
            self.outbox.flush()
        elif isinstance(event, AvailabilityChanged) and event.connector_id == 0:
            if self._online():
                self._live.put_nowait(self.station_status_call())
        elif isinstance(event, TransactionStarted):
            start: dict[str, Any] = {
                "connector_id": event.connector_id,
                "id_tag": event.id_tag,
                "meter_start": event.meter_start_wh,
                "timestamp": iso_timestamp(event.timestamp),
            }
            if event.reservation_id is not None:
                start["reservation_id"] = event.reservation_id  # §5.13: it is used
            self.outbox.put("StartTransaction", start, event.connector_id, event.session_id,
                            KIND_START, synced)
        elif isinstance(event, MeterSample):
            self.queue_meter_values(event)
        elif isinstance(event, TransactionStopped):
            payload: dict[str, Any] = {
                "meter_stop": event.meter_stop_wh,
                "timestamp": iso_timestamp(event.timestamp),
                "reason": mapping.stop_reason(event).value,
            }
            if event.id_tag:
                payload["id_tag"] = event.id_tag
            # What the transaction sampled (kept across a power cut), then its end value
            # (§6.50): from the reading at the stop, or after a power cut the energy
            # register of its last persisted reading.
            data = self.transaction_data.take(event.session_id)
            measurands = self.configuration.get_list("StopTxnSampledData")
            end = mapping.CONTEXT[ReadingContext.TRANSACTION_END].value
            if event.reading is not None and measurands:
                data.append(meter_value(event.reading, measurands, end,
                                        self._phases(event.connector_id)))
            elif (event.reading is None
                  and "Energy.Active.Import.Register" in measurands):
                data.append(energy_value(event.meter_stop_wh, event.timestamp, end))
            if data:
                payload["transaction_data"] = data
            self.outbox.put("StopTransaction", payload, event.connector_id, event.session_id,
                            KIND_STOP, synced)
        elif isinstance(event, FirmwareStatusChanged):
            # A signed update (request id set) is reported by the security extensions'
            # SignedFirmwareStatusNotification (whitepaper ed. 3) instead; Idle only when
            # triggered.
            if event.request_id is None:
                self.queue_call(v16_firmware.firmware_status_notification(event.status))
            elif event.status is not FirmwareStatus.IDLE:
                self.queue_call(v16_firmware.signed_firmware_status_notification(
                    event.status, event.request_id))
        elif isinstance(event, DiagnosticsStatusChanged) and event.request_id is None:
            self.queue_call(v16_firmware.diagnostics_status_notification(event.status))

    def queue_call(self, payload: Any) -> None:
        """Queue a FirmwareStatusNotification / DiagnosticsStatusNotification (OCPP 1.6 §4.4,
        §4.5) durably, station-wide (connector 0): a status reached while offline, or the
        Installed after the install reboot, reaches the CSMS once the link is up. None
        (a status 1.6 does not report) is ignored."""
        if payload is None:
            return
        fields = {k: v for k, v in dataclasses.asdict(payload).items() if v is not None}
        self.outbox.put(type(payload).__name__, fields, 0, None, KIND_OTHER,
                        self.clock.synced)

    def _phases(self, connector_id: int) -> int:
        for conn in self.config.connectors:
            if conn.id == connector_id:
                return conn.phases
        return 3

    def _meter_value(self, event: MeterSample, measurands: list[str]) -> dict[str, Any]:
        conn = self.station.connectors.get(event.connector_id)
        return meter_value(event.reading, measurands, mapping.CONTEXT[event.context].value,
                           self._phases(event.connector_id),
                           conn.offered_current_a() if conn else None, event.soc_percent)

    def queue_meter_values(self, event: MeterSample) -> None:
        """MeterValues for a sample: queued with a session, live without one. Clock-aligned
        samples carry MeterValuesAlignedData, the others MeterValuesSampledData (§9.1.17,
        §9.1.18); a transaction's samples are also kept for its StopTransaction
        (StopTxnSampledData / StopTxnAlignedData, §9.1.25, §9.1.26)."""
        aligned = event.context is ReadingContext.CLOCK_ALIGNED
        if event.session_id is not None and event.context in (
                ReadingContext.TRANSACTION_BEGIN, ReadingContext.PERIODIC,
                ReadingContext.CLOCK_ALIGNED):
            stop_measurands = self.configuration.get_list(
                "StopTxnAlignedData" if aligned else "StopTxnSampledData")
            if stop_measurands:
                self.transaction_data.add(event.session_id,
                                          self._meter_value(event, stop_measurands),
                                          self.clock.synced)
        measurands = self.configuration.get_list(
            "MeterValuesAlignedData" if aligned else "MeterValuesSampledData")
        if not measurands:
            return
        value = self._meter_value(event, measurands)
        payload = {"connector_id": event.connector_id, "meter_value": [value]}
        if event.session_id is None:
            if self._online():
                self._live.put_nowait(call.MeterValues(**payload))
            return
        self.outbox.put("MeterValues", payload, event.connector_id, event.session_id,
                        _KIND.get(event.context, KIND_OTHER), self.clock.synced)

    def station_status_call(self) -> call.StatusNotification:
        """Connector 0's StatusNotification: Unavailable while the station as a whole is
        out of service (ChangeAvailability connectorId 0, §5.2), else Available; errorCode
        ReaderFailure while a card reader fails (§7.6), else NoError."""
        reader = self.station.reader_health
        return call.StatusNotification(
            connector_id=0,
            error_code=mapping.ERROR_CODE[reader.fault] if reader.fault else "NoError",
            status="Available" if self.station.operative else "Unavailable",
            info=reader.info[:50] or None,
            timestamp=iso_timestamp(self.clock.now()))

    def status_call(self, event: SessionStateChanged) -> call.StatusNotification:
        """The StatusNotification for a session state change (status and errorCode derived
        by :func:`ocpp_client.v16.mapping.status_of`)."""
        status, error_code = mapping.status_of(event)
        return call.StatusNotification(
            connector_id=event.connector_id,
            error_code=error_code,
            status=status,
            info=event.info[:50] or None,
            # The core's clock, not the event's system time (which may say 1970).
            timestamp=iso_timestamp(self.clock.now()),
        )
