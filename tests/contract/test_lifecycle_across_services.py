"""Intake → contract → provisioner: what intake answers 202 to, the provisioner can act on.

Each event intake publishes travels as it does in AWS (an EventBridge entry, then the SQS
body the provisioner's rule delivers) and is parsed by the consumer's own parser before
the provisioner's service sees it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from intake.domain.intake import IntakeService
from provisioner.domain.lifecycle import State
from provisioner.domain.ports import BuildResult
from provisioner.domain.service import RequestEvent
from selfservice_contracts.envelope import to_eventbridge_entry
from selfservice_contracts.events import AnyEvent
from selfservice_contracts.request import Action, ApprovalState
from selfservice_runtime.parsing import parse_sqs_body
from selfservice_runtime.publisher import InMemoryPublisher
from tests.intake.conftest import fixture, jira_delivery, make_service, servicenow_delivery
from tests.provisioner.fakes import World, end_build, received, reviewed, world

EC2 = "servicenow-ritm-ec2-inserted.json"


def _as_consumed(event: AnyEvent) -> RequestEvent:
    """The event as the provisioner's queue delivers it, parsed by the consumer's parser."""
    entry = to_eventbridge_entry(event, event_bus_name="selfservice-bus")
    body = {
        "version": "0",
        "id": "5f1d2c3b-0000-4000-8000-000000000001",
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": "123456789012",
        "time": "2026-11-20T09:15:03Z",
        "region": "us-east-1",
        "resources": [],
        "detail": json.loads(entry["Detail"]),
    }
    parsed = parse_sqs_body(json.dumps(body))
    return parsed  # type: ignore[return-value]


def _flow(bus: InMemoryPublisher, w: World, start: int = 0) -> list[str]:
    """Feed every event intake published since ``start`` to the provisioner."""
    return [w.service.on_request(_as_consumed(event)) for event in bus.events[start:]]


def _succeed(w: World) -> None:
    build = w.builds.started[-1]
    build_id = w.builds.ids[(build.request.request_id, build.action.value, build.attempt)]
    w.artifacts.outputs[build.outputs_uri] = {"asg_name": "web"}
    w.service.on_build_result(
        BuildResult(
            build_id=build_id,
            status="SUCCEEDED",
            request_id=build.request.request_id,
            attempt=build.attempt,
        )
    )


def _decommission() -> dict[str, Any]:
    """The example "Decommission AWS EC2 Instance" item: it restates nothing."""
    body = copy.deepcopy(fixture(EC2))
    body.update(
        number="RITM0010051",
        sys_id="1234567890abcdef1234567890abcdee",
        cat_item={
            "sys_id": "abcdefabcdefabcdefabcdefabcdefac",
            "name": "Decommission AWS EC2 Instance",
        },
    )
    body["variables"] = {"original_request": "9d385017c611228701d22104cc95c371"}
    body["display_values"] = {"original_request": "RITM0010042"}
    return body


def test_a_decommission_that_restates_nothing_destroys_what_was_built() -> None:
    """Found by the lifecycle checks: the 202'd destroy broke its contract on every receive."""
    service, bus = make_service()
    w = world()
    assert service.handle(servicenow_delivery(fixture(EC2))).status_code == 202
    assert _flow(bus, w) == ["started"]
    _succeed(w)
    built = w.artifacts.tfvars[w.builds.started[-1].tfvars_uri]

    reply = service.handle(servicenow_delivery(_decommission(), webhook_id="msg_decommission"))
    assert (reply.status_code, reply.body["status"]) == (202, "received"), reply.body
    request = bus.events[-1].data.request  # type: ignore[union-attr]
    assert (request.action, request.parameters) == (Action.DESTROY, {})
    assert (request.environment, request.cost_center) == (None, None)
    assert _flow(bus, w, start=1) == ["started"]
    build = w.builds.started[-1]
    assert build.action is Action.DESTROY
    assert build.state_key == "ec2-app/servicenow/RITM0010042.tfstate"
    assert w.artifacts.tfvars[build.tfvars_uri] == built  # destroyed with what it was built with
    assert build.request.ticket.key == "RITM0010051"  # write-back goes to the decommission item
    _succeed(w)
    assert w.ledger.entries[request.request_id].state is State.DESTROYED


