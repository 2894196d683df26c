"""HTTP APIs on 127.0.0.1: routes from the template, payload format 2.0, AWS_IAM auth."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from selfservice.local.functions import Invocable, InvocationError
from selfservice.local.loopback import LoopbackServer, QuietHandler
from selfservice.local.sigv4 import Caller, SignatureError, verify

__all__ = ["UNAVAILABLE", "HttpFront", "IamAuthorizer"]


@dataclass(frozen=True)
class IamAuthorizer:
    """AWS_IAM authorization: the credentials the front accepts, by access key id, and
    (given ``authorize``) the IAM decision on ``execute-api:Invoke`` for the route, as
    API Gateway asks IAM: ``authorize(access_key_id, action, resources)`` raises to refuse."""

    credentials: dict[str, tuple[str, Caller]]
    region: str = "us-east-1"
    authorize: Callable[[str, str, list[str]], None] | None = None
    api_id: str = "local"


def _route_pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{([^}/]+)\}", r"(?P<\1>[^/]+)", path) + "$")


UNAVAILABLE: dict[str, Any] = {
    "statusCode": 503,
    "headers": {"Content-Type": "application/json", "Retry-After": "5"},
    "body": json.dumps({"message": "Service Unavailable"}),
}
"""API Gateway's answer while the platform behind it is being restored."""


class HttpFront(LoopbackServer):
    """An HTTP API on 127.0.0.1: routes from the template, payload format 2.0."""

    def __init__(
        self, routes: Sequence[tuple[str, str, Invocable]], iam: IamAuthorizer | None = None
    ) -> None:
        self.iam = iam
        self.unavailable = False
        """While True, every route answers API Gateway's 503 with ``Retry-After``."""
        self.routes = [
            (method.upper(), _route_pattern(path), path, worker) for method, path, worker in routes
        ]
        super().__init__(self._handler())

    def refusal(self, access_key: str, method: str, path: str) -> str | None:
        """Why IAM refuses ``execute-api:Invoke`` on this route to the key, or None."""
        if self.iam is None or self.iam.authorize is None:
            return None
        arn = (
            f"arn:aws:execute-api:{self.iam.region}:123456789012:"
            f"{self.iam.api_id}/$default/{method}{path}"
        )
        try:
            self.iam.authorize(access_key, "execute-api:Invoke", [arn])
        except Exception as error:  # noqa: BLE001 - any refusal is API Gateway's 403
            return str(getattr(error, "message", error))
        return None

    def _handler(self) -> type[QuietHandler]:
        front = self

        class Handler(QuietHandler):
            def _serve(self) -> None:
                path = self.path.split("?", 1)[0]
                for method, pattern, template_path, worker in front.routes:
                    match = pattern.match(path)
                    if method == self.command and match:
                        length = int(self.headers.get("Content-Length") or 0)
                        raw = self.rfile.read(length) if length else b""
                        caller = None
                        if front.iam is not None:
                            try:
                                caller = verify(
                                    method=method,
                                    url=f"http://{self.headers.get('Host', '')}{self.path}",
                                    headers=dict(self.headers.items()),
                                    body=raw,
                                    secrets=front.iam.credentials,
                                    region=front.iam.region,
                                )
                            except SignatureError as error:
                                self._reply(403, error.body, {})
                                return
                            refusal = front.refusal(caller.access_key, method, path)
                            if refusal is not None:
                                self._reply(403, {"Message": refusal}, {})
                                return
                        try:
                            text, encoded = raw.decode("utf-8"), False
                        except UnicodeDecodeError:
                            text, encoded = base64.b64encode(raw).decode(), True
                        event = {
                            "version": "2.0",
                            "routeKey": f"{method} {template_path}",
                            "rawPath": path,
                            "rawQueryString": self.path.partition("?")[2],
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "requestContext": {
                                "http": {"method": method, "path": path, "sourceIp": "127.0.0.1"},
                                "requestId": str(uuid.uuid4()),
                                "routeKey": f"{method} {template_path}",
                                "stage": "$default",
                                "accountId": "123456789012",
                                **({"authorizer": caller.authorizer()} if caller else {}),
                            },
                            "pathParameters": match.groupdict() or None,
                            "body": text,
                            "isBase64Encoded": encoded,
                        }
                        try:
                            response = UNAVAILABLE if front.unavailable else worker.invoke(event)
                        except InvocationError:
                            self._reply(500, {"message": "Internal Server Error"}, {})
                            return
                        self._reply(
                            response.get("statusCode", 200),
                            response.get("body", ""),
                            response.get("headers") or {},
                        )
                        return
                self._reply(404, {"message": "Not Found"}, {})

            def _reply(self, status: int, body: Any, headers: dict[str, str]) -> None:
                payload = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_body(status, payload, headers)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

        return Handler
