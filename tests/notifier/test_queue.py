"""The SQS adapter: queue URLs in every partition, records as the domain sees them."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from notifier.adapters.queue import (
    MAX_VISIBILITY_SECONDS,
    SqsWriteBackQueue,
    queue_url,
    queued_message,
)
from selfservice.local.lambda_events import sqs_event
from selfservice_contracts import failures


@pytest.mark.parametrize(
    ("arn", "url"),
    [
        (
            "arn:aws:sqs:us-east-1:123456789012:wb.fifo",
            "https://sqs.us-east-1.amazonaws.com/123456789012/wb.fifo",
        ),
        (
            "arn:aws-cn:sqs:cn-north-1:123456789012:wb.fifo",
            "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/wb.fifo",
        ),
        (
            "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:wb.fifo",
            "https://sqs.us-gov-west-1.amazonaws.com/123456789012/wb.fifo",
        ),
        (
            "arn:aws-iso:sqs:us-iso-east-1:123456789012:wb.fifo",
            "https://sqs.us-iso-east-1.c2s.ic.gov/123456789012/wb.fifo",
        ),
    ],
)
def test_the_queue_url_is_in_the_arns_partition(arn: str, url: str) -> None:
    assert queue_url(arn) == url


def test_an_unknown_partition_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="unknown partition 'aws-mars'"):
        queue_url("arn:aws-mars:sqs:mars-1:123456789012:wb.fifo")


def _record(**attributes: Any) -> SQSRecord:
    (raw,) = sqs_event(['{"a": 1}'], queue="writeback.fifo", receive_count=3)["Records"]
    raw["eventSourceARN"] = "arn:aws-cn:sqs:cn-north-1:123456789012:writeback.fifo"
    raw["messageAttributes"] = attributes
    return SQSRecord(raw)


class Client:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def change_message_visibility(self, **kwargs: Any) -> None:
        self.calls.append(("change_message_visibility", kwargs))

    def send_message(self, **kwargs: Any) -> None:
        self.calls.append(("send_message", kwargs))


def test_a_record_keeps_its_own_attributes_but_not_an_earlier_failures() -> None:
    record = _record(
        origin={"dataType": "String", "stringValue": "redrive"},
        blob={"dataType": "Binary", "binaryValue": base64.b64encode(b"\x00\x01").decode()},
        **{failures.ERROR: {"dataType": "String", "stringValue": "old error"}},
    )
    message = queued_message(record)
    assert message.receive_count == 3
    assert message.attributes == {
        "origin": {"DataType": "String", "StringValue": "redrive"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    }


def test_come_back_after_sets_the_visibility_on_the_source_queue_in_its_partition() -> None:
    client = Client()
    queue = SqsWriteBackQueue(client, "https://dlq")  # type: ignore[arg-type]
    message = queued_message(_record())
    queue.come_back_after(message, 90.4)
    queue.come_back_after(message, 10 * 24 * 3600)
    assert [call[1]["VisibilityTimeout"] for call in client.calls] == [91, MAX_VISIBILITY_SECONDS]
    assert {call[1]["QueueUrl"] for call in client.calls} == {
        "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/writeback.fifo"
    }


def test_park_sends_the_body_to_the_dlq_with_why_in_the_one_group() -> None:
    client = Client()
    queue = SqsWriteBackQueue(client, "https://dlq")  # type: ignore[arg-type]
    message = queued_message(_record())
    queue.park(message, RuntimeError("HTTP 404"))
    ((name, sent),) = client.calls
    assert name == "send_message"
    assert sent["QueueUrl"] == "https://dlq"
    assert json.loads(sent["MessageBody"]) == {"a": 1}
    assert sent["MessageGroupId"] == "ticket-updates"
    assert sent["MessageDeduplicationId"] == message.message_id
    why = {k: v["StringValue"] for k, v in sent["MessageAttributes"].items()}
    assert why[failures.ERROR_TYPE] == "RuntimeError"
    assert why[failures.SOURCE_QUEUE] == "writeback.fifo"
