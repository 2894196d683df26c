"""Move parked messages back to their source queue: sent first, deleted only once sent."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from selfservice.operator.dlq.peek import peek, receive, release
from selfservice.operator.dlq.queues import DeadLetterQueue, DlqError, QueueInfo, chunks
from selfservice_contracts.failures import (
    EVENTBRIDGE_ERROR_CODE,
    EVENTBRIDGE_ERROR_MESSAGE,
    EVENTBRIDGE_RULE_ARN,
    EVENTBRIDGE_TARGET_ARN,
    FAILURE_ATTRIBUTE_NAMES,
    SOURCE_QUEUE,
)

__all__ = ["REDRIVE_VISIBILITY_SECONDS", "RedriveResult", "redrive"]

REDRIVE_VISIBILITY_SECONDS = 120
"""How long a message being moved is hidden from other readers of the DLQ."""
_NOT_REDRIVABLE_ATTRIBUTES = FAILURE_ATTRIBUTE_NAMES | {
    EVENTBRIDGE_RULE_ARN,
    EVENTBRIDGE_TARGET_ARN,
    EVENTBRIDGE_ERROR_CODE,
    EVENTBRIDGE_ERROR_MESSAGE,
    "EXHAUSTED_RETRY_CONDITION",
    "RETRY_ATTEMPTS",
}


@dataclass
class RedriveResult:
    """What one redrive did."""

    queue: str
    moved: list[str] = field(default_factory=list)
    """Message ids (in the DLQ) sent back to their source queue and deleted."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(message id, error): not sent, so still in the DLQ."""
    not_deleted: list[tuple[str, str]] = field(default_factory=list)
    """(message id, error): sent, but still in the DLQ too — a later redrive resends it."""
    would_move: list[tuple[str, str]] = field(default_factory=list)
    """(message id, target queue) in a dry run."""

    @property
    def ok(self) -> bool:
        """Nothing failed."""
        return not self.failed and not self.not_deleted


def redrive(
    sqs: Any,
    dlq: DeadLetterQueue,
    *,
    limit: int | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] = lambda _: None,
    warn: Callable[[str], None] = lambda _: None,
) -> RedriveResult:
    """Move up to ``limit`` messages (default: as many as are in it now) back to their source.

    Each message is sent first and deleted from the DLQ only after the send succeeded;
    a failed send leaves it there (visible again) and stops the redrive, as does a failed
    delete (the message is then in both queues; never in neither). A message that
    fails again comes back to the DLQ under a new id, so the redrive never chases it.
    """
    if not dlq.redrivable:
        raise DlqError(f"{dlq.queue.name}: {dlq.describe()}")
    result = RedriveResult(dlq.queue.name)
    current = QueueInfo.read(sqs, dlq.queue.url)
    budget = limit if limit is not None else current.visible
    if dry_run:
        refreshed = DeadLetterQueue(current, dlq.sources, dlq.rules)
        for message in peek(sqs, refreshed, max(budget, 0), warn=warn):
            target = _target(dlq, message)
            result.would_move.append(
                (message["MessageId"], target.name if target else "(no source queue)")
            )
        return result
    while len(result.moved) < budget:
        batch = receive(sqs, dlq, min(10, budget - len(result.moved)), REDRIVE_VISIBILITY_SECONDS)
        if not batch:
            break
        _move(sqs, dlq, batch, result, warn)
        progress(f"{dlq.queue.name}: moved {len(result.moved)} so far")
        if not result.ok:  # an outage or a missing permission: stop, report
            break
    return result


def _target(dlq: DeadLetterQueue, message: dict[str, Any]) -> QueueInfo | None:
    if len(dlq.sources) == 1:
        return dlq.sources[0]
    named = message.get("MessageAttributes", {}).get(SOURCE_QUEUE, {}).get("StringValue")
    return next((s for s in dlq.sources if s.name == named), None)


def _move(
    sqs: Any,
    dlq: DeadLetterQueue,
    batch: list[dict[str, Any]],
    result: RedriveResult,
    warn: Callable[[str], None],
) -> None:
    sent: list[dict[str, Any]] = []
    unsent: list[dict[str, Any]] = []
    by_target: dict[str, tuple[QueueInfo, list[dict[str, Any]]]] = {}
    for message in batch:
        target = _target(dlq, message)
        if target is None:
            names = ", ".join(s.name for s in dlq.sources)
            result.failed.append((message["MessageId"], f"which of {names} it came from?"))
            unsent.append(message)
            continue
        by_target.setdefault(target.url, (target, []))[1].append(message)
    for target, messages in by_target.values():
        entries = [_entry(str(i), m, target) for i, m in enumerate(messages)]
        try:
            response = sqs.send_message_batch(QueueUrl=target.url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            response = {"Failed": [{"Id": e["Id"], "Message": str(exc)} for e in entries]}
        errors = {f["Id"]: f.get("Message", f.get("Code", "")) for f in response.get("Failed", [])}
        for index, message in enumerate(messages):
            if str(index) in errors:
                result.failed.append((message["MessageId"], errors[str(index)]))
                unsent.append(message)
            else:
                sent.append(message)
    _delete(sqs, dlq, sent, result)
    release(sqs, dlq, [m["ReceiptHandle"] for m in unsent], warn=warn)


def _entry(entry_id: str, message: dict[str, Any], target: QueueInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message["Body"]}
    attributes = _sendable(message.get("MessageAttributes", {}))
    if attributes:
        entry["MessageAttributes"] = attributes
    if target.fifo:
        # The same group keeps its order; a fresh deduplication id, or the queue would
        # drop the body it saw within five minutes (content-based deduplication).
        entry["MessageGroupId"] = message.get("Attributes", {}).get("MessageGroupId", "redrive")
        entry["MessageDeduplicationId"] = f"redrive-{uuid.uuid4().hex}"
    return entry


def _sendable(attributes: dict[str, Any]) -> dict[str, Any]:
    """Message attributes to carry back to the source queue: the producer's, not the failure's."""
    carried: dict[str, Any] = {}
    for name, value in attributes.items():
        if name in _NOT_REDRIVABLE_ATTRIBUTES:
            continue
        kept = {"DataType": value["DataType"]}
        for key in ("StringValue", "BinaryValue"):
            if key in value:
                kept[key] = value[key]
        carried[name] = kept
    return carried


def _delete(
    sqs: Any, dlq: DeadLetterQueue, sent: list[dict[str, Any]], result: RedriveResult
) -> None:
    for chunk in chunks(sent):
        try:
            response = sqs.delete_message_batch(
                QueueUrl=dlq.queue.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                ],
            )
        except (ClientError, BotoCoreError) as exc:
            response = {"Failed": [{"Id": str(i), "Message": str(exc)} for i in range(len(chunk))]}
        errors = {f["Id"]: f.get("Message", "") for f in response.get("Failed", [])}
        for index, message in enumerate(chunk):
            if str(index) in errors:
                result.not_deleted.append((message["MessageId"], errors[str(index)]))
            else:
                result.moved.append(message["MessageId"])
