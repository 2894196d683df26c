"""Between the ledger and the build's review step: what a build is told to review with,
and what its record becomes on the ticket.

Pure: the service reads the ledger, the committed cost and the record, and hands them
here. The documents themselves are :mod:`provisioner.domain.plan.build_review`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from provisioner.domain.ledger import HeldPlan, LedgerEntry
from provisioner.domain.lifecycle import BuildVerdict, Decision, State
from provisioner.domain.outcomes import outcome_data
from provisioner.domain.plan.build_review import ApplyRecord, ReviewInput, ReviewRecord
from provisioner.domain.ports import ApprovedPlan, BuildResult
from provisioner.settings import PlanGuardrails
from selfservice_contracts.events import (
    PlanArtifacts,
    ProvisioningFailed,
    ProvisioningPlanned,
    ProvisioningSucceeded,
)
from selfservice_contracts.plan import PlanVerdict
from selfservice_contracts.request import Action, ApprovalState, ProvisioningRequest

__all__ = [
    "APPROVAL_REASON",
    "BuildEnd",
    "approved_plan",
    "build_end",
    "build_verdict",
    "held_attempt",
    "held_plan",
    "no_committed_cost",
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


def no_committed_cost(
    environment: str | None, cost_center: str | None, *, excluding: str
) -> Decimal:
    """Nothing counted (no cost index wired)."""
    return Decimal("0.00")


def held_attempt(entry: LedgerEntry) -> int:
    """The attempt whose plan the entry holds (its own attempt when none is held)."""
    return entry.held_plan.attempt if entry.held_plan else entry.attempt


def approved_plan(entry: LedgerEntry, plan_uri: str) -> ApprovedPlan | None:
    """The plan the entry's queued build applies (None: the build plans first);
    ``plan_uri`` is where the held plan's attempt keeps it."""
    held = entry.held_plan
    if not entry.apply_held or held is None:
        return None
    return ApprovedPlan(uri=plan_uri, sha256=held.sha256, module_sha256=held.module_sha256)


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
        # No ceiling for the environment and cost center: no budget to show. (The
        # contract's ``ceiling`` has no default: an event drops None values on the way.)
        budget=record.budget if record.budget.ceiling is not None else None,
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


@dataclass(frozen=True)
class BuildEnd:
    """What a build's end publishes (``(what, data)``: ``what`` names the event's id) and
    changes in the entry, besides its state and history."""

    events: list[tuple[str, ProvisioningPlanned | ProvisioningSucceeded | ProvisioningFailed]]
    changes: dict[str, Any]


def build_end(
    entry: LedgerEntry,
    result: BuildResult,
    decision: Decision,
    record: ReviewRecord | ApplyRecord | None,
    *,
    outputs: dict[str, Any],
    log_tail: list[str],
    plan_uri: str,
) -> BuildEnd:
    """The events and entry changes of a build's end, as its review record says.

    Applied in the build: ``planned`` (apply) and ``succeeded`` with the plan's hash, and
    the instance's monthly cost becomes the plan's. Held: ``planned`` (hold), the plan
    kept for its approval. Refused: ``planned`` (refuse) and ``failed`` (``PLAN_REFUSED``).
    An approved plan applied: ``succeeded`` with its hash. Stale: nothing yet — the re-plan
    will tell the ticket why. A failed build: ``failed``, after ``planned`` if it had
    reviewed its plan (the apply of that plan failed: the ticket sees what was tried).
    """
    cleared: dict[str, Any] = {
        "plan_only": False,
        "apply_held": False,
        "held_plan": None,
        "replan_because": None,
    }
    final = decision.final
    outcome = outcome_data(entry, result, outputs=outputs, log_tail=log_tail)
    common = {
        name: getattr(outcome, name)
        for name in ("request_id", "ticket", "product", "action", "attempt", "build_id")
    } | {"log_url": outcome.log_url}
    if final is State.FAILED or isinstance(outcome, ProvisioningFailed):
        tried: list[tuple[str, ProvisioningPlanned | ProvisioningFailed]] = []
        if isinstance(record, ReviewRecord):
            planned = planned_data(record, common, plan_uri, replanned_because=entry.replan_because)
            tried.append(("planned", planned))
        return BuildEnd([*tried, (result.status, outcome)], cleared)
    if final is State.QUEUED:  # a stale approved plan: planned again, next attempt
        return BuildEnd(
            [],
            cleared
            | {
                "plan_only": decision.plan_only,
                "replan_because": decision.replan_because,
                "attempt": entry.attempt + 1,
                "queued_by": f"build#{result.build_id}",
                "build_id": None,
            },
        )
    if isinstance(record, ReviewRecord):
        return _reviewed(entry, result, final, record, outcome, common, plan_uri, outputs, cleared)
    changes = cleared | {"outputs": outputs}
    if isinstance(record, ApplyRecord):
        outcome = outcome.model_copy(update={"plan_sha256": record.plan_sha256})
        held = entry.held_plan
        changes["monthly_cost"] = (
            None if final is State.DESTROYED else held.monthly_cost if held else entry.monthly_cost
        )
    elif final is State.DESTROYED:
        changes["monthly_cost"] = None
    if final is State.AWAITING_APPROVAL:  # a plan-only build that left no record
        return BuildEnd([], cleared)
    return BuildEnd([(result.status, outcome)], changes)


def _reviewed(  # noqa: PLR0917 - the facts of one build's end
    entry: LedgerEntry,
    result: BuildResult,
    final: State,
    record: ReviewRecord,
    outcome: ProvisioningSucceeded,
    common: dict[str, Any],
    plan_uri: str,
    outputs: dict[str, Any],
    cleared: dict[str, Any],
) -> BuildEnd:
    """The end of a build that planned and reviewed: applied, held or refused."""
    planned = planned_data(record, common, plan_uri, replanned_because=entry.replan_because)
    if final is State.REJECTED:
        return BuildEnd(
            [("planned", planned), ("PLAN_REFUSED", refused_data(record, common))], cleared
        )
    if final is State.AWAITING_APPROVAL:
        return BuildEnd([("planned", planned)], cleared | {"held_plan": held_plan(record)})
    applied = outcome.model_copy(update={"plan_sha256": record.plan_sha256})
    cost = None if final is State.DESTROYED else record.cost.monthly_after
    return BuildEnd(
        [("planned", planned), (result.status, applied)],
        cleared | {"outputs": outputs, "monthly_cost": cost},
    )
