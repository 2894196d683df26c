"""Reading our events back: an EventBridge event (or an SQS body) → a typed CloudEvent.

The EventBridge envelope is read with Powertools' model, the ``detail`` with the
``cloudevents`` SDK, then the attributes and data into the discriminated union of typed
events (:func:`selfservice_contracts.events.event_adapter`). Consumers' runtime, not a
shape: it lives beside the other runtime helpers, apart from the contracts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from pydantic import ValidationError

from selfservice_contracts.envelope import ContractError
from selfservice_contracts.events import AnyEvent, event_adapter

__all__ = ["parse_eventbridge_event", "parse_sqs_body"]

_FORMAT = JSONFormat()
_REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type", "time")


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
