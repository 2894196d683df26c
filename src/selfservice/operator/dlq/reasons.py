"""Why a message is parked: its failure attributes, or its consumer's failure line in the logs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from selfservice.operator.dlq.queues import DeadLetterQueue, QueueInfo, iso
from selfservice_contracts.envelope import ContractError
from selfservice_contracts.events import TicketEventData
from selfservice_contracts.failures import (
    ERROR,
    ERROR_TYPE,
    EVENTBRIDGE_ERROR_CODE,
    EVENTBRIDGE_ERROR_MESSAGE,
    EVENTBRIDGE_TARGET_ARN,
    FAILED_AT,
    RECORD_FAILED,
    SOURCE_QUEUE,
)
from selfservice_runtime.parsing import parse_sqs_body

__all__ = ["LOG_PAGES_PER_GROUP", "FailureLog", "ParkedMessage", "Reason"]

LOG_PAGES_PER_GROUP = 50


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
            sent_at=iso(int(sent)) if sent else None,
            receive_count=int(system.get("ApproximateReceiveCount", "0")),
            group_id=system.get("MessageGroupId"),
            **_event_fields(message.get("Body", "")),
            reason=_attribute_reason(attributes),
            source_queue=attributes.get(SOURCE_QUEUE),
            attributes=attributes,
        )


class FailureLog:
    """The consumers' failed-record lines in the stack's log groups (CloudWatch Logs)."""

    def __init__(self, logs: Any, *, prefix: str, warn: Callable[[str], None]) -> None:
        self.logs = logs
        self.prefix = prefix
        self.warn = warn

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
                for stamp, line in self._records(group, start_ms):
                    message_id = line.get("message_id")
                    if message_id not in message_ids:
                        continue
                    if message_id in latest and latest[message_id][0] > stamp:
                        continue
                    latest[message_id] = (stamp, _logged_reason(line, group, stamp))
            except (ClientError, BotoCoreError) as exc:
                self.warn(f"cannot search {group} ({exc})")
        return {message_id: reason for message_id, (_, reason) in latest.items()}

    def current_failure(
        self, queue: QueueInfo, groups: Iterable[str], start_ms: int
    ) -> tuple[str, int, Reason, int] | None:
        """The message of ``queue`` its consumer failed last: its id, first failure, reason,
        and when it last failed."""
        first: dict[str, int] = {}
        latest: tuple[int, str, Reason] | None = None
        for group in groups:
            try:
                for stamp, line in self._records(group, start_ms):
                    if line.get("queue") != queue.name:
                        continue
                    message_id = str(line.get("message_id"))
                    first[message_id] = min(first.get(message_id, stamp), stamp)
                    if latest is None or stamp >= latest[0]:
                        latest = (stamp, message_id, _logged_reason(line, group, stamp))
            except (ClientError, BotoCoreError) as exc:
                self.warn(f"cannot search {group} ({exc})")
        if latest is None:
            return None
        return latest[1], first[latest[1]], latest[2], latest[0]

    def _records(self, group: str, start_ms: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """(timestamp, parsed line) of each failed-record line of ``group`` since ``start_ms``."""
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
                if line.get("message") == RECORD_FAILED:
                    yield int(event.get("timestamp", 0)), line
            if not page.get("nextToken"):
                return
            arguments["nextToken"] = page["nextToken"]
        self.warn(f"{group}: stopped after {LOG_PAGES_PER_GROUP} pages of failure lines")


def _logged_reason(line: dict[str, Any], group: str, stamp: int) -> Reason:
    kind, error = line.get("error_type"), line.get("error", "")
    origin = f"log group {group}, {iso(stamp)}"
    if line.get("receive_count"):
        origin += f", receive {line['receive_count']}"
    return Reason(f"{kind}: {error}" if kind else error, origin)


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
    envelope = _json_object(body)
    if not envelope:
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


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
