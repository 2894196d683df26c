"""Writing one lifecycle event back to its ticket: exactly once, retried, never lost.

The writer for the ticket's system makes one attempt at a time; :func:`decide` says
whether to stop, refresh credentials, or wait and try again. Short waits are slept
here; a long one (a ``Retry-After`` of minutes) or running out of attempts hands the
retry to the queue (:class:`RetryLaterError` with the wait), whose redrive policy parks
the message in the DLQ after its last receive — when a write-back-failed event is
published. A permanent refusal (404, 400…) publishes it at once.

Exactly once: every write carries a marker naming the event (``source#id``); before a
retried write, the writer looks for the marker on the ticket and skips what is there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from notifier.domain.messages import render
from notifier.domain.ports import Attempt, TicketUpdate, TicketWriter
from notifier.domain.retry import UNAVAILABLE, RetryPolicy, decide
from selfservice_contracts.envelope import build_event
from selfservice_contracts.events import (
    AnyEvent,
    EventRef,
    TicketEventData,
    TicketUpdated,
    WriteBackChannel,
    WriteBackFailed,
)
from selfservice_contracts.request import TicketSystem
from selfservice_runtime.publisher import EventPublisher

__all__ = ["PermanentWriteBackError", "RetryLaterError", "WriteBackService"]


class RetryLaterError(RuntimeError):
    """Not written yet; the queue should redeliver after ``wait_seconds``."""

    def __init__(self, wait_seconds: float, reason: str) -> None:
        super().__init__(f"retry in {wait_seconds:.0f}s: {reason}")
        self.wait_seconds = wait_seconds


class PermanentWriteBackError(RuntimeError):
    """The ITSM refused in a way no retry can fix; the message goes to the DLQ."""


@dataclass
class WriteBackService:
    """Renders, writes with retries, and reports the outcome as an event."""

    writers: dict[TicketSystem, TicketWriter]
    publisher: EventPublisher
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep

    def on_event(self, event: AnyEvent, *, receive_count: int, max_receives: int) -> str:
        """Write ``event`` back; returns the outcome or raises for the queue to retry."""
        message = render(event)
        data = event.data
        if message is None or not isinstance(data, TicketEventData):
            return "skipped"
        update = TicketUpdate(data.ticket, event.type, message, f"{event.source}#{event.id}")
        writer = self.writers[data.ticket.system]
        reference = EventRef(id=event.id, source=event.source, type=event.type)
        refreshed = False
        last: Attempt = Attempt(None)
        for attempt in range(1, self.policy.attempts + 1):
            last = writer.attempt(update, check_existing=attempt > 1 or receive_count > 1)
            decision = decide(
                last.status, last.headers, attempt=attempt, refreshed=refreshed, policy=self.policy
            )
            if decision.kind == "done":
                self._publish_updated(data, writer.channel, reference, last.ticket_state)
                return "written"
            if decision.kind == "refresh":
                writer.refresh_credentials()
                refreshed = True
                continue
            if decision.kind == "permanent":
                self._publish_failed(
                    data, writer.channel, reference, receive_count, last, decision.reason
                )
                raise PermanentWriteBackError(f"{update.ticket}: {decision.reason}")
            if (
                decision.wait_seconds > self.policy.max_inline_wait_seconds
                or attempt == self.policy.attempts
            ):
                if receive_count >= max_receives:
                    self._publish_failed(
                        data, writer.channel, reference, receive_count, last, decision.reason
                    )
                wait = decision.wait_seconds
                if (
                    wait <= self.policy.max_inline_wait_seconds
                    and receive_count < max_receives
                    and (last.status is None or last.status in UNAVAILABLE)
                ):
                    # The ITSM is unavailable and named no long wait: back off across
                    # receives, or a long outage runs through them all in a minute. Not
                    # on the last receive: the DLQ takes it next, and while it waited the
                    # queue's one FIFO group would wait with it.
                    wait = max(wait, self.policy.queue_wait(receive_count))
                raise RetryLaterError(wait, decision.reason)
            self.sleep(decision.wait_seconds)
        raise RetryLaterError(0, f"HTTP {last.status}")  # pragma: no cover - loop always returns

    def _publish_updated(
        self,
        data: TicketEventData,
        channel: WriteBackChannel,
        reference: EventRef,
        state: str | None,
    ) -> None:
        updated = TicketUpdated(
            request_id=data.request_id,
            ticket=data.ticket,
            channel=channel,
            in_reply_to=reference,
            ticket_state=state,
        )
        self.publisher.publish([build_event(updated, event_id=f"updated-{reference.id}")])

    def _publish_failed(  # noqa: PLR0917 - the facts of one failure report
        self,
        data: TicketEventData,
        channel: WriteBackChannel,
        reference: EventRef,
        receive_count: int,
        last: Attempt,
        reason: str,
    ) -> None:
        failed = WriteBackFailed(
            request_id=data.request_id,
            ticket=data.ticket,
            channel=channel,
            in_reply_to=reference,
            attempts=receive_count * self.policy.attempts,
            status_code=last.status,
            error=f"{reason}; the message is parked in the DLQ until it is redriven",
        )
        self.publisher.publish([build_event(failed, event_id=f"failed-{reference.id}")])
