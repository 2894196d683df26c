"""Envelope helpers: typed data → CloudEvent → EventBridge entry.

Building goes through the ``cloudevents`` SDK so every event we emit is validated
against the CloudEvents 1.0 spec and serialized by its JSON format. Reading events back
(the EventBridge envelope, with Powertools' model) is the consumers' runtime:
:mod:`selfservice_runtime.parsing`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from selfservice_contracts.events import AnyEvent, TicketEventData, spec_for_data
from selfservice_contracts.request import ContractModel, utc_now

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

__all__ = [
    "EVENTBRIDGE_MAX_ENTRY_BYTES",
    "ContractError",
    "build_event",
    "to_cloudevent",
    "to_eventbridge_entry",
    "to_structured_json",
]

EVENTBRIDGE_MAX_ENTRY_BYTES = 256 * 1024
"""PutEvents entry size limit (Detail + DetailType + Source + Resources)."""

_FORMAT = JSONFormat()
_REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type", "time")


class ContractError(ValueError):
    """An event does not satisfy the contracts (malformed, unknown type, inconsistent)."""


def build_event(
    data: ContractModel,
    *,
    event_id: str | None = None,
    time: datetime | None = None,
) -> AnyEvent:
    """Wrap event data in its typed CloudEvent.

    ``type`` and ``source`` come from the catalog entry of the data's model; for ticket
    events the subject is the ticket reference and ``requestid`` the request id. Pass a
    deterministic ``event_id`` when a retry must produce the same event (consumers are
    idempotent on source + id).
    """
    spec = spec_for_data(data)
    attributes: dict[str, Any] = {
        "id": event_id or str(uuid.uuid4()),
        "source": spec.producer.source,
        "type": spec.type,
        "time": time or utc_now(),
        "data": data,
    }
    if isinstance(data, TicketEventData):
        attributes["subject"] = str(data.ticket)
        attributes["requestid"] = data.request_id
    try:
        return spec.event_model.model_validate(attributes)  # type: ignore[return-value]
    except ValidationError as exc:
        raise ContractError(f"cannot build {spec.type}: {exc}") from exc


def to_cloudevent(event: AnyEvent) -> CloudEvent:
    """The SDK's CloudEvent for a typed event (validated against the 1.0 spec)."""
    payload = event.model_dump(mode="json", exclude_none=True)
    data = payload.pop("data")
    payload["time"] = event.time
    try:
        return CloudEvent(payload, data)
    except BaseCloudEventException as exc:
        raise ContractError(f"{event.type} is not a valid CloudEvent: {exc}") from exc


def to_structured_json(event: AnyEvent) -> bytes:
    """CloudEvents structured-mode JSON (``application/cloudevents+json``)."""
    return _FORMAT.write(to_cloudevent(event))


def to_eventbridge_entry(
    event: AnyEvent, *, event_bus_name: str, trace_header: str | None = None
) -> PutEventsRequestEntryTypeDef:
    """A ``PutEvents`` entry: Source = producer, DetailType = CloudEvent type, Detail = event."""
    detail = to_structured_json(event).decode()
    entry: PutEventsRequestEntryTypeDef = {
        "Source": event.source,
        "DetailType": event.type,
        "Detail": detail,
        "EventBusName": event_bus_name,
        "Time": event.time,
    }
    if trace_header:
        entry["TraceHeader"] = trace_header
    size = len(detail.encode()) + len(event.type.encode()) + len(event.source.encode())
    if size > EVENTBRIDGE_MAX_ENTRY_BYTES:
        raise ContractError(
            f"{event.type} {event.id} is {size} bytes; EventBridge accepts at most "
            f"{EVENTBRIDGE_MAX_ENTRY_BYTES}"
        )
    return entry