def _dev_item_held_by_servicenow(service: IntakeService) -> dict[str, Any]:
    body = fixture(EC2)
    body["approval"] = "requested"
    reply = service.handle(servicenow_delivery(body, webhook_id="msg_requested"))
    assert (reply.status_code, reply.body["status"]) == (202, "approval_required")
    return body


def test_a_dev_item_servicenow_held_for_approval_is_built_once_servicenow_approves() -> None:
    """Found by the lifecycle checks: it waited forever ("only an approval moves it on")."""
    service, bus = make_service()
    w = world()
    body = _dev_item_held_by_servicenow(service)
    assert _flow(bus, w) == ["started"]  # the plan the approval will be of
    request_id = bus.events[0].data.request_id  # type: ignore[union-attr]
    assert w.ledger.entries[request_id].state is State.PLANNING
    end_build(w, reviewed(w))
    assert w.ledger.entries[request_id].state is State.AWAITING_APPROVAL
    body.update(event="sc_req_item.updated", approval="approved")
    assert service.handle(servicenow_delivery(body, webhook_id="msg_approved")).status_code == 202
    assert _flow(bus, w, start=1) == ["started"]
    assert [t.to_state for t in w.ledger.history(request_id)][-3:] == [
        State.APPROVED,
        State.QUEUED,
        State.PROVISIONING,
    ]
    assert w.builds.started[-1].approved_plan is not None  # it applies the held plan


def test_a_held_request_is_still_not_moved_on_by_what_is_not_an_approval() -> None:
    service, bus = make_service()
    w = world()
    _dev_item_held_by_servicenow(service)
    _flow(bus, w)
    end_build(w, reviewed(w))  # its plan is held
    # A received whose request the ITSM has not approved (approval still requested)
    # changes nothing: only an approval moves a held request on.
    held = bus.events[0].data.request  # type: ignore[union-attr]
    assert held.approval is ApprovalState.REQUESTED
    assert w.service.on_request(received(held, "e-not-approved")) == "refused"
    assert w.ledger.entries[held.request_id].state is State.AWAITING_APPROVAL


def test_a_dev_issue_created_in_jiras_first_status_is_built_without_waiting() -> None:
    body = fixture("jira-issue-created-webhook.json")
    body["issue"]["fields"]["customfield_10052"] = {"value": "dev", "id": "10030"}
    service, bus = make_service()
    w = world()
    reply = service.handle(jira_delivery(body))
    assert (reply.status_code, reply.body["status"]) == (202, "received"), reply.body
    assert _flow(bus, w) == ["started"]
    # Moving it into an approved status later starts nothing a second time.
    approved = fixture("jira-issue-updated-approved.json")
    approved["issue"]["fields"]["customfield_10052"] = {"value": "dev", "id": "10030"}
    service.handle(jira_delivery(approved, identifier="moved"))
    assert _flow(bus, w, start=1) == []
    assert len(w.builds.started) == 1


def test_a_jira_issue_held_for_approval_is_built_once_it_moves_into_an_approved_status() -> None:
    """Staging needs an approval: the transition into an approved status gives it."""
    service, bus = make_service()
    w = world()
    service.handle(jira_delivery(fixture("jira-issue-created-webhook.json"), identifier="a"))
    assert _flow(bus, w) == ["started"]  # planned at once: the approval is of its plan
    end_build(w, reviewed(w))
    service.handle(jira_delivery(fixture("jira-issue-updated-approved.json"), identifier="b"))
    assert _flow(bus, w, start=1) == ["started"]
    assert w.builds.started[-1].approved_plan is not None
