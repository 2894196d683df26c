"""``OpsApiFunction``: ``POST /run-commands``, ``GET /commands/{id}``, ``POST /start-association``.

Thin handler: API Gateway has verified the SigV4 signature (``AWS_IAM``); this reads the
caller's identity from the request context, lets Powertools validate the body against
the request models, asks the domain service, and maps every refusal to its status code
in one exception handler. Every call — refused ones included — is audited as an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from typing import Annotated, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from ops_api.adapters.aws import Ec2Instances, SsmCommands
from ops_api.adapters.settings_store import load_settings
from ops_api.config import OpsApiConfig
from ops_api.domain.errors import (
    InstanceNotEligibleError,
    InvalidRequestError,
    OpsError,
    UnsupportedMediaTypeError,
)
from ops_api.domain.models import RunCommandsBody, StartAssociationBody
from ops_api.domain.service import OpsService, Reply
from selfservice_contracts.events import IamCaller, OpsCommandExecuted
from selfservice_runtime.config import load_config
from selfservice_runtime.json_body import parse_json_body
from selfservice_runtime.observability import Metric, count, count_by_reason
from selfservice_runtime.publisher import EventBridgePublisher

CONFIG_MODEL = OpsApiConfig

logger = Logger()
tracer = Tracer(patch_modules=["boto3"])
metrics = Metrics()
# Powertools parses the body with this: every way it can fail (depth, NaN, huge numbers)
# is a JSONDecodeError, which validation turns into a 400 like any other bad body.
app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=parse_json_body)

_OPERATION_BY_PATH = {
    "/run-commands": "run-commands",
    "/start-association": "start-association",
}


@cache
def config() -> OpsApiConfig:
    """The validated environment, loaded once per execution environment (cold start)."""
    return load_config(CONFIG_MODEL)


@dataclass(frozen=True)
class Adapters:
    """Everything that talks to AWS, built once per execution environment."""

    ssm: SSMProvider
    instances: Ec2Instances
    commands: SsmCommands
    publisher: EventBridgePublisher


@cache
def adapters() -> Adapters:
    """The adapters, sharing one boto3 session (botocore's data is loaded once)."""
    settings = config()
    session = boto3.session.Session()
    return Adapters(
        ssm=SSMProvider(boto3_session=session),
        instances=Ec2Instances(session.client("ec2")),
        commands=SsmCommands(session.client("ssm")),
        # The audit event carries the X-Ray trace header (the publisher's default).
        publisher=EventBridgePublisher(session.client("events"), settings.event_bus_name),
    )


def _audit_failed(record: OpsCommandExecuted, error: Exception) -> None:
    # The call's outcome stands; the record is kept in the log and an alarm fires.
    count(metrics, Metric.OPS_AUDIT_EVENTS_FAILED)
    logger.error(
        "audit event not published",
        extra={"audit": record.model_dump(mode="json")},
        exc_info=error,
    )


def _service() -> OpsService:
    settings = config()
    aws = adapters()
    return OpsService(
        settings=load_settings(aws.ssm, settings.ops_config_parameter),
        instances=aws.instances,
        commands=aws.commands,
        publisher=aws.publisher,
        allow_tag=(settings.allow_tag_key, settings.allow_tag_value),
        on_audit_failure=_audit_failed,
    )


def _caller() -> IamCaller:
    """The SigV4 identity API Gateway verified; none means the route is not IAM-protected."""
    iam = app.current_event.request_context.authorizer.iam
    if not iam or not iam.user_arn or not iam.account_id:
        raise InstanceNotEligibleError("the request carries no verified IAM identity")
    caller = IamCaller(
        user_arn=iam.user_arn,
        account_id=iam.account_id,
        user_id=iam.user_id or None,
        principal_org_id=iam.principal_org_id or None,
    )
    logger.append_keys(caller=caller.user_arn)
    return caller


def _time_left() -> float:
    return app.lambda_context.get_remaining_time_in_millis() / 1000


def _respond(reply: Reply, operation: str) -> Response[dict[str, Any]]:
    count(metrics, Metric.OPS_COMMANDS_SUCCEEDED)
    logger.info("ops call answered", extra={"operation": operation, "status_code": reply.status})
    return Response(reply.status, content_types.APPLICATION_JSON, reply.body)


@app.post("/run-commands")
def run_commands(body: RunCommandsBody) -> Response[dict[str, Any]]:
    """Run vetted commands on eligible instances and return each instance's result."""
    reply = _service().run_commands(body, _caller(), time_left=_time_left())
    return _respond(reply, "run-commands")


@app.get("/commands/<command_id>")
def get_command(
    command_id: Annotated[str, Path(pattern=r"^[0-9a-fA-F-]{36}$")],
) -> Response[dict[str, Any]]:
    """Fetch the results of an earlier command."""
    return _respond(_service().get_command(command_id, _caller()), "get-command")


@app.post("/start-association")
def start_association(body: StartAssociationBody) -> Response[dict[str, Any]]:
    """Apply State Manager associations once, now."""
    return _respond(_service().start_association(body, _caller()), "start-association")


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def invalid(error: RequestValidationError) -> Response[dict[str, Any]]:
    """A body or path that fails validation: 400 with field-level errors, audited."""
    fields = [
        {
            "loc": ".".join(
                str(part) for part in entry.get("loc", ()) if part != "body" and not _is_int(part)
            ),
            "message": _message(entry),
        }
        for entry in error.errors()
    ]
    return _refuse_before_service(InvalidRequestError("the request is not valid", errors=fields))


def _is_int(part: object) -> bool:
    # A decode error's location is the character offset: not a field.
    return isinstance(part, int) and not isinstance(part, bool)


def _message(entry: dict[str, Any]) -> str:
    if entry.get("type") == "json_invalid":
        return f"the body is not valid JSON: {entry.get('ctx', {}).get('error', 'decode error')}"
    return str(entry.get("msg", "invalid"))


@app.exception_handler(UnicodeDecodeError)  # type: ignore[untyped-decorator]
def undecodable(error: UnicodeDecodeError) -> Response[dict[str, Any]]:
    """A body that is not UTF-8 (so not JSON): 400, audited."""
    del error
    return _refuse_before_service(
        InvalidRequestError(
            "the request is not valid",
            errors=[{"loc": "", "message": "the body is not UTF-8 encoded JSON"}],
        )
    )


@app.exception_handler(RequestUnsupportedContentType)  # type: ignore[untyped-decorator]
def unsupported_media_type(error: RequestUnsupportedContentType) -> Response[dict[str, Any]]:
    """A body sent as anything but JSON: 415 in the API's envelope, audited."""
    del error
    content_type = app.current_event.headers.get("content-type", "")
    return _refuse_before_service(
        UnsupportedMediaTypeError(f"send the body as application/json, not {content_type[:100]!r}")
    )


def _refuse_before_service(refusal: OpsError) -> Response[dict[str, Any]]:
    operation = _OPERATION_BY_PATH.get(app.current_event.path, "get-command")
    try:
        _service().refuse(operation, _caller(), refusal)  # type: ignore[arg-type]
    except OpsError as exc:
        return _refusal(exc)
    return _refusal(refusal)


@app.exception_handler(OpsError)  # type: ignore[untyped-decorator]
def refused(error: OpsError) -> Response[dict[str, Any]]:
    """Every known condition, mapped to its status code in this one place."""
    return _refusal(error)


def _refusal(error: OpsError) -> Response[dict[str, Any]]:
    count_by_reason(metrics, Metric.OPS_COMMANDS_FAILED, error.code)
    log = logger.error if error.status >= HTTPStatus.INTERNAL_SERVER_ERROR else logger.info
    log("ops call refused", extra={"status_code": error.status, "error": error.message})
    return Response(error.status, content_types.APPLICATION_JSON, error.body())


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
