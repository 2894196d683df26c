"""Source queues held up: messages waiting behind one their consumer keeps failing.

A DLQ can be empty while its source queue is stuck: a message retried for an hour holds
a FIFO queue's group — every later message — all that time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from selfservice.operator.dlq.queues import DeadLetterQueue, QueueInfo, iso
from selfservice.operator.dlq.reasons import FailureLog, Reason

__all__ = ["HELD_MINUTES", "SourceBacklog", "backlogs"]

HELD_MINUTES = 15
"""A source queue whose oldest message (or whose consumer's current failure) is this old is held."""
FAILURE_LOOKBACK_MS = 24 * 3600 * 1000
"""How far back a source queue's failure lines are searched."""
FAILURE_CURRENT_MS = 45 * 60 * 1000
"""A failure line this recent is a failure still going on: longer than the longest wait
between two receives (the notifier's ``queue_cap_seconds``, 30 minutes)."""


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


def backlogs(
    sqs: Any,
    cloudwatch: Any,
    failures: FailureLog,
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
        current = QueueInfo.read(sqs, source.url)
        if current.visible + current.in_flight == 0:
            continue
        if groups is None:
            groups = failures.log_groups()
        age = _oldest_age(cloudwatch, current, now, failures.warn)
        failing = failures.current_failure(current, groups, now - FAILURE_LOOKBACK_MS)
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
                failing_since=iso(failing[1]) if failing else None,
                last_failure=failing[2] if failing else None,
                held=held,
            )
        )
    return found


def _oldest_age(
    cloudwatch: Any, queue: QueueInfo, now_ms: int, warn: Callable[[str], None]
) -> int | None:
    if cloudwatch is None:
        return None
    try:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": queue.name}],
            StartTime=datetime.fromtimestamp(now_ms / 1000 - 600, UTC),
            EndTime=datetime.fromtimestamp(now_ms / 1000 + 60, UTC),  # the current minute too
            Period=60,
            Statistics=["Maximum"],
        ).get("Datapoints", [])
    except (ClientError, BotoCoreError) as exc:
        warn(f"cannot read {queue.name}'s age of oldest message ({exc})")
        return None
    if not points:
        return None
    latest = max(points, key=lambda p: p["Timestamp"])
    return int(latest["Maximum"])
