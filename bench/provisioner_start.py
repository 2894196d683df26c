"""Time from a request event arriving on the queue to StartBuild being called.

The real ``RequestConsumerFunction`` handler processes an SQS batch of one request
event per invocation: envelope and contract parsing, per-event deduplication, the
ledger decision and its writes, the tfvars document, and StartBuild. The clock stops
when StartBuild is called. AWS is replaced in-process by typed in-memory adapters
(ledger, slots, artifacts, bus, deduplicator), so the figure is the platform's own
overhead, without network latency.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

from bench.common import function_environment, median, percentile, stdout_silenced


def environment() -> dict[str, str]:
    """The handler's environment: the template's, AWS stubbed in memory."""
    return function_environment("RequestConsumerFunction")


@dataclass(frozen=True)
class StartFigures:
    """Milliseconds from handler entry to StartBuild."""

    count: int
    median_ms: float
    p95_ms: float


def measure(count: int = 2000, warmup: int = 100) -> StartFigures:
    """Deliver ``count`` distinct tickets' request events, one per invocation."""
    for name, value in environment().items():
        os.environ.setdefault(name, value)
    from provisioner.domain.ports import BuildRequest, StartedBuild
    from provisioner.handlers import request_consumer
    from provisioner.runtime import Runtime
    from provisioner.settings import PlanGuardrails
    from selfservice.local.lambda_events import eventbridge_delivery, sqs_event
    from selfservice_contracts.request import TicketRef, TicketSystem
    from selfservice_runtime.dedupe import InMemoryDeduplicator
    from tests.lambda_context import FakeContext as Context
    from tests.provisioner.fakes import received, request, world

    stamps: list[int] = []

    class StampingBuilds:
        def start(self, build: BuildRequest) -> StartedBuild:
            stamps.append(time.perf_counter_ns())
            return StartedBuild(f"p:{uuid.uuid4()}", None)

    class Deduplicator(InMemoryDeduplicator):
        def register_lambda_context(self, context: Any) -> None:
            return None

    fakes = world()
    fakes.service.builds = StampingBuilds()
    runtime = Runtime(fakes.service, Deduplicator(), PlanGuardrails)  # type: ignore[arg-type]
    request_consumer.runtime = lambda: runtime

    bodies = []
    for n in range(count + warmup):
        ticket = TicketRef(
            system=TicketSystem.JIRA,
            key=f"ITSM-{n + 1}",
            internal_id=str(n + 1),
            url=f"https://acme.atlassian.net/browse/ITSM-{n + 1}",
        )
        bodies.append(json.dumps(eventbridge_delivery(received(request(ticket=ticket), f"e-{n}"))))
    context = Context()
    timings = []
    with stdout_silenced():
        for n, body in enumerate(bodies):
            event = sqs_event([body])
            start = time.perf_counter_ns()
            response = request_consumer.lambda_handler(event, context)
            if response != {"batchItemFailures": []} or len(stamps) != n + 1:
                raise RuntimeError(f"delivery {n} did not start a build: {response}")
            if n >= warmup:
                timings.append((stamps[-1] - start) / 1e6)
    return StartFigures(count=count, median_ms=median(timings), p95_ms=percentile(timings, 0.95))
