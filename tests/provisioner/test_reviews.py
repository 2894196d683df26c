"""What a build is told to review with, and what its record becomes on the ticket."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from provisioner.domain.plan import load_prices
from provisioner.domain.plan.build_review import ApplyRecord, ReviewRecord, review_build
from provisioner.domain.products import load_product
from provisioner.domain.reviews import (
    APPROVAL_REASON,
    build_verdict,
    held_plan,
    planned_data,
    refused_data,
    review_input,
)
from selfservice_contracts.envelope import build_event, to_eventbridge_entry
from selfservice_contracts.plan import PlanVerdict
from selfservice_contracts.request import Action, ApprovalState
from selfservice_runtime.parsing import parse_sqs_body
from tests.conftest import ROOT
from tests.provisioner.fakes import EXAMPLE_GUARDRAILS, request

FIXTURES = ROOT / "tests/fixtures/plans"
GUARDRAILS = EXAMPLE_GUARDRAILS
SHA = "c" * 64
PREFIX = "s3://artifacts/plans/req-1/2/"


def _record(name: str, *, plan_only: bool = False, **changes: Any) -> ReviewRecord:
    product = "aws-account" if name.startswith("aws-account") else "ec2-app"
    wanted = request(product=product, environment="staging", **changes.pop("request", {}))
    return review_build(
        json.loads((FIXTURES / f"{name}.json").read_text()),
        SHA,
        "d" * 64,
        load_product(product).plan,
        load_prices("us-east-1"),
        review_input(wanted, committed=Decimal(0), guardrails=GUARDRAILS, **changes),
        request_id="req-1",
        attempt=2,
        plan_only=plan_only,
    )


COMMON: dict[str, Any] = {
    "request_id": request().request_id,
    "ticket": request().ticket,
    "product": "ec2-app",
    "action": Action.CREATE,
    "attempt": 2,
    "build_id": "selfservice-provision:b-2",
}


def test_the_review_input_carries_the_request_the_cost_and_the_guardrails() -> None:
    wanted = request(environment="staging", cost_center="CC-7")
    document = review_input(
        wanted, approval_required=True, committed=Decimal("350"), guardrails=GUARDRAILS
    )
    assert (document.environment, document.cost_center, document.committed) == (
        "staging",
        "CC-7",
        Decimal("350.00"),
    )
    assert (document.approval_required, document.destroy_confirmed) == (True, False)
    assert document.guardrails == GUARDRAILS


def test_a_decommission_confirms_deleting_data_when_approved_or_waiting_for_approval() -> None:
    def confirmed(approval: ApprovalState, *, approval_required: bool) -> bool:
        wanted = request(product="aws-account", action=Action.DESTROY, approval=approval)
        return review_input(
            wanted,
            approval_required=approval_required,
            committed=Decimal(0),
            guardrails=GUARDRAILS,
        ).destroy_confirmed

    assert confirmed(ApprovalState.APPROVED, approval_required=False)
    assert confirmed(ApprovalState.REQUESTED, approval_required=True)
    assert not confirmed(ApprovalState.NOT_REQUIRED, approval_required=False)
    # Only a decommission confirms a deletion; an update never does.
    update = request(action=Action.UPDATE, approval=ApprovalState.APPROVED)
    assert not review_input(
        update, approval_required=True, committed=Decimal(0), guardrails=GUARDRAILS
    ).destroy_confirmed


def test_the_verdict_of_each_record() -> None:
    assert build_verdict(None) is None
    assert build_verdict(_record("ec2-app-create", approval_required=False)) == "applied"
    assert build_verdict(_record("ec2-app-create", approval_required=True)) == "held"
    assert build_verdict(_record("ec2-app-create", approval_required=False, plan_only=True)) == (
        "held"
    )
    assert build_verdict(_record("ec2-app-update", approval_required=False)) == "refused"
    applied = ApplyRecord(request_id="req-1", attempt=3, plan_sha256=SHA, applied=True)
    assert build_verdict(applied) == "applied"
    stale = applied.model_copy(update={"applied": False, "stale_because": "state changed"})
    assert build_verdict(stale) == "stale"


def test_a_held_plan_is_kept_with_its_hash_attempt_module_and_cost() -> None:
    held = held_plan(_record("ec2-app-create", approval_required=True))
    assert (held.sha256, held.attempt, held.module_sha256, held.monthly_cost) == (
        SHA,
        2,
        "d" * 64,
        Decimal("86.70"),
    )


def test_the_planned_event_of_a_held_plan_shows_it_and_asks_for_the_approval() -> None:
    data = planned_data(
        _record("ec2-app-create", approval_required=True),
        COMMON,
        PREFIX,
        replanned_because="the state changed since the plan was made",
    )
    assert (data.verdict, data.needs_approval, data.plan_sha256) == (PlanVerdict.HOLD, True, SHA)
    assert data.reasons == ["staging requests need an approval of their plan"]
    assert data.artifacts.plan_s3_uri == "s3://artifacts/plans/req-1/2/tfplan"
    assert data.artifacts.plan_json_s3_uri == "s3://artifacts/plans/req-1/2/plan.json"
    assert data.replanned_because == "the state changed since the plan was made"
    assert data.summary.counts.add > 0
    assert data.cost.monthly_after == Decimal("86.70")


def test_a_plan_the_build_did_not_apply_is_held_whatever_the_review_allowed() -> None:
    data = planned_data(
        _record("ec2-app-create", approval_required=False, plan_only=True), COMMON, PREFIX
    )
    assert (data.verdict, data.needs_approval) == (PlanVerdict.HOLD, True)
    assert data.reasons == [APPROVAL_REASON]
    applied = planned_data(_record("ec2-app-create", approval_required=False), COMMON, PREFIX)
    assert (applied.verdict, applied.needs_approval, applied.reasons) == (
        PlanVerdict.APPLY,
        False,
        [],
    )


def test_a_refused_plan_fails_the_request_with_its_reasons() -> None:
    record = _record("ec2-app-update", approval_required=False)
    planned = planned_data(record, COMMON, PREFIX)
    assert (planned.verdict, planned.needs_approval) == (PlanVerdict.REFUSE, False)
    failed = refused_data(record, COMMON)
    assert failed.build_status == "PLAN_REFUSED"
    assert failed.error_tail == record.reasons == planned.reasons
    assert "m6i.large" in failed.reason
    assert failed.reason.startswith("the plan was refused, nothing was applied: ")


def test_a_planned_event_without_a_budget_travels_and_parses_back() -> None:
    """No ceiling where the request runs: no budget on the ticket, and the event (whose
    envelope drops None values) still parses on the consumer's side."""
    unbudgeted = GUARDRAILS.model_copy(update={"budgets": {}})
    wanted = request(environment="staging")
    record = review_build(
        json.loads((FIXTURES / "ec2-app-create.json").read_text()),
        SHA,
        "d" * 64,
        load_product("ec2-app").plan,
        load_prices("us-east-1"),
        review_input(wanted, approval_required=False, committed=Decimal(0), guardrails=unbudgeted),
        request_id="req-1",
        attempt=2,
        plan_only=False,
    )
    assert record.budget.ceiling is None
    data = planned_data(record, COMMON, PREFIX)
    assert data.budget is None
    entry = to_eventbridge_entry(build_event(data, event_id="e-1"), event_bus_name="bus")
    body = {
        "version": "0",
        "id": "5f1d2c3b-0000-4000-8000-000000000001",
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": "123456789012",
        "time": "2026-12-02T17:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": json.loads(entry["Detail"]),
    }
    assert parse_sqs_body(json.dumps(body)).data == data
