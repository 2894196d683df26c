"""Jira admin webhooks and Automation bodies, through the configured field mapping."""

from __future__ import annotations

from typing import Any

import pytest

from intake.domain.errors import MalformedPayloadError
from intake.domain.submission import requester
from selfservice_contracts.events import ApprovalRequired, RequestApproved
from selfservice_contracts.request import Action
from tests.intake.conftest import automation_delivery, fixture, jira_delivery, make_service

CREATED = "jira-issue-created-webhook.json"
APPROVED = "jira-issue-updated-approved.json"
AUTOMATION = "jira-automation-web-request.json"


def test_an_issue_created_in_staging_waits_for_approval() -> None:
    service, bus = make_service()
    reply = service.handle(jira_delivery(fixture(CREATED)))
    assert (reply.status_code, reply.body["status"]) == (202, "approval_required")
    (event,) = bus.events
    assert isinstance(event.data, ApprovalRequired)
    request = event.data.request
    assert str(request.ticket) == "jira:ITSM-42"
    assert request.ticket.internal_id == "10500"
    assert request.ticket.url == "https://acme.atlassian.net/browse/ITSM-42"
    assert request.parameters["instance_type"] == "t3.small"  # option object → value
    assert request.parameters["environment"] == "staging"
    assert request.parameters["desired_capacity"] == 2
    assert request.requester.id == "5b10ac8d82e05b22cc7d4ef5"
    assert "staging" in event.data.policy


def test_the_transition_to_an_approved_status_approves_it() -> None:
    service, bus = make_service()
    first = service.handle(jira_delivery(fixture(CREATED), identifier="a"))
    second = service.handle(jira_delivery(fixture(APPROVED), identifier="b"))
    assert second.body == {**first.body, "status": "approved"}
    assert isinstance(bus.events[1].data, RequestApproved)


def test_each_approval_given_is_its_own_event_and_its_retries_are_not() -> None:
    """A plan shown again (re-planned, or an approval that came before its plan) is
    approved again with a new transition: a new delivery, so a new event."""
    service, bus = make_service()
    service.handle(jira_delivery(fixture(CREATED), identifier="a"))
    first = service.handle(jira_delivery(fixture(APPROVED), identifier="b"))
    retried = service.handle(jira_delivery(fixture(APPROVED), identifier="b"))
    again = service.handle(jira_delivery(fixture(APPROVED), identifier="c"))
    assert (first.outcome, retried.outcome, again.outcome) == ("approved", "duplicate", "approved")
    approvals = [e for e in bus.events if isinstance(e.data, RequestApproved)]
    assert len(approvals) == 2
    assert approvals[0].id != approvals[1].id


def test_the_automation_body_is_mapped_and_numbers_as_strings_coerced() -> None:
    service, bus = make_service()
    reply = service.handle(automation_delivery(fixture(AUTOMATION)))
    assert (reply.status_code, reply.body["status"]) == (202, "approved"), reply.body
    request = bus.events[0].data.request  # type: ignore[union-attr]
    assert request.parameters["desired_capacity"] == 3
    assert request.parameters["instance_type"] == "t3.medium"
    assert request.parameters["region"] == "eu-central-1"
    assert request.requester.email == "ana.ruiz@acme.example"
    assert str(request.ticket) == "jira:ITSM-43"


def test_numbers_that_jira_sends_as_floats_are_integers() -> None:
    body = fixture(CREATED)
    body["issue"]["fields"]["customfield_10053"] = 2.0
    service, bus = make_service()
    assert service.handle(jira_delivery(body)).status_code == 202
    assert bus.events[0].data.request.parameters["desired_capacity"] == 2  # type: ignore[union-attr]


@pytest.mark.parametrize("event", ["comment_created", "jira:issue_deleted", "jira:worklog_updated"])
def test_events_that_ask_nothing_are_acknowledged_and_ignored(event: str) -> None:
    body = fixture(CREATED)
    body["webhookEvent"] = event
    service, bus = make_service()
    reply = service.handle(jira_delivery(body))
    assert (reply.status_code, reply.body["status"]) == (200, "ignored")
    assert bus.events == []


def test_an_update_that_changes_nothing_mapped_is_ignored() -> None:
    body = fixture(APPROVED)
    body["changelog"]["items"] = [{"field": "summary", "toString": "new title"}]
    service, bus = make_service()
    assert service.handle(jira_delivery(body)).status_code == 200
    assert bus.events == []


def test_a_changed_mapped_field_is_an_update_and_each_change_counts_once() -> None:
    body = fixture(APPROVED)
    body["changelog"]["items"] = [{"field": "Instance type", "fieldId": "customfield_10051"}]
    body["issue"]["fields"]["customfield_10051"] = {"value": "t3.medium", "id": "10022"}
    service, bus = make_service()
    first = service.handle(jira_delivery(body, identifier="u1"))
    again = service.handle(jira_delivery(body, identifier="u2"))
    assert first.body == again.body
    body["issue"]["fields"]["customfield_10053"] = 3
    third = service.handle(jira_delivery(body, identifier="u3"))
    assert third.status_code == 202
    assert [e.data.request.action for e in bus.events] == [Action.UPDATE, Action.UPDATE]  # type: ignore[union-attr]


