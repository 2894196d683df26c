"""The approval binds to the plan that is then applied: the service with typed fakes.

Each build's review is the real one (``review_build`` over a recorded plan, with the
review input the service wrote for that attempt); only CodeBuild and Terraform are not.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import pytest

from provisioner.domain.lifecycle import State
from provisioner.domain.plan import PlanGuardrails
from provisioner.domain.plan.build_review import ApplyRecord
from selfservice_contracts.events import (
    AnyEvent,
    ProvisioningFailed,
    ProvisioningPlanned,
    ProvisioningStarted,
    ProvisioningSucceeded,
)
from selfservice_contracts.plan import PlanVerdict
from selfservice_contracts.request import Action, ApprovalState, ProvisioningRequest
from tests.conftest import ROOT
from tests.provisioner.fakes import (
    EXAMPLE_GUARDRAILS,
    MODULE_SHA256,
    World,
    approval_required,
    approved,
    end_build,
    received,
    request,
    reviewed,
    world,
)

FIXTURES = ROOT / "tests/fixtures/plans"
MODULE = MODULE_SHA256
EXAMPLE = EXAMPLE_GUARDRAILS


def world_with(budgets: dict[str, Any] | None = None) -> World:
    """A world whose guardrails are the example document's (its budgets, or these)."""
    w = world()
    guardrails = EXAMPLE
    if budgets is not None:
        guardrails = EXAMPLE.model_copy(
            update={"budgets": PlanGuardrails.model_validate({"budgets": budgets}).budgets}
        )
    w.service.guardrails = lambda: guardrails
    return w


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _types(events: list[AnyEvent]) -> list[str]:
    return [e.type.removeprefix("selfservice.provisioning.").removesuffix(".v1") for e in events]


def _staging(**parameters: Any) -> ProvisioningRequest:
    return request(environment="staging", approval=ApprovalState.REQUESTED, **parameters)


def _held(w: World, req: ProvisioningRequest) -> ProvisioningPlanned:
    """The request waits for its approval: planned at once, its plan held."""
    assert w.service.on_request(approval_required(req, "needs-approval")) == "started"
    assert w.ledger.entries[req.request_id].state is State.PLANNING
    (build,) = [b for b in w.builds.started if b.request.request_id == req.request_id]
    assert (build.plan_only, build.approved_plan) == (True, None)
    assert w.artifacts.review_inputs[(req.request_id, build.attempt)].approval_required
    assert end_build(w, reviewed(w)) == "recorded"
    planned = w.bus.events[-1].data
    assert isinstance(planned, ProvisioningPlanned)
    return planned


def test_a_request_needing_approval_is_planned_shown_and_nothing_is_applied() -> None:
    w = world_with()
    req = _staging()
    planned = _held(w, req)
    assert _types(w.bus.events) == ["started", "planned"]
    started = w.bus.events[0].data
    assert isinstance(started, ProvisioningStarted)
    assert started.approved_plan_sha256 is None
    assert started.plan_only  # the ticket is told nothing is applied before the approval
    assert (planned.verdict, planned.needs_approval) == (PlanVerdict.HOLD, True)
    assert planned.reasons == ["staging requests need an approval of their plan"]
    assert planned.cost.monthly_after == Decimal("86.70")
    assert planned.artifacts.plan_s3_uri == f"s3://artifacts/plans/{req.request_id}/1/tfplan"
    entry = w.ledger.entries[req.request_id]
    assert entry.state is State.AWAITING_APPROVAL
    assert entry.held_plan is not None
    assert (entry.held_plan.sha256, entry.held_plan.attempt) == (planned.plan_sha256, 1)
    assert (entry.held_plan.module_sha256, entry.held_plan.monthly_cost) == (
        MODULE,
        Decimal("86.70"),
    )
    assert [t.to_state for t in w.ledger.history(req.request_id)] == [
        State.RECEIVED,
        State.QUEUED,
        State.PLANNING,
        State.AWAITING_APPROVAL,
    ]


