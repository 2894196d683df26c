"""ServiceNow business-rule bodies: the fixtures and the variants real sites send."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from intake.domain.errors import MalformedPayloadError
from selfservice_contracts.events import (
    RequestApproved,
    RequestReceived,
    RequestRejected,
)
from selfservice_contracts.request import Action, derive_request_id
from tests.intake.conftest import example_settings, fixture, make_service, servicenow_delivery

EC2 = "servicenow-ritm-ec2-inserted.json"
ACCOUNT = "servicenow-ritm-account-inserted.json"


def _ec2(**changes: Any) -> dict[str, Any]:
    body = fixture(EC2)
    for key, value in changes.items():
        body[key] = value
    return body


def test_the_ec2_fixture_becomes_one_received_request() -> None:
    service, bus = make_service()
    reply = service.handle(servicenow_delivery(fixture(EC2)))
    assert reply.status_code == 202
    assert reply.body["status"] == "received"
    assert reply.body["ticket"] == "servicenow:RITM0010042"
    (event,) = bus.events
    assert isinstance(event.data, RequestReceived)
    request = event.data.request
    assert request.product == "ec2-app"
    assert request.action is Action.CREATE
    assert request.parameters == {
        "instance_type": "t3.micro",
        "environment": "dev",
        "desired_capacity": 1,  # "1" coerced
        "cost_center": "CC-1042",
        "region": "us-east-1",  # aws_region mapped
        "justification": "Load-test environment for the checkout team",
        "expose_alb": False,  # schema defaults
        "app_port": 80,
    }
    assert request.requester.id == "ana.ruiz"
    assert request.requester.email == "ana.ruiz@acme.example"
    assert request.ticket.url.endswith("sc_req_item.do?sys_id=9d385017c611228701d22104cc95c371")
    assert (
        reply.body["request_id"]
        == request.request_id
        == derive_request_id(request.ticket, "ec2-app")
    )


def test_the_account_fixture_becomes_a_request_with_a_list_of_approvers() -> None:
    service, bus = make_service()
    reply = service.handle(servicenow_delivery(fixture(ACCOUNT)))
    assert reply.status_code == 202, reply.body
    (event,) = bus.events
    assert isinstance(event.data, RequestReceived)
    assert event.data.request.parameters["approvers"] == [
        "lena.kraus@acme.example",
        "piet.jansen@acme.example",
    ]
    assert event.data.request.parameters["organizational_unit"] == "Workloads/NonProd"


def test_reference_variables_use_their_display_values_when_configured() -> None:
    body = fixture(ACCOUNT)
    body["variables"]["organizational_unit"] = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    body["display_values"] = {"organizational_unit": "Workloads/NonProd"}
    service, bus = make_service()
    assert service.handle(servicenow_delivery(body)).status_code == 202
    assert bus.events[0].data.request.parameters["organizational_unit"] == "Workloads/NonProd"  # type: ignore[union-attr]


def test_unicode_and_extra_fields_are_fine() -> None:
    body = _ec2(unexpected_field={"anything": True}, short_description="Lastprüfung - 負荷試験")
    body["variables"]["justification"] = "Lasttest für das Kassenteam 🚀"
    service, bus = make_service()
    assert service.handle(servicenow_delivery(body)).status_code == 202
    assert "🚀" in str(bus.events[0].data.request.parameters["justification"])  # type: ignore[union-attr]


def test_unfilled_optional_variables_are_ignored() -> None:
    body = fixture(EC2)
    body["variables"]["justification"] = ""
    body["variables"]["public_load_balancer"] = ""
    service, bus = make_service()
    assert service.handle(servicenow_delivery(body)).status_code == 202
    assert "justification" not in bus.events[0].data.request.parameters  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("variables", "field", "fragment"),
    [
        ({"desired_capacity": "one"}, "desired_capacity", "must be integer"),
        ({"instance_type": "big one"}, "instance_type", "does not match the expected format"),
        ({"environment": "qa"}, "environment", "must be one of"),
        ({"aws_region": ""}, "region", "region is required"),
        ({"favourite_colour": "blue"}, "favourite_colour", "has no variable named"),
    ],
)
def test_schema_violations_are_400_with_a_reason_per_field(
    variables: dict[str, str], field: str, fragment: str
) -> None:
    body = fixture(EC2)
    body["variables"].update(variables)
    service, bus = make_service()
    reply = service.handle(servicenow_delivery(body))
    assert reply.status_code == 400
    assert reply.body["status"] == "rejected"
    reasons = {r["field"]: r["message"] for r in reply.body["reasons"]}
    assert fragment in reasons[field]
    (event,) = bus.events  # the ticket is told
    assert isinstance(event.data, RequestRejected)
    assert {r.field for r in event.data.reasons} == set(reasons)


@pytest.mark.parametrize(
    ("variables", "field", "fragment"),
    [
        (
            {"instance_type": "m6i.4xlarge"},
            "instance_type",
            "not allowed in dev (allowed: t3.micro, t3.small)",
        ),
        ({"desired_capacity": "5"}, "desired_capacity", "outside 0 to 2 for dev"),
        ({"aws_region": "ap-south-1"}, "region", "region ap-south-1 is not allowed in dev"),
        ({"cost_center": "1042"}, "cost_center", "expected format"),
    ],
)
def test_policy_violations_are_422_with_human_reasons(
    variables: dict[str, str], field: str, fragment: str
) -> None:
    body = fixture(EC2)
    body["variables"].update(variables)
    service, bus = make_service()
    reply = service.handle(servicenow_delivery(body))
    assert reply.status_code == 422
    (reason,) = reply.body["reasons"]
    assert reason["code"] == "policy_violation"
    assert reason["field"] == field
    assert fragment in reason["message"]
    assert isinstance(bus.events[0].data, RequestRejected)


def test_an_unmapped_catalog_item_is_rejected_on_the_ticket() -> None:
    body = _ec2(cat_item={"sys_id": "ffffffffffffffffffffffffffffffff", "name": "Office chair"})
    service, bus = make_service()
    reply = service.handle(servicenow_delivery(body))
    assert reply.status_code == 422
    assert reply.body["reasons"][0]["code"] == "unknown_product"
    assert isinstance(bus.events[0].data, RequestRejected)


def test_a_pending_approval_in_prod_needs_approval_then_the_update_approves() -> None:
    body = fixture(EC2)
    body["approval"] = "requested"
    body["variables"].update(environment="prod", instance_type="t3.medium", desired_capacity="2")
    service, bus = make_service()
    first = service.handle(servicenow_delivery(body, webhook_id="msg_a"))
    assert (first.status_code, first.body["status"]) == (202, "approval_required")
    body["event"] = "sc_req_item.updated"
    body["approval"] = "approved"
    second = service.handle(servicenow_delivery(body, webhook_id="msg_b"))
    assert (second.status_code, second.body["status"]) == (202, "approved")
    assert second.body["request_id"] == first.body["request_id"]
    assert [e.type for e in bus.events] == [
        "selfservice.request.approval-required.v1",
        "selfservice.request.approved.v1",
    ]
    assert isinstance(bus.events[1].data, RequestApproved)


def test_an_approval_given_again_is_a_new_approval_and_its_retry_is_not() -> None:
    """The plan shown again (re-planned, or approved before it was made): the approver
    sets the approval back to requested and approves again — two business-rule firings."""
    body = fixture(EC2)
    body["approval"] = "requested"
    body["variables"].update(environment="prod", instance_type="t3.medium", desired_capacity="2")
    service, bus = make_service()
    service.handle(servicenow_delivery(body, webhook_id="msg_a"))
    body["event"] = "sc_req_item.updated"
    body["approval"] = "approved"
    assert service.handle(servicenow_delivery(body, webhook_id="msg_b")).outcome == "approved"
    assert service.handle(servicenow_delivery(body, webhook_id="msg_b")).outcome == "duplicate"
    body["approval"] = "requested"
    assert service.handle(servicenow_delivery(body, webhook_id="msg_c")).outcome == "duplicate"
    body["approval"] = "approved"
    assert service.handle(servicenow_delivery(body, webhook_id="msg_d")).outcome == "approved"
    approvals = [e for e in bus.events if isinstance(e.data, RequestApproved)]
    assert len(approvals) == 2
    assert approvals[0].id != approvals[1].id
    # An insert that arrives already approved is one approval however often it is sent.
    inserted = fixture(EC2)
    inserted["variables"].update(environment="prod", instance_type="t3.medium")
    other, other_bus = make_service()
    other.handle(servicenow_delivery(inserted, webhook_id="msg_1"))
    other.handle(servicenow_delivery(inserted, webhook_id="msg_2"))
    assert len(other_bus.events) == 1


def test_a_rejected_approval_rejects_the_request() -> None:
    service, _bus = make_service()
    reply = service.handle(servicenow_delivery(_ec2(approval="rejected")))
    assert reply.status_code == 422
    assert reply.body["reasons"][0]["code"] == "approval_rejected"


def test_a_cancelled_item_destroys_its_instance() -> None:
    service, bus = make_service()
    reply = service.handle(servicenow_delivery(_ec2(event="sc_req_item.cancelled", state="4")))
    assert reply.status_code == 202
    assert bus.events[0].data.request.action is Action.DESTROY  # type: ignore[union-attr]


def _modify_item(**variables: str) -> dict[str, Any]:
    body = copy.deepcopy(fixture(EC2))
    body.update(
        number="RITM0010050",
        sys_id="1234567890abcdef1234567890abcdef",
        cat_item={"sys_id": "abcdefabcdefabcdefabcdefabcdefab", "name": "Modify AWS EC2 Instance"},
    )
    body["variables"].update(original_request="9d385017c611228701d22104cc95c371", **variables)
    body["display_values"] = {"original_request": "RITM0010042"}
    return body


def test_a_modify_item_updates_the_original_tickets_instance() -> None:
    service, bus = make_service()
    reply = service.handle(servicenow_delivery(_modify_item(instance_type="t3.small")))
    assert reply.status_code == 202, reply.body
    request = bus.events[0].data.request  # type: ignore[union-attr]
    assert request.action is Action.UPDATE
    assert request.ticket.key == "RITM0010050"  # write-back goes to the modify ticket
    assert request.instance is not None
    assert request.instance.key == "RITM0010042"
    assert request.request_id == derive_request_id(request.instance, "ec2-app")


def test_a_modify_item_without_its_reference_is_refused_precisely() -> None:
    body = _modify_item()
    body["display_values"] = {}
    service, _ = make_service()
    reply = service.handle(servicenow_delivery(body))
    assert reply.status_code == 400
    assert reply.body["reasons"][0]["field"] == "original_request"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("number"), "number"),
        (lambda b: b.update(sys_id="not-a-sys-id"), "sys_id"),
        (lambda b: b.update(event="sc_req_item.deleted"), "event"),
        (lambda b: b.update(instance="https://evil.service-now.com"), "instance"),
        (lambda b: b.update(approval="perhaps"), "approval"),
        (lambda b: (b.pop("requested_for"), b.pop("opened_by")), "requested_for"),
        (lambda b: b.update(variables=["not", "a", "map"]), "variables"),
    ],
)
def test_malformed_bodies_are_400_with_the_field(mutate: Any, field: str) -> None:
    body = fixture(EC2)
    mutate(body)
    service, bus = make_service()
    with pytest.raises(MalformedPayloadError) as caught:
        service.handle(servicenow_delivery(body))
    assert field in {e.field.split(".")[0] for e in caught.value.errors}
    assert bus.events == []


def test_choices_in_another_case_or_padded_are_folded_to_their_canonical_case() -> None:
    """Found with real catalog items: "  T3.Small " and "Dev" were refused."""
    body = fixture(EC2)
    body["variables"].update(instance_type="  T3.Small ", environment="Dev", aws_region="US-East-1")
    service, bus = make_service()
    reply = service.handle(servicenow_delivery(body))
    assert (reply.status_code, reply.body["status"]) == (202, "received"), reply.body
    parameters = bus.events[0].data.request.parameters  # type: ignore[union-attr]
    assert (parameters["instance_type"], parameters["environment"], parameters["region"]) == (
        "t3.small",
        "dev",
        "us-east-1",
    )


def test_a_value_that_still_fails_its_pattern_says_which_format_it_misses() -> None:
    body = fixture(EC2)
    body["variables"].update(instance_type="T3 small")
    service, _ = make_service()
    reply = service.handle(servicenow_delivery(body))
    (reason,) = reply.body["reasons"]
    assert reason["message"] == (
        "instance_type 'T3 small' does not match the expected format "
        "^[a-z][a-z0-9-]*\\.[a-z0-9]+$ (EC2 instance type; the policy of the environment "
        "narrows the choice.)"
    )


@pytest.mark.parametrize(("capacity", "expected"), [("1.0", 1), (" 2.00 ", 2), ("1e0", 1)])
def test_a_whole_number_is_an_integer_however_the_form_writes_it(
    capacity: str, expected: int
) -> None:
    """Found with real catalog items: "1.0" was refused while Jira's 2.0 was accepted."""
    body = fixture(EC2)
    body["variables"].update(desired_capacity=capacity)
    service, bus = make_service()
    assert service.handle(servicenow_delivery(body)).status_code == 202
    assert bus.events[0].data.request.parameters["desired_capacity"] == expected  # type: ignore[union-attr]


