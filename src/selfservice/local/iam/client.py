"""Client side of the embedded AWS's internal IAM routes (no moto import).

:class:`~selfservice.local.moto_server.EmbeddedAws` exposes these as methods; the
local runtime's own endpoints (CodeBuild, SSM) call them to authorize what they serve.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "AccessDeniedError",
    "IamRouteError",
    "assume_role_as_service",
    "authorize",
    "unresolved_actions",
    "verify_signature",
]

_PREFIX = "/_selfservice/iam/"


class IamRouteError(Exception):
    """The embedded AWS refused: ``code`` is AWS's error code, ``message`` its wording."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


class AccessDeniedError(IamRouteError):
    """An authorization refused (``AccessDenied``), with AWS's message."""


def _post(endpoint: str, route: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - the embedded AWS on loopback
        f"{endpoint}{_PREFIX}{route}",
        data=data,
        method="POST" if data is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            result: dict[str, Any] = json.loads(answer.read())
            return result
    except urllib.error.HTTPError as refused:
        payload = json.loads(refused.read() or b"{}")
        code, message = str(payload.get("code", "Error")), str(payload.get("message", ""))
        if code in ("AccessDenied", "InvalidId", "InvalidToken", "Expired", "Signature", "Missing"):
            raise AccessDeniedError(code, message, refused.code) from None
        raise IamRouteError(code, message, refused.code) from None


def assume_role_as_service(
    endpoint: str,
    role_arn: str,
    service: str,
    *,
    session_name: str,
    source_arn: str | None = None,
    source_account: str | None = None,
    duration_seconds: int = 43200,
) -> dict[str, str]:
    """``{"AccessKeyId", "SecretAccessKey", "SessionToken"}`` of the role, as ``service``.

    Raises :class:`AccessDeniedError` naming role and service when the role's trust
    policy does not allow ``{"Service": service}`` (with the source keys given).
    """
    answer = _post(
        endpoint,
        "assume-role-as-service",
        {
            "role_arn": role_arn,
            "service": service,
            "session_name": session_name,
            "source_arn": source_arn,
            "source_account": source_account,
            "duration_seconds": duration_seconds,
        },
    )
    return {k: str(answer[k]) for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}


def authorize(
    endpoint: str,
    access_key_id: str,
    action: str,
    resources: Sequence[str],
    context: Mapping[str, Sequence[str]] | None = None,
    *,
    region: str = "us-east-1",
) -> dict[str, Any]:
    """Nothing (the caller's principal) if allowed; :class:`AccessDeniedError` if not."""
    answer = _post(
        endpoint,
        "authorize",
        {
            "access_key_id": access_key_id,
            "action": action,
            "resources": list(resources),
            "context": {k: list(v) for k, v in (context or {}).items()},
            "region": region,
        },
    )
    principal: dict[str, Any] = answer["principal"]
    return principal


def verify_signature(
    endpoint: str, *, method: str, path: str, headers: Mapping[str, str], body: bytes
) -> dict[str, Any]:
    """The principal that validly signed the request (SigV4; STS session keys too).

    ``path`` is the path and query string as received. Raises
    :class:`AccessDeniedError` (code ``InvalidId``, ``InvalidToken``, ``Expired``,
    ``Signature`` or ``Missing``) when it is not validly signed.
    """
    answer = _post(
        endpoint,
        "verify-signature",
        {
            "method": method,
            "path": path,
            "headers": dict(headers),
            "body_base64": base64.b64encode(body).decode(),
        },
    )
    principal: dict[str, Any] = answer["principal"]
    return principal


def unresolved_actions(endpoint: str) -> list[str]:
    """Actions served so far whose resources no resolver knows (checked on ``*``)."""
    return list(_post(endpoint, "gaps", None)["unresolved_actions"])
