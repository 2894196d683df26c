"""Per action: the IAM action(s), resource ARN(s) and condition context AWS authorizes.

One API call can need several authorizations (``PutEvents`` one per bus and source,
``TransactWriteItems`` one per item's table, ``RunInstances`` one per resource type,
an implicit ``iam:PassRole``): a resolver returns a list of :class:`Check`, all of
which must be allowed. Actions without a resolver are checked on ``*`` and recorded
in :data:`UNRESOLVED` (the documented gaps list), never silently allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from moto.core.parse import PROTOCOL_PARSERS
from moto.core.request import determine_request_protocol
from moto.core.utils import get_service_model

from selfservice.local.iam.evaluator import Policy, parse_policy

__all__ = [
    "UNRESOLVED",
    "Call",
    "Check",
    "Resolver",
    "always",
    "no_resource_types",
    "policy_of",
    "register",
    "request_tag_context",
    "resolve_checks",
    "s3_checks",
    "tag_context",
    "tags_of",
]


@dataclass(frozen=True)
class Check:
    """One authorization: action on resource, with the request's condition keys.

    ``alternatives`` are other spellings of the same resource IAM also accepts (a log
    group with and without its ``:*``); the check passes when any one is allowed.
    ``after`` is what AWS does once the call is authorized (create a service-linked role).
    """

    action: str
    resource: str
    context: Mapping[str, list[str]] = field(default_factory=dict)
    resource_policy: Policy | None = None
    resource_account: str | None = None
    alternatives: tuple[str, ...] = ()
    after: Callable[[], object] | None = None
    unresolved: bool = False  # checked on "*" because no resolver knows the resources


@dataclass
class Call:
    """What a resolver sees: the moto response object, parsed parameters, the scope."""

    response: Any
    service: str  # the IAM prefix: "sqs", "dynamodb", "elasticloadbalancing"
    operation: str  # "SendMessage"
    account: str
    region: str
    _params: dict[str, Any] | None = None

    @property
    def action(self) -> str:
        """``service:Operation``."""
        return f"{self.service}:{self.operation}"

    @property
    def params(self) -> dict[str, Any]:
        """The request's parameters, parsed with the service's botocore model."""
        if self._params is None:
            self._params = _parse(self.response, self.operation)
        return self._params

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        """An ARN in this request's region and account."""
        return (
            f"arn:aws:{service}:{self.region if region else ''}:"
            f"{self.account if account else ''}:{resource}"
        )

    def check(self, resource: str, **extra: Any) -> Check:
        """A :class:`Check` of this call's own action."""
        return Check(self.action, resource, **extra)


Resolver = Callable[[Call], list[Check]]
_RESOLVERS: dict[str, Resolver] = {}
# Actions AWS authorizes on "*" (no resource-level permissions), registered by always().
_STAR: set[str] = set()
# Actions that fell back to "*" because no resolver knows their resources.
UNRESOLVED: set[str] = set()


def register(*actions: str) -> Callable[[Resolver], Resolver]:
    """Register a resolver for ``service:Operation`` names (``service:*`` for a service)."""

    def decorator(resolver: Resolver) -> Resolver:
        for action in actions:
            _RESOLVERS[action.lower()] = resolver
        return resolver

    return decorator


def _parse(response: Any, operation: str) -> dict[str, Any]:
    existing = getattr(response, "params", None)
    if isinstance(existing, dict) and existing:
        return existing
    try:
        model = get_service_model(response.boto3_service_name)
        operation_model = model.operation_model(operation)
        request = response.normalized_request
        protocol = determine_request_protocol(model, request.content_type)
        parser = PROTOCOL_PARSERS[protocol](operation_model, map_type=dict)
        parsed: dict[str, Any] = parser.parse(
            {
                "method": request.method,
                "values": request.values,
                "headers": request.headers,
                "body": request.data,
                "url_path": request.path,
                "url_params": getattr(response, "uri_match", {}),
            }
        )
    except Exception:  # noqa: BLE001 - an unparsable request is checked on "*"
        return {}
    return parsed


