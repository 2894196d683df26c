"""Deliveries a service makes on its own (EventBridge to its targets), authorized as AWS does.

moto's EventBridge hands an event to an SQS queue or a CloudWatch Logs group directly.
In AWS that delivery is a request of the service principal ``events.amazonaws.com``
with ``aws:SourceArn`` (the rule) and ``aws:SourceAccount``: the queue's policy (or the
account's CloudWatch Logs resource policies) must allow it, or the event is not
delivered (the rule's ``FailedInvocations``). Here a refused delivery is dropped,
recorded in the usage log and reported on the server's log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from selfservice.local.iam.evaluator import (
    Outcome,
    Policy,
    Principal,
    Request,
    evaluate,
    parse_policy,
)
from selfservice.local.iam.identities import Identity
from selfservice.local.iam.resources import Check, policy_of

__all__ = ["enable_delivery_checks", "undo"]

EVENTS = "events.amazonaws.com"
_log = logging.getLogger(__name__)
_originals: dict[str, Any] = {}
Recorder = Callable[[Identity, Check, Outcome], None]
_recorder: list[Recorder] = []
"""Told of every delivery decision (the enforcer's usage log), when one is given."""


def _allowed(rule: Any, action: str, resource: str, policies: list[Policy]) -> bool:
    principal = Principal("service", EVENTS, rule.account_id, service=EVENTS)
    context = {
        "aws:sourcearn": [rule.arn],
        "aws:sourceaccount": [rule.account_id],
        "aws:principalservicename": [EVENTS],
    }
    request = Request(principal, action, resource, context)
    outcome = evaluate(request, identity_policies=[])
    for policy in policies:
        outcome = evaluate(request, identity_policies=[], resource_policy=policy)
        if outcome.allowed:
            break
    for record in _recorder:
        record(Identity(principal, EVENTS, ""), Check(action, resource), outcome)
    if not outcome.allowed:
        _log.warning(
            "EventBridge rule %s could not deliver to %s: no resource-based policy allows "
            "%s to perform %s from this rule",
            rule.arn,
            resource,
            EVENTS,
            action,
        )
    return outcome.allowed


def _send_to_sqs_queue(
    self: Any, resource_id: str, event: Any, group_id: str | None = None
) -> None:
    from moto.sqs.models import sqs_backends  # noqa: PLC0415

    queue = sqs_backends[self.account_id][self.region_name].queues.get(resource_id)
    policy = policy_of(queue.policy, f"queue-policy:{resource_id}") if queue is not None else None
    arn = queue.queue_arn if queue is not None else resource_id
    if not _allowed(self, "sqs:SendMessage", arn, [policy] if policy else []):
        return
    _originals["sqs"](self, resource_id, event, group_id)


def _send_to_cw_log_group(self: Any, name: str, event: Any) -> None:
    from moto.logs.models import logs_backends  # noqa: PLC0415

    backend = logs_backends[self.account_id][self.region_name]
    policies = [
        parse_policy(p.policy_document, f"logs-resource-policy:{p.policy_name}")
        for p in list(backend.resource_policies.values())
    ]
    group = f"arn:aws:logs:{self.region_name}:{self.account_id}:log-group:{name}"
    stream = f"{group}:log-stream:{self.name}"
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        if not _allowed(self, action, stream, policies):
            return
    _originals["logs"](self, name, event)


def enable_delivery_checks(record: Recorder | None = None) -> None:
    """Patch moto's EventBridge targets (idempotent); ``record`` is told of each decision."""
    from moto.events.models import Rule  # noqa: PLC0415

    _recorder[:] = [record] if record is not None else []
    if _originals:
        return
    _originals["sqs"] = Rule._send_to_sqs_queue
    _originals["logs"] = Rule._send_to_cw_log_group
    Rule._send_to_sqs_queue = _send_to_sqs_queue  # type: ignore[method-assign]
    Rule._send_to_cw_log_group = _send_to_cw_log_group  # type: ignore[method-assign]


def undo() -> None:
    """Restore moto's deliveries (for tests in one process)."""
    from moto.events.models import Rule  # noqa: PLC0415

    _recorder.clear()
    if _originals:
        Rule._send_to_sqs_queue = _originals.pop("sqs")  # type: ignore[method-assign]
        Rule._send_to_cw_log_group = _originals.pop("logs")  # type: ignore[method-assign]
