"""Notifier figures: write-backs per second against a local ServiceNow, and own overhead.

- Throughput: the real ServiceNow writer (urllib3, basic auth, JSON) and write-back
  service write distinct events one after another to the ITSM sandbox on 127.0.0.1
  (a threaded ``http.server`` in the same process, so the figure is bounded by it).
- Overhead: the real ``WriteBackFunction`` handler (SQS batch of one, parsing, per-event
  deduplication, rendering, the ticket-updated event) with a writer that answers at
  once and in-memory adapters: what the notifier itself costs per event.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

from bench.common import function_environment, median, percentile, stdout_silenced


def environment() -> dict[str, str]:
    """The handler's environment: the template's, AWS stubbed in memory."""
    return function_environment(
        "WriteBackFunction",
        {"WRITE_BACK_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq.fifo"},
    )


@dataclass(frozen=True)
class NotifierFigures:
    """Throughput and per-event overhead."""

    writes: int
    writes_per_second: float
    overhead_events: int
    overhead_median_ms: float
    overhead_p95_ms: float


def _event(kind: str) -> Any:
    from bench.common import ROOT
    from selfservice_runtime.parsing import parse_eventbridge_event

    raw = (ROOT / "events/catalog" / f"selfservice.provisioning.{kind}.v1.json").read_text()
    return parse_eventbridge_event(raw)


def measure_throughput(writes: int = 500) -> float:
    """Sequential write-backs per second to the local ServiceNow."""
    from notifier.adapters.http import Transport
    from notifier.adapters.itsm import BasicCredentials, ServiceNowWriter
    from notifier.domain.write_back import WriteBackService
    from notifier.settings import ServiceNowWriteBack
    from selfservice.local.itsm_sandbox import ItsmSandbox
    from selfservice_contracts.request import TicketSystem
    from selfservice_runtime.publisher import InMemoryPublisher

    template = _event("started")
    with ItsmSandbox() as sandbox:
        writer = ServiceNowWriter(
            Transport(),
            ServiceNowWriteBack(),
            BasicCredentials(lambda force: "selfservice:sandbox-password"),
            sandbox.url,
        )
        service = WriteBackService({TicketSystem.SERVICENOW: writer}, InMemoryPublisher())
        events = [template.model_copy(update={"id": str(uuid.uuid4())}) for _ in range(writes)]
        start = time.perf_counter()
        for event in events:
            service.on_event(event, receive_count=1, max_receives=8)
        elapsed = time.perf_counter() - start
        if len(sandbox.state.journal) != writes:
            raise RuntimeError("not every write-back arrived")
    return writes / elapsed


def measure_overhead(count: int = 2000, warmup: int = 100) -> tuple[float, float]:
    """Median and p95 milliseconds the handler adds per event."""
    for name, value in environment().items():
        os.environ.setdefault(name, value)
    import json

    from notifier.domain.delivery import WriteBackDelivery
    from notifier.domain.ports import Attempt, TicketUpdate
    from notifier.domain.write_back import WriteBackService
    from notifier.handlers import write_back
    from notifier.runtime import Runtime
    from selfservice.local.lambda_events import eventbridge_delivery, sqs_event
    from selfservice_contracts.events import WriteBackChannel
    from selfservice_contracts.request import TicketSystem
    from selfservice_runtime.dedupe import InMemoryDeduplicator
    from selfservice_runtime.publisher import InMemoryPublisher
    from tests.lambda_context import FakeContext as Context

    class Instant:
        channel = WriteBackChannel.SERVICENOW_TABLE

        def attempt(self, update: TicketUpdate, *, check_existing: bool) -> Attempt:
            return Attempt(200, ticket_state="2")

        def refresh_credentials(self) -> None:
            return None

    class Deduplicator(InMemoryDeduplicator):
        def register_lambda_context(self, context: Any) -> None:
            return None

    service = WriteBackService({TicketSystem.SERVICENOW: Instant()}, InMemoryPublisher())
    deduplicator = Deduplicator()
    # Every write succeeds: the queue (visibility changes, the DLQ) is never called.
    queue: Any = None
    delivery = WriteBackDelivery(lambda: service, deduplicator, queue, 8, lambda metric: None)
    runtime = Runtime(delivery, deduplicator)
    write_back.runtime = lambda: runtime  # type: ignore[assignment]
    template = _event("started")
    bodies = []
    for _ in range(count + warmup):
        event = template.model_copy(update={"id": str(uuid.uuid4())})
        bodies.append(json.dumps(eventbridge_delivery(event)))
    timings = []
    context = Context()
    with stdout_silenced():
        for n, body in enumerate(bodies):
            event = sqs_event([body], queue="writeback.fifo")
            start = time.perf_counter_ns()
            response = write_back.lambda_handler(event, context)
            elapsed = time.perf_counter_ns() - start
            if response != {"batchItemFailures": []}:
                raise RuntimeError(f"event {n} was not written: {response}")
            if n >= warmup:
                timings.append(elapsed / 1e6)
    return median(timings), percentile(timings, 0.95)


def measure(writes: int = 500, events: int = 2000) -> NotifierFigures:
    """Both figures."""
    rate = measure_throughput(writes)
    overhead, p95 = measure_overhead(events)
    return NotifierFigures(writes, rate, events, overhead, p95)