def test_the_approval_applies_exactly_the_held_plan() -> None:
    w = world_with()
    req = _staging()
    planned = _held(w, req)
    assert w.service.on_request(approved(req, "approved")) == "started"
    build = w.builds.started[-1]
    assert (build.attempt, build.plan_only) == (2, False)
    assert build.approved_plan is not None
    assert build.approved_plan.sha256 == planned.plan_sha256
    assert build.approved_plan.module_sha256 == MODULE
    assert build.approved_plan.uri == f"s3://artifacts/plans/{req.request_id}/1/"
    started = w.bus.events[-1].data
    assert isinstance(started, ProvisioningStarted)
    assert started.approved_plan_sha256 == planned.plan_sha256
    assert not started.plan_only
    approval = [t for t in w.ledger.history(req.request_id) if t.to_state is State.APPROVED]
    assert [t.detail["plan_sha256"] for t in approval] == [planned.plan_sha256]

    applied = ApplyRecord(
        request_id=req.request_id, attempt=2, plan_sha256=planned.plan_sha256, applied=True
    )
    assert end_build(w, applied) == "recorded"
    succeeded = w.bus.events[-1].data
    assert isinstance(succeeded, ProvisioningSucceeded)
    assert succeeded.plan_sha256 == planned.plan_sha256
    entry = w.ledger.entries[req.request_id]
    assert (entry.state, entry.held_plan, entry.apply_held) == (State.SUCCEEDED, None, False)
    assert entry.monthly_cost == Decimal("86.70")  # the applied plan's: counts for budgets


def test_an_approval_while_planning_is_refused_it_must_be_of_the_plan() -> None:
    w = world_with()
    req = _staging()
    w.service.on_request(approval_required(req, "needs-approval"))
    assert w.service.on_request(approved(req, "too-early")) == "refused"
    assert "while its plan is being made" in w.refusals[-1]
    assert len(w.builds.started) == 1


def test_an_approval_of_no_plan_shown_plans_and_waits_for_the_approval_of_that_plan() -> None:
    w = world_with()
    req = _staging()
    # Its approval-required event was never seen (lost, or still being retried): the
    # approval approved no plan, so nothing is applied before its plan is approved.
    assert w.service.on_request(approved(req, "approved-first")) == "started"
    (build,) = w.builds.started
    assert (build.plan_only, build.approved_plan) == (True, None)
    assert w.artifacts.review_inputs[(req.request_id, 1)].approval_required
    assert end_build(w, reviewed(w)) == "recorded"
    assert _types(w.bus.events) == ["started", "planned"]
    planned = w.bus.events[-1].data
    assert isinstance(planned, ProvisioningPlanned)
    assert (planned.verdict, planned.needs_approval) == (PlanVerdict.HOLD, True)
    assert w.ledger.entries[req.request_id].state is State.AWAITING_APPROVAL
    # The approval of the plan shown applies it.
    assert w.service.on_request(approved(req, "approved-again")) == "started"
    assert w.builds.started[-1].approved_plan is not None
    assert w.builds.started[-1].approved_plan.sha256 == planned.plan_sha256


def test_a_build_that_fails_applying_its_reviewed_plan_shows_the_plan_then_the_failure() -> None:
    w = world_with()
    req = request()  # dev: no approval, plan and apply in one build
    assert w.service.on_request(received(req)) == "started"
    record = reviewed(w)
    assert record.verdict is PlanVerdict.APPLY
    assert end_build(w, record, status="FAILED") == "recorded"
    assert _types(w.bus.events) == ["started", "planned", "failed"]
    planned, failed = w.bus.events[1].data, w.bus.events[2].data
    assert isinstance(planned, ProvisioningPlanned)
    assert isinstance(failed, ProvisioningFailed)
    assert planned.plan_sha256 == record.plan_sha256
    assert w.ledger.entries[req.request_id].state is State.FAILED
    # A build that failed before its review (no record) shows the failure alone.
    w2 = world_with()
    assert w2.service.on_request(received(request())) == "started"
    assert end_build(w2, None, status="FAILED") == "recorded"
    assert _types(w2.bus.events) == ["started", "failed"]


def test_an_approval_naming_another_plan_applies_nothing_and_plans_again() -> None:
    w = world_with()
    req = _staging()
    planned = _held(w, req)
    other = _sha("another plan")
    event = approved(req, "approved-other")
    event = event.model_copy(update={"data": event.data.model_copy(update={"plan_sha256": other})})
    assert w.service.on_request(event) == "started"
    build = w.builds.started[-1]
    assert (build.attempt, build.plan_only, build.approved_plan) == (2, True, None)
    assert w.ledger.entries[req.request_id].state is State.PLANNING
    end_build(w, reviewed(w))
    replanned = w.bus.events[-1].data
    assert isinstance(replanned, ProvisioningPlanned)
    assert replanned.replanned_because is not None
    assert f"for plan {other[:12]}…, not the plan held for it" in replanned.replanned_because
    assert planned.plan_sha256[:12] in replanned.replanned_because
    assert w.ledger.entries[req.request_id].state is State.AWAITING_APPROVAL


