"""Exactly once per meaning: a decision's event is published the first time its key is seen.

A repeat delivery gets the first delivery's reply and publishes nothing; the
deduplication store and the bus being unavailable are answered "retry later".
"""

from __future__ import annotations

import uuid
from typing import Any

from intake.domain.decision import Decision, Reply
from intake.domain.errors import (
    BusUnavailableError,
    DeduplicationStoreUnavailableError,
    DeliveryInProgressError,
)
from intake.domain.ports import Deduplicator, EventPublisher
from selfservice_contracts.envelope import build_event
from selfservice_runtime.dedupe import DeduplicationUnavailableError, DuplicateInProgressError
from selfservice_runtime.publisher import PublishError

__all__ = ["publish_once"]

_EVENT_IDS = uuid.UUID("6b1f3c2e-8d4a-4f7b-9e2c-5a0d1b3c4e5f")


def publish_once(
    decision: Decision, publisher: EventPublisher, deduplicator: Deduplicator
) -> Reply:
    """Publish the decision's event unless its key was seen; the reply either way."""
    executed = False

    def publish() -> dict[str, Any]:
        nonlocal executed
        executed = True
        # The event id is derived from the dedupe key: even a republish after the
        # dedupe record expired carries the same id, and consumers dedupe on it.
        event = build_event(decision.data, event_id=str(uuid.uuid5(_EVENT_IDS, decision.key)))
        try:
            publisher.publish([event])
        except PublishError as exc:
            raise BusUnavailableError("the event bus is unavailable; retry later") from exc
        return decision.reply.to_json()

    try:
        stored = deduplicator.once(decision.key, publish)
    except DuplicateInProgressError:
        raise DeliveryInProgressError(
            "the same request is being processed; retry shortly"
        ) from None
    except DeduplicationUnavailableError as exc:
        # A 500 here would read as a bug to the sender; this is "retry later".
        raise DeduplicationStoreUnavailableError(
            "intake cannot record the delivery right now; retry later"
        ) from exc
    if executed:
        return decision.reply
    return Reply(stored["status_code"], stored["body"], "duplicate")
