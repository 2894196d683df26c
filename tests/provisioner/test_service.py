"""The provisioner service with typed in-memory adapters."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from provisioner.domain.lifecycle import State
from provisioner.domain.ports import BuildResult
from selfservice_contracts.events import (
    AnyEvent,
    ProvisioningFailed,
    ProvisioningRefused,
    ProvisioningStarted,
    ProvisioningSucceeded,
)
from selfservice_contracts.request import Action, TicketRef, TicketSystem
from selfservice_runtime.publisher import PublishError
from tests.provisioner.fakes import (
    World,
    approval_required,
    approved,
    end_build,
    received,
    request,
    reviewed,
    world,
)


def _succeed(w: World, attempt: int = 1, outputs: dict[str, object] | None = None) -> str:
    build = w.builds.started[-1]
    build_id = w.builds.ids[(build.request.request_id, build.action.value, build.attempt)]
    w.artifacts.outputs[build.outputs_uri] = outputs or {"vpc_id": "vpc-1"}
    return w.service.on_build_result(
        BuildResult(
            build_id=build_id,
            status="SUCCEEDED",
            request_id=build.request.request_id,
            attempt=attempt,
        )
    )


def test_a_received_request_is_recorded_built_and_reported() -> None:
    w = world()
    req = request()
    assert w.service.on_request(received(req)) == "started"
    (build,) = w.builds.started
    assert build.action is Action.CREATE
    assert build.state_key == "ec2-app/servicenow/RITM0010042.tfstate"
    tfvars = w.artifacts.tfvars[build.tfvars_uri]
    assert tfvars["ticket"] == "servicenow:RITM0010042"
    assert tfvars["ssm_run_allowed"] is True  # dev is in the product's allow list
    assert "justification" not in tfvars or isinstance(tfvars["justification"], str)
    (started,) = w.bus.events
    assert isinstance(started.data, ProvisioningStarted)
    assert started.data.log_url
    assert w.ledger.entries[req.request_id].state is State.PROVISIONING

    assert _succeed(w) == "recorded"
    entry = w.ledger.entries[req.request_id]
    assert entry.state is State.SUCCEEDED
    assert entry.outputs == {"vpc_id": "vpc-1"}
    assert isinstance(w.bus.events[-1].data, ProvisioningSucceeded)
    assert [t.to_state for t in w.ledger.history(req.request_id)] == [
        State.RECEIVED,
        State.QUEUED,
        State.PROVISIONING,
        State.SUCCEEDED,
    ]


def test_duplicates_and_out_of_order_events_never_start_a_second_build() -> None:
    w = world()
    req = request()
    w.service.on_request(received(req, "first"))
    assert w.service.on_request(received(req, "first")) == "refused"  # redelivery
    assert w.service.on_request(approved(req, "late-approved")) == "refused"
    _succeed(w)
    assert w.service.on_request(received(req, "replayed")) == "refused"  # replay after success
    assert len(w.builds.started) == 1
    assert w.ledger.entries[req.request_id].state is State.SUCCEEDED
    assert len(w.refusals) == 3


def test_two_approvals_start_one_build() -> None:
    w = world()
    # staging: the recorded plan's public HTTP port is allowed there (prod allows 443 only)
    req = request(environment="staging", instance_type="t3.medium", desired_capacity=2)
    assert w.service.on_request(approval_required(req)) == "started"  # its plan, to approve
    assert [b.plan_only for b in w.builds.started] == [True]
    end_build(w, reviewed(w))
    assert w.service.on_request(approved(req, "a1")) == "started"
    assert w.service.on_request(approved(req, "a2")) == "refused"
    assert [b.plan_only for b in w.builds.started] == [True, False]


def test_a_failed_start_build_is_resumed_by_the_retry_with_the_same_token() -> None:
    w = world()
    req = request()
    w.builds.fail_next = 1
    with pytest.raises(RuntimeError, match="throttling"):
        w.service.on_request(received(req, "e1"))
    assert w.ledger.entries[req.request_id].state is State.QUEUED
    assert w.service.on_request(received(req, "e1")) == "started"  # SQS redelivery
    assert len(w.builds.started) == 1
    assert w.ledger.entries[req.request_id].attempt == 1


def test_a_publish_failure_after_start_republishes_without_a_second_build() -> None:
    w = world()
    req = request()
    failing = w.service.publisher

    class FailOnce:
        def __init__(self) -> None:
            self.failed = False

        def publish(self, events: Sequence[AnyEvent]) -> None:
            if not self.failed:
                self.failed = True
                raise PublishError([(events[0].id, "InternalException")])
            failing.publish(events)

    w.service.publisher = FailOnce()
    with pytest.raises(PublishError):
        w.service.on_request(received(req, "e1"))
    assert w.service.on_request(received(req, "e1")) == "started"
    assert len(w.builds.started) == 1
    assert len(w.bus.events) == 1


def test_a_failure_reports_phase_reason_and_the_terraform_error() -> None:
    w = world()
    req = request()
    w.service.on_request(received(req))
    w.logs.lines = [
        "[Container] Running command terraform apply -no-color tfplan",
        "aws_vpc.this: Creating...",
        "Error: creating EC2 Launch Template: InvalidParameterValue: bad instance type",
        "  with aws_launch_template.this,",
        "  on main.tf line 180",
    ]
    build = w.builds.started[0]
    build_id = w.builds.ids[(req.request_id, "create", 1)]
    outcome = w.service.on_build_result(
        BuildResult(
            build_id=build_id,
            status="FAILED",
            request_id=req.request_id,
            attempt=1,
            failed_phase="BUILD",
            phase_context="COMMAND_EXECUTION_ERROR",
            log_group="/aws/codebuild/p",
            log_stream="s",
        )
    )
    assert outcome == "recorded"
    failed = w.bus.events[-1].data
    assert isinstance(failed, ProvisioningFailed)
    assert failed.phase == "BUILD"
    assert "BUILD phase failed" in failed.reason
    assert failed.error_tail[0].startswith("Error: creating EC2 Launch Template")
    assert w.ledger.entries[req.request_id].state is State.FAILED
    assert build.request == req


def test_update_then_destroy() -> None:
    w = world()
    w.service.on_request(received(request()))
    _succeed(w)
    assert (
        w.service.on_request(received(request(action=Action.UPDATE, instance_type="t3.small"), "u"))
        == "started"
    )
    assert w.builds.started[-1].action is Action.UPDATE
    assert w.artifacts.tfvars[w.builds.started[-1].tfvars_uri]["instance_type"] == "t3.small"
    _succeed(w, attempt=2)
    assert w.service.on_request(received(request(action=Action.DESTROY), "d")) == "started"
    _succeed(w, attempt=3)
    entry = w.ledger.entries[request().request_id]
    assert entry.state is State.DESTROYED
    assert entry.attempt == 3


def test_account_builds_run_one_at_a_time_and_hand_the_slot_on() -> None:
    w = world()
    first = request(product="aws-account")
    other_ticket = TicketRef(
        system=TicketSystem.JIRA,
        key="ITSM-7",
        internal_id="10007",
        url="https://acme.atlassian.net/browse/ITSM-7",
    )
    second = request(product="aws-account", ticket=other_ticket)
    assert w.service.on_request(received(first, "a")) == "started"
    assert w.service.on_request(received(second, "b")) == "waiting"
    assert len(w.builds.started) == 1
    assert w.ledger.entries[second.request_id].waiting_for_slot
    _succeed(w)  # the first account is done: the second starts, without polling
    assert len(w.builds.started) == 2
    assert w.builds.started[1].request.request_id == second.request_id
    assert w.ledger.entries[second.request_id].state is State.PROVISIONING
    assert w.slots.holders["aws-account"] == second.request_id


def test_an_outcome_for_an_unknown_or_stale_build_changes_nothing() -> None:
    w = world()
    req = request()
    w.service.on_request(received(req))
    stale = BuildResult(
        build_id="selfservice-provision:other",
        status="SUCCEEDED",
        request_id=req.request_id,
        attempt=1,
    )
    assert w.service.on_build_result(stale) == "refused"
    assert w.ledger.entries[req.request_id].state is State.PROVISIONING


def test_a_destroy_that_restates_nothing_destroys_with_what_the_ledger_recorded() -> None:
    w = world()
    w.service.on_request(received(request(instance_type="t3.small")))
    _succeed(w)
    built = w.artifacts.tfvars[w.builds.started[-1].tfvars_uri]
    bare = request(action=Action.DESTROY).model_copy(
        update={"parameters": {}, "environment": None, "cost_center": None}
    )
    assert w.service.on_request(received(bare, "d")) == "started"
    build = w.builds.started[-1]
    assert build.action is Action.DESTROY
    assert w.artifacts.tfvars[build.tfvars_uri] == built


def test_a_request_that_cannot_be_done_now_is_told_on_its_ticket_and_changes_nothing() -> None:
    w = world()
    destroy = request(action=Action.DESTROY)
    assert w.service.on_request(received(destroy, "nothing-to-destroy")) == "refused"
    (told,) = [e for e in w.bus.events if isinstance(e.data, ProvisioningRefused)]
    assert told.type == "selfservice.provisioning.refused.v1"
    assert told.subject == str(destroy.ticket)
    assert (told.data.action, told.data.state) == (Action.DESTROY, None)
    assert told.data.reason == "nothing to destroy: this ticket has no instance"
    assert w.ledger.entries == {}
    assert w.builds.started == []
    # A retry of that event (its first attempt's publish failed) tells it with the same id.
    w.service.on_request(received(destroy, "nothing-to-destroy"))
    ids = [e.id for e in w.bus.events if isinstance(e.data, ProvisioningRefused)]
    assert len(ids) == 2
    assert len(set(ids)) == 1


def test_an_update_while_a_create_builds_is_told_a_repeat_is_not() -> None:
    w = world()
    req = request()
    assert w.service.on_request(received(req, "create")) == "started"
    assert w.service.on_request(received(req, "create-again")) == "refused"  # a repeat
    assert w.service.on_request(approved(req, "approved-twice")) == "refused"
    assert not [e for e in w.bus.events if isinstance(e.data, ProvisioningRefused)]
    update = request(action=Action.UPDATE, instance_type="t3.small")
    assert w.service.on_request(received(update, "update")) == "refused"
    (told,) = [e.data for e in w.bus.events if isinstance(e.data, ProvisioningRefused)]
    assert isinstance(told, ProvisioningRefused)
    assert (told.action, told.state) == (Action.UPDATE, "provisioning")
    assert "a build is already under way (provisioning)" in told.reason
    assert len(w.builds.started) == 1
