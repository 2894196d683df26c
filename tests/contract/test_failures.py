"""Why a message is in a DLQ: the attributes our code parks it with, the line consumers log."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import UTC, datetime

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from selfservice.local.lambda_events import sqs_event
from selfservice_contracts.failures import (
    ERROR,
    ERROR_TYPE,
    FAILED_AT,
    FAILURE_ATTRIBUTE_NAMES,
    MAX_ERROR_CHARS,
    RECORD_FAILED,
    SOURCE_QUEUE,
    failure_attributes,
)
from selfservice_runtime.batch import SqsBatchProcessor


def test_failure_attributes_are_sendable_strings_within_sqs_limits() -> None:
    attributes = failure_attributes(
        PermissionError("x" * 5000),
        source_queue="selfservice-Notifier-WriteBackQueue.fifo",
        now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    assert set(attributes) == FAILURE_ATTRIBUTE_NAMES
    assert len(attributes) <= 10  # SQS: at most ten message attributes
    assert all(value["DataType"] == "String" for value in attributes.values())
    assert len(attributes[ERROR]["StringValue"]) == MAX_ERROR_CHARS
    assert attributes[ERROR_TYPE]["StringValue"] == "PermissionError"
    assert attributes[FAILED_AT]["StringValue"] == "2026-01-02T03:04:05+00:00"
    assert attributes[SOURCE_QUEUE]["StringValue"] == "selfservice-Notifier-WriteBackQueue.fifo"
    # Names SQS accepts: no AWS./Amazon. prefix, no leading/trailing or double period.
    for name in attributes:
        assert not name.lower().startswith(("aws.", "amazon."))
        assert re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", name), name


def test_an_error_without_text_is_named_by_its_type() -> None:
    assert failure_attributes(TimeoutError(), source_queue="q")[ERROR]["StringValue"] == (
        "TimeoutError"
    )


def test_each_failed_record_is_logged_once_with_its_message_id_and_error() -> None:
    stream = io.StringIO()
    logger = Logger(service="contract-test", logger_handler=logging.StreamHandler(stream))
    processor = SqsBatchProcessor(logger, raise_on_entire_batch_failure=False)

    def handle(record: SQSRecord) -> None:
        if record.body != "ok":
            raise ValueError(f"cannot read {record.body!r}")

    event = sqs_event(["ok", "{broken", "also broken"], queue="the-queue", receive_count=3)
    response = process_partial_response(event=event, record_handler=handle, processor=processor)
    failed_ids = [r["messageId"] for r in event["Records"][1:]]
    assert response == {"batchItemFailures": [{"itemIdentifier": i} for i in failed_ids]}
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    logged = [line for line in lines if line["message"] == RECORD_FAILED]
    assert [line["message_id"] for line in logged] == failed_ids
    first = logged[0]
    assert first["error_type"] == "ValueError"
    assert first["error"] == "cannot read '{broken'"
    assert first["queue"] == "the-queue"
    assert first["receive_count"] == 3
    assert first["level"] == "WARNING"
    assert "Traceback" in first["exception"]
