"""The IAM policy evaluator: AWS's documented evaluation logic, pure (no moto, no boto3).

Within one account a request is allowed when an identity-based policy or a
resource-based policy allows it and no policy explicitly denies it; otherwise it is
denied (explicitly, or implicitly by default). Across accounts both sides must allow.
A role's trust policy is the resource-based policy of ``sts:AssumeRole`` on the role.

A resource-based policy that names an *account* (``"AWS": "123456789012"`` or its
``:root`` ARN) delegates to that account's IAM policies: it does not allow by itself.
A permissions boundary and a session policy cap the identity policies; SCPs are not
evaluated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any, Literal

from selfservice.local.iam.conditions import (
    Context,
    UnsupportedConditionError,
    condition_holds,
    glob_match,
    substitute,
)

__all__ = [
    "Decision",
    "MatchedStatement",
    "Outcome",
    "Policy",
    "Principal",
    "Request",
    "Statement",
    "evaluate",
    "evaluate_trust",
    "parse_policy",
]


@dataclass(frozen=True)
class Principal:
    """Who makes the request.

    ``kind``: ``root``, ``user``, ``assumed-role``, ``service`` or ``anonymous``.
    ``arn`` is the caller's ARN (the session ARN for an assumed role);
    ``role_arn`` the role's own ARN (with its path) for an assumed role;
    ``service`` the service principal (``lambda.amazonaws.com``) for a service.
    """

    kind: Literal["root", "user", "assumed-role", "service", "anonymous"]
    arn: str
    account: str
    role_arn: str | None = None
    service: str | None = None

    @property
    def name(self) -> str:
        """The user or role name (the service for a service principal)."""
        if self.kind == "assumed-role" and self.role_arn:
            return self.role_arn.rsplit("/", 1)[-1]
        if self.kind == "service" and self.service:
            return self.service
        return self.arn.rsplit("/", 1)[-1] if "/" in self.arn else self.arn


@dataclass(frozen=True)
class Request:
    """One authorization question: may ``principal`` do ``action`` on ``resource``."""

    principal: Principal
    action: str
    resource: str
    context: Context = field(default_factory=dict)


class Decision(Enum):
    """The result of an evaluation."""

    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


@dataclass(frozen=True)
class MatchedStatement:
    """The statement that decided: its policy, its Sid (or index) and the policy's kind."""

    policy: str
    statement: str
    kind: Literal["identity", "resource", "trust"]

    def describe(self) -> str:
        """``policy#sid`` for logs."""
        return f"{self.policy}#{self.statement}"


@dataclass(frozen=True)
class Outcome:
    """A decision and what made it."""

    decision: Decision
    matched: MatchedStatement | None = None

    @property
    def allowed(self) -> bool:
        """Whether the request is allowed."""
        return self.decision is Decision.ALLOW


@dataclass(frozen=True)
class PrincipalSpec:
    """A statement's Principal (or NotPrincipal) element, normalised."""

    anyone: bool
    aws: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()


@dataclass(frozen=True)
class Statement:
    """One parsed statement; absent elements are ``None``."""

    label: str
    effect: Literal["Allow", "Deny"]
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    principal: PrincipalSpec | None
    not_principal: PrincipalSpec | None
    conditions: tuple[tuple[str, str, Any], ...]


@dataclass(frozen=True)
class Policy:
    """A parsed policy document under a name (``RoleName/PolicyName`` or a managed ARN)."""

    name: str
    statements: tuple[Statement, ...]


