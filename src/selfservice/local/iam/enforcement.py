"""IAM enforcement inside the moto server: every request authenticated and authorized.

:func:`enable` patches moto's request path (``BaseResponse.call_action`` and the S3
authorization hook) so each request's SigV4 signature is checked against the caller's
secret and each of its :class:`~selfservice.local.iam.resources.Check` is decided by
the evaluator. Refusals are answered the way the service's protocol answers them.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from selfservice.local.iam import deliveries, errors, resources_data, resources_infra
from selfservice.local.iam.evaluator import (
    Decision,
    Outcome,
    Policy,
    Principal,
    Request,
    evaluate,
    evaluate_trust,
    parse_policy,
)
from selfservice.local.iam.identities import (
    CredentialError,
    Identity,
    boundary_policy,
    identity_policies,
    resolve,
    role_by_arn,
)
from selfservice.local.iam.raw import RAW_BODY
from selfservice.local.iam.resources import Call, Check, resolve_checks, s3_checks
from selfservice.local.iam.signatures import (
    credential_scope,
    presigned_check,
    sign_check,
    verify_signature,
)

__all__ = ["AccessDenied", "Enforcer", "enable", "sign_check", "verify_signature"]

# Imported for their resolvers (they register themselves).
_RESOLVER_MODULES = (resources_data, resources_infra)

# SigV4 signing names that differ from the IAM service prefix.
_IAM_PREFIX = {
    "monitoring": "cloudwatch",
    "email": "ses",
    "elasticloadbalancingv2": "elasticloadbalancing",
}


class AccessDenied(Exception):  # noqa: N818 - named after the AWS error code
    """An authorization refused; ``message`` is AWS's wording."""

    def __init__(self, principal: Principal, check: Check, outcome: Outcome) -> None:
        self.principal, self.check, self.outcome = principal, check, outcome
        if outcome.decision is Decision.EXPLICIT_DENY and outcome.matched is not None:
            kind = "a resource-based" if outcome.matched.kind != "identity" else "an identity-based"
            why = f"with an explicit deny in {kind} policy"
        elif check.action.lower() == "sts:assumerole":
            why = ""
        else:
            why = f"because no identity-based policy allows the {check.action} action"
        self.message = (
            f"User: {principal.arn} is not authorized to perform: {check.action} "
            f"on resource: {check.resource}" + (f" {why}" if why else "")
        )
        super().__init__(self.message)


class Enforcer:
    """Decides checks for identities and records each decision in the usage log."""

    def __init__(self, usage_log: Path | None = None) -> None:
        self.usage_log = usage_log
        self._lock = threading.Lock()

    def decide(
        self,
        identity: Identity,
        check: Check,
        region: str,
        policies: tuple[list[Policy], Policy | None] | None = None,
    ) -> Outcome:
        """The outcome of one check (root is allowed unless a resource policy denies).

        ``policies``: the caller's identity policies and boundary, when already known.
        """
        principal = identity.principal
        context = self.context(identity, region, check)
        identity_set, boundary = policies or self.policies(identity)
        session = (
            parse_policy(identity.session_policy, f"{identity.principal.arn}/session-policy")
            if identity.session_policy
            else None
        )
        if check.action.lower() == "sts:assumerole":
            parts = check.resource.split(":")
            owner = parts[4] if len(parts) > 5 and parts[4] else principal.account  # noqa: PLR2004
            role = role_by_arn(owner, check.resource)
            if role is None:
                return Outcome(Decision.IMPLICIT_DENY)
            trust = parse_policy(role.assume_role_policy_document, f"{role.name}/trust-policy")
            return evaluate_trust(
                Request(principal, check.action, check.resource, context),
                trust_policy=trust,
                identity_policies=identity_set,
            )
        outcome = Outcome(Decision.IMPLICIT_DENY)
        for resource in (check.resource, *check.alternatives):
            outcome = evaluate(
                Request(principal, check.action, resource, context),
                identity_policies=identity_set,
                resource_policy=check.resource_policy,
                resource_account=check.resource_account,
                boundary=boundary,
                session_policy=session,
            )
            if outcome.decision is not Decision.IMPLICIT_DENY:
                break
        return outcome

    @staticmethod
    def policies(identity: Identity) -> tuple[list[Policy], Policy | None]:
        """The caller's identity-based policies and permissions boundary."""
        if identity.principal.kind in ("root", "service"):
            return [], None
        return identity_policies(identity), boundary_policy(identity)

    @staticmethod
    def context(identity: Identity, region: str, check: Check) -> dict[str, list[str]]:
        """Global condition keys of the caller, merged with the check's own."""
        principal = identity.principal
        now = time.time()
        context: dict[str, list[str]] = {
            "aws:principalarn": [principal.role_arn or principal.arn],
            "aws:principalaccount": [principal.account],
            "aws:principaltype": [
                {"root": "Account", "user": "User", "assumed-role": "AssumedRole"}.get(
                    principal.kind, "Service"
                )
            ],
            "aws:requestedregion": [region],
            "aws:sourceip": ["127.0.0.1"],
            # The SDKs reach AWS over TLS; the local loopback is plain HTTP.
            "aws:securetransport": ["true"],
            "aws:currenttime": [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))],
            "aws:epochtime": [str(int(now))],
        }
        if identity.user_name:
            context["aws:username"] = [identity.user_name]
        if identity.user_id:
            context["aws:userid"] = [identity.user_id]
        for key, value in identity.tags.items():
            context[f"aws:principaltag/{key}".lower()] = [value]
        context.update(check.context)
        return context

    def authorize(self, identity: Identity, checks: list[Check], region: str) -> None:
        """Raise :class:`AccessDenied` at the first refused check; log every decision."""
        policies = self.policies(identity)
        for check in checks:
            outcome = self.decide(identity, check, region, policies)
            self.record(identity, check, outcome)
            if not outcome.allowed:
                raise AccessDenied(identity.principal, check, outcome)

    def record(self, identity: Identity, check: Check, outcome: Outcome) -> None:
        """Append one JSON line to the usage log (IAM principals only, not root)."""
        if self.usage_log is None or identity.principal.kind == "root":
            return
        entry: dict[str, object] = {
            "principal": identity.principal.name,
            "principal_arn": identity.principal.arn,
            "action": check.action,
            "resource": check.resource,
            "decision": outcome.decision.value,
            "statement": outcome.matched.describe() if outcome.matched else None,
            "time": time.time(),
        }
        if check.unresolved:
            entry["unresolved"] = True  # checked on "*": no resolver knows its resources
        line = json.dumps(entry)
        with self._lock, self.usage_log.open("a", encoding="utf-8") as log:
            log.write(line + "\n")


