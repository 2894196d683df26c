"""The local front answers AWS_IAM routes like API Gateway: SigV4 verified or 403."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from selfservice.local.http_front import HttpFront, IamAuthorizer
from selfservice.local.sigv4 import Caller, SignatureError, verify

CALLER = Caller("AKIATEST", "123456789012", "arn:aws:iam::123456789012:user/jane", "AIDATEST")
AUTHORIZER = IamAuthorizer({"AKIATEST": ("test-secret", CALLER)})


class Echo:
    """Returns what the function was given, so the test sees the authorizer context."""

    def invoke(self, event: dict[str, Any]) -> Any:
        return {"statusCode": 200, "body": json.dumps(event["requestContext"].get("authorizer"))}


@pytest.fixture
def front() -> Iterator[HttpFront]:
    server = HttpFront(
        [("POST", "/run-commands", Echo()), ("GET", "/commands/{command_id}", Echo())], AUTHORIZER
    ).start()
    yield server
    server.stop()


def _send(
    front: HttpFront,
    path: str,
    body: bytes | None,
    *,
    secret: str = "test-secret",
    key: str = "AKIATEST",
    tamper: bytes | None = None,
    sign: bool = True,
) -> tuple[int, Any]:
    method = "POST" if body is not None else "GET"
    url = f"{front.url}{path}"
    request = AWSRequest(
        method=method, url=url, data=body, headers={"Content-Type": "application/json"}
    )
    if sign:
        SigV4Auth(Credentials(key, secret), "execute-api", "us-east-1").add_auth(request)
    sent = urllib.request.Request(
        url,
        data=tamper if tamper is not None else body,
        method=method,
        headers=dict(request.headers.items()),
    )
    try:
        with urllib.request.urlopen(sent, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_signed_request_reaches_the_function_with_the_caller(front: HttpFront) -> None:
    status, authorizer = _send(front, "/run-commands", b'{"instance_id": "i-0123456789abcdef0"}')
    assert status == 200
    assert authorizer["iam"]["userArn"] == "arn:aws:iam::123456789012:user/jane"
    status, _ = _send(front, "/commands/abc-123?detail=true", None)
    assert status == 200


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sign": False}, "Missing Authentication Token"),
        ({"secret": "guessed"}, "does not match"),
        ({"key": "AKIAOTHER"}, "security token included in the request is invalid"),
        ({"tamper": b'{"instance_id": "i-ffffffffffffffff0"}'}, "does not match"),
    ],
    ids=["unsigned", "wrong-secret", "unknown-key", "tampered-body"],
)
def test_unsigned_or_badly_signed_requests_get_403(
    front: HttpFront, options: dict[str, Any], message: str
) -> None:
    status, body = _send(
        front, "/run-commands", b'{"instance_id": "i-0123456789abcdef0"}', **options
    )
    assert status == 403
    assert message in body["message"]


def test_a_signature_older_than_five_minutes_is_refused() -> None:
    url = "http://127.0.0.1:9/run-commands"
    request = AWSRequest(
        method="POST", url=url, data=b"{}", headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials("AKIATEST", "test-secret"), "execute-api", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    signed_at = datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    options = {
        "method": "POST",
        "url": url,
        "headers": headers,
        "body": b"{}",
        "secrets": AUTHORIZER.credentials,
        "region": "us-east-1",
    }
    assert verify(**options, now=signed_at + timedelta(minutes=4)) == CALLER  # type: ignore[arg-type]
    with pytest.raises(SignatureError, match="Signature expired"):
        verify(**options, now=signed_at + timedelta(minutes=6))  # type: ignore[arg-type]
