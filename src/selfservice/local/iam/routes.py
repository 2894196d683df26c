"""Internal routes of the embedded AWS for the local runtime (``/_selfservice/iam/...``).

- ``POST assume-role-as-service``: credentials for a role as an AWS service obtains
  them (the role's trust policy evaluated for ``{"Service": ...}`` with
  ``aws:SourceArn``/``aws:SourceAccount``);
- ``POST authorize``: decide an action on resources for an access key, for the APIs
  the platform's own local endpoints serve (CodeBuild, SSM);
- ``POST verify-signature``: who validly signed an arbitrary request;
- ``GET gaps``: actions checked on ``*`` because no resolver knows their resources.

They answer JSON; a refusal is 403 ``{"code", "message"}``.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterable
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sts.models import sts_backends

from selfservice.local.iam import enforcement
from selfservice.local.iam.enforcement import AccessDenied
from selfservice.local.iam.evaluator import Principal, Request, evaluate_trust, parse_policy
from selfservice.local.iam.identities import CredentialError, Identity, resolve, role_by_arn
from selfservice.local.iam.raw import RAW_BODY
from selfservice.local.iam.resources import UNRESOLVED, Check
from selfservice.local.iam.signatures import verify_signature

__all__ = ["PREFIX", "IamRoutes"]

PREFIX = "/_selfservice/iam/"
_StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _RefusedError(Exception):
    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def assume_role_as_service(body: dict[str, Any]) -> dict[str, str]:
    """Credentials of ``role_arn`` for ``service`` if the role's trust policy allows it."""
    role_arn, service = str(body["role_arn"]), str(body["service"])
    account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else DEFAULT_ACCOUNT_ID  # noqa: PLR2004
    role = role_by_arn(account, role_arn)
    if role is None:
        raise _RefusedError("NoSuchEntity", f"The role {role_arn} does not exist", 404)
    context: dict[str, list[str]] = {"aws:principalservicename": [service]}
    if body.get("source_arn"):
        context["aws:sourcearn"] = [str(body["source_arn"])]
    if body.get("source_account"):
        context["aws:sourceaccount"] = [str(body["source_account"])]
    principal = Principal("service", service, account, service=service)
    request = Request(principal, "sts:AssumeRole", role_arn, context)
    trust = parse_policy(role.assume_role_policy_document, f"{role.name}/trust-policy")
    outcome = evaluate_trust(request, trust_policy=trust)
    check = Check("sts:AssumeRole", role_arn)
    active = enforcement.enforcer()
    if active is not None:
        identity = Identity(principal, service, "")
        active.record(identity, check, outcome)
    if not outcome.allowed:
        raise _RefusedError(
            "AccessDenied",
            f"Service: {service} is not authorized to perform: sts:AssumeRole on resource: "
            f"{role_arn} (the role's trust policy does not allow this service"
            + (f" for source {body['source_arn']}" if body.get("source_arn") else "")
            + ")",
        )
    session = sts_backends[account]["aws"].assume_role(
        region_name=str(body.get("region") or "us-east-1"),
        role_session_name=str(body["session_name"]),
        role_arn=role_arn,
        policy="",
        duration=int(body.get("duration_seconds") or 43200),
        external_id="",
    )
    return {
        "AccessKeyId": session.access_key_id,
        "SecretAccessKey": session.secret_access_key,
        "SessionToken": session.session_token,
        "Expiration": session.expiration.isoformat(),
    }


def _identity_dict(identity: Identity) -> dict[str, str | None]:
    principal = identity.principal
    return {
        "kind": principal.kind,
        "arn": principal.arn,
        "account": principal.account,
        "role_arn": principal.role_arn,
        "access_key_id": identity.access_key_id,
        "user_name": identity.user_name,
        "role_name": identity.role_name,
    }


def authorize(body: dict[str, Any]) -> dict[str, Any]:
    """Decide ``action`` on each of ``resources`` for the access key's identity."""
    account = str(body.get("account_id") or DEFAULT_ACCOUNT_ID)
    identity = resolve(account, str(body["access_key_id"]), None, check_token=False)
    context = {
        str(k).lower(): [str(v) for v in vs] for k, vs in (body.get("context") or {}).items()
    }
    checks = [Check(str(body["action"]), str(r), context=context) for r in body["resources"]]
    active = enforcement.enforcer() or enforcement.Enforcer()
    active.authorize(identity, checks, str(body.get("region") or "us-east-1"))
    return {"allowed": True, "principal": _identity_dict(identity)}


def verify(body: dict[str, Any]) -> dict[str, Any]:
    """The identity that signed the request described by ``body``."""
    account = str(body.get("account_id") or DEFAULT_ACCOUNT_ID)
    raw = base64.b64decode(body.get("body_base64") or "")
    identity = verify_signature(
        account,
        method=str(body["method"]),
        path=str(body["path"]),
        headers=_Headers(body.get("headers") or {}),
        body=raw,
    )
    return {"principal": _identity_dict(identity)}


class _Headers(dict[str, str]):
    """Case-insensitive ``get`` over a plain header dict."""

    def get(self, key: str, default: Any = None) -> Any:
        lowered = key.lower()
        for name, value in self.items():
            if name.lower() == lowered:
                return value
        return default


_ROUTES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "assume-role-as-service": assume_role_as_service,
    "authorize": authorize,
    "verify-signature": verify,
}


class IamRoutes:
    """WSGI middleware: the internal IAM routes in front of moto's application."""

    def __init__(self, app: Callable[[dict[str, Any], _StartResponse], Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if not path.startswith(PREFIX):
            stream = environ["wsgi.input"]
            if environ.get("wsgi.input_terminated"):
                raw = stream.read()
            else:
                raw = stream.read(int(environ.get("CONTENT_LENGTH") or 0))
            environ[RAW_BODY] = raw
            environ["wsgi.input"] = io.BytesIO(raw)
            return self.app(environ, start_response)
        name = path[len(PREFIX) :].strip("/")
        status, payload = 200, dict[str, Any]()
        try:
            if name == "gaps":
                payload = {"unresolved_actions": sorted(UNRESOLVED)}
            elif name in _ROUTES:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = json.loads(environ["wsgi.input"].read(length) or b"{}")
                payload = _ROUTES[name](body)
            else:
                status, payload = 404, {"code": "NotFound", "message": path}
        except _RefusedError as refused:
            status, payload = refused.status, {"code": refused.code, "message": refused.message}
        except AccessDenied as denied:
            status, payload = 403, {"code": "AccessDenied", "message": denied.message}
        except CredentialError as bad:
            status, payload = 403, {"code": bad.reason, "message": bad.message}
        except (KeyError, ValueError, TypeError) as malformed:
            status, payload = 400, {"code": "BadRequest", "message": repr(malformed)}
        data = json.dumps(payload).encode()
        reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found"}[status]
        start_response(
            f"{status} {reason}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
        )
        return [data]
