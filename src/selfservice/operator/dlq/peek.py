"""Read a DLQ's messages without consuming them: receive, then make them visible again."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from selfservice.operator.dlq.queues import DeadLetterQueue, chunks

__all__ = ["PEEK_VISIBILITY_SECONDS", "peek", "receive", "release"]

PEEK_VISIBILITY_SECONDS = 30
"""How long a peeked message is hidden if the tool dies before releasing it."""


def peek(
    sqs: Any, dlq: DeadLetterQueue, limit: int, *, warn: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Up to ``limit`` messages, left in the queue and visible again on return."""
    if limit <= 0 or dlq.queue.visible + dlq.queue.in_flight == 0:
        return []
    seen: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    try:
        while len(seen) < limit:
            batch = receive(sqs, dlq, min(10, limit - len(seen)), PEEK_VISIBILITY_SECONDS)
            handles += [m["ReceiptHandle"] for m in batch]
            fresh = [m for m in batch if m["MessageId"] not in seen]
            if not fresh:
                break
            seen.update((m["MessageId"], m) for m in fresh)
    finally:
        release(sqs, dlq, handles, warn=warn)
    return list(seen.values())


def receive(sqs: Any, dlq: DeadLetterQueue, count: int, visibility: int) -> list[dict[str, Any]]:
    """Up to ``count`` messages with all their attributes, hidden for ``visibility`` seconds."""
    messages: list[dict[str, Any]] = sqs.receive_message(
        QueueUrl=dlq.queue.url,
        MaxNumberOfMessages=count,
        VisibilityTimeout=visibility,
        WaitTimeSeconds=1,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    return messages


def release(
    sqs: Any, dlq: DeadLetterQueue, handles: Sequence[str], *, warn: Callable[[str], None]
) -> None:
    """Make received messages visible again at once (a warning for those that stay hidden)."""
    for chunk in chunks(handles):
        try:
            response = sqs.change_message_visibility_batch(
                QueueUrl=dlq.queue.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                    for i, h in enumerate(chunk)
                ],
            )
            failed = response.get("Failed", [])
        except (ClientError, BotoCoreError) as exc:
            failed = [{"Message": str(exc)}]
        if failed:
            warn(
                f"{dlq.queue.name}: {len(failed)} message(s) stay hidden until their "
                f"visibility timeout ends ({failed[0].get('Message', '')})"
            )
