"""``selfservice dlq``: what is parked in each dead-letter queue and why; a safe redrive.

Discovery is the same against AWS (standard credential chain and region) and the local
runtime (``--endpoint-url`` or ``AWS_ENDPOINT_URL``): the queues whose names start with
the stack name, each queue's ``RedrivePolicy`` (DLQ → its source queues) and the
EventBridge rules whose targets name a DLQ (those have no source queue: EventBridge
could not deliver to the target, so there is no queue to put the event back on).

Messages are peeked without being consumed: received with a short visibility timeout
and made visible again at once. Why each one is there comes from where the platform
records it (:mod:`selfservice_contracts.failures`): the attributes our code parks a
message with, EventBridge's own attributes, or — for a message SQS moved after
``maxReceiveCount`` failed receives — the consumer's log line for that message id, found
with ``FilterLogEvents`` in the stack's log groups.

A redrive sends each message back to its source queue first and deletes it from the DLQ
only once the send succeeded, so an error leaves it where it was, never lost.

A DLQ can be empty while its source queue is stuck: a message retried for an hour holds
a FIFO queue's group — every later message — all that time. ``dlq list`` therefore also
shows each source queue that holds messages (:class:`SourceBacklog`): how many wait and
how many are in flight, the age of its oldest message (CloudWatch's
``ApproximateAgeOfOldestMessage``, where it exists), the message its consumer has been
failing and since when (the consumer's failure lines), and whether it is **held**: that
failure or that age reaches ``--held-minutes``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from selfservice_contracts.envelope import ContractError, parse_sqs_body
from selfservice_contracts.events import TicketEventData
from selfservice_contracts.failures import (
    ERROR,
    ERROR_TYPE,
    EVENTBRIDGE_ERROR_CODE,
    EVENTBRIDGE_ERROR_MESSAGE,
    EVENTBRIDGE_RULE_ARN,
    EVENTBRIDGE_TARGET_ARN,
    FAILED_AT,
    FAILURE_ATTRIBUTE_NAMES,
    RECORD_FAILED,
    SOURCE_QUEUE,
)

__all__ = [
    "DeadLetterQueue",
    "DeadLetters",
    "DlqError",
    "ParkedMessage",
    "QueueInfo",
    "Reason",
    "RedriveResult",
    "SourceBacklog",
    "add_parser",
]

DEFAULT_PREFIX = "selfservice"
PEEK_VISIBILITY_SECONDS = 30
"""How long a peeked message is hidden if the tool dies before releasing it."""
REDRIVE_VISIBILITY_SECONDS = 120
"""How long a message being moved is hidden from other readers of the DLQ."""
LOG_PAGES_PER_GROUP = 50
HELD_MINUTES = 15
"""A source queue whose oldest message (or whose consumer's current failure) is this old is held."""
FAILURE_LOOKBACK_MS = 24 * 3600 * 1000
"""How far back a source queue's failure lines are searched."""
FAILURE_CURRENT_MS = 45 * 60 * 1000
"""A failure line this recent is a failure still going on: longer than the longest wait
between two receives (the notifier's ``queue_cap_seconds``, 30 minutes)."""
_NOT_REDRIVABLE_ATTRIBUTES = FAILURE_ATTRIBUTE_NAMES | {
    EVENTBRIDGE_RULE_ARN,
    EVENTBRIDGE_TARGET_ARN,
    EVENTBRIDGE_ERROR_CODE,
    EVENTBRIDGE_ERROR_MESSAGE,
    "EXHAUSTED_RETRY_CONDITION",
    "RETRY_ATTEMPTS",
}


class DlqError(Exception):
    """The operation cannot be done as asked (unknown queue, nothing to redrive to)."""


@dataclass(frozen=True)
class QueueInfo:
    """One SQS queue as ``GetQueueAttributes`` describes it."""

    name: str
    url: str
    arn: str
    fifo: bool
    retention_seconds: int
    visible: int
    in_flight: int
    dead_letter_arn: str | None = None

    @classmethod
    def from_attributes(cls, url: str, attributes: dict[str, str]) -> QueueInfo:
        """From ``GetQueueAttributes(AttributeNames=["All"])``."""
        redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
        return cls(
            name=attributes["QueueArn"].rsplit(":", 1)[-1],
            url=url,
            arn=attributes["QueueArn"],
            fifo=attributes.get("FifoQueue") == "true",
            retention_seconds=int(attributes.get("MessageRetentionPeriod", "345600")),
            visible=int(attributes.get("ApproximateNumberOfMessages", "0")),
            in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0")),
            dead_letter_arn=redrive.get("deadLetterTargetArn"),
        )


@dataclass(frozen=True)
class DeadLetterQueue:
    """A DLQ, the queues it takes failed messages from, and the rules that park events in it."""

    queue: QueueInfo
    sources: tuple[QueueInfo, ...] = ()
    """Queues whose ``RedrivePolicy`` names this DLQ: where a redrive sends messages."""
    rules: tuple[str, ...] = ()
    """EventBridge rules (names) with a target whose ``DeadLetterConfig`` is this DLQ."""

    @property
    def redrivable(self) -> bool:
        """Whether there is a source queue to move its messages back to."""
        return bool(self.sources)

    def describe(self) -> str:
        """Where its messages come from, and where a redrive would send them."""
        parts = []
        if self.sources:
            parts.append("redrives to " + ", ".join(s.name for s in self.sources))
        if self.rules:
            parts.append("EventBridge target DLQ of " + ", ".join(self.rules))
            if not self.sources:
                parts.append(
                    "no source queue: cannot be redriven (fix the target, then put the "
                    "events on the bus again, e.g. by archive replay)"
                )
        return "; ".join(parts)


@dataclass(frozen=True)
class Reason:
    """Why a message is in its DLQ, and where that was read."""

    text: str
    origin: str


@dataclass(frozen=True)
class ParkedMessage:
    """One message in a DLQ, as ``dlq list`` shows it."""

    message_id: str
    sent_at: str | None
    receive_count: int
    group_id: str | None = None
    event_type: str | None = None
    event_id: str | None = None
    ticket: str | None = None
    request_id: str | None = None
    contract_error: str | None = None
    """Why the body is not one of our events (often the very reason it failed)."""
    reason: Reason | None = None
    source_queue: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, message: dict[str, Any]) -> ParkedMessage:
        """From a ``ReceiveMessage`` result (all attributes and message attributes)."""
        system = message.get("Attributes", {})
        attributes = {
            name: str(value.get("StringValue", "<binary>"))
            for name, value in message.get("MessageAttributes", {}).items()
        }
        sent = system.get("SentTimestamp")
        return cls(
            message_id=message["MessageId"],
            sent_at=_iso(int(sent)) if sent else None,
            receive_count=int(system.get("ApproximateReceiveCount", "0")),
            group_id=system.get("MessageGroupId"),
            **_event_fields(message.get("Body", "")),
            reason=_attribute_reason(attributes),
            source_queue=attributes.get(SOURCE_QUEUE),
            attributes=attributes,
        )


