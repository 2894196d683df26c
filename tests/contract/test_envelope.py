"""Envelope helpers: typed data → CloudEvent → EventBridge entry → typed event again."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from selfservice_contracts.envelope import (
    ContractError,
    build_event,
    to_cloudevent,
    to_eventbridge_entry,
)
from selfservice_contracts.events import (
    EVENT_CATALOG,
    ProvisioningStarted,
    ProvisioningStartedEvent,
    RejectionReason,
    RequestRejected,
)
from selfservice_contracts.request import Action, TicketRef, TicketSystem, derive_request_id
from selfservice_runtime.parsing import parse_eventbridge_event, parse_sqs_body

TICKET = TicketRef(
    system=TicketSystem.SERVICENOW,
    key="RITM0010042",
    internal_id="9d385017c611228701d22104cc95c371",
    url="https://acme.service-now.com/sc_req_item.do?sys_id=9d385017c611228701d22104cc95c371",
)
REQUEST_ID = derive_request_id(TICKET, "ec2-app")


def _started() -> ProvisioningStarted:
    return ProvisioningStarted(
        request_id=REQUEST_ID,
        ticket=TICKET,
        product="ec2-app",
        action=Action.CREATE,
        build_id="selfservice-provision:8745a7a9",
    )


def _as_delivered(entry: Any) -> dict[str, Any]:
    """What an EventBridge rule puts in the SQS message body for a PutEvents entry."""
    return {
        "version": "0",
        "id": "0b6a3c1e-2f4d-4e5a-9b8c-7d6e5f4a3b2c",
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": "123456789012",
        "time": "2026-11-20T09:15:05Z",
        "region": "us-east-1",
        "resources": [],
        "detail": json.loads(entry["Detail"]),
    }


def test_build_derives_type_source_subject_and_request_id() -> None:
    event = build_event(_started(), event_id="evt-1", time=datetime(2026, 11, 20, tzinfo=UTC))
    assert isinstance(event, ProvisioningStartedEvent)
    assert event.type == "selfservice.provisioning.started.v1"
    assert event.source == "selfservice.provisioner"
    assert event.subject == "servicenow:RITM0010042"
    assert event.requestid == REQUEST_ID
    assert event.id == "evt-1"


def test_the_entry_carries_a_spec_valid_structured_cloudevent() -> None:
    event = build_event(_started())
    entry = to_eventbridge_entry(event, event_bus_name="selfservice-bus")
    assert entry["EventBusName"] == "selfservice-bus"
    assert entry["DetailType"] == event.type
    assert entry["Source"] == "selfservice.provisioner"
    detail = json.loads(entry["Detail"])
    assert detail["specversion"] == "1.0"
    assert detail["datacontenttype"] == "application/json"
    assert detail["requestid"] == REQUEST_ID
    assert detail["time"].endswith("Z")
    assert detail["data"]["build_id"] == "selfservice-provision:8745a7a9"
    cloud_event = to_cloudevent(event)
    assert cloud_event.get_type() == event.type
    assert cloud_event.get_extension("requestid") == REQUEST_ID


@pytest.mark.parametrize("spec", EVENT_CATALOG, ids=lambda spec: spec.type)
def test_round_trip_through_eventbridge_and_sqs(spec: Any, root: Path) -> None:
    original = parse_eventbridge_event((root / "events/catalog" / spec.schema_file).read_text())
    entry = to_eventbridge_entry(original, event_bus_name="bus", trace_header="Root=1-abc")
    assert entry["TraceHeader"] == "Root=1-abc"
    assert parse_sqs_body(json.dumps(_as_delivered(entry))) == original


def test_a_detail_type_that_disagrees_with_the_cloudevent_is_refused() -> None:
    delivered = _as_delivered(to_eventbridge_entry(build_event(_started()), event_bus_name="b"))
    delivered["detail-type"] = "selfservice.provisioning.succeeded.v1"
    with pytest.raises(ContractError, match="disagree with the CloudEvent"):
        parse_eventbridge_event(delivered)


def test_a_spoofed_source_is_refused() -> None:
    delivered = _as_delivered(to_eventbridge_entry(build_event(_started()), event_bus_name="b"))
    delivered["source"] = delivered["detail"]["source"] = "selfservice.intake"
    with pytest.raises(ContractError, match=r"produced by selfservice\.provisioner"):
        parse_eventbridge_event(delivered)


def test_an_unknown_type_is_refused() -> None:
    delivered = _as_delivered(to_eventbridge_entry(build_event(_started()), event_bus_name="b"))
    delivered["detail-type"] = delivered["detail"]["type"] = "selfservice.provisioning.paused.v1"
    with pytest.raises(ContractError, match="breaks its contract"):
        parse_eventbridge_event(delivered)


def test_a_detail_that_is_not_a_cloudevent_is_refused() -> None:
    delivered = _as_delivered(to_eventbridge_entry(build_event(_started()), event_bus_name="b"))
    del delivered["detail"]["id"]
    with pytest.raises(ContractError, match="not a CloudEvent"):
        parse_eventbridge_event(delivered)


def test_invalid_data_names_the_field() -> None:
    delivered = _as_delivered(to_eventbridge_entry(build_event(_started()), event_bus_name="b"))
    delivered["detail"]["data"]["attempt"] = 0
    with pytest.raises(ContractError, match="attempt"):
        parse_eventbridge_event(delivered)


def test_a_subject_that_is_not_the_ticket_is_refused() -> None:
    delivered = _as_delivered(to_eventbridge_entry(build_event(_started()), event_bus_name="b"))
    delivered["detail"]["subject"] = "servicenow:RITM0099999"
    with pytest.raises(ContractError, match="subject must be the ticket reference"):
        parse_eventbridge_event(delivered)


@pytest.mark.parametrize("raw", ["not json", "[]", json.dumps({"detail": {}})])
def test_garbage_is_a_contract_error_not_a_crash(raw: str) -> None:
    with pytest.raises(ContractError):
        parse_sqs_body(raw)


def test_an_event_over_the_eventbridge_limit_is_refused_before_sending() -> None:
    rejected = RequestRejected(
        request_id=REQUEST_ID,
        ticket=TICKET,
        reasons=[RejectionReason(code="schema_violation", message="x" * 1000)] * 50,
    )
    small = to_eventbridge_entry(build_event(rejected), event_bus_name="b")
    assert len(small["Detail"]) < 256 * 1024
    huge = rejected.model_copy(update={"request_id": REQUEST_ID})
    object.__setattr__(huge, "reasons", list(rejected.reasons) * 6)  # bypass max_length
    with pytest.raises(ContractError, match="EventBridge accepts at most"):
        to_eventbridge_entry(build_event(huge), event_bus_name="b")


def test_build_refuses_data_that_is_not_a_catalogued_event() -> None:
    with pytest.raises(KeyError, match="TicketRef is not the data of any catalogued event"):
        build_event(TICKET)
