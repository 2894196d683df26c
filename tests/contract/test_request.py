"""The canonical request and the ticket reference."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from selfservice_contracts.request import (
    ProvisioningRequest,
    Requester,
    TicketRef,
    derive_request_id,
    utc_now,
)

SERVICENOW = {
    "system": "servicenow",
    "key": "RITM0010042",
    "internal_id": "9d385017c611228701d22104cc95c371",
    "url": "https://acme.service-now.com/sc_req_item.do?sys_id=9d385017c611228701d22104cc95c371",
}
JIRA = {
    "system": "jira",
    "key": "ITSM-42",
    "internal_id": "10500",
    "url": "https://acme.atlassian.net/browse/ITSM-42",
}


def _request(**overrides: object) -> ProvisioningRequest:
    ticket = TicketRef.model_validate(SERVICENOW)
    fields: dict[str, object] = {
        "request_id": derive_request_id(ticket, "ec2-app"),
        "ticket": ticket,
        "product": "ec2-app",
        "action": "create",
        "parameters": {"instance_type": "t3.micro", "desired_capacity": 1, "expose_alb": False},
        "requester": Requester(id="ana.ruiz", email="ana.ruiz@acme.example"),
        "environment": "dev",
        "cost_center": "CC-1042",
        "approval": "approved",
        "received_at": utc_now(),
    }
    fields.update(overrides)
    return ProvisioningRequest.model_validate(fields)


@pytest.mark.parametrize("ticket", [SERVICENOW, JIRA], ids=["servicenow", "jira"])
def test_valid_ticket_references(ticket: dict[str, str]) -> None:
    ref = TicketRef.model_validate(ticket)
    assert str(ref) == f"{ticket['system']}:{ticket['key']}"


@pytest.mark.parametrize(
    ("ticket", "overrides"),
    [
        (SERVICENOW, {"key": "ITSM-42"}),
        (SERVICENOW, {"internal_id": "10500"}),
        (JIRA, {"key": "RITM0010042"}),
        (JIRA, {"internal_id": "9d385017c611228701d22104cc95c371"}),
        (JIRA, {"url": "javascript:alert(1)"}),
    ],
)
def test_ticket_references_must_match_their_system(
    ticket: dict[str, str], overrides: dict[str, str]
) -> None:
    with pytest.raises(ValidationError):
        TicketRef.model_validate({**ticket, **overrides})


def test_request_ids_are_stable_per_ticket_and_product() -> None:
    servicenow = TicketRef.model_validate(SERVICENOW)
    jira = TicketRef.model_validate(JIRA)
    assert derive_request_id(servicenow, "ec2-app") == derive_request_id(servicenow, "ec2-app")
    ids = {
        derive_request_id(servicenow, "ec2-app"),
        derive_request_id(servicenow, "aws-account"),
        derive_request_id(jira, "ec2-app"),
    }
    assert len(ids) == 3


def test_a_valid_request_round_trips_through_json() -> None:
    request = _request()
    assert ProvisioningRequest.model_validate_json(request.model_dump_json()) == request


@pytest.mark.parametrize(
    "overrides",
    [
        {"received_at": datetime(2026, 11, 20, 9, 15)},  # naive time
        {"action": "resize"},
        {"approval": "maybe"},
        {"product": "EC2 App"},
        {"parameters": {"Instance Type": "t3.micro"}},
        {"parameters": {"tags": {"nested": "objects are not parameters"}}},
        {"unexpected": "field"},
        {"requester": {"id": "ana", "email": "not-an-address"}},
        {"request_id": "7f3a9c21"},
    ],
)
def test_invalid_requests_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _request(**overrides)


def test_requests_are_immutable() -> None:
    request = _request()
    with pytest.raises(ValidationError):
        request.product = "aws-account"  # type: ignore[misc]
