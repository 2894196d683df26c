"""``OpsApiFunction``: run-commands, get-command and start-association routes."""

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from ops_api.config import OpsApiConfig
from selfservice_contracts.config import load_config

CONFIG_MODEL = OpsApiConfig

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver()


@cache
def config() -> OpsApiConfig:
    """The validated environment, loaded once per execution environment (cold start)."""
    return load_config(CONFIG_MODEL)


def _not_built_yet(operation: str) -> Response[dict[str, str]]:
    # Honest placeholder until the ops-API issue lands: nothing is executed.
    return Response(
        status_code=501,
        content_type=content_types.APPLICATION_JSON,
        body={"message": f"{operation} is not implemented yet"},
    )


@app.post("/run-commands")
def run_commands() -> Response[dict[str, str]]:
    """Run vetted commands on eligible instances."""
    return _not_built_yet("run-commands")


@app.get("/commands/<command_id>")
def get_command(command_id: str) -> Response[dict[str, str]]:
    """Fetch the results of an earlier command."""
    return _not_built_yet("get-command")


@app.post("/start-association")
def start_association() -> Response[dict[str, str]]:
    """Apply State Manager associations once."""
    return _not_built_yet("start-association")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``Handler: ops_api.handlers.api.lambda_handler``)."""
    config()
    return app.resolve(event, context)