@pytest.mark.parametrize("capacity", ["1.5", "1e20", "NaN"])
def test_a_number_that_is_not_whole_is_still_refused(capacity: str) -> None:
    body = fixture(EC2)
    body["variables"].update(desired_capacity=capacity)
    service, _ = make_service()
    reply = service.handle(servicenow_delivery(body))
    assert reply.status_code == 400
    assert reply.body["reasons"][0]["field"] == "desired_capacity"


def test_a_form_only_variable_refuses_the_item_saying_how_to_ignore_it() -> None:
    body = fixture(EC2)
    body["variables"].update(agree_to_terms="true")
    service, _ = make_service()
    reply = service.handle(servicenow_delivery(body))
    assert reply.status_code == 400
    (reason,) = reply.body["reasons"]
    assert reason["field"] == "agree_to_terms"
    assert reason["message"] == (
        "ec2-app has no variable named 'agree_to_terms'; if the catalog item's form has it only "
        "for the requester, add it to the item's ignore_variables in the intake configuration"
    )


def test_variables_the_item_ignores_are_dropped_and_others_still_refused() -> None:
    # config/intake.example.json: the EC2 item ignores its "accept_terms" checkbox.
    settings = example_settings()
    assert settings.servicenow is not None
    assert settings.servicenow.catalog["04b7e94b4f7b4200086eeed18110c7fd"].ignore_variables == [
        "accept_terms"
    ]
    service, bus = make_service(settings)
    body = fixture(EC2)
    body["variables"].update(accept_terms="true")
    reply = service.handle(servicenow_delivery(body))
    assert reply.status_code == 202, reply.body
    assert "accept_terms" not in bus.events[0].data.request.parameters  # type: ignore[union-attr]
    body["variables"].update(favourite_colour="blue")
    refused = service.handle(servicenow_delivery(body, webhook_id="msg_other"))
    assert [r["field"] for r in refused.body["reasons"]] == ["favourite_colour"]
