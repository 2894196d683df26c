"""Powertools' SQS batch processor, plus one structured log line per failed record.

Powertools reports a failed record in ``batchItemFailures`` and says nothing else, so a
message SQS later moves to the DLQ (after ``maxReceiveCount`` receives) would arrive
there with no trace of why. Each failure is logged here instead, with the message id the
message keeps in the DLQ, so ``selfservice dlq list`` can find the reason in the
function's log group.
"""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.base import FailureResponse
from aws_lambda_powertools.utilities.batch.types import BatchTypeModels
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from selfservice_contracts.failures import MAX_ERROR_CHARS, RECORD_FAILED

__all__ = ["SqsBatchProcessor"]


class SqsBatchProcessor(BatchProcessor):
    """An SQS :class:`BatchProcessor` that logs each failed record (:data:`RECORD_FAILED`)."""

    def __init__(
        self,
        logger: Logger | logging.Logger,
        *,
        model: BatchTypeModels | None = None,
        raise_on_entire_batch_failure: bool = True,
    ) -> None:
        super().__init__(
            event_type=EventType.SQS,
            model=model,
            raise_on_entire_batch_failure=raise_on_entire_batch_failure,
        )
        self.failure_logger = logger

    def failure_handler(self, record: Any, exception: Any) -> FailureResponse:
        """Record the failure as Powertools does, then log it with the message id."""
        response = super().failure_handler(record, exception)
        error = exception[1]
        fields: dict[str, Any] = {
            "error_type": type(error).__name__ if error is not None else "",
            "error": (str(error) or type(error).__name__)[:MAX_ERROR_CHARS] if error else "",
        }
        if isinstance(record, SQSRecord):
            fields.update(
                message_id=record.message_id,
                queue=record.event_source_arn.rsplit(":", 1)[-1],
                receive_count=int(record.attributes.approximate_receive_count or "0"),
            )
        self.failure_logger.warning(RECORD_FAILED, extra=fields, exc_info=exception)
        return response