def test_a_stale_approved_plan_is_not_applied_and_is_planned_again() -> None:
    w = world_with()
    req = _staging()
    planned = _held(w, req)
    w.service.on_request(approved(req, "approved"))
    stale = ApplyRecord(
        request_id=req.request_id,
        attempt=2,
        plan_sha256=planned.plan_sha256,
        applied=False,
        stale_because="the state changed since the plan was made",
    )
    assert end_build(w, stale) == "started"  # the re-plan
    assert not any(isinstance(e.data, ProvisioningSucceeded) for e in w.bus.events)
    build = w.builds.started[-1]
    assert (build.attempt, build.plan_only) == (3, True)
    assert w.artifacts.review_inputs[(req.request_id, 3)].approval_required
    entry = w.ledger.entries[req.request_id]
    assert (entry.state, entry.monthly_cost) == (State.PLANNING, None)
    end_build(w, reviewed(w))
    replanned = w.bus.events[-1].data
    assert isinstance(replanned, ProvisioningPlanned)
    assert replanned.replanned_because == "the state changed since the plan was made"
    assert (replanned.verdict, replanned.attempt) == (PlanVerdict.HOLD, 3)
    held = w.ledger.entries[req.request_id].held_plan
    assert held is not None
    assert (held.attempt, held.sha256) == (3, replanned.plan_sha256)
    assert [t.to_state for t in w.ledger.history(req.request_id)][4:] == [
        State.APPROVED,
        State.QUEUED,
        State.PROVISIONING,
        State.QUEUED,
        State.PLANNING,
        State.AWAITING_APPROVAL,
    ]


def test_a_re_plan_whose_start_failed_is_resumed_by_the_retried_build_event() -> None:
    w = world_with()
    req = _staging()
    planned = _held(w, req)
    w.service.on_request(approved(req, "approved"))
    stale = ApplyRecord(
        request_id=req.request_id,
        attempt=2,
        plan_sha256=planned.plan_sha256,
        applied=False,
        stale_because="the module changed",
    )
    w.builds.fail_next = 1  # CodeBuild throttles the re-plan's StartBuild
    with pytest.raises(RuntimeError, match="throttling"):
        end_build(w, stale)
    assert w.ledger.entries[req.request_id].state is State.QUEUED
    assert end_build(w, stale) == "started"  # SQS redelivers the apply build's outcome
    assert w.ledger.entries[req.request_id].state is State.PLANNING
    assert [b.attempt for b in w.builds.started if b.plan_only] == [1, 3]


def test_a_request_needing_no_approval_plans_and_applies_in_one_build() -> None:
    w = world_with()
    req = request()  # dev: no approval
    assert w.service.on_request(received(req)) == "started"
    (build,) = w.builds.started
    assert (build.plan_only, build.approved_plan) == (False, None)
    review_input = w.artifacts.review_inputs[(req.request_id, 1)]
    assert (review_input.approval_required, review_input.environment) == (False, "dev")
    record = reviewed(w)
    assert (record.verdict, record.applied) == (PlanVerdict.APPLY, True)
    assert end_build(w, record) == "recorded"
    assert _types(w.bus.events) == ["started", "planned", "succeeded"]
    planned, succeeded = w.bus.events[1].data, w.bus.events[2].data
    assert isinstance(planned, ProvisioningPlanned)
    assert isinstance(succeeded, ProvisioningSucceeded)
    assert planned.verdict is PlanVerdict.APPLY
    assert succeeded.plan_sha256 == planned.plan_sha256 == record.plan_sha256
    entry = w.ledger.entries[req.request_id]
    assert (entry.state, entry.monthly_cost) == (State.SUCCEEDED, record.cost.monthly_after)


