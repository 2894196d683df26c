"""Wiring shared by the provisioner's handlers: one boto3 session, the adapters, the service."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config

from provisioner.adapters.aws import CloudWatchBuildLogs, CodeBuildStarter, S3Artifacts
from provisioner.adapters.ledger_dynamodb import DynamoDBLedger, DynamoDBSerialSlot
from provisioner.config import ProvisionerConfig
from provisioner.domain.products import load_product
from provisioner.domain.service import ProvisionerService
from selfservice_runtime.dedupe import DynamoDBDeduplicator
from selfservice_runtime.observability import Metric
from selfservice_runtime.publisher import EventBridgePublisher

__all__ = ["EVENT_DEDUPE_SECONDS", "Runtime", "build_runtime"]

EVENT_DEDUPE_SECONDS = 24 * 3600
"""How long a processed CloudEvent (source + id) is remembered."""

# Throttling and transient errors: retried with backoff and jitter by botocore.
_RETRIES = Config(retries={"mode": "adaptive", "max_attempts": 10})


@dataclass(frozen=True)
class Runtime:
    """The service and the per-event deduplicator of one execution environment."""

    service: ProvisionerService
    deduplicator: DynamoDBDeduplicator


@cache
def build_runtime(
    config: ProvisionerConfig, logger: Logger, count: Callable[[Metric], None]
) -> Runtime:
    """Adapters on one shared boto3 session (botocore loads its data once).

    ``count`` adds one to a metric; the handler flushes them with the invocation.
    """
    session = boto3.session.Session()
    dynamodb = session.client("dynamodb", config=_RETRIES)

    def report_refusal(request_id: str, cause: str, reason: str) -> None:
        logger.warning(
            "transition refused", extra={"request_id": request_id, "cause": cause, "reason": reason}
        )

    service = ProvisionerService(
        ledger=DynamoDBLedger(dynamodb, config.ledger_table_name),
        builds=CodeBuildStarter(
            session.client("codebuild", config=_RETRIES),
            config.codebuild_project_name,
            session.region_name or os.environ.get("AWS_REGION", "us-east-1"),
        ),
        artifacts=S3Artifacts(session.client("s3", config=_RETRIES), config.artifacts_bucket_name),
        logs=CloudWatchBuildLogs(session.client("logs", config=_RETRIES)),
        # Every event carries the X-Ray trace header (the publisher's default).
        publisher=EventBridgePublisher(
            session.client("events", config=_RETRIES), config.event_bus_name
        ),
        slots=DynamoDBSerialSlot(dynamodb, config.ledger_table_name),
        products=load_product,
        clock=lambda: datetime.now(UTC),
        report_refusal=report_refusal,
        count=count,
    )
    deduplicator = DynamoDBDeduplicator(
        config.idempotency_table_name, EVENT_DEDUPE_SECONDS, boto3_session=session
    )
    return Runtime(service, deduplicator)