def test_a_transition_to_a_cancel_status_destroys() -> None:
    body = fixture(APPROVED)
    body["changelog"]["items"] = [{"field": "status", "toString": "Cancelled"}]
    body["issue"]["fields"]["status"] = {"name": "Cancelled", "id": "10020"}
    service, bus = make_service()
    assert service.handle(jira_delivery(body)).status_code == 202
    assert bus.events[0].data.request.action is Action.DESTROY  # type: ignore[union-attr]


def test_an_issue_of_an_unmapped_type_is_rejected_on_the_ticket() -> None:
    body = fixture(CREATED)
    body["issue"]["fields"]["issuetype"] = {"id": "10099", "name": "Bug"}
    service, _ = make_service()
    reply = service.handle(jira_delivery(body))
    assert reply.status_code == 422
    assert reply.body["reasons"][0]["code"] == "unknown_product"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["issue"].pop("key"), "issue"),
        (lambda b: b["issue"].update(id="ten"), "issue"),
        (lambda b: b["issue"]["fields"].pop("reporter"), "reporter"),
    ],
)
def test_malformed_webhooks_are_400(mutate: Any, field: str) -> None:
    body = fixture(CREATED)
    mutate(body)
    service, _ = make_service()
    with pytest.raises(MalformedPayloadError) as caught:
        service.handle(jira_delivery(body))
    assert any(e.field.startswith(field) or e.field == "body" for e in caught.value.errors)


def test_an_automation_body_without_reporter_is_400() -> None:
    body = fixture(AUTOMATION)
    del body["reporter"]
    service, _ = make_service()
    with pytest.raises(MalformedPayloadError) as caught:
        service.handle(automation_delivery(body))
    assert [e.field for e in caught.value.errors] == ["reporter"]


def test_a_body_of_neither_shape_is_400() -> None:
    service, _ = make_service()
    with pytest.raises(MalformedPayloadError, match="nor an Automation body"):
        service.handle(jira_delivery({"hello": "world"}))


@pytest.mark.parametrize("product", ["0", "Not A Slug", "ec2-app-unknown"])
def test_an_automation_product_that_is_not_offered_is_rejected_on_the_ticket(product: str) -> None:
    # Found by the fuzzer: a product that is not even a slug made the rejection itself invalid.
    body = fixture(AUTOMATION)
    body["product"] = product
    service, bus = make_service()
    reply = service.handle(automation_delivery(body))
    assert reply.status_code == 422
    assert reply.body["reasons"][0]["code"] == "unknown_product"
    assert bus.events[0].type == "selfservice.request.rejected.v1"


def test_an_absurdly_long_product_is_a_malformed_body() -> None:
    body = fixture(AUTOMATION)
    body["product"] = "x" * 300
    service, _ = make_service()
    with pytest.raises(MalformedPayloadError) as caught:
        service.handle(automation_delivery(body))
    assert [e.field for e in caught.value.errors] == ["product"]


@pytest.mark.parametrize("email", ["@", "a@b", "ana ruiz@acme.example", "x@y@z.example", ""])
def test_a_reporter_email_that_is_no_address_is_dropped_not_a_500(email: str) -> None:
    """Found by the fuzzer: "@" passed the old check and failed the contract (a 500)."""
    body = fixture(AUTOMATION)
    body["reporterEmail"] = email
    service, bus = make_service()
    assert service.handle(automation_delivery(body)).status_code == 202
    assert bus.events[0].data.request.requester.email is None  # type: ignore[union-attr]


def test_a_reporter_the_contract_refuses_is_a_precise_400() -> None:
    body = fixture(AUTOMATION)
    body["reporter"] = "x" * 500
    service, _ = make_service()
    with pytest.raises(MalformedPayloadError) as caught:
        service.handle(automation_delivery(body))
    assert [e.field for e in caught.value.errors] == ["reporter"]


def test_the_requester_is_checked_against_the_contract_whatever_the_source() -> None:
    with pytest.raises(MalformedPayloadError) as caught:
        requester("jira", "", None, "ana.ruiz@acme.example")
    assert [e.field for e in caught.value.errors] == ["requester.id"]


def _created_in(environment: str) -> dict[str, Any]:
    body = fixture(CREATED)
    body["issue"]["fields"]["customfield_10052"] = {"value": environment, "id": "10030"}
    return body


def test_an_issue_created_in_dev_follows_the_policy_and_is_not_held() -> None:
    """Found by testing as a user: with approved_statuses, every new issue waited."""
    service, bus = make_service()
    reply = service.handle(jira_delivery(_created_in("dev")))
    assert (reply.status_code, reply.body["status"]) == (202, "received"), reply.body
    assert bus.events[0].type == "selfservice.request.received.v1"
    # Moving it into an approved status later publishes nothing a build would act on twice.
    approved = fixture(APPROVED)
    approved["issue"]["fields"]["customfield_10052"] = {"value": "dev", "id": "10030"}
    service.handle(jira_delivery(approved, identifier="b"))
    assert [e.type for e in bus.events] == ["selfservice.request.received.v1"]


def test_a_choice_jira_sends_in_another_case_is_folded() -> None:
    service, bus = make_service()
    reply = service.handle(jira_delivery(_created_in("Dev")))
    assert reply.status_code == 202, reply.body
    assert bus.events[0].data.request.parameters["environment"] == "dev"  # type: ignore[union-attr]