def _strings(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    return (str(value),)


def _principal_spec(raw: object) -> PrincipalSpec:
    if raw == "*":
        return PrincipalSpec(anyone=True)
    if not isinstance(raw, Mapping):
        return PrincipalSpec(anyone=False, aws=_strings(raw))
    aws = _strings(raw.get("AWS"))
    return PrincipalSpec(
        anyone="*" in aws,
        aws=aws,
        services=_strings(raw.get("Service")),
        federated=_strings(raw.get("Federated")),
    )


def _statement(raw: Mapping[str, Any], index: int) -> Statement:
    def optional(key: str) -> tuple[str, ...] | None:
        return _strings(raw[key]) if key in raw else None

    conditions = tuple(
        (operator, key, values)
        for operator, entries in (raw.get("Condition") or {}).items()
        for key, values in entries.items()
    )
    effect: Literal["Allow", "Deny"] = (
        "Deny" if str(raw.get("Effect", "")).lower() == "deny" else "Allow"
    )
    return Statement(
        label=str(raw.get("Sid") or index),
        effect=effect,
        actions=tuple(a.lower() for a in optional("Action") or ()) if "Action" in raw else None,
        not_actions=(
            tuple(a.lower() for a in optional("NotAction") or ()) if "NotAction" in raw else None
        ),
        resources=optional("Resource"),
        not_resources=optional("NotResource"),
        principal=_principal_spec(raw["Principal"]) if "Principal" in raw else None,
        not_principal=_principal_spec(raw["NotPrincipal"]) if "NotPrincipal" in raw else None,
        conditions=conditions,
    )


@lru_cache(maxsize=2048)
def _parse_cached(name: str, digest: str, document: str) -> Policy:
    del digest  # part of the cache key only
    raw = json.loads(document)
    statements = raw.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    return Policy(name, tuple(_statement(s, i) for i, s in enumerate(statements)))


def parse_policy(document: str | Mapping[str, Any], name: str) -> Policy:
    """Parse a policy document (JSON text or its object); cached by name and content."""
    text = document if isinstance(document, str) else json.dumps(document, sort_keys=True)
    return _parse_cached(name, hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest(), text)


def _action_matches(patterns: tuple[str, ...], action: str) -> bool:
    lowered = action.lower()
    return any(glob_match(pattern, lowered) for pattern in patterns)


def _resource_matches(patterns: tuple[str, ...], resource: str, context: Context) -> bool:
    for pattern in patterns:
        if pattern == "*":
            return True
        if glob_match(substitute(pattern, context), resource, arn=True):
            return True
    return False


_ACCOUNT, _SPECIFIC = "account", "specific"


def _principal_match(spec: PrincipalSpec, principal: Principal) -> str | None:
    """``specific``, ``account`` (the account is named: delegation to its IAM) or None."""
    if spec.anyone:
        return _SPECIFIC
    if principal.kind == "service":
        return _SPECIFIC if principal.service in spec.services else None
    for entry in spec.aws:
        if entry in (principal.account, f"arn:aws:iam::{principal.account}:root"):
            return _SPECIFIC if principal.kind == "root" else _ACCOUNT
        if entry == principal.arn or (principal.role_arn and entry == principal.role_arn):
            return _SPECIFIC
    return None


def _applies(  # noqa: PLR0911, PLR0912 - one exit per element of the statement
    statement: Statement, request: Request, with_principal: bool
) -> str | None:
    """How the statement applies to the request: None, ``specific`` or ``account``."""
    if statement.actions is not None:
        if not _action_matches(statement.actions, request.action):
            return None
    elif statement.not_actions is not None:
        if _action_matches(statement.not_actions, request.action):
            return None
    else:
        return None
    if statement.resources is not None:
        if not _resource_matches(statement.resources, request.resource, request.context):
            return None
    elif statement.not_resources is not None and _resource_matches(
        statement.not_resources, request.resource, request.context
    ):
        return None
    scope = _SPECIFIC
    if with_principal:
        if statement.principal is not None:
            matched = _principal_match(statement.principal, request.principal)
            if matched is None:
                return None
            scope = matched
        elif statement.not_principal is not None:
            if _principal_match(statement.not_principal, request.principal) is not None:
                return None
        else:
            return None
    try:
        holds = all(
            condition_holds(operator, key, values, request.context)
            for operator, key, values in statement.conditions
        )
    except UnsupportedConditionError:
        return None
    return scope if holds else None


def _scan(
    policies: Sequence[Policy],
    request: Request,
    kind: Literal["identity", "resource", "trust"],
) -> tuple[MatchedStatement | None, MatchedStatement | None, bool]:
    """(first explicit deny, first allow, whether that allow only delegates to the account)."""
    allow: MatchedStatement | None = None
    delegated = False
    with_principal = kind != "identity"
    for policy in policies:
        for statement in policy.statements:
            if kind == "identity" and (
                statement.principal is not None or statement.not_principal is not None
            ):
                continue  # a Principal has no meaning in an identity-based policy
            scope = _applies(statement, request, with_principal)
            if scope is None:
                continue
            matched = MatchedStatement(policy.name, statement.label, kind)
            if statement.effect == "Deny":
                return matched, None, False
            if allow is None or (delegated and scope == _SPECIFIC):
                allow, delegated = matched, scope == _ACCOUNT
    return None, allow, delegated


def evaluate(  # noqa: PLR0911 - one exit per rule of the evaluation logic
    request: Request,
    *,
    identity_policies: Sequence[Policy],
    resource_policy: Policy | None = None,
    resource_account: str | None = None,
    boundary: Policy | None = None,
    session_policy: Policy | None = None,
) -> Outcome:
    """Decide ``request`` from the caller's identity policies and the resource's policy.

    The root user of an account is allowed everything in it (a resource policy can still
    deny it explicitly). ``resource_account`` is the resource's owner (default: the
    caller's account); a cross-account request needs both sides to allow. A permissions
    ``boundary`` and a ``session_policy`` (``AssumeRole``'s ``Policy``) cap what the
    identity policies allow (a resource policy's own grant is not capped).
    """
    deny, identity_allow, _ = _scan(identity_policies, request, "identity")
    if deny:
        return Outcome(Decision.EXPLICIT_DENY, deny)
    for cap in (boundary, session_policy):
        if cap is not None:
            deny, cap_allow, _ = _scan([cap], request, "identity")
            if deny:
                return Outcome(Decision.EXPLICIT_DENY, deny)
            if cap_allow is None:
                identity_allow = None
    resource_allow: MatchedStatement | None = None
    delegated = False
    if resource_policy is not None:
        deny, resource_allow, delegated = _scan([resource_policy], request, "resource")
        if deny:
            return Outcome(Decision.EXPLICIT_DENY, deny)
    if request.principal.kind == "root":
        return Outcome(Decision.ALLOW, None)
    same_account = resource_account in (None, request.principal.account)
    if same_account:
        if resource_allow is not None and not delegated:
            return Outcome(Decision.ALLOW, resource_allow)
        if identity_allow is not None:
            return Outcome(Decision.ALLOW, identity_allow)
        return Outcome(Decision.IMPLICIT_DENY, None)
    if identity_allow is not None and resource_allow is not None:
        return Outcome(Decision.ALLOW, resource_allow)
    return Outcome(Decision.IMPLICIT_DENY, None)


def evaluate_trust(
    request: Request,
    *,
    trust_policy: Policy,
    identity_policies: Sequence[Policy] = (),
) -> Outcome:
    """May ``request.principal`` assume the role whose trust policy is ``trust_policy``.

    A service principal needs only the trust policy. An IAM principal of the role's
    account is allowed when the trust policy names it, or names its account and one of
    its identity policies allows ``sts:AssumeRole`` on the role; a principal of another
    account needs both the trust policy and its own identity policy.
    """
    deny, identity_allow, _ = _scan(identity_policies, request, "identity")
    if deny:
        return Outcome(Decision.EXPLICIT_DENY, deny)
    deny, trust_allow, delegated = _scan([trust_policy], request, "trust")
    if deny:
        return Outcome(Decision.EXPLICIT_DENY, deny)
    if trust_allow is None:
        return Outcome(Decision.IMPLICIT_DENY, None)
    parts = request.resource.split(":")
    same_account = len(parts) < 5 or parts[4] in ("", request.principal.account)  # noqa: PLR2004
    if request.principal.kind in ("service", "root") or (same_account and not delegated):
        return Outcome(Decision.ALLOW, trust_allow)
    if identity_allow is not None:
        return Outcome(Decision.ALLOW, trust_allow)
    return Outcome(Decision.IMPLICIT_DENY, None)
