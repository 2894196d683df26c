"""Wiring of the provisioner's functions: one boto3 session, the adapters, the service.

Built once per execution environment (cold start). The configuration document (the plan
guardrails) is read through the shared loader whenever it is asked for (cached
``settings_document.CACHE_SECONDS``, as intake, the notifier and ops-api read theirs), so
an edit takes effect within a minute without a new environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parameters import SSMProvider

from provisioner.adapters.aws import CloudWatchBuildLogs, CodeBuildStarter, S3Artifacts
from provisioner.adapters.cost_index import DynamoDBCommittedCost
from provisioner.adapters.ledger_dynamodb import (
    DynamoDBInFlightIndex,
    DynamoDBLedger,
    DynamoDBSerialSlot,
)
from provisioner.domain.ports import BuildRefused
from provisioner.domain.products import load_product
from provisioner.domain.service import ProvisionerService
from provisioner.environment import BuildDriverConfig, ProvisionerConfig
from provisioner.settings import PlanGuardrails
from selfservice_runtime.clients import RETRIES, ClientFactory
from selfservice_runtime.dedupe import DynamoDBDeduplicator
from selfservice_runtime.observability import Metric
from selfservice_runtime.publisher import EventBridgePublisher
from selfservice_runtime.settings_document import load_document

__all__ = ["EVENT_DEDUPE_SECONDS", "Runtime", "build_runtime", "in_flight_index"]

EVENT_DEDUPE_SECONDS = 24 * 3600
"""How long a processed CloudEvent (source + id) is remembered."""


@dataclass(frozen=True)
class Runtime:
    """What one execution environment keeps: the service, the per-event deduplicator,
    and the configuration document."""

    service: ProvisionerService
    deduplicator: DynamoDBDeduplicator
    guardrails: Callable[[], PlanGuardrails]
    """The current plan guardrails (the configuration document), re-read once the shared
    loader's cache expires; ``SettingsDocumentError`` when the document is missing or
    invalid (raised in a record handler, it fails the record: SQS retries it)."""


@cache
def build_runtime(
    config: BuildDriverConfig,
    logger: Logger,
    count: Callable[[Metric], None],
    session: Any = None,
) -> Runtime:
    """Adapters on one shared boto3 session (botocore loads its data once), every client
    with the retry policy of functions nobody waits on (``RETRIES``).

    ``count`` adds one to a metric; the handler flushes them with the invocation.
    """
    clients = ClientFactory(session, retries=RETRIES)
    session = clients.session
    dynamodb = session.client("dynamodb", config=RETRIES)

    def report_refusal(request_id: str, cause: str, reason: str) -> None:
        logger.warning(
            "transition refused", extra={"request_id": request_id, "cause": cause, "reason": reason}
        )

    def report_not_started(request_id: str, refused: BuildRefused) -> None:
        # The ticket is told; the platform's grant or project is what needs fixing.
        logger.error(
            "build not started",
            extra={"request_id": request_id, "code": refused.code, "reason": refused.message},
        )

    ssm = SSMProvider(boto3_client=clients.ssm())
    parameter = config.provisioner_config_parameter

    def guardrails() -> PlanGuardrails:
        return load_document(ssm, parameter, PlanGuardrails)

    service = ProvisionerService(
        ledger=DynamoDBLedger(dynamodb, config.ledger_table_name),
        builds=CodeBuildStarter(
            session.client("codebuild", config=RETRIES),
            config.codebuild_project_name,
            session.region_name or os.environ.get("AWS_REGION", "us-east-1"),
        ),
        artifacts=S3Artifacts(session.client("s3", config=RETRIES), config.artifacts_bucket_name),
        logs=CloudWatchBuildLogs(session.client("logs", config=RETRIES)),
        # Every event carries the X-Ray trace header (the publisher's default).
        publisher=EventBridgePublisher(clients.events(), config.event_bus_name),
        slots=DynamoDBSerialSlot(dynamodb, config.ledger_table_name),
        products=load_product,
        clock=lambda: datetime.now(UTC),
        report_refusal=report_refusal,
        count=count,
        report_not_started=report_not_started,
        costs=DynamoDBCommittedCost(dynamodb, config.ledger_table_name),
        guardrails=guardrails,
    )
    deduplicator = DynamoDBDeduplicator(
        config.idempotency_table_name, EVENT_DEDUPE_SECONDS, boto3_session=session
    )
    return Runtime(service, deduplicator, guardrails)


@cache
def in_flight_index(config: ProvisionerConfig) -> DynamoDBInFlightIndex:
    """The ledger's in-flight index (the stuck-ticket check), with ``RETRIES``."""
    client = ClientFactory(retries=RETRIES).session.client("dynamodb", config=RETRIES)
    return DynamoDBInFlightIndex(client, config.ledger_table_name)
