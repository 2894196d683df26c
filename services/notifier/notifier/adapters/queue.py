"""The write-back queue and its DLQ on SQS (:class:`~notifier.domain.ports.WriteBackQueue`)."""

from __future__ import annotations

import base64
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.loaders import create_loader

from notifier.domain.ports import QueuedMessage
from selfservice_contracts.failures import FAILURE_ATTRIBUTE_NAMES, failure_attributes

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

__all__ = ["MAX_VISIBILITY_SECONDS", "SqsWriteBackQueue", "queue_url", "queued_message"]

MAX_VISIBILITY_SECONDS = 12 * 3600
"""The longest visibility timeout SQS allows."""
MESSAGE_GROUP = "ticket-updates"
"""The one FIFO group (the lifecycle rule's SqsParameters; docs/decisions.md)."""


@cache
def _dns_suffixes() -> dict[str, str]:
    """Partition → DNS suffix, from the partition data botocore itself resolves with."""
    document = create_loader().load_data("partitions")
    return {p["id"]: p["outputs"]["dnsSuffix"] for p in document["partitions"]}


def queue_url(queue_arn: str) -> str:
    """The queue's URL from its ARN, in the ARN's partition (``amazonaws.com.cn`` in China).

    Built, not looked up: ``GetQueueUrl`` would cost a call and a permission per cold
    start. A partition botocore does not know is one the SDK cannot call either.
    """
    _, partition, _, region, account, name = queue_arn.split(":")
    suffixes = _dns_suffixes()
    if partition not in suffixes:
        raise ValueError(f"{queue_arn}: unknown partition {partition!r}")
    return f"https://sqs.{region}.{suffixes[partition]}/{account}/{name}"


def _carried_attributes(record: SQSRecord) -> dict[str, Any]:
    """The record's own message attributes, in SendMessage's shape (a redrive restores them)."""
    carried: dict[str, Any] = {}
    for name, value in (record.get("messageAttributes") or {}).items():
        if name in FAILURE_ATTRIBUTE_NAMES:
            continue
        if value.get("stringValue") is not None:
            carried[name] = {"DataType": value["dataType"], "StringValue": value["stringValue"]}
        elif value.get("binaryValue") is not None:
            carried[name] = {
                "DataType": value["dataType"],
                "BinaryValue": base64.b64decode(value["binaryValue"]),
            }
    return carried


def queued_message(record: SQSRecord) -> QueuedMessage:
    """The domain's view of a Lambda SQS record."""
    return QueuedMessage(
        message_id=record.message_id,
        body=record.body,
        receipt_handle=record.receipt_handle,
        queue_arn=record.event_source_arn,
        receive_count=int(record.attributes.approximate_receive_count or "1"),
        attributes=_carried_attributes(record),
    )


class SqsWriteBackQueue:
    """Visibility changes on the queue a message came from; parking in the DLQ."""

    def __init__(self, client: SQSClient, dlq_url: str) -> None:
        self._client = client
        self._dlq_url = dlq_url

    def come_back_after(self, message: QueuedMessage, wait_seconds: float) -> None:
        """Visible again after ``wait_seconds`` (at least one second, at most 12 hours)."""
        self._client.change_message_visibility(
            QueueUrl=queue_url(message.queue_arn),
            ReceiptHandle=message.receipt_handle,
            VisibilityTimeout=min(int(wait_seconds) + 1, MAX_VISIBILITY_SECONDS),
        )

    def park(self, message: QueuedMessage, error: Exception) -> None:
        """Into the DLQ, with why it is parked (``selfservice dlq list`` shows it)."""
        self._client.send_message(
            QueueUrl=self._dlq_url,
            MessageBody=message.body,
            MessageGroupId=MESSAGE_GROUP,
            MessageDeduplicationId=message.message_id,
            MessageAttributes={
                **message.attributes,
                **failure_attributes(error, source_queue=message.queue_arn.rsplit(":", 1)[-1]),
            },
        )
