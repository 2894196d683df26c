"""Between the ledger and the build's review step: what a build is told to review with,
and what its record becomes on the ticket.

Pure: the service reads the ledger, the committed cost and the record, and hands them
here. The documents themselves are :mod:`provisioner.domain.plan.build_review`'s.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from provisioner.domain.ledger import HeldPlan
from provisioner.domain.lifecycle import BuildVerdict
from provisioner.domain.plan.build_review import ApplyRecord, ReviewInput, ReviewRecord
from provisioner.settings import PlanGuardrails
from selfservice_contracts.events import (
    PlanArtifacts,
    ProvisioningFailed,
    ProvisioningPlanned,
)
from selfservice_contracts.plan import PlanVerdict
from selfservice_contracts.request import Action, ApprovalState, ProvisioningRequest

__all__ = [
    "build_verdict",
    "held_plan",
    "planned_data",
    "refused_data",
    "review_input",
]

APPROVAL_REASON = "the request needs an approval of its plan before it is applied"


def review_input(
    request: ProvisioningRequest,
    *,
    approval_required: bool,
    committed: Decimal,
    guardrails: PlanGuardrails,
) -> ReviewInput:
    """The review input of a build for ``request``.

    A decommission confirms the deletion of what holds data when the ITSM approved it, or
    when its plan waits for an approval (the approver is shown what will be deleted).
    """
    return ReviewInput(
        product=request.product,
        action=request.action,
        environment=request.environment or "",
        cost_center=request.cost_center,
        approval_required=approval_required,
        destroy_confirmed=request.action is Action.DESTROY
        and (approval_required or request.approval is ApprovalState.APPROVED),
        committed=committed.quantize(Decimal("0.01")),
        guardrails=guardrails,
    )


def build_verdict(record: ReviewRecord | ApplyRecord | None) -> BuildVerdict | None:
    """What a succeeded build's record says became of its plan (None: no record)."""
    if record is None:
        return None
    if isinstance(record, ApplyRecord):
        return "applied" if record.applied else "stale"
    if record.verdict is PlanVerdict.REFUSE:
        return "refused"
    return "applied" if record.applied else "held"


def held_plan(record: ReviewRecord) -> HeldPlan:
    """The plan a review held, as the ledger keeps it until its approval."""
    return HeldPlan(
        sha256=record.plan_sha256,
        attempt=record.attempt,
        module_sha256=record.module_sha256,
        monthly_cost=record.cost.monthly_after,
    )


def planned_data(
    record: ReviewRecord,
    common: dict[str, Any],
    plan_prefix_uri: str,
    *,
    replanned_because: str | None = None,
) -> ProvisioningPlanned:
    """The ``provisioning.planned`` data of a reviewed plan.

    A plan the build did not apply and did not refuse is held for an approval of its hash,
    whatever else the review allowed (a plan-only build's plan waits for one).
    """
    verdict, reasons = record.verdict, list(record.reasons)
    if verdict is PlanVerdict.APPLY and not record.applied:
        verdict, reasons = PlanVerdict.HOLD, [*reasons, APPROVAL_REASON]
    prefix = plan_prefix_uri.rstrip("/")
    return ProvisioningPlanned(
        **common,
        plan_sha256=record.plan_sha256,
        summary=record.summary,
        cost=record.cost,
        policy=record.policy,
        budget=record.budget,
        artifacts=PlanArtifacts(
            plan_s3_uri=f"{prefix}/tfplan", plan_json_s3_uri=f"{prefix}/plan.json"
        ),
        needs_approval=verdict is PlanVerdict.HOLD,
        verdict=verdict,
        reasons=[reason[:1000] for reason in reasons[:50]],
        replanned_because=replanned_because[:1000] if replanned_because else None,
    )


def refused_data(record: ReviewRecord, common: dict[str, Any]) -> ProvisioningFailed:
    """The ``provisioning.failed`` data of a refused plan: nothing was applied."""
    reasons = record.reasons or ["the plan review refused the plan"]
    return ProvisioningFailed(
        **common,
        build_status="PLAN_REFUSED",
        phase="BUILD",
        reason=f"the plan was refused, nothing was applied: {'; '.join(reasons)}"[:1000],
        error_tail=[reason[:1000] for reason in reasons[:40]],
    )
