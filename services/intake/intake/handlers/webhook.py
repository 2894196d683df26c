"""``WebhookFunction``: ``POST /webhooks/servicenow`` and ``POST /webhooks/jira``.

Thin handler: wires observability and routing; the domain logic lives in
``intake.domain`` (authentication, normalization, validation, deduplication).
"""

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from intake.config import WebhookConfig
from selfservice_contracts.config import load_config

CONFIG_MODEL = WebhookConfig

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver()


@cache
def config() -> WebhookConfig:
    """The validated environment, loaded once per execution environment (cold start)."""
    return load_config(CONFIG_MODEL)


def _not_built_yet(source: str) -> Response[dict[str, str]]:
    # Honest placeholder until the intake issue lands: a client learns the webhook is
    # not processed, and the ITSM side retries or alerts instead of assuming success.
    return Response(
        status_code=501,
        content_type=content_types.APPLICATION_JSON,
        body={"message": f"{source} webhook processing is not implemented yet"},
    )


@app.post("/webhooks/servicenow")
def servicenow_webhook() -> Response[dict[str, str]]:
    """Receive a ServiceNow business-rule delivery."""
    return _not_built_yet("servicenow")


@app.post("/webhooks/jira")
def jira_webhook() -> Response[dict[str, str]]:
    """Receive a Jira Cloud webhook or Jira Automation web request."""
    return _not_built_yet("jira")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``Handler: intake.handlers.webhook.lambda_handler``)."""
    config()
    return app.resolve(event, context)
