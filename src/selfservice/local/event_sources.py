"""What invokes a function besides HTTP: SQS pollers and ``rate(...)`` schedules.

A poller honours batch size, the batching window, partial batch failures and the
queue's redrive; a schedule invokes its function with what EventBridge Scheduler or a
scheduled rule would send.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from selfservice.local.functions import FunctionWorker, Invocable, InvocationError
from selfservice.local.lambda_events import scheduled_event, scheduler_input, sqs_event

__all__ = ["ScheduledRunner", "SqsPoller", "schedule_interval"]


@dataclass
class SqsPoller:
    """Lambda's SQS event source: batches, partial failures, deletes what succeeded."""

    sqs: Any
    queue_url: str
    queue_name: str
    worker: FunctionWorker
    batch_size: int = 10
    batching_window_seconds: float = 0.0
    """``MaximumBatchingWindowInSeconds``: how long to gather a batch once one arrived."""
    stop_event: threading.Event = field(default_factory=threading.Event)
    invocations: int = 0
    last_problem: str | None = None
    """The last error polling met (e.g. AccessDenied on ``sqs:ReceiveMessage``)."""

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(count, 10),
            WaitTimeSeconds=wait,
            AttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        return messages

    def poll_once(self) -> int:
        """Receive one batch and hand it to the function; returns the batch size."""
        messages = self._receive(self.batch_size, 1)
        if not messages:
            return 0
        # Like Lambda: with a batching window, keep gathering until the batch is full
        # or the window (counted from the first message) closes.
        closes = time.monotonic() + self.batching_window_seconds
        while len(messages) < self.batch_size and (left := closes - time.monotonic()) > 0:
            wait = 1 if left >= 1 else 0
            more = self._receive(self.batch_size - len(messages), wait)
            if not more and not wait:
                time.sleep(min(left, 0.05))
            messages += more
        event = sqs_event(
            [m["Body"] for m in messages],
            queue=self.queue_name,
            receive_count=max(
                int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")) for m in messages
            ),
            message_ids=[m["MessageId"] for m in messages],
            receipt_handles=[m["ReceiptHandle"] for m in messages],
        )
        self.invocations += 1
        try:
            response = self.worker.invoke(event) or {}
        except InvocationError:
            return len(messages)  # nothing is deleted: the whole batch comes back
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(messages)

    def run(self) -> None:
        """Poll until stopped.

        A failed receive (the execution role may not read the queue: Lambda reports
        ``PROBLEM: ... permission`` on the mapping) is written to the function's log
        once per kind of error, and polling goes on, as Lambda's does.
        """
        reported: set[str] = set()
        while not self.stop_event.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 - a poller outlives one bad batch, like Lambda's
                problem = f"{type(exc).__name__}: {exc}"
                if problem not in reported:
                    reported.add(problem)
                    self.last_problem = problem
                    self.worker.note(f"event source mapping for {self.queue_name}: {problem}")
                time.sleep(0.5)


_RATE = re.compile(r"^rate\((\d+) (minutes?|hours?|days?)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_interval(expression: str) -> float | None:
    """Seconds between runs of a ``rate(...)`` expression; None for ``cron``/``at``."""
    match = _RATE.match(expression.strip())
    if not match:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


@dataclass
class ScheduledRunner:
    """A schedule (SAM ``ScheduleV2`` or ``Schedule``): the function invoked at its rate.

    Like Lambda's asynchronous invocation by a schedule, a failed run is counted and
    left behind; the next run comes at the next tick. The first run is one interval
    after the start, as a new schedule's is.
    """

    worker: Invocable
    interval_seconds: float
    kind: str = "ScheduleV2"
    input: str | None = None
    name: str = "schedule"
    stop_event: threading.Event = field(default_factory=threading.Event)
    invocations: int = 0
    last_problem: str | None = None
    """The last error polling met (e.g. AccessDenied on ``sqs:ReceiveMessage``)."""
    failures: int = 0

    def event(self, at: datetime) -> Any:
        """What the schedule sends at ``at``."""
        arn = f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{self.name}"
        if self.kind == "ScheduleV2":
            return scheduler_input(self.input, at=at, schedule_arn=arn)
        if self.input:
            return json.loads(self.input)
        return scheduled_event(
            at=at, rule_arn=f"arn:aws:events:us-east-1:123456789012:rule/{self.name}"
        )

    def tick(self) -> Any:
        """One run now; the function's result, or None if it failed."""
        self.invocations += 1
        try:
            return self.worker.invoke(self.event(datetime.now(UTC)))
        except InvocationError:
            self.failures += 1
            return None

    def run(self) -> None:
        """Run every interval until stopped."""
        while not self.stop_event.wait(self.interval_seconds):
            self.tick()
