"""Refusals shaped as each AWS protocol answers them.

Query services (sts, iam, autoscaling, elasticloadbalancing, cloudwatch, sns) answer
403 ``<ErrorResponse>`` with ``AccessDenied``; EC2 403 ``UnauthorizedOperation``;
JSON services 400 ``AccessDeniedException`` (SQS's JSON protocol 403 with the
``x-amzn-query-error: AccessDenied;Sender`` header its SDKs read); Smithy RPC v2 CBOR
services (CloudWatch, CodeBuild) the same in CBOR, serialized by moto's serializer;
S3 403 ``<Error><Code>AccessDenied``.
"""

from __future__ import annotations

import json
import uuid
from functools import cache
from typing import Any
from xml.sax.saxutils import escape

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.core.utils import get_service_model
from werkzeug.exceptions import HTTPException

from selfservice.local.iam.identities import CredentialError

__all__ = ["response", "s3_error"]

# (code, status) per protocol family and credential failure.
_CREDENTIAL_CODES: dict[str, dict[str, tuple[str, int]]] = {
    "query": {
        "InvalidId": ("InvalidClientTokenId", 403),
        "InvalidToken": ("InvalidClientTokenId", 403),
        "Expired": ("ExpiredToken", 403),
        "Missing": ("MissingAuthenticationToken", 403),
        "Signature": ("SignatureDoesNotMatch", 403),
    },
    "json": {
        "InvalidId": ("UnrecognizedClientException", 400),
        "InvalidToken": ("UnrecognizedClientException", 400),
        "Expired": ("ExpiredTokenException", 400),
        "Missing": ("MissingAuthenticationTokenException", 403),
        "Signature": ("InvalidSignatureException", 400),
    },
    "ec2": {
        "InvalidId": ("AuthFailure", 401),
        "InvalidToken": ("AuthFailure", 401),
        "Expired": ("RequestExpired", 400),
        "Missing": ("MissingAuthenticationToken", 401),
        "Signature": ("AuthFailure", 401),
    },
    "s3": {
        "InvalidId": ("InvalidAccessKeyId", 403),
        "InvalidToken": ("InvalidToken", 400),
        "Expired": ("ExpiredToken", 400),
        "Missing": ("AccessDenied", 403),
        "Signature": ("SignatureDoesNotMatch", 403),
    },
}


@cache
def _protocol(service_name: str) -> tuple[str, bool]:
    """(protocol family, query-compatible) of a botocore service."""
    try:
        metadata = get_service_model(service_name).metadata
    except Exception:  # noqa: BLE001 - an unknown model answers as a query service
        return "query", False
    protocol = str(metadata.get("protocol", "query"))
    compatible = "awsQueryCompatible" in metadata
    if service_name == "ec2":
        return "ec2", False
    if protocol in ("json", "rest-json", "smithy-rpc-v2-cbor"):
        return "json", compatible
    if protocol == "rest-xml":
        return "s3", False
    return "query", False


def _code(family: str, refusal: Exception) -> tuple[str, int, str]:
    if isinstance(refusal, CredentialError):
        code, status = _CREDENTIAL_CODES[family][refusal.reason]
        return code, status, refusal.message
    message = str(refusal)
    if family == "ec2":
        return (
            "UnauthorizedOperation",
            403,
            f"You are not authorized to perform this operation. {message}",
        )
    if family == "json":
        return "AccessDeniedException", 400, message
    return "AccessDenied", 403, message


def _cbor(handler: Any, code: str, status: int, message: str) -> tuple[int, dict[str, str], Any]:
    """A refusal in Smithy RPC v2 CBOR, serialized by moto's own serializer."""
    _, headers, body = handler.serialized(ActionResult(ServiceException(code, message)))
    headers.pop("status", None)
    return status, dict(headers), body


def response(handler: Any, refusal: Exception) -> tuple[int, dict[str, str], Any]:
    """The (status, headers, body) a moto handler returns for ``refusal``."""
    family, compatible = _protocol(handler.boto3_service_name)
    code, status, message = _code(family, refusal)
    if family == "json" and "cbor" in str(handler.headers.get("Content-Type", "")):
        if compatible and code == "AccessDeniedException":
            status = 403
        return _cbor(handler, code, status, message)
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-RequestId": request_id}
    if family == "json":
        if compatible:
            query_code = "AccessDenied" if code == "AccessDeniedException" else code
            headers["x-amzn-query-error"] = f"{query_code};Sender"
            status = 403 if query_code == "AccessDenied" else status
        headers["Content-Type"] = "application/x-amz-json-1.0"
        headers["x-amzn-ErrorType"] = code
        return status, headers, json.dumps({"__type": code, "message": message, "Message": message})
    headers["Content-Type"] = "text/xml"
    if family == "ec2":
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{escape(message)}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
        return status, headers, body
    body = (
        "<ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return status, headers, body


class _S3Refusal(HTTPException):
    def __init__(self, code: str, status: int, message: str) -> None:
        request_id = str(uuid.uuid4())
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
        super().__init__(description=body)
        self.code = status

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [("Content-Type", "application/xml")]

    def get_body(self, *args: Any, **kwargs: Any) -> str:
        return str(self.description)


def s3_error(refusal: Exception) -> HTTPException:
    """An exception moto's S3 front turns into the S3-shaped refusal."""
    code, status, message = _code("s3", refusal)
    return _S3Refusal(code, status, message)
