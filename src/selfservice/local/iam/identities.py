"""Who signed a request to the embedded AWS: access key -> principal, secret and policies.

The access key id ``testing`` (secret ``testing``) is the account's root user. Any
other key must be an IAM user's active access key or an STS session's key (with its
session token). Lookups go through moto's per-account index of access keys instead of
listing every user per request as moto's own enforcement does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.iam.models import iam_backends
from moto.sts.models import AssumedRole, sts_backends

from selfservice.local.iam.evaluator import Policy, Principal, parse_policy

__all__ = [
    "ROOT_ACCESS_KEY",
    "ROOT_SECRET_KEY",
    "CredentialError",
    "Identity",
    "boundary_policy",
    "identity_policies",
    "resolve",
    "role_by_arn",
]

ROOT_ACCESS_KEY = "testing"
ROOT_SECRET_KEY = "testing"  # noqa: S105 - the well-known local root credential
PARTITION = "aws"


class CredentialError(Exception):
    """The request's credentials are not valid; ``reason`` picks the AWS error code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # "InvalidId", "InvalidToken", "Expired", "Missing", "Signature"
        self.message = message


@dataclass(frozen=True)
class Identity:
    """A verified caller: its principal, secret, and (for IAM principals) its owner."""

    principal: Principal
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    user_name: str | None = None
    role_name: str | None = None
    user_id: str | None = None  # aws:userid: AIDA... for a user, AROA...:session for a session
    session_policy: str | None = None  # AssumeRole's Policy, which caps the role's policies


# Per account: STS sessions by access key id, rebuilt when the backend's list grows.
_sessions: dict[str, tuple[int, dict[str, AssumedRole]]] = {}


def _session(account_id: str, access_key_id: str) -> AssumedRole | None:
    assumed = sts_backends[account_id][PARTITION].assumed_roles
    size, index = _sessions.get(account_id, (-1, {}))
    if size != len(assumed) or access_key_id not in index:
        index = {role.access_key_id: role for role in list(assumed)}
        _sessions[account_id] = (len(assumed), index)
    return index.get(access_key_id)


def _tags(raw: object) -> dict[str, str]:
    """Tags as moto keeps them (a dict of {Key, Value} or a list of them) -> {key: value}."""
    items: list[Any] = list(raw.values()) if isinstance(raw, dict) else list(raw or [])  # type: ignore[call-overload]
    return {str(item["Key"]): str(item["Value"]) for item in items if "Key" in item}


def role_by_arn(account_id: str, role_arn: str) -> Any | None:
    """The moto role with this ARN (path included), or None."""
    for role in list(iam_backends[account_id][PARTITION].roles.values()):
        if role.arn == role_arn:
            return role
    return None


def resolve(
    account_id: str, access_key_id: str, session_token: str | None, *, check_token: bool = True
) -> Identity:
    """The identity behind ``access_key_id``, or :class:`CredentialError`.

    ``check_token=False`` skips the session-token comparison, for callers that have
    verified the request's signature themselves.
    """
    if access_key_id == ROOT_ACCESS_KEY:
        root = Principal("root", f"arn:aws:iam::{account_id}:root", account_id)
        return Identity(root, ROOT_ACCESS_KEY, ROOT_SECRET_KEY, session_token, user_id=account_id)
    backend = iam_backends[account_id][PARTITION]
    key = backend.access_keys.get(access_key_id)
    if key is None:
        raise CredentialError("InvalidId", "The security token included in the request is invalid.")
    if key.role_arn:
        session = _session(account_id, access_key_id)
        if session is None or (check_token and session_token != session.session_token):
            raise CredentialError(
                "InvalidToken", "The security token included in the request is invalid."
            )
        if session.expiration.replace(tzinfo=UTC) < datetime.now(UTC):
            raise CredentialError(
                "Expired", "The security token included in the request is expired"
            )
        role = role_by_arn(account_id, session.role_arn)
        role_name = session.role_arn.rsplit("/", 1)[-1]
        principal = Principal(
            "assumed-role",
            f"arn:aws:sts::{account_id}:assumed-role/{role_name}/{session.session_name}",
            account_id,
            role_arn=session.role_arn,
        )
        return Identity(
            principal,
            access_key_id,
            session.secret_access_key,
            session.session_token,
            tags=_tags(role.tags) if role is not None else {},
            role_name=role_name,
            user_id=f"{role.id}:{session.session_name}" if role is not None else None,
            session_policy=session.policy or None,
        )
    user = backend.users.get(key.user_name or "")
    if user is None or key.status != "Active":
        raise CredentialError("InvalidId", "The security token included in the request is invalid.")
    if check_token and session_token:
        raise CredentialError(
            "InvalidToken", "The security token included in the request is invalid."
        )
    principal = Principal("user", user.arn, account_id)
    return Identity(
        principal,
        access_key_id,
        key.secret_access_key,
        tags=_tags(getattr(user, "tags", {})),
        user_name=user.name,
        user_id=user.id,
    )


def _managed(policies: Mapping[str, Any]) -> list[Policy]:
    parsed = []
    for arn, policy in list(policies.items()):
        version = next((v for v in policy.versions if v.is_default), None)
        if version is not None:
            parsed.append(parse_policy(version.document, arn))
    return parsed


def _inline(owner: str, policies: Mapping[str, str]) -> list[Policy]:
    return [parse_policy(doc, f"{owner}/{name}") for name, doc in list(policies.items())]


def identity_policies(identity: Identity) -> list[Policy]:
    """The caller's identity-based policies: inline and attached (its groups' for a user)."""
    backend = iam_backends[identity.principal.account][PARTITION]
    if identity.role_name is not None:
        role = role_by_arn(identity.principal.account, identity.principal.role_arn or "")
        if role is None:
            return []
        return _inline(role.name, role.policies) + _managed(role.managed_policies)
    if identity.user_name is not None:
        user = backend.users.get(identity.user_name)
        if user is None:
            return []
        policies = _inline(user.name, user.policies) + _managed(user.managed_policies)
        for group in list(backend.groups.values()):
            if user in group.users:
                policies += _inline(group.name, group.policies)
                policies += _managed(group.managed_policies)
        return policies
    return []


def boundary_policy(identity: Identity) -> Policy | None:
    """The permissions boundary of the caller's role or user, if it has one."""
    backend = iam_backends[identity.principal.account][PARTITION]
    owner: Any = None
    if identity.role_name is not None:
        owner = role_by_arn(identity.principal.account, identity.principal.role_arn or "")
    elif identity.user_name is not None:
        owner = backend.users.get(identity.user_name)
    arn = getattr(owner, "permissions_boundary_arn", None) if owner is not None else None
    if not arn:
        return None
    policy = backend.managed_policies.get(arn)
    return _managed({arn: policy})[0] if policy is not None else None
