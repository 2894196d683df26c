"""What a request says before the service sees it: its caller, its operation, its refusal.

Powertools rejects a body or path that fails validation, a body that is not UTF-8 and
a body sent as anything but JSON with its own exceptions; :func:`refusal_of` turns each
into the :class:`OpsError` the API answers (and audits) with.
"""

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from ops_api.domain.audit import Operation
from ops_api.domain.errors import (
    InstanceNotEligibleError,
    InvalidRequestError,
    OpsError,
    UnsupportedMediaTypeError,
)
from selfservice_contracts.events import IamCaller

__all__ = ["caller_of", "operation_of", "refusal_of"]

_OPERATION_BY_PATH: dict[str, Operation] = {
    "/run-commands": "run-commands",
    "/start-association": "start-association",
}


def caller_of(event: APIGatewayProxyEventV2) -> IamCaller:
    """The SigV4 identity API Gateway verified; none means the route is not IAM-protected."""
    iam = event.request_context.authorizer.iam
    if not iam or not iam.user_arn or not iam.account_id:
        raise InstanceNotEligibleError("the request carries no verified IAM identity")
    return IamCaller(
        user_arn=iam.user_arn,
        account_id=iam.account_id,
        user_id=iam.user_id or None,
        principal_org_id=iam.principal_org_id or None,
    )


def operation_of(path: str) -> Operation:
    """The operation a request path names (the command lookup has a variable path)."""
    return _OPERATION_BY_PATH.get(path, "get-command")


def refusal_of(error: Exception, content_type: str) -> OpsError:
    """The API's refusal of a request Powertools would not hand to a route."""
    if isinstance(error, RequestValidationError):
        # A body or path that fails validation: 400 with field-level errors.
        fields = [{"loc": _location(entry), "message": _message(entry)} for entry in error.errors()]
        return InvalidRequestError("the request is not valid", errors=fields)
    if isinstance(error, UnicodeDecodeError):
        # A body that is not UTF-8 (so not JSON).
        return InvalidRequestError(
            "the request is not valid",
            errors=[{"loc": "", "message": "the body is not UTF-8 encoded JSON"}],
        )
    # RequestUnsupportedContentType: a body sent as anything but JSON (415).
    return UnsupportedMediaTypeError(
        f"send the body as application/json, not {content_type[:100]!r}"
    )


def _location(entry: Mapping[str, Any]) -> str:
    # A decode error's location ends in the character offset: not a field.
    return ".".join(
        str(part) for part in entry.get("loc", ()) if part != "body" and not _is_int(part)
    )


def _is_int(part: object) -> bool:
    return isinstance(part, int) and not isinstance(part, bool)


def _message(entry: Mapping[str, Any]) -> str:
    if entry.get("type") == "json_invalid":
        return f"the body is not valid JSON: {entry.get('ctx', {}).get('error', 'decode error')}"
    return str(entry.get("msg", "invalid"))
