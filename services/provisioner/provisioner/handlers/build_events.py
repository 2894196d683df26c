"""``BuildEventsFunction``: CodeBuild state changes from SQS → ledger → lifecycle events.

Each record's log lines carry the build's request id (its ``REQUEST_ID`` variable) as
correlation id, and only that record's lines do.
"""

import json
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from provisioner.domain.build_events import NotOurBuildError, parse_build_state_change
from provisioner.environment import BuildEventsConfig
from provisioner.runtime import Runtime, build_runtime
from selfservice_runtime.batch import SqsBatchProcessor
from selfservice_runtime.config import load_config
from selfservice_runtime.observability import Metric, count

CONFIG_MODEL = BuildEventsConfig

logger = Logger()
tracer = Tracer(patch_modules=["boto3"])
metrics = Metrics()
processor = SqsBatchProcessor(logger)  # logs each failed record: the DLQ's "why"


@cache
def config() -> BuildEventsConfig:
    """The validated environment, loaded once per execution environment (cold start)."""
    return load_config(CONFIG_MODEL)


def _count(metric: Metric) -> None:
    count(metrics, metric)


def runtime() -> Runtime:
    """Adapters and service, built once."""
    return build_runtime(config(), logger, _count)


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    """Handle one ``CodeBuild Build State Change``; raising fails only this record."""
    change = EventBridgeModel.model_validate(json.loads(record.body))
    if not isinstance(change.detail, dict):
        raise TypeError("the build state change has no detail object")
    try:
        result = parse_build_state_change(change.detail, change.time)
    except NotOurBuildError as exc:
        logger.info("build event ignored", extra={"reason": str(exc), "id": change.id})
        return
    with logger.append_context_keys(correlation_id=result.request_id, build_id=result.build_id):
        tracer.put_annotation(key="request_id", value=result.request_id)
        run = runtime()
        # Metrics are counted by the service, once: a replayed event counts nothing again.
        stored = run.deduplicator.once(
            f"{change.source}#{change.id}",
            lambda: {"outcome": run.service.on_build_result(result)},
        )
        logger.info("build outcome handled", extra={"status": result.status, **stored})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point (``provisioner.handlers.build_events.lambda_handler``)."""
    config()
    runtime().deduplicator.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
