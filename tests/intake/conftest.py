"""Intake test helpers: the example configuration, typed fakes, signed deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from intake.domain.auth import sign_standard_webhook
from intake.domain.intake import Delivery, IntakeService, SecretIds, Source
from intake.settings import IntakeSettings
from selfservice_contracts.events import AnyEvent
from selfservice_runtime.dedupe import InMemoryDeduplicator
from selfservice_runtime.publisher import InMemoryPublisher, PublishError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests/fixtures"
NOW = datetime(2026, 11, 20, 9, 15, 3, tzinfo=UTC)

SECRETS = {
    "sn-hmac": ["sn-current-secret"],
    "sn-basic": ["servicenow:basic-password"],
    "jira-webhook": ["jira-webhook-secret"],
    "jira-token": ["jira-automation-token"],
}
SECRET_IDS = SecretIds(
    servicenow_hmac="sn-hmac",
    servicenow_basic_auth="sn-basic",
    jira_webhook="jira-webhook",
    jira_automation_token="jira-token",
)
WEBHOOK_RESOURCES = {
    "EVENT_BUS_NAME": "selfservice-bus",
    "IDEMPOTENCY_TABLE_NAME": "intake-idempotency",
    "INTAKE_CONFIG_PARAMETER": "/selfservice/intake/config",
    "SERVICENOW_HMAC_SECRET_ID": SECRET_IDS.servicenow_hmac,
    "SERVICENOW_BASIC_AUTH_SECRET_ID": SECRET_IDS.servicenow_basic_auth,
    "JIRA_WEBHOOK_SECRET_ID": SECRET_IDS.jira_webhook,
    "JIRA_AUTOMATION_TOKEN_SECRET_ID": SECRET_IDS.jira_automation_token,
}
"""What the tests on moto call the resources the WebhookFunction's environment names."""


def fixture(name: str) -> dict[str, Any]:
    """A payload from tests/fixtures (copies of the vendor fixtures, plus variants)."""
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return document


def example_settings(**overrides: Any) -> IntakeSettings:
    """config/intake.example.json, optionally with top-level keys replaced."""
    document = json.loads((ROOT / "config/intake.example.json").read_text())
    document.update(overrides)
    return IntakeSettings.model_validate(document)


class DictSecrets:
    """SecretStore over a dict; counts reads."""

    def __init__(self, values: dict[str, list[str]]) -> None:
        self.values_by_id = values
        self.reads: list[str] = []

    def values(self, secret_id: str) -> list[str]:
        self.reads.append(secret_id)
        return self.values_by_id[secret_id]


class FailingPublisher:
    """A bus that refuses the first ``failures`` publish calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.events: list[AnyEvent] = []

    def publish(self, events: list[AnyEvent]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise PublishError([(e.id, "InternalException") for e in events])
        self.events.extend(events)


def make_service(
    settings: IntakeSettings | None = None,
    publisher: Any = None,
    deduplicator: InMemoryDeduplicator | None = None,
) -> tuple[IntakeService, InMemoryPublisher]:
    """An IntakeService with in-memory adapters (returns the publisher to inspect)."""
    bus = publisher or InMemoryPublisher()
    service = IntakeService(
        settings=settings or example_settings(),
        secrets=DictSecrets(SECRETS),
        secret_ids=SECRET_IDS,
        publisher=bus,
        deduplicator=deduplicator or InMemoryDeduplicator(),
    )
    return service, bus


def servicenow_delivery(
    body: Any,
    *,
    secret: str = "sn-current-secret",
    webhook_id: str = "msg_2kQm7dVxR4",
    at: datetime = NOW,
    extra_headers: dict[str, str] | None = None,
) -> Delivery:
    """A ServiceNow delivery signed the way the shipped business rule signs."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    timestamp = int(at.timestamp())
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard_webhook(secret, webhook_id, timestamp, raw),
        **(extra_headers or {}),
    }
    return Delivery("servicenow", headers, raw, at)


def jira_delivery(
    body: Any,
    *,
    secret: str = "jira-webhook-secret",
    identifier: str = "7d2c8a1e-1f4b-4e5a-9c3d-2b6e0f1a8c47",
    at: datetime = NOW,
) -> Delivery:
    """A Jira admin webhook delivery with X-Hub-Signature."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    headers = {
        "content-type": "application/json; charset=utf-8",
        "x-hub-signature": f"sha256={signature}",
        "x-atlassian-webhook-identifier": identifier,
    }
    return Delivery("jira", headers, raw, at)


def automation_delivery(
    body: Any, *, token: str = "jira-automation-token", at: datetime = NOW
) -> Delivery:
    """A Jira Automation web request with the token header."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json", "x-selfservice-token": token}
    return Delivery("jira", headers, raw, at)


def unsigned(source: Source, body: Any) -> Delivery:
    """A delivery with no credentials at all."""
    raw = json.dumps(body).encode()
    return Delivery(source, {"content-type": "application/json"}, raw, NOW)


@pytest.fixture
def settings() -> IntakeSettings:
    return example_settings()
