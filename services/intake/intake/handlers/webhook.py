"""``WebhookFunction``: ``POST /webhooks/servicenow`` and ``POST /webhooks/jira``.

Thin handler: reads the request into a :class:`Delivery`, asks the service (wired in
:mod:`intake.runtime`), records metrics, maps every refusal to its status in one place.
"""

import base64
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from intake import runtime
from intake.domain.errors import AuthenticationError, IntakeError
from intake.domain.intake import Delivery, Source
from intake.environment import WebhookConfig
from selfservice_runtime.observability import Metric, count, count_by_reason

CONFIG_MODEL = WebhookConfig
config, adapters = runtime.config, runtime.adapters  # each built once, at cold start

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


def _receive(source: Source) -> Response[dict[str, Any]]:
    event, body = app.current_event, app.current_event.body or ""
    # HMACs are computed over the bytes the sender signed: undo API Gateway's encoding.
    raw = base64.b64decode(body) if event.is_base64_encoded else body.encode("utf-8")
    headers = {name.lower(): value for name, value in (event.headers or {}).items()}
    delivery = Delivery(source, headers, raw, received_at=datetime.now(UTC))
    reply = runtime.service().handle(delivery)
    count(metrics, _METRIC_BY_OUTCOME[reply.outcome])
    request_id = reply.body.get("request_id")
    if isinstance(request_id, str):
        # From here on the request id is the correlation id, as in every other service;
        # the API Gateway request id (the access log's) stays beside it.
        logger.append_keys(api_request_id=logger.get_correlation_id())
        logger.set_correlation_id(request_id)
        tracer.put_annotation(key="request_id", value=request_id)
    answered = {"source": source, "outcome": reply.outcome, "status_code": reply.status_code}
    logger.info("delivery answered", extra={**answered, "ticket": reply.body.get("ticket")})
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


# log_event=False: the headers carry credentials (Authorization, the Jira Automation token),
# whatever POWERTOOLS_LOGGER_LOG_EVENT says. The correlation id starts as the API Gateway
# request id (a refusal has no other); clear_state drops the last invocation's keys first.
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False, clear_state=True
)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``Handler: intake.handlers.webhook.lambda_handler``)."""
    config()
    runtime.adapters().deduplicator.register_lambda_context(context)
    return app.resolve(event, context)