# The process-wide enforcer, installed by enable().
_enforcer: Enforcer | None = None


def enforcer() -> Enforcer | None:
    """The installed enforcer (None when enforcement is off)."""
    return _enforcer


def _path(response: Any) -> str:
    parsed = urlparse(response.uri)
    return str(response.raw_path) + (f"?{parsed.query}" if parsed.query else "")


def _authenticate(response: Any) -> tuple[Identity, str, str]:
    """(identity, region, IAM prefix) of a moto request, its signature checked."""
    headers = response.headers
    authorization = headers.get("Authorization", "")
    if not authorization:
        query = parse_qs(urlparse(response.uri).query)
        credential = query.get("X-Amz-Credential", [""])[0].split("/")
        if len(credential) >= 5:  # noqa: PLR2004 - a presigned URL
            identity = resolve(
                response.current_account,
                credential[0],
                query.get("X-Amz-Security-Token", [None])[0],
            )
            presigned_check(response.method, _path(response), headers, identity)
            return identity, credential[2], _IAM_PREFIX.get(credential[3], credential[3])
        raise CredentialError("Missing", "Request is missing Authentication Token")
    _, region, service = credential_scope(authorization)
    raw = response.normalized_request.environ.get(RAW_BODY)
    identity = verify_signature(
        response.current_account,
        method=response.method,
        path=_path(response),
        headers=headers,
        body=raw if raw is not None else (response.raw_body or b""),
    )
    return identity, region, _IAM_PREFIX.get(service, service)


def _handle(response: Any, s3_target: tuple[str | None, str | None] | None) -> None:
    """Authenticate and authorize one moto request; raise an AWS-shaped refusal."""
    assert _enforcer is not None  # noqa: S101 - only installed with an enforcer
    identity, region, service = _authenticate(response)
    operation = str(response._get_action())
    if service == "sts" and operation == "GetCallerIdentity":
        return  # always allowed, as in AWS
    call = Call(response, service, operation, response.current_account, region)
    checks = s3_checks(call, *s3_target) if s3_target is not None else resolve_checks(call)
    if identity.principal.kind != "root" or any(c.resource_policy for c in checks):
        _enforcer.authorize(identity, checks, region)
    for check in checks:
        if check.after is not None:
            check.after()


_original_call_action: Any = None
_original_s3_hook: Any = None


def enable(usage_log: Path | None = None) -> None:
    """Patch moto so every request is authenticated and authorized (idempotent)."""
    global _enforcer, _original_call_action, _original_s3_hook  # noqa: PLW0603 - one patch per process
    from moto.core.authorization import ActionAuthenticatorMixin  # noqa: PLC0415
    from moto.core.responses import BaseResponse  # noqa: PLC0415

    _enforcer = Enforcer(usage_log)
    deliveries.enable_delivery_checks(_enforcer.record)
    if _original_call_action is not None:
        return
    _original_call_action = BaseResponse.call_action
    _original_s3_hook = ActionAuthenticatorMixin._authenticate_and_authorize_s3_action

    def call_action(self: Any) -> Any:
        try:
            _handle(self, None)
        except (CredentialError, AccessDenied) as refusal:
            return errors.response(self, refusal)
        return _original_call_action(self)

    def s3_hook(self: Any, bucket_name: str | None = None, key_name: str | None = None) -> None:
        try:
            _handle(self, (bucket_name, key_name))
        except (CredentialError, AccessDenied) as refusal:
            raise errors.s3_error(refusal) from None

    BaseResponse.call_action = call_action  # type: ignore[method-assign]
    ActionAuthenticatorMixin._authenticate_and_authorize_s3_action = s3_hook  # type: ignore[method-assign]


def disable() -> None:
    """Undo :func:`enable` (for tests in one process)."""
    global _enforcer, _original_call_action, _original_s3_hook
    from moto.core.authorization import ActionAuthenticatorMixin  # noqa: PLC0415
    from moto.core.responses import BaseResponse  # noqa: PLC0415

    deliveries.undo()
    if _original_call_action is not None:
        BaseResponse.call_action = _original_call_action  # type: ignore[method-assign]
        ActionAuthenticatorMixin._authenticate_and_authorize_s3_action = _original_s3_hook  # type: ignore[method-assign]
    _enforcer, _original_call_action, _original_s3_hook = None, None, None
