"""``WebhookFunction``: ``POST /webhooks/servicenow`` and ``POST /webhooks/jira``.

Thin handler: reads the HTTP request into a :class:`Delivery`, asks the domain service
for a reply, records metrics, and maps every refusal to its status code in one place.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from http import HTTPStatus
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from intake.adapters.secrets import ParameterSecretStore
from intake.adapters.settings_store import load_settings
from intake.config import WebhookConfig
from intake.domain.errors import AuthenticationError, IntakeError
from intake.domain.intake import Delivery, IntakeService, SecretIds, Source
from selfservice_runtime.config import load_config
from selfservice_runtime.dedupe import DynamoDBDeduplicator
from selfservice_runtime.observability import Metric, count, count_by_reason
from selfservice_runtime.publisher import EventBridgePublisher

CONFIG_MODEL = WebhookConfig
DEDUPE_TTL_SECONDS = 7 * 24 * 3600
"""How long a ticket's delivery is remembered (ServiceNow/Jira retries come within hours)."""

logger = Logger()
tracer = Tracer(patch_modules=["boto3"])  # we call AWS only through boto3
metrics = Metrics()
app = APIGatewayHttpResolver()

_METRIC_BY_OUTCOME = {
    "received": Metric.REQUESTS_RECEIVED,
    "approval_required": Metric.REQUESTS_AWAITING_APPROVAL,
    "approved": Metric.REQUESTS_APPROVED,
    "rejected": Metric.REQUESTS_REJECTED,
    "ignored": Metric.DELIVERIES_IGNORED,
    "duplicate": Metric.DELIVERIES_DUPLICATED,
}


@cache
def config() -> WebhookConfig:
    """The validated environment, loaded once per execution environment (cold start)."""
    return load_config(CONFIG_MODEL)


@dataclass(frozen=True)
class Adapters:
    """Everything that talks to AWS, built once per execution environment."""

    publisher: EventBridgePublisher
    deduplicator: DynamoDBDeduplicator
    secrets: ParameterSecretStore
    ssm: SSMProvider


@cache
def adapters() -> Adapters:
    """The adapters, sharing one boto3 session.

    One session means botocore loads its endpoint and service data once; a session per
    component (the libraries' default) costs every cold start hundreds of milliseconds.
    """
    settings = config()
    session = boto3.session.Session()
    ssm = SSMProvider(boto3_session=session)
    return Adapters(
        # X-Ray propagates across services through the event (PutEvents TraceHeader,
        # the publisher's default).
        publisher=EventBridgePublisher(session.client("events"), settings.event_bus_name),
        deduplicator=DynamoDBDeduplicator(
            settings.idempotency_table_name, DEDUPE_TTL_SECONDS, boto3_session=session
        ),
        secrets=ParameterSecretStore(ssm, SecretsProvider(boto3_session=session)),
        ssm=ssm,
    )


def _service() -> IntakeService:
    settings = config()
    aws = adapters()
    return IntakeService(
        settings=load_settings(aws.ssm, settings.intake_config_parameter),
        secrets=aws.secrets,
        secret_ids=SecretIds(
            servicenow_hmac=settings.servicenow_hmac_secret_id,
            servicenow_basic_auth=settings.servicenow_basic_auth_secret_id,
            jira_webhook=settings.jira_webhook_secret_id,
            jira_automation_token=settings.jira_automation_token_secret_id,
        ),
        publisher=aws.publisher,
        deduplicator=aws.deduplicator,
    )


def _raw_body() -> bytes:
    event = app.current_event
    body = event.body or ""
    # HMACs are computed over the bytes the sender signed: undo API Gateway's encoding.
    return base64.b64decode(body) if event.is_base64_encoded else body.encode("utf-8")


def _receive(source: Source) -> Response[dict[str, Any]]:
    delivery = Delivery(
        source=source,
        headers={name.lower(): value for name, value in (app.current_event.headers or {}).items()},
        body=_raw_body(),
        received_at=datetime.now(UTC),
    )
    reply = _service().handle(delivery)
    count(metrics, _METRIC_BY_OUTCOME[reply.outcome])
    request_id = reply.body.get("request_id")
    if isinstance(request_id, str):
        # From here on the request id is the correlation id, as in every other service;
        # the API Gateway request id (the access log's) stays beside it.
        logger.append_keys(api_request_id=logger.get_correlation_id())
        logger.set_correlation_id(request_id)
        tracer.put_annotation(key="request_id", value=request_id)
    logger.info(
        "delivery answered",
        extra={
            "source": source,
            "outcome": reply.outcome,
            "status_code": reply.status_code,
            "ticket": reply.body.get("ticket"),
        },
    )
    return Response(reply.status_code, content_types.APPLICATION_JSON, reply.body)


@app.post("/webhooks/servicenow")
def servicenow_webhook() -> Response[dict[str, Any]]:
    """Receive a ServiceNow business-rule delivery."""
    return _receive("servicenow")


@app.post("/webhooks/jira")
def jira_webhook() -> Response[dict[str, Any]]:
    """Receive a Jira Cloud webhook or Jira Automation web request."""
    return _receive("jira")


@app.exception_handler(IntakeError)  # type: ignore[untyped-decorator]
def refused(error: IntakeError) -> Response[dict[str, object]]:
    """Every refusal, mapped to its status code in this one place."""
    if isinstance(error, AuthenticationError):
        # The reason helps operators (metric, log), never the caller (bare 401).
        count_by_reason(metrics, Metric.WEBHOOK_AUTH_FAILURES, error.reason)
        logger.warning("webhook authentication failed", extra={"reason": error.reason})
    elif error.status_code >= HTTPStatus.INTERNAL_SERVER_ERROR:
        logger.error("delivery not accepted", extra={"error": str(error)}, exc_info=error)
    else:
        logger.info("delivery refused", extra={"status_code": error.status_code})
    headers = {"Retry-After": "5"} if error.status_code == HTTPStatus.SERVICE_UNAVAILABLE else None
    return Response(error.status_code, content_types.APPLICATION_JSON, error.body(), headers)


# The event carries credentials in its headers (Authorization, the Jira Automation token):
# log_event=False keeps POWERTOOLS_LOGGER_LOG_EVENT=true, set to debug, from logging them.
# The correlation id starts as the API Gateway request id (a refused delivery has no
# other); clear_state drops the previous invocation's keys (its request id) first.
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False, clear_state=True
)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``Handler: intake.handlers.webhook.lambda_handler``)."""
    config()
    adapters().deduplicator.register_lambda_context(context)
    return app.resolve(event, context)
