"""``RequestConsumerFunction``: request events from SQS → ledger → CodeBuild.

Each record is processed once per CloudEvent ``source`` + ``id``; a record that fails
(a transient AWS error, a concurrent update) is reported in ``batchItemFailures`` and
retried by SQS, then parked in the DLQ — the rest of the batch is unaffected.
"""

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from provisioner.config import RequestConsumerConfig
from provisioner.runtime import Runtime, build_runtime
from selfservice_contracts.batch import SqsBatchProcessor
from selfservice_contracts.config import load_config
from selfservice_contracts.envelope import ContractError, parse_sqs_body
from selfservice_contracts.events import (
    ApprovalRequiredEvent,
    RequestApprovedEvent,
    RequestReceivedEvent,
)

CONFIG_MODEL = RequestConsumerConfig

logger = Logger()
tracer = Tracer(patch_modules=["boto3"])
metrics = Metrics()
processor = SqsBatchProcessor(logger)  # logs each failed record: the DLQ's "why"


@cache
def config() -> RequestConsumerConfig:
    """The validated environment, loaded once per execution environment (cold start)."""
    return load_config(CONFIG_MODEL)


def runtime() -> Runtime:
    """Adapters and service, built once."""
    return build_runtime(config(), logger)


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    """Handle one request event; raising marks only this record as failed."""
    event = parse_sqs_body(record.body)
    if not isinstance(event, RequestReceivedEvent | ApprovalRequiredEvent | RequestApprovedEvent):
        # Misrouted: fail it so it ends in the DLQ (alarmed) instead of vanishing.
        raise ContractError(f"{event.type} is not a request event")
    logger.append_keys(request_id=event.data.request_id, ticket=str(event.data.ticket))
    run = runtime()
    stored = run.deduplicator.once(
        f"{event.source}#{event.id}", lambda: {"outcome": run.service.on_request(event)}
    )
    metrics.add_metric(name=f"Requests_{stored['outcome']}", unit=MetricUnit.Count, value=1)
    logger.info("request event handled", extra={"type": event.type, "outcome": stored["outcome"]})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point (``provisioner.handlers.request_consumer.lambda_handler``)."""
    config()
    runtime().deduplicator.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
