"""Envelope helpers: typed data → CloudEvent → EventBridge entry, and back.

Building goes through the ``cloudevents`` SDK so every event we emit is validated
against the CloudEvents 1.0 spec and serialized by its JSON format; parsing reads the
EventBridge envelope with Powertools' model, the ``detail`` with the SDK, then the
attributes and data into the discriminated union of typed events.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from selfservice_contracts.events import AnyEvent, TicketEventData, event_adapter, spec_for_data
from selfservice_contracts.request import ContractModel, utc_now

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

__all__ = [
    "EVENTBRIDGE_MAX_ENTRY_BYTES",
    "ContractError",
    "build_event",
    "parse_eventbridge_event",
    "parse_sqs_body",
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


def parse_eventbridge_event(raw: Mapping[str, Any] | str | bytes) -> AnyEvent:
    """Parse an EventBridge event whose ``detail`` is one of our CloudEvents.

    Raises :class:`ContractError` with a precise message on anything else: a broken
    envelope, a ``detail`` that is not a CloudEvent, an unknown type, a ``detail-type``
    or ``source`` that disagrees with the CloudEvent, or data that fails its model.
    """
    # Imported here: producers (intake, ops-api) never parse, and Powertools' parser
    # models cost tens of milliseconds of every cold start that imports them.
    from aws_lambda_powertools.utilities.parser.models import EventBridgeModel  # noqa: PLC0415

    try:
        envelope = EventBridgeModel.model_validate(
            json.loads(raw) if isinstance(raw, str | bytes) else raw
        )
    except (ValueError, ValidationError) as exc:
        raise ContractError(f"not an EventBridge event: {exc}") from exc
    if not isinstance(envelope.detail, dict):
        raise ContractError("EventBridge detail is not a JSON object")
    # The SDK fills in a missing id (uuid4) and time when it reads an event; for a
    # received event that would silently break idempotency on source + id.
    if missing := [name for name in _REQUIRED_ATTRIBUTES if name not in envelope.detail]:
        raise ContractError(f"EventBridge detail is not a CloudEvent: missing {missing}")
    try:
        cloud_event = _FORMAT.read(None, json.dumps(envelope.detail))
    except (BaseCloudEventException, ValueError, TypeError) as exc:
        raise ContractError(f"EventBridge detail is not a CloudEvent: {exc}") from exc
    attributes = dict(cloud_event.get_attributes())
    attributes["data"] = cloud_event.get_data()
    try:
        event = event_adapter().validate_python(attributes)
    except ValidationError as exc:
        raise ContractError(
            f"{attributes.get('type')!r} event {attributes.get('id')!r} breaks its contract: {exc}"
        ) from exc
    if envelope.detail_type != event.type or envelope.source != event.source:
        raise ContractError(
            f"EventBridge detail-type/source ({envelope.detail_type!r}, {envelope.source!r}) "
            f"disagree with the CloudEvent ({event.type!r}, {event.source!r})"
        )
    return event


def parse_sqs_body(body: str) -> AnyEvent:
    """Parse the body of an SQS message delivered by an EventBridge rule target."""
    return parse_eventbridge_event(body)
