"""``RequestConsumerFunction``: request events from SQS → ledger → CodeBuild.

Each record is processed once per CloudEvent ``source`` + ``id``; a record that fails
(a transient AWS error, a concurrent update) is reported in ``batchItemFailures`` and
retried by SQS, then parked in the DLQ — the rest of the batch is unaffected. Each
record's log lines carry its request id (the CloudEvent's ``requestid``) as correlation
id, and only that record's lines do.
"""

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from provisioner.environment import RequestConsumerConfig
from provisioner.runtime import Runtime, build_runtime
from selfservice_contracts.envelope import ContractError
from selfservice_contracts.events import (
    ApprovalRequiredEvent,
    RequestApprovedEvent,
    RequestReceivedEvent,
)
from selfservice_runtime.batch import SqsBatchProcessor
from selfservice_runtime.config import load_config
from selfservice_runtime.observability import Metric, count
from selfservice_runtime.parsing import parse_sqs_body

CONFIG_MODEL = RequestConsumerConfig

logger = Logger()
tracer = Tracer(patch_modules=["boto3"])
metrics = Metrics()
processor = SqsBatchProcessor(logger)  # logs each failed record: the DLQ's "why"


@cache
def config() -> RequestConsumerConfig:
    """The validated environment, loaded once per execution environment (cold start)."""
    return load_config(CONFIG_MODEL)


def _count(metric: Metric) -> None:
    count(metrics, metric)


def runtime() -> Runtime:
    """Adapters and service, built once."""
    return build_runtime(config(), logger, _count)


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    """Handle one request event; raising marks only this record as failed."""
    event = parse_sqs_body(record.body)
    with logger.append_context_keys(correlation_id=event.requestid, ticket=event.subject):
        if not isinstance(
            event, RequestReceivedEvent | ApprovalRequiredEvent | RequestApprovedEvent
        ):
            # Misrouted: fail it so it ends in the DLQ (alarmed) instead of vanishing.
            raise ContractError(f"{event.type} is not a request event")
        tracer.put_annotation(key="request_id", value=event.data.request_id)
        run = runtime()
        # Metrics are counted by the service, once: a replayed event counts nothing again.
        stored = run.deduplicator.once(
            f"{event.source}#{event.id}", lambda: {"outcome": run.service.on_request(event)}
        )
        logger.info(
            "request event handled", extra={"type": event.type, "outcome": stored["outcome"]}
        )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point (``provisioner.handlers.request_consumer.lambda_handler``)."""
    config()
    runtime().deduplicator.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