def test_the_budget_sees_what_the_cost_center_already_runs() -> None:
    w = world_with({"dev": {"*": {"monthly_usd": 100, "action": "require_approval"}}})
    w.costs.by_scope["dev#CC-1042"] = {"someone-else": Decimal("50.00")}
    req = request()
    w.service.on_request(received(req))
    assert w.artifacts.review_inputs[(req.request_id, 1)].committed == Decimal("50.00")
    assert w.costs.asked == [("dev", "CC-1042", req.request_id)]
    # 50 running + 86.70 this request is over 100: held in the one build, nothing applied.
    record = reviewed(w)
    assert (record.verdict, record.applied) == (PlanVerdict.HOLD, False)
    end_build(w, record)
    planned = w.bus.events[-1].data
    assert isinstance(planned, ProvisioningPlanned)
    assert planned.reasons == [
        "estimated 136.70 USD/month for cost center CC-1042 in dev (50.00 running + 86.70 "
        "this request, prices of 2026-12-02) is over its ceiling of 100.00 USD/month"
    ]
    entry = w.ledger.entries[req.request_id]
    assert entry.state is State.AWAITING_APPROVAL
    assert entry.held_plan is not None
    # Its approval applies the held plan.
    w.service.on_request(approved(req, "approved"))
    assert w.builds.started[-1].approved_plan is not None


def test_a_refused_plan_rejects_the_request_with_its_reasons() -> None:
    w = world_with()
    req = request(environment="staging")  # the recorded update plan uses m6i.large
    w.service.on_request(received(req))
    record = reviewed(w, "ec2-app-update")
    assert record.verdict is PlanVerdict.REFUSE
    assert end_build(w, record) == "recorded"
    assert _types(w.bus.events) == ["started", "planned", "failed"]
    planned, failed = w.bus.events[1].data, w.bus.events[2].data
    assert isinstance(planned, ProvisioningPlanned)
    assert isinstance(failed, ProvisioningFailed)
    assert (planned.verdict, failed.build_status) == (PlanVerdict.REFUSE, "PLAN_REFUSED")
    assert failed.error_tail == planned.reasons == record.reasons
    assert w.ledger.entries[req.request_id].state is State.REJECTED
    # Terminal like a failure: an update moves it on.
    update = request(environment="staging", action=Action.UPDATE, instance_type="t3.small")
    assert w.service.on_request(received(update, "update")) == "started"


def test_a_reject_budget_refuses_the_request_with_the_figures() -> None:
    w = world_with({"dev": {"*": {"monthly_usd": 10, "action": "reject"}}})
    req = request()
    w.service.on_request(received(req))
    end_build(w, reviewed(w))
    failed = w.bus.events[-1].data
    assert isinstance(failed, ProvisioningFailed)
    assert failed.build_status == "PLAN_REFUSED"
    assert "is over its ceiling of 10.00 USD/month" in failed.reason
    assert w.ledger.entries[req.request_id].state is State.REJECTED


def test_a_destroy_waiting_for_approval_shows_its_plan_and_confirms_deleting_data() -> None:
    w = world_with()
    account = request(product="aws-account")
    w.service.on_request(received(account, "create"))
    end_build(w, reviewed(w, "aws-account-create"))
    destroy = request(
        product="aws-account", action=Action.DESTROY, approval=ApprovalState.REQUESTED
    )
    assert w.service.on_request(approval_required(destroy, "destroy")) == "started"
    review_input = w.artifacts.review_inputs[(account.request_id, 2)]
    assert (review_input.action, review_input.destroy_confirmed) == (Action.DESTROY, True)
    record = reviewed(w, "aws-account-destroy")
    assert record.verdict is PlanVerdict.HOLD  # shown, not refused: the approver confirms
    end_build(w, record)
    planned = w.bus.events[-1].data
    assert isinstance(planned, ProvisioningPlanned)
    assert planned.summary.counts.destroy == 1
    assert w.ledger.entries[account.request_id].state is State.AWAITING_APPROVAL
    w.service.on_request(approved(destroy, "destroy-approved"))
    assert w.ledger.entries[account.request_id].state is State.DESTROYING
    applied = ApplyRecord(
        request_id=account.request_id, attempt=3, plan_sha256=planned.plan_sha256, applied=True
    )
    end_build(w, applied)
    entry = w.ledger.entries[account.request_id]
    assert (entry.state, entry.monthly_cost) == (State.DESTROYED, None)