def resolve_checks(call: Call) -> list[Check]:
    """The checks ``call`` needs (``*`` and a gap entry when no resolver knows it)."""
    resolver = _RESOLVERS.get(call.action.lower()) or _RESOLVERS.get(f"{call.service}:*")
    if resolver is None:
        UNRESOLVED.add(call.action)
        return [Check(call.action, "*", unresolved=True)]
    checks = resolver(call)
    if (
        all(check.resource == "*" for check in checks)
        and call.action.lower() not in _STAR
        and not call.operation.startswith(("Describe", "List", "Get"))
    ):
        UNRESOLVED.add(call.action)
        return [replace(check, unresolved=True) for check in checks]
    return checks


def tag_context(
    tags: Mapping[str, str], *prefixes: str, base: Mapping[str, list[str]] | None = None
) -> dict[str, list[str]]:
    """``aws:ResourceTag/k`` (and each ``<prefix>:ResourceTag/k``) for a resource's tags."""
    context = dict(base or {})
    for key, value in tags.items():
        for prefix in ("aws", *prefixes):
            context[f"{prefix}:resourcetag/{key}".lower()] = [value]
    return context


def tags_of(raw: object) -> dict[str, str]:
    """Tags as moto keeps them (``{k: v}``, ``{k: {Key, Value}}`` or ``[{Key, Value}]``)."""
    if isinstance(raw, dict):
        return {str(k): str(v["Value"]) if isinstance(v, dict) else str(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return {str(t["Key"]): str(t.get("Value", "")) for t in raw if "Key" in t}
    return {}


def request_tag_context(tags: Mapping[str, str]) -> dict[str, list[str]]:
    """``aws:RequestTag/k`` and ``aws:TagKeys`` for tags given in a request."""
    context = {f"aws:requesttag/{k}".lower(): [v] for k, v in tags.items()}
    if tags:
        context["aws:tagkeys"] = list(tags)
    return context


def policy_of(document: object, name: str) -> Policy | None:
    if not document:
        return None
    if isinstance(document, bytes):
        document = document.decode()
    try:
        return parse_policy(document if isinstance(document, str) else json.dumps(document), name)
    except (ValueError, AttributeError):
        return None


def always(*actions: str) -> None:
    """Actions AWS authorizes on ``*`` (no resource-level permissions)."""

    def star(call: Call) -> list[Check]:
        return [call.check("*")]

    register(*actions)(star)
    _STAR.update(action.lower() for action in actions)


def no_resource_types(*actions: str) -> None:
    """Actions whose resolver checks ``*`` because AWS has no resource type for them."""
    _STAR.update(action.lower() for action in actions)


# --- sts -------------------------------------------------------------------------
always("sts:GetSessionToken", "sts:DecodeAuthorizationMessage", "sts:GetAccessKeyInfo")


@register("sts:AssumeRole")
def _assume_role(call: Call) -> list[Check]:
    # The trust policy is evaluated by the enforcement (it needs the role itself).
    context: dict[str, list[str]] = {}
    session = call.params.get("RoleSessionName")
    if session:
        context["sts:rolesessionname"] = [str(session)]
    if call.params.get("ExternalId"):
        context["sts:externalid"] = [str(call.params["ExternalId"])]
    return [call.check(str(call.params.get("RoleArn", "*")), context=context)]


# --- sqs -------------------------------------------------------------------------
always("sqs:ListQueues")


def _queue_checks(call: Call, name: str, action: str | None = None) -> list[Check]:
    from moto.sqs.models import sqs_backends  # noqa: PLC0415 - moto only at request time

    arn = call.arn("sqs", name)
    queue = sqs_backends[call.account][call.region].queues.get(name)
    if queue is None:
        return [Check(action or call.action, arn)]
    return [
        Check(
            action or call.action,
            queue.queue_arn,
            context=tag_context(tags_of(queue.tags)),
            resource_policy=policy_of(queue.policy, f"queue-policy:{name}"),
        )
    ]


# Batch operations have no IAM action of their own.
_SQS_BATCHES = {
    "SendMessageBatch": "sqs:SendMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


@register("sqs:*")
def _sqs(call: Call) -> list[Check]:
    name = call.params.get("QueueName")
    if name is None:
        url = call.params.get("QueueUrl") or call.response.path
        name = str(url).rstrip("/").rsplit("/", 1)[-1]
    return _queue_checks(call, str(name), _SQS_BATCHES.get(call.operation))


# --- s3 (moto's S3 hook gives bucket and key) ------------------------------------
def s3_checks(call: Call, bucket: str | None, key: str | None) -> list[Check]:
    """Checks of an S3 request on ``bucket``/``key`` (moto names the action)."""
    from moto.s3.models import s3_backends  # noqa: PLC0415

    operation = {"HeadBucket": "ListBucket", "ListObjects": "ListBucket"}.get(
        call.operation, call.operation
    )
    action = f"s3:{operation}"
    if not bucket:
        return [Check(action, "*")]
    context: dict[str, list[str]] = {}
    query = call.response.querystring
    if operation == "ListBucket":
        for name in ("prefix", "delimiter", "max-keys"):
            if query.get(name):
                context[f"s3:{name}"] = [str(query[name][0])]
    policy = None
    backend = s3_backends[call.account]["aws"]
    found = backend.buckets.get(bucket)
    if found is not None:
        policy = policy_of(found.policy, f"bucket-policy:{bucket}")
    if key is None and operation == "DeleteObject":
        keys = re.findall(r"<Key>([^<]*)</Key>", str(call.response.body or ""))
        targets = [f"arn:aws:s3:::{bucket}/{k}" for k in keys] or [f"arn:aws:s3:::{bucket}"]
        return [Check(action, arn, context, policy) for arn in targets]
    checks = [
        Check(
            action,
            f"arn:aws:s3:::{bucket}/{key}" if key else f"arn:aws:s3:::{bucket}",
            context,
            policy,
        )
    ]
    source = call.response.headers.get("x-amz-copy-source")
    if source and key and operation == "PutObject":
        source = source.lstrip("/").split("?", 1)[0]
        checks.append(Check("s3:GetObject", f"arn:aws:s3:::{source}"))
    return checks


# --- events ----------------------------------------------------------------------
def _bus_arn(call: Call, name: str | None) -> str:
    if name and name.startswith("arn:"):
        return name
    return call.arn("events", f"event-bus/{name or 'default'}")


@register("events:PutEvents")
def _put_events(call: Call) -> list[Check]:
    checks: dict[tuple[str, str, str], Check] = {}
    for entry in call.params.get("Entries", []):
        bus = _bus_arn(call, entry.get("EventBusName"))
        source, detail_type = str(entry.get("Source", "")), str(entry.get("DetailType", ""))
        context = {"events:source": [source], "events:detail-type": [detail_type]}
        checks[(bus, source, detail_type)] = call.check(bus, context=context)
    return list(checks.values()) or [call.check(_bus_arn(call, None))]


@register(
    "events:PutRule",
    "events:DeleteRule",
    "events:DescribeRule",
    "events:EnableRule",
    "events:DisableRule",
    "events:PutTargets",
    "events:RemoveTargets",
    "events:ListTargetsByRule",
)
def _rule(call: Call) -> list[Check]:
    name = str(call.params.get("Name") or call.params.get("Rule") or "")
    bus = call.params.get("EventBusName")
    if bus and str(bus).startswith("arn:"):
        bus = str(bus).rsplit("/", 1)[-1]
    path = f"rule/{bus}/{name}" if bus and bus != "default" else f"rule/{name}"
    checks = [call.check(call.arn("events", path))]
    roles = {t.get("RoleArn") for t in call.params.get("Targets") or []}
    roles.add(call.params.get("RoleArn"))
    passed = {"iam:passedtoservice": ["events.amazonaws.com"]}
    checks += [Check("iam:PassRole", str(r), context=passed) for r in sorted(roles - {None})]
    return checks


@register("events:CreateEventBus", "events:DeleteEventBus", "events:DescribeEventBus")
def _bus(call: Call) -> list[Check]:
    return [call.check(_bus_arn(call, call.params.get("Name")))]


@register("events:StartReplay", "events:DescribeReplay", "events:CancelReplay")
def _replay(call: Call) -> list[Check]:
    name = call.params.get("ReplayName")
    return [call.check(call.arn("events", f"replay/{name}"))]


@register("events:CreateArchive", "events:DescribeArchive", "events:DeleteArchive")
def _archive(call: Call) -> list[Check]:
    name = call.params.get("ArchiveName")
    return [call.check(call.arn("events", f"archive/{name}"))]


always("events:ListRules", "events:ListEventBuses", "events:ListArchives", "events:ListReplays")
