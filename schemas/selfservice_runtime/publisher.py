"""Publishing events: one small interface, the EventBridge adapter, and a typed fake.

``PutEvents`` takes at most 10 entries and fails per entry, not per call: an HTTP 200
can still mean some events were dropped. The adapter sends in chunks, retries only the
failed entries, and raises :class:`PublishError` if any remain, so the caller (an SQS
batch item, an HTTP request) fails visibly and is retried instead of losing an event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from selfservice_contracts.envelope import to_eventbridge_entry
from selfservice_contracts.events import AnyEvent
from selfservice_runtime.observability import lambda_trace_header

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

__all__ = ["EventBridgePublisher", "EventPublisher", "InMemoryPublisher", "PublishError"]

PUT_EVENTS_MAX_ENTRIES = 10


class PublishError(RuntimeError):
    """Some events could not be published after retries; ``failed`` lists their ids."""

    def __init__(self, failed: Sequence[tuple[str, str]]) -> None:
        self.failed = list(failed)
        details = ", ".join(f"{event_id} ({code})" for event_id, code in self.failed)
        super().__init__(f"{len(self.failed)} event(s) not published: {details}")


class EventPublisher(Protocol):
    """Where domain code sends its events."""

    def publish(self, events: Sequence[AnyEvent]) -> None:
        """Publish all events or raise :class:`PublishError`."""
        ...


class EventBridgePublisher:
    """Publishes to one event bus with PutEvents, retrying failed entries.

    Every entry carries the invocation's X-Ray trace header (``trace_header``, by default
    Lambda's ``_X_AMZN_TRACE_ID``), so consumers' traces continue the producer's.
    """

    def __init__(
        self,
        client: EventBridgeClient,
        event_bus_name: str,
        *,
        attempts: int = 3,
        backoff_seconds: float = 0.2,
        trace_header: Callable[[], str | None] = lambda_trace_header,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._bus = event_bus_name
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._trace_header = trace_header
        self._sleep = sleep

    def publish(self, events: Sequence[AnyEvent]) -> None:
        """Send ``events`` in chunks of 10; raise if any entry still fails at the end."""
        header = self._trace_header()
        pending = [
            (event.id, to_eventbridge_entry(event, event_bus_name=self._bus, trace_header=header))
            for event in events
        ]
        failed: list[tuple[str, str]] = []
        for start in range(0, len(pending), PUT_EVENTS_MAX_ENTRIES):
            failed.extend(self._put_chunk(pending[start : start + PUT_EVENTS_MAX_ENTRIES]))
        if failed:
            raise PublishError(failed)

    def _put_chunk(
        self, chunk: list[tuple[str, PutEventsRequestEntryTypeDef]]
    ) -> list[tuple[str, str]]:
        failed: list[tuple[str, str]] = []
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(self._backoff * 2 ** (attempt - 1))
            try:
                response = self._client.put_events(Entries=[entry for _, entry in chunk])
            except (BotoCoreError, ClientError) as exc:
                # The whole call failed (throttled, endpoint down): every entry is retried.
                failed = [(event_id, type(exc).__name__) for event_id, _ in chunk]
                continue
            if not response.get("FailedEntryCount"):
                return []
            # Results are positional: entry i of the response answers entry i of the request.
            retry = []
            failed = []
            for item, result in zip(chunk, response["Entries"], strict=True):
                if "ErrorCode" in result:
                    retry.append(item)
                    failed.append((item[0], result["ErrorCode"]))
            chunk = retry
        return failed


class InMemoryPublisher:
    """Test double with the same interface; keeps what was published, in order."""

    def __init__(self) -> None:
        self.events: list[AnyEvent] = []

    def publish(self, events: Sequence[AnyEvent]) -> None:
        """Record the events (after the same size/shape checks as the real adapter)."""
        for event in events:
            to_eventbridge_entry(event, event_bus_name="in-memory")
        self.events.extend(events)
