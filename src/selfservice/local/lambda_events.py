"""Events as AWS hands them to functions: an EventBridge delivery, an SQS batch.

Shared by the local runtime, the tests and the benchmarks, so every place builds them
the one way AWS does.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from selfservice_contracts.envelope import to_eventbridge_entry
from selfservice_contracts.events import AnyEvent

__all__ = ["eventbridge_delivery", "scheduled_event", "scheduler_input", "sqs_event"]

ACCOUNT = "123456789012"
REGION = "us-east-1"


def eventbridge_delivery(
    event: AnyEvent, *, event_bus_name: str = "selfservice-bus"
) -> dict[str, Any]:
    """What a rule target receives for a CloudEvent put on the bus with PutEvents."""
    entry = to_eventbridge_entry(event, event_bus_name=event_bus_name)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": ACCOUNT,
        "time": event.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [],
        "detail": json.loads(entry["Detail"]),
    }


def sqs_event(
    bodies: Sequence[str],
    *,
    queue: str = "queue",
    receive_count: int = 1,
    message_ids: Sequence[str] | None = None,
    receipt_handles: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The event Lambda's SQS poller passes to a function for one batch."""
    records = []
    for index, body in enumerate(bodies):
        records.append(
            {
                "messageId": message_ids[index] if message_ids else str(uuid.uuid4()),
                "receiptHandle": receipt_handles[index] if receipt_handles else f"receipt-{index}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": "1795252504000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1795252504100",
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


def scheduler_input(text: str | None, *, at: datetime, schedule_arn: str) -> Any:
    """What an EventBridge Scheduler schedule (SAM ``ScheduleV2``) passes: its ``Input``,
    with the context attributes Scheduler fills in, or ``{}`` when it has none."""
    if not text:
        return {}
    for placeholder, value in {
        "<aws.scheduler.scheduled-time>": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.execution-id>": str(uuid.uuid4()),
        "<aws.scheduler.schedule-arn>": schedule_arn,
        "<aws.scheduler.attempt-number>": "1",
    }.items():
        text = text.replace(placeholder, value)
    return json.loads(text)


def scheduled_event(*, at: datetime, rule_arn: str) -> dict[str, Any]:
    """What a scheduled EventBridge rule (SAM ``Schedule``) passes when it has no ``Input``."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [rule_arn],
        "detail": {},
    }
