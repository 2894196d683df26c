"""Why a message is in a dead-letter queue: the names its writers and its readers share.

A message reaches a DLQ in one of three ways, and each leaves its reason somewhere real:

- **parked by our code** (the notifier's permanent refusals): the copy sent to the DLQ
  carries :func:`failure_attributes` — the error, its type, when, and the source queue;
- **moved by SQS** after ``maxReceiveCount`` failed receives: every failed receive was
  logged by the consumer (:class:`selfservice_runtime.batch.SqsBatchProcessor`) as one
  structured line, :data:`RECORD_FAILED`, with the message id — the same id the message
  keeps in the DLQ — in the function's log group;
- **undeliverable by EventBridge** (a rule target's DLQ): EventBridge's own attributes,
  :data:`EVENTBRIDGE_ERROR_CODE` and :data:`EVENTBRIDGE_ERROR_MESSAGE`.

``selfservice dlq list`` reads all three; ``selfservice dlq redrive`` strips ours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ERROR",
    "ERROR_TYPE",
    "EVENTBRIDGE_ERROR_CODE",
    "EVENTBRIDGE_ERROR_MESSAGE",
    "EVENTBRIDGE_RULE_ARN",
    "EVENTBRIDGE_TARGET_ARN",
    "FAILED_AT",
    "FAILURE_ATTRIBUTE_NAMES",
    "MAX_ERROR_CHARS",
    "RECORD_FAILED",
    "SOURCE_QUEUE",
    "failure_attributes",
]

ERROR = "selfservice.error"
"""Message attribute: the error text (``str(exception)``, at most :data:`MAX_ERROR_CHARS`)."""
ERROR_TYPE = "selfservice.error-type"
"""Message attribute: the exception's class name."""
FAILED_AT = "selfservice.failed-at"
"""Message attribute: when the message was parked (ISO 8601, UTC)."""
SOURCE_QUEUE = "selfservice.source-queue"
"""Message attribute: the name of the queue the message was consumed from (its redrive target)."""
FAILURE_ATTRIBUTE_NAMES = frozenset({ERROR, ERROR_TYPE, FAILED_AT, SOURCE_QUEUE})
"""Attributes describing a failure: a redrive does not carry them back to the source queue."""

MAX_ERROR_CHARS = 1000
"""Longer error texts are cut (message attributes count against the 256 KiB message size)."""

RECORD_FAILED = "sqs record failed"
"""The ``message`` of the log line an SQS consumer writes for each record that failed."""

EVENTBRIDGE_RULE_ARN = "RULE_ARN"
EVENTBRIDGE_TARGET_ARN = "TARGET_ARN"
EVENTBRIDGE_ERROR_CODE = "ERROR_CODE"
EVENTBRIDGE_ERROR_MESSAGE = "ERROR_MESSAGE"
"""Attributes EventBridge sets on each event it parks in a rule target's DLQ."""


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def failure_attributes(
    error: BaseException, *, source_queue: str, now: datetime | None = None
) -> dict[str, Any]:
    """``MessageAttributes`` for a message our code parks in a DLQ (SendMessage's shape).

    Four attributes, within SQS's ten per message; allowed on FIFO queues too (they do
    not take part in content-based deduplication, which hashes the body only).
    """
    text = str(error) or type(error).__name__
    return {
        ERROR: _string(text[:MAX_ERROR_CHARS]),
        ERROR_TYPE: _string(type(error).__name__),
        FAILED_AT: _string((now or datetime.now(UTC)).isoformat(timespec="seconds")),
        SOURCE_QUEUE: _string(source_queue),
    }
