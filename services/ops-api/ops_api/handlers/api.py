"""``OpsApiFunction``: ``POST /run-commands``, ``GET /commands/{id}``, ``POST /start-association``.

Thin handler: API Gateway verified the SigV4 signature (``AWS_IAM``); Powertools validates
the body; the service (:mod:`ops_api.runtime`) answers; one handler maps every refusal.
Every call — refused ones included — is audited as an event.
"""

from typing import Annotated, Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from ops_api import runtime
from ops_api.domain.errors import OpsError
from ops_api.domain.models import RunCommandsBody, StartAssociationBody
from ops_api.domain.service import OpsService
from ops_api.environment import OpsApiConfig
from ops_api.handlers import request, responses
from ops_api.handlers.responses import logger, metrics
from selfservice_contracts.events import IamCaller
from selfservice_runtime.json_body import parse_json_body

CONFIG_MODEL = OpsApiConfig
config, adapters = runtime.config, runtime.adapters  # each built once, at cold start

tracer = Tracer(patch_modules=["boto3"])
# Powertools parses the body with this: every way it can fail (depth, NaN, huge numbers)
# is a JSONDecodeError, which validation turns into a 400 like any other bad body.
app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=parse_json_body)


def _service() -> OpsService:
    return runtime.service(on_audit_failure=responses.audit_failed)


def _caller() -> IamCaller:
    caller = request.caller_of(app.current_event)
    logger.append_keys(caller=caller.user_arn)
    return caller


@app.post("/run-commands")
def run_commands(body: RunCommandsBody) -> Response[dict[str, Any]]:
    """Run vetted commands on eligible instances and return each instance's result."""
    time_left = app.lambda_context.get_remaining_time_in_millis() / 1000
    return responses.answered(
        _service().run_commands(body, _caller(), time_left=time_left), "run-commands"
    )


@app.get("/commands/<command_id>")
def get_command(
    command_id: Annotated[str, Path(pattern=r"^[0-9a-fA-F-]{36}$")],
) -> Response[dict[str, Any]]:
    """Fetch the results of an earlier command."""
    return responses.answered(_service().get_command(command_id, _caller()), "get-command")


@app.post("/start-association")
def start_association(body: StartAssociationBody) -> Response[dict[str, Any]]:
    """Apply State Manager associations once, now."""
    return responses.answered(_service().start_association(body, _caller()), "start-association")


@app.exception_handler(  # type: ignore[untyped-decorator]
    [RequestValidationError, UnicodeDecodeError, RequestUnsupportedContentType]
)
def refused_before_service(error: Exception) -> Response[dict[str, Any]]:
    """A request Powertools would not hand to a route (invalid, not UTF-8, not JSON): audited."""
    event = app.current_event
    refusal = request.refusal_of(error, event.headers.get("content-type", ""))
    try:
        _service().refuse(request.operation_of(event.path), _caller(), refusal)
    except OpsError as exc:
        return responses.refused(exc)
    return responses.refused(refusal)


app.exception_handler(OpsError)(responses.refused)  # every known condition


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: the event carries the
# caller's SigV4 headers (x-amz-security-token). The correlation id is the API Gateway
# request id (the access log's); clear_state drops the previous invocation's caller.
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False, clear_state=True
)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``Handler: ops_api.handlers.api.lambda_handler``)."""
    config()
    return app.resolve(event, context)
