"""What the write-back domain needs from the outside world, as small interfaces.

The adapters (``notifier.adapters``) implement them on urllib3, SES and SQS; tests
implement them in memory. Nothing here imports boto3.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from notifier.domain.messages import Message, Table
from selfservice_contracts.events import WriteBackChannel
from selfservice_contracts.request import TicketRef

__all__ = [
    "Attempt",
    "Deduplicator",
    "QueuedMessage",
    "TicketUpdate",
    "TicketWriter",
    "WriteBackQueue",
]


@dataclass(frozen=True)
class TicketUpdate:
    """What to write on one ticket for one event."""

    ticket: TicketRef
    event_type: str
    message: Message
    marker: str

    @property
    def text(self) -> str:
        """The message with its marker line (how a retry recognises its own write)."""
        return self.text_with(Table.text_lines)

    def text_with(self, table: Callable[[Table], list[str]]) -> str:
        """:attr:`text` with each table drawn by ``table``."""
        return f"{self.message.render(table)}\n\n(selfservice event {self.marker})"


@dataclass(frozen=True)
class Attempt:
    """The outcome of one attempt: an HTTP status (None: no response) and its headers."""

    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    ticket_state: str | None = None


class TicketWriter(Protocol):
    """Writes to one ITSM."""

    channel: WriteBackChannel

    def attempt(self, update: TicketUpdate, *, check_existing: bool) -> Attempt:
        """One try at writing the whole update (skipping parts already written)."""
        ...

    def refresh_credentials(self) -> None:
        """Drop cached credentials; the next attempt reads or requests fresh ones."""
        ...


@dataclass(frozen=True)
class QueuedMessage:
    """One message of the write-back queue, as the domain needs it."""

    message_id: str
    body: str
    receipt_handle: str
    queue_arn: str
    receive_count: int = 1
    attributes: Mapping[str, Any] = field(default_factory=dict)
    """Its own message attributes, in SendMessage's shape (a redrive restores them)."""


class WriteBackQueue(Protocol):
    """The queue the write-backs arrive on, and its dead-letter queue."""

    def come_back_after(self, message: QueuedMessage, wait_seconds: float) -> None:
        """Make ``message`` visible again after ``wait_seconds``."""
        ...

    def park(self, message: QueuedMessage, error: Exception) -> None:
        """Send ``message`` to the DLQ now, with why (its deletion is the caller's)."""
        ...


class Deduplicator(Protocol):
    """Runs an action once per key; a repeat gets the first run's result."""

    def once(self, key: str, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``action()``'s result, run at most once for ``key``."""
        ...
