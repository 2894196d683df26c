"""One queued lifecycle event, delivered to its ticket: written, deferred or parked.

Within a batch, once a ticket's record fails, the later records of that ticket fail
too (unattempted) and are retried behind it (:class:`TicketOrdering`). A wait longer
than the function should sleep becomes the message's visibility timeout — always set
explicitly: until it is visible again, an in-flight message of the queue's one FIFO
group holds back every later message of the group. A permanent refusal parks the
message in the DLQ at once, with the error; so does a message that is not a lifecycle
event (retried, it would fail every receive and hold the one group eight times over).

Each outcome is counted here, once (a redelivery replays the stored result, uncounted);
the handler logs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from notifier.domain.ordering import TicketOrdering
from notifier.domain.ports import Deduplicator, QueuedMessage, WriteBackQueue
from notifier.domain.write_back import PermanentWriteBackError, RetryLaterError, WriteBackService
from selfservice_contracts.events import AnyEvent, TicketEventData
from selfservice_runtime.observability import Metric

__all__ = ["Deferred", "Delivered", "Outcome", "Parked", "WriteBackDelivery"]


@dataclass(frozen=True)
class Delivered:
    """Written (or skipped: nothing to write); ``result`` is the stored outcome."""

    result: dict[str, Any]


@dataclass(frozen=True)
class Deferred:
    """Not written yet; the message comes back after ``error.wait_seconds``."""

    error: RetryLaterError
    receives: int
    exhausted: bool
    """The queue's last receive: the DLQ takes it next (write-back failed was published)."""
    held_back: bool = False
    """Not attempted: an earlier update of its ticket in this batch failed."""


@dataclass(frozen=True)
class Parked:
    """Refused for good, or unreadable: in the DLQ now, with why."""

    error: Exception


Outcome = Delivered | Deferred | Parked


@dataclass
class WriteBackDelivery:
    """Delivers each record of a batch, in order, exactly once per event."""

    services: Callable[[], WriteBackService]
    """The service for the current settings document."""
    deduplicator: Deduplicator
    queue: WriteBackQueue
    max_receives: int
    """The queue's maxReceiveCount: the receive on which a failure is declared final."""
    count: Callable[[Metric], None]
    ordering: TicketOrdering = field(default_factory=TicketOrdering)

    def start_batch(self) -> None:
        """A new batch: no ticket is held back."""
        self.ordering.start_batch()

    def park_unreadable(self, message: QueuedMessage, error: Exception) -> Parked:
        """Unreadable now means unreadable on every receive: no retry can help."""
        self.queue.park(message, error)
        self.count(Metric.WRITE_BACKS_FAILED)
        return Parked(error)

    def deliver(self, message: QueuedMessage, event: AnyEvent) -> Outcome:
        """Write ``event`` back once; the outcome says what became of ``message``."""
        ticket = str(event.data.ticket) if isinstance(event.data, TicketEventData) else ""
        receives = message.receive_count
        waiting = self.ordering.held_back(ticket)
        if waiting is not None:
            # Back with the update it waits behind: left to the queue's visibility timeout
            # (12 minutes), it would hold the whole FIFO group — every ticket — that long.
            self.queue.come_back_after(message, waiting)
            error = RetryLaterError(
                waiting, f"an earlier update of {ticket} in this batch is not written yet"
            )
            return Deferred(error, receives, exhausted=False, held_back=True)
        service = self.services()

        def write() -> dict[str, Any]:
            outcome = service.on_event(
                event, receive_count=receives, max_receives=self.max_receives
            )
            if outcome == "written":  # counted here, once: a redelivery replays the result
                self.count(Metric.WRITE_BACKS_SUCCEEDED)
            return {"outcome": outcome}

        try:
            stored = self.deduplicator.once(f"{event.source}#{event.id}", write)
        except RetryLaterError as exc:
            self.ordering.failed(ticket, exc.wait_seconds)
            self.queue.come_back_after(message, exc.wait_seconds)
            # The last receive's failure was reported (write-back failed); the DLQ takes it next.
            exhausted = receives >= self.max_receives
            self.count(Metric.WRITE_BACKS_FAILED if exhausted else Metric.WRITE_BACKS_DEFERRED)
            return Deferred(exc, receives, exhausted)
        except PermanentWriteBackError as exc:
            self.queue.park(message, exc)
            self.count(Metric.WRITE_BACKS_FAILED)
            return Parked(exc)
        return Delivered(stored)
