"""Warm intake handler time per webhook, AWS calls stubbed.

The real ``lambda_handler`` runs — Powertools logger, tracer (disabled: no daemon),
metrics flush, routing, authentication, normalization, validation, policy, event
construction — with in-memory adapters in place of SSM, Secrets Manager, DynamoDB and
EventBridge. Every delivery is a distinct, correctly signed ticket, so each one takes
the full accept-and-publish path (no dedupe replays). Log and metric lines are written
to /dev/null, as formatting them is part of the cost.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.common import ROOT, function_environment, median, percentile, stdout_silenced
from tests.lambda_context import FakeContext as Context

SECRET = "bench-hmac-secret"


def environment() -> dict[str, str]:
    """The handler's configuration for the in-process warm run (AWS itself is stubbed)."""
    return function_environment("WebhookFunction")


def stub_handler() -> None:
    """Replace the handler's AWS adapters with in-memory ones (same interfaces)."""
    from intake import runtime
    from intake.domain.intake import IntakeService, SecretIds
    from intake.settings import IntakeSettings
    from selfservice_runtime.dedupe import InMemoryDeduplicator
    from selfservice_runtime.publisher import InMemoryPublisher

    class Secrets:
        def values(self, secret_id: str) -> list[str]:
            return [SECRET]

    class Deduplicator(InMemoryDeduplicator):
        def register_lambda_context(self, context: Any) -> None:
            return None

    settings = IntakeSettings.model_validate_json((ROOT / "config/intake.example.json").read_text())
    publisher = InMemoryPublisher()
    deduplicator = Deduplicator()
    ids = SecretIds("a", "b", "c", "d")
    runtime.adapters = lambda: runtime.Adapters(  # type: ignore[assignment]
        publisher=publisher,  # type: ignore[arg-type]
        deduplicator=deduplicator,  # type: ignore[arg-type]
        secrets=Secrets(),  # type: ignore[arg-type]
        ssm=None,  # type: ignore[arg-type]
    )
    runtime.service = lambda: IntakeService(
        settings=settings,
        secrets=Secrets(),
        secret_ids=ids,
        publisher=publisher,
        deduplicator=deduplicator,
    )


def signed_events(count: int) -> list[dict[str, Any]]:
    """``count`` API Gateway events, each a distinct ServiceNow ticket, signed now."""
    from intake.domain.auth import sign_standard_webhook

    template = json.loads((ROOT / "tests/fixtures/servicenow-ritm-ec2-inserted.json").read_text())
    sample = json.loads((ROOT / "events/WebhookFunction.json").read_text())
    timestamp = int(datetime.now(UTC).timestamp())
    events = []
    for n in range(count):
        body = {**template, "number": f"RITM{2_000_000 + n:07d}", "sys_id": f"{n:032x}"}
        raw = json.dumps(body).encode()
        webhook_id = f"msg_{n}"
        headers = {
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_standard_webhook(SECRET, webhook_id, timestamp, raw),
        }
        events.append(
            {**sample, "headers": headers, "body": raw.decode(), "isBase64Encoded": False}
        )
    return events


@dataclass(frozen=True)
class WarmFigures:
    """Per-webhook handler time in milliseconds."""

    count: int
    median_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def per_core_per_second(self) -> float:
        """Deliveries one core handles per second at the median."""
        return 1000 / self.median_ms


def measure(count: int = 3000, warmup: int = 200) -> WarmFigures:
    """Time ``count`` deliveries after ``warmup`` untimed ones."""
    for name, value in environment().items():
        os.environ.setdefault(name, value)
    from intake.handlers import webhook

    stub_handler()
    events = signed_events(count + warmup)
    context = Context()
    timings = []
    with stdout_silenced():
        for n, event in enumerate(events):
            start = time.perf_counter_ns()
            response = webhook.lambda_handler(event, context)
            elapsed = time.perf_counter_ns() - start
            if response["statusCode"] != 202:
                raise RuntimeError(f"unexpected reply {response}")
            if n >= warmup:
                timings.append(elapsed / 1e6)
    return WarmFigures(
        count=count,
        median_ms=median(timings),
        p95_ms=percentile(timings, 0.95),
        p99_ms=percentile(timings, 0.99),
    )
