"""``BuildEventsFunction``: CodeBuild state changes from SQS → ledger → lifecycle events."""

import json
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from provisioner.config import BuildEventsConfig
from provisioner.domain.build_events import NotOurBuildError, parse_build_state_change
from provisioner.runtime import Runtime, build_runtime
from selfservice_contracts.batch import SqsBatchProcessor
from selfservice_contracts.config import load_config

CONFIG_MODEL = BuildEventsConfig

logger = Logger()
tracer = Tracer(patch_modules=["boto3"])
metrics = Metrics()
processor = SqsBatchProcessor(logger)  # logs each failed record: the DLQ's "why"


@cache
def config() -> BuildEventsConfig:
    """The validated environment, loaded once per execution environment (cold start)."""
    return load_config(CONFIG_MODEL)


def runtime() -> Runtime:
    """Adapters and service, built once."""
    return build_runtime(config(), logger)


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
    logger.append_keys(request_id=result.request_id, build_id=result.build_id)
    run = runtime()
    stored = run.deduplicator.once(
        f"{change.source}#{change.id}", lambda: {"outcome": run.service.on_build_result(result)}
    )
    metrics.add_metric(name=f"Builds_{result.status}", unit=MetricUnit.Count, value=1)
    logger.info("build outcome handled", extra={"status": result.status, **stored})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point (``provisioner.handlers.build_events.lambda_handler``)."""
    config()
    runtime().deduplicator.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
