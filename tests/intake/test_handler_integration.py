"""The real handler against moto: SSM config, Secrets Manager, DynamoDB dedupe, EventBridge.

Acceptance: twenty deliveries of one ticket, interleaved with other tickets, publish
exactly one event per ticket and action, observed on an SQS queue behind a rule.
"""

from __future__ import annotations

import base64
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from intake import runtime
from intake.domain.intake import Delivery
from intake.handlers import webhook
from selfservice_contracts.events import AnyEvent, TicketEventData
from selfservice_runtime import settings_document
from selfservice_runtime.observability import Metric
from selfservice_runtime.parsing import parse_sqs_body
from tests.aws import create_dedupe_table, drain, mocked_aws, observe_bus
from tests.environment import use_function_environment
from tests.intake.conftest import (
    ROOT,
    WEBHOOK_RESOURCES,
    fixture,
    jira_delivery,
    servicenow_delivery,
)
from tests.lambda_context import FakeContext, traced_invocation
from tests.telemetry import PutEventsSpy, Telemetry

BUS = "selfservice-bus"


@dataclass
class Stack:
    queue_url: str
    sqs: Any

    def published(self) -> list[AnyEvent]:
        return [parse_sqs_body(m["Body"]) for m in drain(self.queue_url, self.sqs)]


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with mocked_aws(monkeypatch):
        region = "us-east-1"
        sqs = boto3.client("sqs", region_name=region)
        queue_url = observe_bus(BUS, {"source": ["selfservice.intake"]})
        create_dedupe_table(boto3.client("dynamodb", region_name=region), "intake-idempotency")
        boto3.client("ssm", region_name=region).put_parameter(
            Name="/selfservice/intake/config",
            Type="String",
            Value=(ROOT / "config/intake.example.json").read_text(),
        )
        secrets = boto3.client("secretsmanager", region_name=region)
        for name, value in {
            "sn-hmac": {"current": "sn-current-secret"},
            "sn-basic": {"username": "servicenow", "password": "pw"},
            "jira-webhook": {"current": "jira-webhook-secret"},
            "jira-token": {"current": "jira-automation-token"},
        }.items():
            secrets.create_secret(Name=name, SecretString=json.dumps(value))
        use_function_environment(monkeypatch, "WebhookFunction", WEBHOOK_RESOURCES)
        _reset_caches()
        yield Stack(queue_url, sqs)
        _reset_caches()


def _reset_caches() -> None:
    webhook.config.cache_clear()
    runtime.adapters.cache_clear()
    settings_document.clear_cache()


def _invoke(delivery: Any, *, base64_body: bool = False) -> dict[str, Any]:
    event = json.loads((ROOT / "events/WebhookFunction.json").read_text())
    path = f"/webhooks/{delivery.source}"
    event.update(rawPath=path, routeKey=f"POST {path}", headers=dict(delivery.headers))
    event["requestContext"]["http"]["path"] = path
    if base64_body:
        event.update(body=base64.b64encode(delivery.body).decode(), isBase64Encoded=True)
    else:
        event.update(body=delivery.body.decode("utf-8"), isBase64Encoded=False)
    response: dict[str, Any] = webhook.lambda_handler(event, FakeContext())
    return response


def _now() -> datetime:
    return datetime.now(UTC)


def test_twenty_deliveries_per_ticket_interleaved_publish_one_event_each(stack: Stack) -> None:
    ec2 = fixture("servicenow-ritm-ec2-inserted.json")
    account = fixture("servicenow-ritm-account-inserted.json")
    jira = fixture("jira-issue-created-webhook.json")
    deliveries = []
    for n in range(20):
        for body in (ec2, account):
            variant = {**body, "event": "sc_req_item.inserted" if n % 2 else "sc_req_item.updated"}
            deliveries.append(servicenow_delivery(variant, webhook_id=f"msg_{n}", at=_now()))
        deliveries.append(jira_delivery(jira, identifier=f"jira-{n % 3}", at=_now()))
    random.Random(42).shuffle(deliveries)

    responses = [_invoke(delivery) for delivery in deliveries]

    assert {r["statusCode"] for r in responses} == {202}
    by_ticket: dict[str, set[str]] = {}
    for response in responses:
        body = json.loads(response["body"])
        by_ticket.setdefault(body["ticket"], set()).add(body["request_id"])
    assert {ticket: len(ids) for ticket, ids in by_ticket.items()} == {
        "servicenow:RITM0010042": 1,
        "servicenow:RITM0010077": 1,
        "jira:ITSM-42": 1,
    }
    published = stack.published()
    counts = Counter(
        (str(e.data.ticket), e.type) for e in published if isinstance(e.data, TicketEventData)
    )
    assert counts == {
        ("servicenow:RITM0010042", "selfservice.request.received.v1"): 1,
        ("servicenow:RITM0010077", "selfservice.request.received.v1"): 1,
        ("jira:ITSM-42", "selfservice.request.approval-required.v1"): 1,
    }


def test_an_unsigned_delivery_is_a_bare_401(stack: Stack) -> None:
    delivery = servicenow_delivery(fixture("servicenow-ritm-ec2-inserted.json"), at=_now())
    headers = {k: v for k, v in delivery.headers.items() if not k.startswith("webhook-")}
    response = _invoke(
        type(delivery)(delivery.source, headers, delivery.body, delivery.received_at)
    )
    assert response["statusCode"] == 401
    assert json.loads(response["body"]) == {"message": "unauthorized"}
    assert stack.published() == []


