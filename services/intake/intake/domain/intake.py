"""Intake: one authenticated delivery in, at most one request event out.

The flow, for every delivery, one module per step:

1. :mod:`~intake.domain.delivery` — size (413) and media type (415) before anything is
   parsed; the source must be configured (404) and the delivery authenticated (401);
   the body is normalized through the configuration (400 when no ticket is known);
2. :mod:`~intake.domain.decision` — the product's variables are coerced and validated
   (400), then checked against the policy (422) — a refused request still publishes
   ``request.rejected`` so the ticket is told why; the approval gate decides between
   ``received``, ``approval-required`` and ``approved``;
3. :mod:`~intake.domain.publication` — the event is published exactly once per meaning
   (ticket, instance, product, action, outcome): a repeat gets the original reply and
   publishes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from intake.domain.decision import Outcome, Reply, decide
from intake.domain.delivery import Delivery, SecretIds, Source, read_delivery
from intake.domain.ports import Deduplicator, EventPublisher, SecretStore
from intake.domain.publication import publish_once
from intake.domain.submission import Ignored
from intake.settings import IntakeSettings

__all__ = [
    "Deduplicator",
    "Delivery",
    "IntakeService",
    "Outcome",
    "Reply",
    "SecretIds",
    "SecretStore",
    "Source",
]


@dataclass
class IntakeService:
    """Everything intake decides, with its adapters passed in."""

    settings: IntakeSettings
    secrets: SecretStore
    secret_ids: SecretIds
    publisher: EventPublisher
    deduplicator: Deduplicator

    def handle(self, delivery: Delivery) -> Reply:
        """Answer one delivery; raises :class:`IntakeError` when no ticket can be told."""
        submission = read_delivery(delivery, self.settings, self.secrets, self.secret_ids)
        if isinstance(submission, Ignored):
            return Reply(200, {"status": "ignored", "reason": submission.reason}, "ignored")
        decision = decide(submission, delivery.received_at, self.settings)
        return publish_once(decision, self.publisher, self.deduplicator)
