"""What the DLQ tools know of a queue: its attributes, and a DLQ with where it drains to."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["DEFAULT_PREFIX", "DeadLetterQueue", "DlqError", "QueueInfo", "chunks", "iso"]

DEFAULT_PREFIX = "selfservice"


class DlqError(Exception):
    """The operation cannot be done as asked (unknown queue, nothing to redrive to)."""


@dataclass(frozen=True)
class QueueInfo:
    """One SQS queue as ``GetQueueAttributes`` describes it."""

    name: str
    url: str
    arn: str
    fifo: bool
    retention_seconds: int
    visible: int
    in_flight: int
    dead_letter_arn: str | None = None

    @classmethod
    def from_attributes(cls, url: str, attributes: dict[str, str]) -> QueueInfo:
        """From ``GetQueueAttributes(AttributeNames=["All"])``."""
        redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
        return cls(
            name=attributes["QueueArn"].rsplit(":", 1)[-1],
            url=url,
            arn=attributes["QueueArn"],
            fifo=attributes.get("FifoQueue") == "true",
            retention_seconds=int(attributes.get("MessageRetentionPeriod", "345600")),
            visible=int(attributes.get("ApproximateNumberOfMessages", "0")),
            in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0")),
            dead_letter_arn=redrive.get("deadLetterTargetArn"),
        )

    @classmethod
    def read(cls, sqs: Any, url: str) -> QueueInfo:
        """The queue at ``url`` as it is now."""
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        return cls.from_attributes(url, attributes["Attributes"])


@dataclass(frozen=True)
class DeadLetterQueue:
    """A DLQ, the queues it takes failed messages from, and the rules that park events in it."""

    queue: QueueInfo
    sources: tuple[QueueInfo, ...] = ()
    """Queues whose ``RedrivePolicy`` names this DLQ: where a redrive sends messages."""
    rules: tuple[str, ...] = ()
    """EventBridge rules (names) with a target whose ``DeadLetterConfig`` is this DLQ."""

    @property
    def redrivable(self) -> bool:
        """Whether there is a source queue to move its messages back to."""
        return bool(self.sources)

    def describe(self) -> str:
        """Where its messages come from, and where a redrive would send them."""
        parts = []
        if self.sources:
            parts.append("redrives to " + ", ".join(s.name for s in self.sources))
        if self.rules:
            parts.append("EventBridge target DLQ of " + ", ".join(self.rules))
            if not self.sources:
                parts.append(
                    "no source queue: cannot be redriven (fix the target, then put the "
                    "events on the bus again, e.g. by archive replay)"
                )
        return "; ".join(parts)


def iso(millis: int) -> str:
    """An epoch-milliseconds time as ISO 8601, to the second, in UTC."""
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds")


def chunks(items: Sequence[Any], size: int = 10) -> Iterator[Sequence[Any]]:
    """``items`` in slices of at most ``size``: the SQS batch calls take ten entries."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
