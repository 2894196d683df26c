"""``WriteBackFunction``: lifecycle events from SQS → a comment and state change on the ticket.

Each record is parsed and delivered (:mod:`notifier.domain.delivery`: ordering, retries,
parking); its log lines carry its request id (the CloudEvent's ``requestid``).
"""

from __future__ import annotations

from functools import cache, partial
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from notifier.adapters.queue import queued_message
from notifier.domain.delivery import Delivered, Outcome, Parked
from notifier.environment import WriteBackConfig
from notifier.runtime import Runtime, build_runtime
from selfservice_contracts.envelope import ContractError
from selfservice_contracts.events import AnyEvent
from selfservice_runtime.batch import SqsBatchProcessor
from selfservice_runtime.config import load_config
from selfservice_runtime.observability import count
from selfservice_runtime.parsing import parse_sqs_body

CONFIG_MODEL = WriteBackConfig

logger = Logger()
tracer = Tracer(patch_modules=["boto3"])
metrics = Metrics()
# An ITSM outage fails every record: report them (they stay queued), not a Lambda error.
processor = SqsBatchProcessor(logger, raise_on_entire_batch_failure=False)


@cache
def config() -> WriteBackConfig:
    """The validated environment, loaded once per execution environment (cold start)."""
    return load_config(CONFIG_MODEL)


@cache
def runtime() -> Runtime:
    """Adapters, writers and service, built once per execution environment."""
    return build_runtime(config(), partial(count, metrics))


def _log(outcome: Outcome, event: AnyEvent) -> None:
    """One log line per outcome; a deferred record raises, so only it is reported failed."""
    if isinstance(outcome, Delivered):
        logger.info("written back", extra={"type": event.type, **outcome.result})
    elif isinstance(outcome, Parked):
        reason = {"reason": str(outcome.error)}
        logger.error("write-back refused; parked in the DLQ", extra=reason, exc_info=outcome.error)
    else:
        error = outcome.error
        facts = {
            "reason": str(error),
            "wait_seconds": error.wait_seconds,
            "receives": outcome.receives,
        }
        if outcome.exhausted:
            logger.warning("write-back not done; retries exhausted, the DLQ takes it", extra=facts)
        elif not outcome.held_back:
            logger.warning("write-back deferred", extra=facts)
        raise error


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    """Write one event back; raising marks only this record as failed."""
    delivery = runtime().delivery
    message = queued_message(record)
    try:
        event = parse_sqs_body(record.body)
    except ContractError as exc:
        delivery.park_unreadable(message, exc)
        logger.exception(
            "not a lifecycle event; parked in the DLQ",
            extra={"reason": str(exc), "message_id": record.message_id},
        )
        return
    with logger.append_context_keys(correlation_id=event.requestid, ticket=event.subject):
        if event.requestid:
            tracer.put_annotation(key="request_id", value=event.requestid)
        _log(delivery.deliver(message, event), event)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point (``notifier.handlers.write_back.lambda_handler``)."""
    config()
    runtime().start_batch(context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