@dataclass(frozen=True)
class SourceBacklog:
    """A source queue that holds messages, and whether something holds them up."""

    name: str
    fifo: bool
    waiting: int
    in_flight: int
    oldest_age_seconds: int | None = None
    """CloudWatch's ``ApproximateAgeOfOldestMessage`` (None where there is no such metric)."""
    failing_message_id: str | None = None
    """The message its consumer failed last, if it logged a failure in the last day."""
    failing_since: str | None = None
    """That message's first logged failure."""
    last_failure: Reason | None = None
    held: bool = False
    """The oldest message, or the current failure, is at least ``--held-minutes`` old."""


@dataclass
class RedriveResult:
    """What one redrive did."""

    queue: str
    moved: list[str] = field(default_factory=list)
    """Message ids (in the DLQ) sent back to their source queue and deleted."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(message id, error): not sent, so still in the DLQ."""
    not_deleted: list[tuple[str, str]] = field(default_factory=list)
    """(message id, error): sent, but still in the DLQ too — a later redrive resends it."""
    would_move: list[tuple[str, str]] = field(default_factory=list)
    """(message id, target queue) in a dry run."""

    @property
    def ok(self) -> bool:
        """Nothing failed."""
        return not self.failed and not self.not_deleted


def _iso(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds")


def _event_fields(body: str) -> dict[str, Any]:
    """Event type, id, ticket and request id, when the body is (or looks like) our event."""
    try:
        event = parse_sqs_body(body)
    except ContractError as exc:
        return {**_loose_event_fields(body), "contract_error": str(exc)[:500]}
    data = event.data
    return {
        "event_type": event.type,
        "event_id": event.id,
        "ticket": str(data.ticket) if isinstance(data, TicketEventData) else None,
        "request_id": getattr(data, "request_id", None),
    }


def _loose_event_fields(body: str) -> dict[str, Any]:
    """What can be read from an envelope that fails its contract (or is someone else's)."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(envelope, dict):
        return {}
    detail: dict[str, Any] = envelope["detail"] if isinstance(envelope.get("detail"), dict) else {}
    return {
        "event_type": detail.get("type") or envelope.get("detail-type"),
        "event_id": detail.get("id") or envelope.get("id"),
        "ticket": detail.get("subject"),
        "request_id": detail.get("requestid"),
    }


def _attribute_reason(attributes: dict[str, str]) -> Reason | None:
    if ERROR in attributes:
        kind = attributes.get(ERROR_TYPE)
        when = attributes.get(FAILED_AT)
        return Reason(
            f"{kind}: {attributes[ERROR]}" if kind else attributes[ERROR],
            "parked by its consumer" + (f" at {when}" if when else ""),
        )
    if EVENTBRIDGE_ERROR_CODE in attributes:
        message = attributes.get(EVENTBRIDGE_ERROR_MESSAGE, "")
        return Reason(
            f"{attributes[EVENTBRIDGE_ERROR_CODE]}: {message}".rstrip(": "),
            "EventBridge could not deliver it to "
            + attributes.get(EVENTBRIDGE_TARGET_ARN, "its target").rsplit(":", 1)[-1],
        )
    return None


def _chunks(items: Sequence[Any], size: int = 10) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _sendable(attributes: dict[str, Any]) -> dict[str, Any]:
    """Message attributes to carry back to the source queue: the producer's, not the failure's."""
    carried: dict[str, Any] = {}
    for name, value in attributes.items():
        if name in _NOT_REDRIVABLE_ATTRIBUTES:
            continue
        kept = {"DataType": value["DataType"]}
        for key in ("StringValue", "BinaryValue"):
            if key in value:
                kept[key] = value[key]
        carried[name] = kept
    return carried


class DeadLetters:
    """The platform's DLQs, through boto3 clients of SQS, EventBridge and CloudWatch Logs."""

    def __init__(
        self,
        sqs: Any,
        events: Any,
        logs: Any,
        *,
        prefix: str = DEFAULT_PREFIX,
        warn: Callable[[str], None] = lambda _: None,
        cloudwatch: Any = None,
    ) -> None:
        self.sqs = sqs
        self.events = events
        self.logs = logs
        self.prefix = prefix
        self.warn = warn
        self.cloudwatch = cloudwatch

    # -- discovery ----------------------------------------------------------------------

    def _queues(self) -> list[QueueInfo]:
        urls: list[str] = []
        for page in self.sqs.get_paginator("list_queues").paginate(QueueNamePrefix=self.prefix):
            urls += page.get("QueueUrls", [])
        return [self._queue(url) for url in urls]

    def _queue(self, url: str) -> QueueInfo:
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        return QueueInfo.from_attributes(url, attributes["Attributes"])

    def _rule_dlqs(self) -> dict[str, list[str]]:
        """DLQ ARN → names of the rules (on any bus) with a target parking events in it."""
        found: dict[str, list[str]] = {}
        try:
            for bus in _items(self.events.list_event_buses, "EventBuses"):
                for rule in _items(
                    self.events.list_rules,
                    "Rules",
                    EventBusName=bus["Name"],
                    NamePrefix=self.prefix,
                ):
                    for target in _items(
                        self.events.list_targets_by_rule,
                        "Targets",
                        Rule=rule["Name"],
                        EventBusName=bus["Name"],
                    ):
                        if arn := target.get("DeadLetterConfig", {}).get("Arn"):
                            found.setdefault(arn, []).append(rule["Name"])
        except (ClientError, BotoCoreError) as exc:
            self.warn(f"cannot read the EventBridge rules ({exc}); their target DLQs are missed")
        return found

    def discover(self) -> list[DeadLetterQueue]:
        """Every DLQ of the stack: redrive targets of its queues and EventBridge target DLQs."""
        queues = self._queues()
        by_arn = {q.arn: q for q in queues}
        sources: dict[str, list[QueueInfo]] = {}
        for queue in queues:
            if queue.dead_letter_arn:
                sources.setdefault(queue.dead_letter_arn, []).append(queue)
        rules = self._rule_dlqs()
        found = []
        for arn in sorted(set(sources) | set(rules)):
            dead_letter = by_arn.get(arn) or self._queue_by_arn(arn)
            if dead_letter is None:
                self.warn(f"{arn} is named as a DLQ but does not exist")
                continue
            found.append(
                DeadLetterQueue(
                    dead_letter,
                    tuple(sorted(sources.get(arn, []), key=lambda q: q.name)),
                    tuple(sorted(rules.get(arn, []))),
                )
            )
        return sorted(found, key=lambda d: d.queue.name)

    def _queue_by_arn(self, arn: str) -> QueueInfo | None:
        *_, account, name = arn.split(":")
        try:
            url = self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
        except ClientError:
            return None
        return self._queue(url["QueueUrl"])

    def select(self, dlqs: Sequence[DeadLetterQueue], wanted: str) -> DeadLetterQueue:
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

    # -- listing ------------------------------------------------------------------------

    def peek(self, dlq: DeadLetterQueue, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` messages, left in the queue and visible again on return."""
        if limit <= 0 or dlq.queue.visible + dlq.queue.in_flight == 0:
            return []
        seen: dict[str, dict[str, Any]] = {}
        handles: list[str] = []
        try:
            while len(seen) < limit:
                batch = self._receive(dlq, min(10, limit - len(seen)), PEEK_VISIBILITY_SECONDS)
                handles += [m["ReceiptHandle"] for m in batch]
                fresh = [m for m in batch if m["MessageId"] not in seen]
                if not fresh:
                    break
                seen.update((m["MessageId"], m) for m in fresh)
        finally:
            self._release(dlq, handles)
        return list(seen.values())

    def _receive(self, dlq: DeadLetterQueue, count: int, visibility: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.sqs.receive_message(
            QueueUrl=dlq.queue.url,
            MaxNumberOfMessages=count,
            VisibilityTimeout=visibility,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return messages

    def _release(self, dlq: DeadLetterQueue, handles: Sequence[str]) -> None:
        for chunk in _chunks(handles):
            try:
                response = self.sqs.change_message_visibility_batch(
                    QueueUrl=dlq.queue.url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                        for i, h in enumerate(chunk)
                    ],
                )
                failed = response.get("Failed", [])
            except (ClientError, BotoCoreError) as exc:
                failed = [{"Message": str(exc)}]
            if failed:
                self.warn(
                    f"{dlq.queue.name}: {len(failed)} message(s) stay hidden until their "
                    f"visibility timeout ends ({failed[0].get('Message', '')})"
                )

    def explain(
        self,
        dlq: DeadLetterQueue,
        messages: Sequence[dict[str, Any]],
        log_groups: Sequence[str] | None = None,
    ) -> list[ParkedMessage]:
        """Each message with its event and why it is here (from the logs if not its attributes)."""
        parked = [ParkedMessage.read(m) for m in messages]
        unexplained = {p.message_id: p for p in parked if p.reason is None}
        if not unexplained:
            return parked
        sent = [
            int(m["Attributes"]["SentTimestamp"])
            for m in messages
            if m["MessageId"] in unexplained and "SentTimestamp" in m.get("Attributes", {})
        ]
        # A standard queue's message keeps its first enqueue time in the DLQ; a FIFO
        # queue's is reset on the move, so its failures may be a retention period older.
        lookback = max((s.retention_seconds for s in dlq.sources), default=0) * 1000
        start = (min(sent) if sent else 0) - (lookback if dlq.queue.fifo else 0) - 60_000
        groups = list(log_groups) if log_groups is not None else self.log_groups()
        found = self.failure_lines(groups, set(unexplained), start_ms=max(start, 0))
        return [
            replace(p, reason=found[p.message_id]) if p.message_id in found else p for p in parked
        ]

    def log_groups(self) -> list[str]:
        """The stack's log groups: every group whose name contains the prefix."""
        groups = []
        try:
            pages = self.logs.get_paginator("describe_log_groups").paginate(
                logGroupNamePattern=self.prefix  # a substring, server-side; filtered here too
            )
            for page in pages:
                groups += [
                    g["logGroupName"]
                    for g in page.get("logGroups", [])
                    if self.prefix.lower() in g["logGroupName"].lower()
                ]
        except (ClientError, BotoCoreError) as exc:
            self.warn(f"cannot list the log groups ({exc}); reasons from logs are missed")
        return groups

    def failure_lines(
        self, groups: Iterable[str], message_ids: set[str], *, start_ms: int
    ) -> dict[str, Reason]:
        """The latest failed-record log line of each message id, as its reason."""
        latest: dict[str, tuple[int, Reason]] = {}
        for group in groups:
            try:
                self._scan(group, message_ids, start_ms, latest)
            except (ClientError, BotoCoreError) as exc:
                self.warn(f"cannot search {group} ({exc})")
        return {message_id: reason for message_id, (_, reason) in latest.items()}

    def _scan(
        self,
        group: str,
        message_ids: set[str],
        start_ms: int,
        latest: dict[str, tuple[int, Reason]],
    ) -> None:
        arguments: dict[str, Any] = {
            "logGroupName": group,
            "startTime": start_ms,
            "filterPattern": f'"{RECORD_FAILED}"',
        }
        for _ in range(LOG_PAGES_PER_GROUP):
            page = self.logs.filter_log_events(**arguments)
            for event in page.get("events", []):
                line = _json_object(event.get("message", ""))
                # Filtered again here: the service's filter is a phrase, not a field match.
                if line.get("message") != RECORD_FAILED:
                    continue
                message_id = line.get("message_id")
                if message_id not in message_ids:
                    continue
                stamp = int(event.get("timestamp", 0))
                if message_id in latest and latest[message_id][0] > stamp:
                    continue
                kind, error = line.get("error_type"), line.get("error", "")
                origin = f"log group {group}, {_iso(stamp)}"
                if line.get("receive_count"):
                    origin += f", receive {line['receive_count']}"
                latest[message_id] = (stamp, Reason(f"{kind}: {error}" if kind else error, origin))
            if not page.get("nextToken"):
                return
            arguments["nextToken"] = page["nextToken"]
        self.warn(f"{group}: stopped after {LOG_PAGES_PER_GROUP} pages of failure lines")

    # -- source queues ------------------------------------------------------------------

    def backlogs(
        self,
        dlq: DeadLetterQueue,
        log_groups: Sequence[str] | None = None,
        *,
        held_minutes: float = HELD_MINUTES,
        now_ms: int | None = None,
    ) -> list[SourceBacklog]:
        """Each of the DLQ's source queues that holds messages, and what holds them up."""
        now = now_ms if now_ms is not None else int(datetime.now(UTC).timestamp() * 1000)
        found = []
        groups: list[str] | None = list(log_groups) if log_groups is not None else None
        for source in dlq.sources:
            current = self._queue(source.url)
            if current.visible + current.in_flight == 0:
                continue
            if groups is None:
                groups = self.log_groups()
            age = self._oldest_age(current, now)
            failing = self._current_failure(current, groups, now - FAILURE_LOOKBACK_MS)
            if failing is not None and now - failing[3] > FAILURE_CURRENT_MS:
                failing = None  # a failure long over: whatever waits now is not behind it
            limit_ms = held_minutes * 60_000
            held = (age is not None and age * 1000 >= limit_ms) or (
                failing is not None and now - failing[1] >= limit_ms
            )
            found.append(
                SourceBacklog(
                    name=current.name,
                    fifo=current.fifo,
                    waiting=current.visible,
                    in_flight=current.in_flight,
                    oldest_age_seconds=age,
                    failing_message_id=failing[0] if failing else None,
                    failing_since=_iso(failing[1]) if failing else None,
                    last_failure=failing[2] if failing else None,
                    held=held,
                )
            )
        return found

    def _oldest_age(self, queue: QueueInfo, now_ms: int) -> int | None:
        if self.cloudwatch is None:
            return None
        try:
            points = self.cloudwatch.get_metric_statistics(
                Namespace="AWS/SQS",
                MetricName="ApproximateAgeOfOldestMessage",
                Dimensions=[{"Name": "QueueName", "Value": queue.name}],
                StartTime=datetime.fromtimestamp(now_ms / 1000 - 600, UTC),
                EndTime=datetime.fromtimestamp(now_ms / 1000 + 60, UTC),  # the current minute too
                Period=60,
                Statistics=["Maximum"],
            ).get("Datapoints", [])
        except (ClientError, BotoCoreError) as exc:
            self.warn(f"cannot read {queue.name}'s age of oldest message ({exc})")
            return None
        if not points:
            return None
        latest = max(points, key=lambda p: p["Timestamp"])
        return int(latest["Maximum"])

    def _current_failure(
        self, queue: QueueInfo, groups: Iterable[str], start_ms: int
    ) -> tuple[str, int, Reason, int] | None:
        """The message of ``queue`` its consumer failed last: its id, first failure, reason,
        and when it last failed."""
        first: dict[str, int] = {}
        latest: tuple[int, str, Reason] | None = None
        for group in groups:
            arguments: dict[str, Any] = {
                "logGroupName": group,
                "startTime": start_ms,
                "filterPattern": f'"{RECORD_FAILED}"',
            }
            try:
                for _ in range(LOG_PAGES_PER_GROUP):
                    page = self.logs.filter_log_events(**arguments)
                    for event in page.get("events", []):
                        line = _json_object(event.get("message", ""))
                        if line.get("message") != RECORD_FAILED or line.get("queue") != queue.name:
                            continue
                        message_id, stamp = str(line.get("message_id")), int(event["timestamp"])
                        first[message_id] = min(first.get(message_id, stamp), stamp)
                        if latest is None or stamp >= latest[0]:
                            kind, error = line.get("error_type"), line.get("error", "")
                            origin = f"log group {group}, {_iso(stamp)}"
                            if line.get("receive_count"):
                                origin += f", receive {line['receive_count']}"
                            reason = Reason(f"{kind}: {error}" if kind else error, origin)
                            latest = (stamp, message_id, reason)
                    if not page.get("nextToken"):
                        break
                    arguments["nextToken"] = page["nextToken"]
            except (ClientError, BotoCoreError) as exc:
                self.warn(f"cannot search {group} ({exc})")
        if latest is None:
            return None
        return latest[1], first[latest[1]], latest[2], latest[0]

    # -- redrive ------------------------------------------------------------------------

    def redrive(
        self,
        dlq: DeadLetterQueue,
        *,
        limit: int | None = None,
        dry_run: bool = False,
        progress: Callable[[str], None] = lambda _: None,
    ) -> RedriveResult:
        """Move up to ``limit`` messages (default: as many as are in it now) back to their source.

        Each message is sent first and deleted from the DLQ only after the send succeeded;
        a failed send leaves it there (visible again) and stops the redrive, as does a failed
        delete (the message is then in both queues; never in neither). A message that
        fails again comes back to the DLQ under a new id, so the redrive never chases it.
        """
        if not dlq.redrivable:
            raise DlqError(f"{dlq.queue.name}: {dlq.describe()}")
        result = RedriveResult(dlq.queue.name)
        current = self._queue(dlq.queue.url)
        budget = limit if limit is not None else current.visible
        if dry_run:
            for message in self.peek(
                DeadLetterQueue(current, dlq.sources, dlq.rules), max(budget, 0)
            ):
                target = self._target(dlq, message)
                result.would_move.append(
                    (message["MessageId"], target.name if target else "(no source queue)")
                )
            return result
        while len(result.moved) < budget:
            batch = self._receive(
                dlq, min(10, budget - len(result.moved)), REDRIVE_VISIBILITY_SECONDS
            )
            if not batch:
                break
            self._move(dlq, batch, result)
            progress(f"{dlq.queue.name}: moved {len(result.moved)} so far")
            if not result.ok:  # an outage or a missing permission: stop, report
                break
        return result

    def _target(self, dlq: DeadLetterQueue, message: dict[str, Any]) -> QueueInfo | None:
        if len(dlq.sources) == 1:
            return dlq.sources[0]
        named = message.get("MessageAttributes", {}).get(SOURCE_QUEUE, {}).get("StringValue")
        return next((s for s in dlq.sources if s.name == named), None)

    def _move(
        self, dlq: DeadLetterQueue, batch: list[dict[str, Any]], result: RedriveResult
    ) -> None:
        sent: list[dict[str, Any]] = []
        unsent: list[dict[str, Any]] = []
        by_target: dict[str, tuple[QueueInfo, list[dict[str, Any]]]] = {}
        for message in batch:
            target = self._target(dlq, message)
            if target is None:
                names = ", ".join(s.name for s in dlq.sources)
                result.failed.append((message["MessageId"], f"which of {names} it came from?"))
                unsent.append(message)
                continue
            by_target.setdefault(target.url, (target, []))[1].append(message)
        for target, messages in by_target.values():
            entries = [self._entry(str(i), m, target) for i, m in enumerate(messages)]
            try:
                response = self.sqs.send_message_batch(QueueUrl=target.url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                response = {"Failed": [{"Id": e["Id"], "Message": str(exc)} for e in entries]}
            errors = {
                f["Id"]: f.get("Message", f.get("Code", "")) for f in response.get("Failed", [])
            }
            for index, message in enumerate(messages):
                if str(index) in errors:
                    result.failed.append((message["MessageId"], errors[str(index)]))
                    unsent.append(message)
                else:
                    sent.append(message)
        self._delete(dlq, sent, result)
        self._release(dlq, [m["ReceiptHandle"] for m in unsent])

    @staticmethod
    def _entry(entry_id: str, message: dict[str, Any], target: QueueInfo) -> dict[str, Any]:
        entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message["Body"]}
        attributes = _sendable(message.get("MessageAttributes", {}))
        if attributes:
            entry["MessageAttributes"] = attributes
        if target.fifo:
            # The same group keeps its order; a fresh deduplication id, or the queue would
            # drop the body it saw within five minutes (content-based deduplication).
            entry["MessageGroupId"] = message.get("Attributes", {}).get("MessageGroupId", "redrive")
            entry["MessageDeduplicationId"] = f"redrive-{uuid.uuid4().hex}"
        return entry

    def _delete(
        self, dlq: DeadLetterQueue, sent: list[dict[str, Any]], result: RedriveResult
    ) -> None:
        for chunk in _chunks(sent):
            try:
                response = self.sqs.delete_message_batch(
                    QueueUrl=dlq.queue.url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(chunk)
                    ],
                )
            except (ClientError, BotoCoreError) as exc:
                response = {
                    "Failed": [{"Id": str(i), "Message": str(exc)} for i in range(len(chunk))]
                }
            errors = {f["Id"]: f.get("Message", "") for f in response.get("Failed", [])}
            for index, message in enumerate(chunk):
                if str(index) in errors:
                    result.not_deleted.append((message["MessageId"], errors[str(index)]))
                else:
                    result.moved.append(message["MessageId"])


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _items(call: Callable[..., dict[str, Any]], key: str, **arguments: Any) -> Iterator[Any]:
    """Every item of an EventBridge list call, following NextToken (it has few paginators)."""
    while True:
        page = call(**arguments)
        yield from page.get(key, [])
        if not page.get("NextToken"):
            return
        arguments["NextToken"] = page["NextToken"]


# -- command line ---------------------------------------------------------------------


def _clients(args: argparse.Namespace) -> DeadLetters:
    # AWS_REGION too (what Lambda and `selfservice up`'s operator.env set; botocore reads
    # only AWS_DEFAULT_REGION and the config files).
    region = args.region or os.environ.get("AWS_REGION") or None
    session = boto3.session.Session(profile_name=args.profile, region_name=region)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=args.endpoint_url)  # type: ignore[call-overload]

    return DeadLetters(
        client("sqs"),
        client("events"),
        client("logs"),
        prefix=args.prefix,
        warn=lambda text: print(f"warning: {text}", file=sys.stderr),
        cloudwatch=client("cloudwatch"),
    )


def _print_backlog(backlog: SourceBacklog) -> None:
    age = (
        f"; oldest {_minutes(backlog.oldest_age_seconds)}"
        if backlog.oldest_age_seconds is not None
        else ""
    )
    held = ""
    if backlog.held:
        held = " — HELD" + (
            ": its one FIFO group waits behind the in-flight message(s)"
            if backlog.fifo and backlog.in_flight
            else ""
        )
    print(
        f"  source {backlog.name}: {backlog.waiting} waiting, {backlog.in_flight} in flight"
        f"{age}{held}"
    )
    if backlog.last_failure is not None:
        print(
            f"    failing: {backlog.failing_message_id} since {backlog.failing_since}: "
            f"{backlog.last_failure.text}"
        )
        print(f"         ({backlog.last_failure.origin})")


def _minutes(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"  # noqa: PLR2004


def _print_listing(dlq: DeadLetterQueue, parked: Sequence[ParkedMessage]) -> None:
    depth = dlq.queue.visible + dlq.queue.in_flight
    count = f"{depth} message{'s' if depth != 1 else ''}" if depth else "empty"
    if dlq.queue.in_flight:
        count += f", {dlq.queue.in_flight} in flight"
    print(f"{dlq.queue.name}  ({count}; {dlq.describe()})")
    for message in parked:
        event = " ".join(
            part
            for part in (
                message.event_type or "(not an event of ours)",
                f"ticket {message.ticket}" if message.ticket else "",
                f"request {message.request_id}" if message.request_id else "",
            )
            if part
        )
        print(
            f"  {message.message_id}  sent {message.sent_at or '?'}  "
            f"received {message.receive_count}x  {event}"
        )
        if message.reason:
            print(f"    why: {message.reason.text}")
            print(f"         ({message.reason.origin})")
        else:
            print("    why: unknown (no failure attributes; no failure line in the log groups)")
        if message.contract_error and (
            message.reason is None or message.contract_error not in message.reason.text
        ):
            print(f"    body: {message.contract_error}")
    if parked and len(parked) < depth:
        more = depth - len(parked)
        hint = " (a FIFO queue shows one message group's first batch)" if dlq.queue.fifo else ""
        print(f"  … and {more} more{hint}; --max shows more")


def _list(args: argparse.Namespace) -> int:
    tools = _clients(args)
    listing = []
    for dlq in tools.discover():
        messages = tools.peek(dlq, args.max)
        parked = tools.explain(dlq, messages, args.log_group)
        backlogs = tools.backlogs(dlq, args.log_group, held_minutes=args.held_minutes)
        listing.append((dlq, parked, backlogs))
    if args.json:
        document = [
            {
                "name": dlq.queue.name,
                "url": dlq.queue.url,
                "fifo": dlq.queue.fifo,
                "depth": dlq.queue.visible + dlq.queue.in_flight,
                "in_flight": dlq.queue.in_flight,
                "redrivable": dlq.redrivable,
                "redrives_to": [s.name for s in dlq.sources],
                "eventbridge_rules": list(dlq.rules),
                "note": dlq.describe(),
                "messages": [asdict(p) for p in parked],
                "sources": [asdict(b) for b in backlogs],
            }
            for dlq, parked, backlogs in listing
        ]
        print(json.dumps({"dead_letter_queues": document}, indent=2))
        return 0
    if not listing:
        print(f"no dead-letter queues found with the prefix {args.prefix!r}")
    for dlq, parked, backlogs in listing:
        _print_listing(dlq, parked)
        for backlog in backlogs:
            _print_backlog(backlog)
    return 0


def _redrive(args: argparse.Namespace) -> int:
    tools = _clients(args)
    dlqs = tools.discover()
    if args.queue:
        chosen = [tools.select(dlqs, args.queue)]
        if not chosen[0].redrivable:
            raise DlqError(f"{chosen[0].queue.name}: {chosen[0].describe()}")
    else:
        chosen = []
        for dlq in dlqs:
            if dlq.redrivable:
                chosen.append(dlq)
            elif dlq.queue.visible + dlq.queue.in_flight:
                print(f"skipped {dlq.queue.name}: {dlq.describe()}")
    status = 0
    for dlq in chosen:
        result = tools.redrive(
            dlq,
            limit=args.max,
            dry_run=args.dry_run,
            progress=lambda text: print(text, file=sys.stderr),
        )
        if args.dry_run:
            for message_id, target in result.would_move:
                print(f"would move {message_id} → {target}")
            print(f"{dlq.queue.name}: dry run, {len(result.would_move)} message(s) would move")
            continue
        for message_id, error in result.failed:
            print(f"  not moved {message_id}: {error} (still in {dlq.queue.name})")
        for message_id, error in result.not_deleted:
            print(
                f"  sent {message_id} but could not delete it: {error} "
                "(a later redrive sends it again; consumers are idempotent on the event id)"
            )
        targets = ", ".join(s.name for s in dlq.sources)
        print(
            f"{dlq.queue.name} → {targets}: moved {len(result.moved)}, "
            f"failed {len(result.failed)}, sent but not deleted {len(result.not_deleted)}"
        )
        status = status or (0 if result.ok else 1)
    return status


def _run(args: argparse.Namespace) -> int:
    handler: Callable[[argparse.Namespace], int] = _list if args.dlq_command == "list" else _redrive
    try:
        return handler(args)
    except DlqError as exc:
        print(f"selfservice dlq: {exc}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"selfservice dlq: {exc}", file=sys.stderr)
        return 1


def add_parser(commands: Any) -> None:
    """Add ``dlq`` and its subcommands to the ``selfservice`` parser."""
    dlq = commands.add_parser("dlq", help="what is parked in the DLQs and why; redrive")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="OPERATION")

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--prefix",
            default=DEFAULT_PREFIX,
            help=f"the stack's names start with this (default {DEFAULT_PREFIX})",
        )
        parser.add_argument(
            "--endpoint-url", help="AWS endpoint (local runtime; default: $AWS_ENDPOINT_URL or AWS)"
        )
        parser.add_argument(
            "--region", help="AWS region (default: $AWS_REGION, else the config chain)"
        )
        parser.add_argument("--profile", help="AWS profile of the credential chain")
        parser.set_defaults(func=_run)

    listing = dlq_commands.add_parser("list", help="each DLQ's messages and why they are there")
    listing.add_argument("--max", type=int, default=10, help="messages shown per DLQ (default 10)")
    listing.add_argument(
        "--log-group",
        action="append",
        help="search only this log group for failure lines (repeatable; default: the stack's)",
    )
    listing.add_argument(
        "--held-minutes",
        type=float,
        default=HELD_MINUTES,
        help="a source queue whose oldest message or current failure is this old is shown"
        f" as HELD (default {HELD_MINUTES})",
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    common(listing)
    redrive = dlq_commands.add_parser(
        "redrive", help="move messages back to their source queue (after the fix)"
    )
    redrive.add_argument("--queue", help="one DLQ: its name, URL or a unique part of its name")
    redrive.add_argument(
        "--max", type=int, default=None, help="move at most this many per DLQ (default: all)"
    )
    redrive.add_argument(
        "--dry-run", action="store_true", help="show what would move; move nothing"
    )
    common(redrive)
