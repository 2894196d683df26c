"""Find a stack's DLQs: its queues' redrive targets and its EventBridge targets' DLQs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from selfservice.operator.dlq.queues import DeadLetterQueue, DlqError, QueueInfo

__all__ = ["discover", "select"]


def discover(
    sqs: Any, events: Any, *, prefix: str, warn: Callable[[str], None]
) -> list[DeadLetterQueue]:
    """Every DLQ of the stack: redrive targets of its queues and EventBridge target DLQs."""
    queues = _queues(sqs, prefix)
    by_arn = {q.arn: q for q in queues}
    sources: dict[str, list[QueueInfo]] = {}
    for queue in queues:
        if queue.dead_letter_arn:
            sources.setdefault(queue.dead_letter_arn, []).append(queue)
    rules = _rule_dlqs(events, prefix, warn)
    found = []
    for arn in sorted(set(sources) | set(rules)):
        dead_letter = by_arn.get(arn) or _queue_by_arn(sqs, arn)
        if dead_letter is None:
            warn(f"{arn} is named as a DLQ but does not exist")
            continue
        found.append(
            DeadLetterQueue(
                dead_letter,
                tuple(sorted(sources.get(arn, []), key=lambda q: q.name)),
                tuple(sorted(rules.get(arn, []))),
            )
        )
    return sorted(found, key=lambda d: d.queue.name)


def select(dlqs: Sequence[DeadLetterQueue], wanted: str) -> DeadLetterQueue:
    """The DLQ named by its name, URL or a unique part of its name (case-insensitive)."""
    for dlq in dlqs:
        if wanted in (dlq.queue.name, dlq.queue.url, dlq.queue.arn):
            return dlq
    matches = [d for d in dlqs if wanted.lower() in d.queue.name.lower()]
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(d.queue.name for d in (matches or dlqs)) or "none found"
    problem = "matches several DLQs" if matches else "names no DLQ"
    raise DlqError(f"{wanted!r} {problem}; the DLQs: {names}")


def _queues(sqs: Any, prefix: str) -> list[QueueInfo]:
    urls: list[str] = []
    for page in sqs.get_paginator("list_queues").paginate(QueueNamePrefix=prefix):
        urls += page.get("QueueUrls", [])
    return [QueueInfo.read(sqs, url) for url in urls]


def _rule_dlqs(events: Any, prefix: str, warn: Callable[[str], None]) -> dict[str, list[str]]:
    """DLQ ARN → names of the rules (on any bus) with a target parking events in it."""
    found: dict[str, list[str]] = {}
    try:
        for bus in _items(events.list_event_buses, "EventBuses"):
            for rule in _items(
                events.list_rules, "Rules", EventBusName=bus["Name"], NamePrefix=prefix
            ):
                for target in _items(
                    events.list_targets_by_rule,
                    "Targets",
                    Rule=rule["Name"],
                    EventBusName=bus["Name"],
                ):
                    if arn := target.get("DeadLetterConfig", {}).get("Arn"):
                        found.setdefault(arn, []).append(rule["Name"])
    except (ClientError, BotoCoreError) as exc:
        warn(f"cannot read the EventBridge rules ({exc}); their target DLQs are missed")
    return found


def _queue_by_arn(sqs: Any, arn: str) -> QueueInfo | None:
    *_, account, name = arn.split(":")
    try:
        url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
    except ClientError:
        return None
    return QueueInfo.read(sqs, url["QueueUrl"])


def _items(call: Callable[..., dict[str, Any]], key: str, **arguments: Any) -> Iterator[Any]:
    """Every item of an EventBridge list call, following NextToken (it has few paginators)."""
    while True:
        page = call(**arguments)
        yield from page.get(key, [])
        if not page.get("NextToken"):
            return
        arguments["NextToken"] = page["NextToken"]
