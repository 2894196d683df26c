"""Delivering queued events: the ordering rule, deferral, parking and counting, on fakes.

No queue, no ITSM: scripted writers, an in-memory queue and deduplicator. The same
behaviour on moto and the ITSM sandbox is in ``test_handler.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from notifier.domain.delivery import Deferred, Delivered, Parked, WriteBackDelivery
from notifier.domain.ordering import TicketOrdering
from notifier.domain.ports import Attempt, QueuedMessage, TicketUpdate
from notifier.domain.retry import RetryPolicy
from notifier.domain.write_back import PermanentWriteBackError, WriteBackService
from selfservice_contracts.events import WriteBackChannel
from selfservice_contracts.request import TicketSystem
from selfservice_runtime.dedupe import InMemoryDeduplicator
from selfservice_runtime.observability import Metric
from selfservice_runtime.publisher import InMemoryPublisher
from tests.notifier.test_write_back import sample

STARTED = sample("selfservice.provisioning.started.v1")  # RITM0010042
SUCCEEDED = sample("selfservice.provisioning.succeeded.v1")  # RITM0010042 again
APPROVAL = sample("selfservice.request.approval-required.v1")  # ITSM-42 (Jira)


# -- the rule alone ----------------------------------------------------------------------


def test_a_ticket_is_held_back_behind_its_first_failure_until_the_next_batch() -> None:
    ordering = TicketOrdering()
    assert ordering.held_back("RITM1") is None
    ordering.failed("RITM1", 30)
    ordering.failed("RITM1", 600)  # a later failure does not move the first one's wait
    assert ordering.held_back("RITM1") == 30
    assert ordering.held_back("ITSM-42") is None  # other tickets go on
    ordering.start_batch()
    assert ordering.held_back("RITM1") is None


# -- delivery on fakes -------------------------------------------------------------------


@dataclass
class Writer:
    """Answers each attempt with the next scripted status (then 200)."""

    statuses: list[int | None] = field(default_factory=list)
    channel: WriteBackChannel = WriteBackChannel.SERVICENOW_TABLE
    written: list[str] = field(default_factory=list)

    def attempt(self, update: TicketUpdate, *, check_existing: bool) -> Attempt:
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.written.append(update.event_type)
        return Attempt(status, {"Retry-After": "90"} if status == 429 else {})

    def refresh_credentials(self) -> None:
        return None


@dataclass
class Queue:
    visibility: list[tuple[str, float]] = field(default_factory=list)
    parked: list[tuple[str, str]] = field(default_factory=list)

    def come_back_after(self, message: QueuedMessage, wait_seconds: float) -> None:
        self.visibility.append((message.message_id, wait_seconds))

    def park(self, message: QueuedMessage, error: Exception) -> None:
        self.parked.append((message.message_id, type(error).__name__))


@dataclass
class Harness:
    servicenow: Writer = field(default_factory=Writer)
    jira: Writer = field(default_factory=lambda: Writer(channel=WriteBackChannel.JIRA_COMMENT))
    queue: Queue = field(default_factory=Queue)
    counted: list[Metric] = field(default_factory=list)

    def __post_init__(self) -> None:
        service = WriteBackService(
            {TicketSystem.SERVICENOW: self.servicenow, TicketSystem.JIRA: self.jira},
            InMemoryPublisher(),
            RetryPolicy(attempts=1, max_inline_wait_seconds=0),
            sleep=lambda seconds: None,
        )
        self.delivery = WriteBackDelivery(
            lambda: service, InMemoryDeduplicator(), self.queue, 8, self.counted.append
        )


def message(message_id: str, receives: int = 1) -> QueuedMessage:
    return QueuedMessage(
        message_id=message_id,
        body="{}",
        receipt_handle=f"receipt-{message_id}",
        queue_arn="arn:aws:sqs:us-east-1:123456789012:writeback.fifo",
        receive_count=receives,
    )


def test_a_tickets_later_update_waits_behind_its_failed_one_and_comes_back_with_it() -> None:
    h = Harness(servicenow=Writer([429]))
    h.delivery.start_batch()
    first = h.delivery.deliver(message("m1"), STARTED)
    later = h.delivery.deliver(message("m2"), SUCCEEDED)
    other = h.delivery.deliver(message("m3"), APPROVAL)
    assert isinstance(first, Deferred)
    assert not first.held_back
    assert isinstance(later, Deferred)
    assert later.held_back
    assert isinstance(other, Delivered)
    assert h.servicenow.written == []  # the later update was not attempted
    assert h.jira.written == [APPROVAL.type]
    assert h.queue.visibility == [("m1", 90), ("m2", 90)]  # back together, in order
    assert h.counted == [Metric.WRITE_BACKS_DEFERRED, Metric.WRITE_BACKS_SUCCEEDED]


def test_the_next_batch_writes_the_held_tickets_updates_again() -> None:
    h = Harness(servicenow=Writer([429]))
    h.delivery.start_batch()
    h.delivery.deliver(message("m1"), STARTED)
    h.delivery.start_batch()
    assert isinstance(h.delivery.deliver(message("m1", receives=2), STARTED), Delivered)
    assert isinstance(h.delivery.deliver(message("m2", receives=2), SUCCEEDED), Delivered)
    assert h.servicenow.written == [STARTED.type, SUCCEEDED.type]


def test_the_last_receives_failure_is_counted_failed_not_deferred() -> None:
    h = Harness(servicenow=Writer([503]))
    h.delivery.start_batch()
    outcome = h.delivery.deliver(message("m1", receives=8), STARTED)
    assert isinstance(outcome, Deferred)
    assert outcome.exhausted
    assert h.counted == [Metric.WRITE_BACKS_FAILED]


def test_a_refusal_is_parked_at_once_and_holds_nothing_back() -> None:
    h = Harness(servicenow=Writer([404]))
    h.delivery.start_batch()
    refused = h.delivery.deliver(message("m1"), STARTED)
    assert isinstance(refused, Parked)
    assert isinstance(refused.error, PermanentWriteBackError)
    assert h.queue.parked == [("m1", "PermanentWriteBackError")]
    assert isinstance(h.delivery.deliver(message("m2"), SUCCEEDED), Delivered)
    assert h.counted == [Metric.WRITE_BACKS_FAILED, Metric.WRITE_BACKS_SUCCEEDED]


def test_a_redelivered_event_is_written_and_counted_once() -> None:
    h = Harness()
    h.delivery.start_batch()
    h.delivery.deliver(message("m1"), STARTED)
    again = h.delivery.deliver(message("m1", receives=2), STARTED)
    assert again == Delivered({"outcome": "written"})
    assert h.servicenow.written == [STARTED.type]
    assert h.counted == [Metric.WRITE_BACKS_SUCCEEDED]


@pytest.mark.parametrize("error", [ValueError("not json")])
def test_an_unreadable_message_is_parked_and_counted(error: Exception) -> None:
    h = Harness()
    assert isinstance(h.delivery.park_unreadable(message("m1"), error), Parked)
    assert h.queue.parked == [("m1", "ValueError")]
    assert h.counted == [Metric.WRITE_BACKS_FAILED]
