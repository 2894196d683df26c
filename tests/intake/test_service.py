"""What every delivery goes through: size, media type, source, auth, exactly-once, bus."""

from __future__ import annotations

import json

import pytest

from intake.domain.errors import (
    AuthenticationError,
    BusUnavailableError,
    MalformedPayloadError,
    PayloadTooLargeError,
    SourceDisabledError,
    UnsupportedMediaTypeError,
)
from intake.domain.intake import Delivery
from selfservice_contracts.events import RequestReceived
from tests.intake.conftest import (
    NOW,
    FailingPublisher,
    example_settings,
    fixture,
    jira_delivery,
    make_service,
    servicenow_delivery,
    unsigned,
)

EC2 = "servicenow-ritm-ec2-inserted.json"


def test_oversized_bodies_are_413_before_anything_else() -> None:
    service, _bus = make_service(example_settings(max_body_bytes=1024))
    body = fixture(EC2)
    body["variables"]["justification"] = "x" * 2000
    with pytest.raises(PayloadTooLargeError):
        service.handle(servicenow_delivery(body))
    assert service.secrets.reads == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("content_type", ["", "text/plain", "application/x-www-form-urlencoded"])
def test_non_json_is_415(content_type: str) -> None:
    delivery = servicenow_delivery(fixture(EC2))
    headers = {**delivery.headers, "content-type": content_type}
    service, _ = make_service()
    with pytest.raises(UnsupportedMediaTypeError):
        service.handle(Delivery("servicenow", headers, delivery.body, NOW))


def test_an_unconfigured_source_is_404() -> None:
    service, _ = make_service(example_settings(jira=None))
    with pytest.raises(SourceDisabledError):
        service.handle(jira_delivery(fixture("jira-issue-created-webhook.json")))


@pytest.mark.parametrize("source", ["servicenow", "jira"])
def test_unsigned_deliveries_are_401_and_publish_nothing(source: str) -> None:
    service, bus = make_service()
    with pytest.raises(AuthenticationError):
        service.handle(unsigned(source, fixture(EC2)))  # type: ignore[arg-type]
    assert bus.events == []


def test_a_signature_with_a_wrong_secret_is_401() -> None:
    service, _ = make_service()
    with pytest.raises(AuthenticationError) as caught:
        service.handle(servicenow_delivery(fixture(EC2), secret="guess"))
    assert caught.value.reason == "bad_signature"


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"\xff\xfe", b'{"a": '])
def test_bodies_that_are_not_json_objects_are_400(raw: bytes) -> None:
    service, _ = make_service()
    with pytest.raises(MalformedPayloadError):
        service.handle(servicenow_delivery(raw))


def test_repeats_get_the_original_reply_and_publish_nothing() -> None:
    service, bus = make_service()
    body = fixture(EC2)
    first = service.handle(servicenow_delivery(body, webhook_id="msg_1"))
    body["event"] = "sc_req_item.updated"  # a rule firing on insert and update
    repeats = [
        service.handle(servicenow_delivery(body, webhook_id=f"msg_{n}")) for n in range(2, 6)
    ]
    assert len(bus.events) == 1
    assert all((r.status_code, r.body) == (first.status_code, first.body) for r in repeats)
    assert {r.outcome for r in repeats} == {"duplicate"}


def test_event_ids_are_deterministic_per_meaning() -> None:
    a, bus_a = make_service()
    b, bus_b = make_service()
    a.handle(servicenow_delivery(fixture(EC2)))
    b.handle(servicenow_delivery(fixture(EC2), webhook_id="another"))
    assert bus_a.events[0].id == bus_b.events[0].id


def test_a_bus_outage_is_503_and_the_retry_publishes_once() -> None:
    publisher = FailingPublisher(failures=2)
    service, _ = make_service(publisher=publisher)
    for _ in range(2):
        with pytest.raises(BusUnavailableError):
            service.handle(servicenow_delivery(fixture(EC2)))
    reply = service.handle(servicenow_delivery(fixture(EC2)))
    assert reply.status_code == 202
    (event,) = publisher.events
    assert isinstance(event.data, RequestReceived)
    again = service.handle(servicenow_delivery(fixture(EC2)))
    assert again.outcome == "duplicate"
    assert len(publisher.events) == 1


def test_the_rejection_body_lists_every_reason() -> None:
    body = fixture(EC2)
    body["variables"].update(desired_capacity="lots", environment="qa", aws_region="")
    service, _ = make_service()
    reply = service.handle(servicenow_delivery(body))
    assert reply.status_code == 400
    assert {r["field"] for r in reply.body["reasons"]} == {
        "desired_capacity",
        "environment",
        "region",
    }
    json.dumps(reply.body)  # serializable as the HTTP body
