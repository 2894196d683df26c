"""The platform's DLQs through one set of boto3 clients: every job of ``selfservice dlq``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from selfservice.operator.dlq.backlog import HELD_MINUTES, SourceBacklog, backlogs
from selfservice.operator.dlq.discovery import discover, select
from selfservice.operator.dlq.peek import peek
from selfservice.operator.dlq.queues import DEFAULT_PREFIX, DeadLetterQueue
from selfservice.operator.dlq.reasons import FailureLog, ParkedMessage, Reason
from selfservice.operator.dlq.redrive import RedriveResult, redrive

__all__ = ["DeadLetters"]


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
        self.failures = FailureLog(logs, prefix=prefix, warn=warn)

    def discover(self) -> list[DeadLetterQueue]:
        """Every DLQ of the stack: redrive targets of its queues and EventBridge target DLQs."""
        return discover(self.sqs, self.events, prefix=self.prefix, warn=self.warn)

    def select(self, dlqs: Sequence[DeadLetterQueue], wanted: str) -> DeadLetterQueue:
        """The DLQ named by its name, URL or a unique part of its name (case-insensitive)."""
        return select(dlqs, wanted)

    def peek(self, dlq: DeadLetterQueue, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` messages, left in the queue and visible again on return."""
        return peek(self.sqs, dlq, limit, warn=self.warn)

    def explain(
        self,
        dlq: DeadLetterQueue,
        messages: Sequence[dict[str, Any]],
        log_groups: Sequence[str] | None = None,
    ) -> list[ParkedMessage]:
        """Each message with its event and why it is here (from the logs if not its attributes)."""
        return self.failures.explain(dlq, messages, log_groups)

    def log_groups(self) -> list[str]:
        """The stack's log groups: every group whose name contains the prefix."""
        return self.failures.log_groups()

    def failure_lines(
        self, groups: Iterable[str], message_ids: set[str], *, start_ms: int
    ) -> dict[str, Reason]:
        """The latest failed-record log line of each message id, as its reason."""
        return self.failures.failure_lines(groups, message_ids, start_ms=start_ms)

    def backlogs(
        self,
        dlq: DeadLetterQueue,
        log_groups: Sequence[str] | None = None,
        *,
        held_minutes: float = HELD_MINUTES,
        now_ms: int | None = None,
    ) -> list[SourceBacklog]:
        """Each of the DLQ's source queues that holds messages, and what holds them up."""
        return backlogs(
            self.sqs,
            self.cloudwatch,
            self.failures,
            dlq,
            log_groups,
            held_minutes=held_minutes,
            now_ms=now_ms,
        )

    def redrive(
        self,
        dlq: DeadLetterQueue,
        *,
        limit: int | None = None,
        dry_run: bool = False,
        progress: Callable[[str], None] = lambda _: None,
    ) -> RedriveResult:
        """Move up to ``limit`` messages back to their source queue, losing none."""
        return redrive(
            self.sqs, dlq, limit=limit, dry_run=dry_run, progress=progress, warn=self.warn
        )