def test_a_base64_encoded_body_is_verified_on_its_bytes(stack: Stack) -> None:
    delivery = servicenow_delivery(fixture("servicenow-ritm-ec2-inserted.json"), at=_now())
    response = _invoke(delivery, base64_body=True)
    assert response["statusCode"] == 202
    assert len(stack.published()) == 1


def test_a_policy_rejection_is_422_and_tells_the_ticket(stack: Stack) -> None:
    body = fixture("servicenow-ritm-ec2-inserted.json")
    body["variables"]["instance_type"] = "m6i.32xlarge"
    response = _invoke(servicenow_delivery(body, at=_now()))
    assert response["statusCode"] == 422
    (event,) = stack.published()
    assert event.type == "selfservice.request.rejected.v1"


def test_a_missing_configuration_is_503_with_retry_after(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTAKE_CONFIG_PARAMETER", "/does/not/exist")
    _reset_caches()
    response = _invoke(servicenow_delivery(fixture("servicenow-ritm-ec2-inserted.json"), at=_now()))
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == "5"
    assert stack.published() == []


def test_a_bus_that_does_not_exist_is_503_and_nothing_is_remembered(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENT_BUS_NAME", "missing-bus")
    _reset_caches()
    delivery = servicenow_delivery(fixture("servicenow-ritm-ec2-inserted.json"), at=_now())
    assert _invoke(delivery)["statusCode"] == 503
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    _reset_caches()
    assert _invoke(delivery)["statusCode"] == 202  # the failed attempt left no dedupe record
    assert len(stack.published()) == 1


def test_an_unreachable_dedupe_table_is_503_and_the_retry_publishes_once(stack: Stack) -> None:
    """Found by the fault suite (embedded AWS stopped): this was a function error, a 500."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.delete_table(TableName="intake-idempotency")
    delivery = servicenow_delivery(fixture("servicenow-ritm-ec2-inserted.json"), at=_now())
    response = _invoke(delivery)
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == "5"
    assert stack.published() == []
    create_dedupe_table(dynamodb, "intake-idempotency")
    assert _invoke(delivery)["statusCode"] == 202
    assert len(stack.published()) == 1


# -- observability ---------------------------------------------------------------------


def test_every_outcome_is_counted_under_its_metric(stack: Stack, telemetry: Telemetry) -> None:
    ec2 = fixture("servicenow-ritm-ec2-inserted.json")
    too_big = {**ec2, "variables": {**ec2["variables"], "instance_type": "m6i.32xlarge"}}
    too_big["number"] = "RITM0010099"
    _invoke(servicenow_delivery(ec2, at=_now()))  # received
    _invoke(servicenow_delivery(ec2, webhook_id="msg_retry", at=_now()))  # an ITSM retry
    _invoke(servicenow_delivery(too_big, webhook_id="msg_big", at=_now()))  # policy
    _invoke(jira_delivery(fixture("jira-issue-created-webhook.json"), at=_now()))
    _invoke(jira_delivery(fixture("jira-issue-updated-approved.json"), identifier="j2", at=_now()))
    headers = {"content-type": "application/json"}
    _invoke(Delivery("servicenow", headers, json.dumps(ec2).encode(), _now()))  # unsigned
    assert telemetry.counts() == {
        Metric.REQUESTS_RECEIVED: 1,
        Metric.DELIVERIES_DUPLICATED: 1,
        Metric.REQUESTS_REJECTED: 1,
        Metric.REQUESTS_AWAITING_APPROVAL: 1,
        Metric.REQUESTS_APPROVED: 1,
        Metric.WEBHOOK_AUTH_FAILURES: 1,  # what the alarm watches: service only
    }
    # ... and by reason, for the operator looking for the cause.
    assert telemetry.by_reason() == {(Metric.WEBHOOK_AUTH_FAILURES, "missing_credentials"): 1}


def test_the_request_id_becomes_the_correlation_id_for_one_invocation_only(
    stack: Stack, telemetry: Telemetry
) -> None:
    accepted = _invoke(servicenow_delivery(fixture("servicenow-ritm-ec2-inserted.json"), at=_now()))
    request_id = json.loads(accepted["body"])["request_id"]
    (answered,) = telemetry.logs("delivery answered")
    assert answered["correlation_id"] == request_id
    assert answered["api_request_id"] == "Jx8kQhV2IAMEVxA="  # the access log's request id
    # The next invocation of the same execution environment starts clean: a refused
    # delivery is correlated by its own API request id, never the previous request's.
    unsigned_delivery = Delivery("jira", {"content-type": "application/json"}, b"{}", _now())
    _invoke(unsigned_delivery)
    (refused,) = telemetry.logs("webhook authentication failed")
    assert refused["correlation_id"] == "Jx8kQhV2IAMEVxA="
    assert "api_request_id" not in refused
    assert refused["reason"] == "missing_credentials"


def test_published_events_carry_the_invocations_trace_header(
    stack: Stack, put_events: PutEventsSpy, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = traced_invocation(monkeypatch)
    _invoke(servicenow_delivery(fixture("servicenow-ritm-ec2-inserted.json"), at=_now()))
    assert [entry.get("TraceHeader") for entry in put_events.entries] == [trace]
    assert len(stack.published()) == 1
